import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PerfBatchFactory } from '../../../src/admin/perf-batches.ts';
import { Compression } from '../../../src/protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { decodeBatch } from '../../../src/protocol/records/record.ts';

const payload = Buffer.from('ABCDEFGHIJ'.repeat(103)); // 1030 bytes: two-byte value length varint

function expected(count: number, timestamp: bigint): Buffer {
  return buildRecordBatchSync({ records: new Array(count).fill({ key: null, value: payload }), timestamp });
}

test('a batch of n records is byte for byte what the builder makes, for every n up to the maximum', async () => {
  // 70 records cross the one- to two-byte offsetDelta varint boundary (64).
  const factory = new PerfBatchFactory(payload, 70, Compression.none);
  for (const n of [1, 2, 63, 64, 65, 70]) {
    const batch = await factory.build(n, 1_700_000_000_123n + BigInt(n));
    assert.deepEqual(batch, expected(n, 1_700_000_000_123n + BigInt(n)), `batch of ${n}`);
    factory.release(batch);
  }
});

test('released buffers are reused and rewritten correctly', async () => {
  const factory = new PerfBatchFactory(payload, 10, Compression.none);
  const first = await factory.build(9, 1000n);
  factory.release(first);
  // A batch of another size reuses the same memory (every buffer is the largest batch's size).
  const second = await factory.build(5, 2000n);
  assert.equal(second.buffer, first.buffer, 'the released buffer is reused');
  assert.equal(second.byteOffset, first.byteOffset);
  assert.deepEqual(second, expected(5, 2000n));
  const decoded = await decodeBatch(second);
  assert.equal(decoded.records.length, 5);
  assert.deepEqual(
    decoded.records.map((r) => r.offset),
    [0n, 1n, 2n, 3n, 4n],
  );
  assert.ok(decoded.records.every((r) => r.timestamp === 2000n && r.value?.equals(payload) && r.key === null));
});

test('compressed batches are compressed per batch and decode to the same records', async () => {
  const factory = new PerfBatchFactory(payload, 20, Compression.gzip);
  const batch = await factory.build(20, 5000n);
  assert.ok(batch.length < (20 * payload.length) / 4, 'the repetitive payload compresses');
  const decoded = await decodeBatch(batch);
  assert.equal(decoded.records.length, 20);
  assert.ok(decoded.records.every((r) => r.value?.equals(payload)));
});

test('a batch larger than the factory was made for is refused', async () => {
  const factory = new PerfBatchFactory(payload, 3, Compression.none);
  await assert.rejects(factory.build(4, 0n), RangeError);
  await assert.rejects(factory.build(0, 0n), RangeError);
});
