import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolErrorCodes } from '../../../../src/protocol/errors.ts';
import {
  batchSizeAt,
  buildRecordBatchSync,
  Compression,
  CURRENT_MAGIC,
  compressionOf,
  decodeRecordsSync,
  isControl,
  isTransactional,
  LOG_OVERHEAD,
  lastOffsetOf,
  RECORD_BATCH_HEADER_SIZE,
  readBatchHeader,
  setBaseOffset,
  setLogAppendTime,
  setPartitionLeaderEpoch,
  timestampTypeOf,
  verifyBatchCrc,
} from '../../../../src/protocol/records/index.ts';
import { assertProtocolError, legacyMessage } from './helpers.ts';

const sample = () =>
  buildRecordBatchSync({
    baseOffset: 100n,
    timestamp: 1_700_000_000_000n,
    producerId: 42n,
    producerEpoch: 3,
    baseSequence: 7,
    partitionLeaderEpoch: 5,
    transactional: true,
    records: [
      { key: Buffer.from('k1'), value: Buffer.from('v1') },
      { key: null, value: Buffer.from('v2'), timestamp: 1_700_000_000_500n },
      { key: Buffer.from('k3'), value: null, timestamp: 1_699_999_999_000n },
    ],
  });

test('constants match the v2 layout', () => {
  assert.equal(LOG_OVERHEAD, 12);
  assert.equal(RECORD_BATCH_HEADER_SIZE, 61);
  assert.equal(CURRENT_MAGIC, 2);
});

test('readBatchHeader reads every field', () => {
  const batch = sample();
  const h = readBatchHeader(batch);
  assert.equal(h.baseOffset, 100n);
  assert.equal(h.batchLength, batch.length - 12);
  assert.equal(h.partitionLeaderEpoch, 5);
  assert.equal(h.magic, 2);
  assert.equal(h.crc, batch.readUInt32BE(17));
  assert.equal(compressionOf(h.attributes), Compression.none);
  assert.equal(isTransactional(h.attributes), true);
  assert.equal(isControl(h.attributes), false);
  assert.equal(timestampTypeOf(h.attributes), 0);
  assert.equal(h.lastOffsetDelta, 2);
  assert.equal(h.baseTimestamp, 1_700_000_000_000n);
  assert.equal(h.maxTimestamp, 1_700_000_000_500n);
  assert.equal(h.producerId, 42n);
  assert.equal(h.producerEpoch, 3);
  assert.equal(h.baseSequence, 7);
  assert.equal(h.recordCount, 3);
  assert.equal(lastOffsetOf(h), 102n);
});

test('readBatchHeader at an offset inside a larger buffer', () => {
  const batch = sample();
  const buf = Buffer.concat([Buffer.alloc(5, 0xee), batch]);
  assert.equal(readBatchHeader(buf, 5).baseOffset, 100n);
  assert.equal(batchSizeAt(buf, 5), batch.length);
  assert.equal(verifyBatchCrc(buf, 5), true);
});

test('readBatchHeader rejects short input and wrong magic', () => {
  const batch = sample();
  assertProtocolError(() => readBatchHeader(batch.subarray(0, 60)), ProtocolErrorCodes.truncated);
  assertProtocolError(() => readBatchHeader(batch, batch.length - 10), ProtocolErrorCodes.truncated);
  const bad = Buffer.from(batch);
  bad[16] = 3;
  assertProtocolError(() => readBatchHeader(bad), ProtocolErrorCodes.invalid, /magic 3/);
  for (const magic of [0, 1]) {
    bad[16] = magic;
    assertProtocolError(
      () => readBatchHeader(bad),
      ProtocolErrorCodes.unsupportedVersion,
      new RegExp(`magic ${magic}.*legacy`),
    );
  }
  // A legacy message shorter than a v2 header still names its magic.
  assertProtocolError(() => readBatchHeader(legacyMessage(0, Buffer.from('x'))), undefined, /magic 0.*legacy/);
});

test('batchSizeAt: -1 below 12 bytes, error below the minimum batchLength', () => {
  const batch = sample();
  assert.equal(batchSizeAt(batch, 0), batch.length);
  assert.equal(batchSizeAt(batch.subarray(0, 11), 0), -1);
  assert.equal(batchSizeAt(batch.subarray(0, 12), 0), batch.length); // may exceed what is present
  const bad = Buffer.from(batch);
  bad.writeInt32BE(48, 8);
  assertProtocolError(() => batchSizeAt(bad, 0), ProtocolErrorCodes.invalid, /batchLength 48/);
  bad.writeInt32BE(-1, 8);
  assertProtocolError(() => batchSizeAt(bad, 0), ProtocolErrorCodes.invalid);
  assertProtocolError(() => batchSizeAt(legacyMessage(1, Buffer.from('x')), 0), undefined, /magic 1.*legacy/);
});

test('verifyBatchCrc detects any flipped byte covered by the CRC', () => {
  const batch = sample();
  assert.equal(verifyBatchCrc(batch), true);
  for (let i = 21; i < batch.length; i++) {
    const copy = Buffer.from(batch);
    copy[i]! ^= 0x01;
    assert.equal(verifyBatchCrc(copy), false, `flip at ${i}`);
  }
  const copy = Buffer.from(batch);
  copy[17]! ^= 0x80; // the CRC field itself
  assert.equal(verifyBatchCrc(copy), false);
  assertProtocolError(() => verifyBatchCrc(batch.subarray(0, batch.length - 1)), ProtocolErrorCodes.truncated);
});

test('setBaseOffset and setPartitionLeaderEpoch patch in place and keep the CRC valid', () => {
  const batch = sample();
  setBaseOffset(batch, 0, 9_000_000_000n);
  setPartitionLeaderEpoch(batch, 0, 77);
  assert.equal(verifyBatchCrc(batch), true);
  const h = readBatchHeader(batch);
  assert.equal(h.baseOffset, 9_000_000_000n);
  assert.equal(h.partitionLeaderEpoch, 77);
  assert.deepEqual(
    decodeRecordsSync(batch).map((r) => r.offset),
    [9_000_000_000n, 9_000_000_001n, 9_000_000_002n],
  );
});

test('setLogAppendTime sets the timestamp type and maxTimestamp, recomputes the CRC', () => {
  const batch = sample();
  setLogAppendTime(batch, 0, 1_800_000_000_000n);
  assert.equal(verifyBatchCrc(batch), true);
  const h = readBatchHeader(batch);
  assert.equal(timestampTypeOf(h.attributes), 1);
  assert.equal(isTransactional(h.attributes), true); // other attribute bits untouched
  assert.equal(h.maxTimestamp, 1_800_000_000_000n);
  for (const r of decodeRecordsSync(batch)) assert.equal(r.timestamp, 1_800_000_000_000n);
  // Idempotent.
  const before = Buffer.from(batch);
  setLogAppendTime(batch, 0, 1_800_000_000_000n);
  assert.deepEqual(batch, before);
});

test('compressionOf rejects unassigned codec ids', () => {
  assert.equal(compressionOf(0x13), Compression.lz4);
  assert.equal(compressionOf(4), Compression.zstd);
  for (const id of [5, 6, 7]) assertProtocolError(() => compressionOf(id), ProtocolErrorCodes.compression);
});
