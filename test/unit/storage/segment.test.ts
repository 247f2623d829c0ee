import assert from 'node:assert/strict';
import { open, readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { setBaseOffset } from '../../../src/protocol/records/batch-header.ts';
import { FileHandleCache } from '../../../src/storage/file-handle-cache.ts';
import { realFileLayer } from '../../../src/storage/file-layer.ts';
import { filenamePrefixFromOffset, LogSegment, type SegmentAppendBatch } from '../../../src/storage/segment.ts';
import { sharedBufferPool } from '../../../src/util/buffer-pool.ts';
import { decodeAll, tempDir, valuesBatch } from './helpers.ts';

function opts(handles = new FileHandleCache(realFileLayer, 16)) {
  return { files: realFileLayer, handles, maxIndexSize: 4096, createdMs: Date.now() };
}

function appendBatch(data: Buffer, base: bigint, count: number, ts: bigint): SegmentAppendBatch {
  setBaseOffset(data, 0, base);
  return { data, baseOffset: base, lastOffset: base + BigInt(count - 1), maxTimestamp: ts };
}

async function filled(dir: string, batches: number, perBatch = 5, handles?: FileHandleCache): Promise<LogSegment> {
  const seg = await LogSegment.create(dir, 100n, opts(handles));
  let next = 100n;
  for (let i = 0; i < batches; i++) {
    const ts = BigInt(1000 + i);
    await seg.append([appendBatch(valuesBatch(`b${i}`, perBatch, Number(ts)), next, perBatch, ts)], 100);
    next += BigInt(perBatch);
  }
  return seg;
}

test('segment files are named by the 20-digit base offset', async (t) => {
  const dir = await tempDir(t);
  assert.equal(filenamePrefixFromOffset(368769n), '00000000000000368769');
  const seg = await filled(dir, 3);
  await seg.close();
  assert.deepEqual((await readdir(dir)).sort(), [
    '00000000000000000100.index',
    '00000000000000000100.log',
    '00000000000000000100.timeindex',
  ]);
});

test('segment reads whole batches from the one containing the offset', async (t) => {
  const dir = await tempDir(t);
  const seg = await filled(dir, 20);
  assert.ok((seg.offsetIndex?.entries ?? 0) > 0, 'sparse index has entries');
  assert.equal(await seg.readNextOffset(), 200n);
  const r = await seg.read(137n, 1 << 20, seg.size, true);
  assert.ok(r);
  const recs = decodeAll(r.records);
  assert.equal(recs[0]!.offset, 135n, 'starts at the batch holding 137');
  assert.equal(recs.at(-1)!.offset, 199n);
  // maxSize smaller than one batch: minOneMessage still returns it whole.
  const one = await seg.read(137n, 10, seg.size, true);
  assert.equal(decodeAll(one!.records).length, 5);
  const none = await seg.read(137n, 10, seg.size, false);
  assert.equal(none!.records.length, 0);
  // maxPosition bounds the read.
  const bounded = await seg.read(100n, 1 << 20, r.firstBatch.position, true);
  assert.equal(decodeAll(bounded!.records).at(-1)!.offset, 134n);
  assert.equal(await seg.read(500n, 100, seg.size, true), null);
  await seg.close();
});

test('large reads come from the shared buffer pool; a small result is a copy and its buffer goes back', async (t) => {
  const dir = await tempDir(t);
  const seg = await filled(dir, 20, 50);
  // A large result is a pooled buffer (a view at the start of a power-of-two buffer).
  const big = await seg.read(100n, 1 << 20, seg.size, true);
  assert.ok(big !== null && big.records.length >= 4096);
  assert.equal(big.records.byteOffset, 0);
  assert.equal(Math.log2(big.records.buffer.byteLength) % 1, 0);
  sharedBufferPool.release(big.records);
  // Up to 4 KiB asked (a pooled read), but whole batches make less: the result is copied out and
  // the pooled buffer is free again at once. The pool is seeded with a known 4 KiB buffer first.
  const seed = sharedBufferPool.acquire(4096);
  sharedBufferPool.release(seed);
  const small = await seg.read(100n, 4096, seg.size, true);
  assert.ok(small !== null && small.records.length > 0 && small.records.length < 4096);
  assert.ok(decodeAll(small.records).length > 0);
  assert.ok(small.records.buffer !== seed.buffer, 'the result is a copy');
  const again = sharedBufferPool.acquire(4096);
  assert.ok(again.buffer === seed.buffer, 'the buffer behind the small read was given back');
  sharedBufferPool.release(again);
  await seg.close();
});

test('segment finds the first batch by timestamp', async (t) => {
  const dir = await tempDir(t);
  const seg = await filled(dir, 30);
  const loc = await seg.findBatchByTimestamp(1017n, 0n);
  assert.equal(loc?.header.baseOffset, 100n + 17n * 5n);
  assert.equal(await seg.findBatchByTimestamp(99999n, 0n), null);
  await seg.close();
});

test('segment recovery truncates at the first invalid byte and rebuilds indexes', async (t) => {
  const dir = await tempDir(t);
  const seg = await filled(dir, 10);
  const goodSize = seg.size;
  await seg.close();
  // Append garbage then a torn copy of a batch.
  const f = await open(seg.logPath, 'r+');
  const torn = valuesBatch('torn', 5).subarray(0, 40);
  await f.write(torn, 0, torn.length, goodSize);
  await f.close();
  const reopened = await LogSegment.open(dir, 100n, opts());
  assert.equal(reopened.size, goodSize + 40);
  const truncated = await reopened.recover(100);
  assert.equal(truncated, 40);
  assert.equal(reopened.size, goodSize);
  assert.equal(reopened.nextOffset, 150n);
  // Flip a byte inside the 5th batch: CRC fails there.
  await reopened.close();
  const g = await open(seg.logPath, 'r+');
  const loc = await (async () => {
    const s = await LogSegment.open(dir, 100n, opts());
    const l = await s.translateOffset(120n);
    await s.close();
    return l!;
  })();
  await g.write(Buffer.from([0xff]), 0, 1, loc.position + 70);
  await g.close();
  const again = await LogSegment.open(dir, 100n, opts());
  assert.equal(await again.recover(100), goodSize - loc.position);
  assert.equal(again.nextOffset, 120n);
  await again.close();
});

test('segment truncateTo removes the batch containing the offset and everything after', async (t) => {
  const dir = await tempDir(t);
  const seg = await filled(dir, 10);
  await seg.truncateTo(123n);
  assert.equal(seg.nextOffset, 120n);
  const r = await seg.read(100n, 1 << 20, seg.size, true);
  assert.equal(decodeAll(r!.records).at(-1)!.offset, 119n);
  await seg.close();
});

test('segment files go through a bounded handle cache', async (t) => {
  const dir = await tempDir(t);
  const cache = new FileHandleCache(realFileLayer, 2);
  const segs: LogSegment[] = [];
  for (let i = 0; i < 5; i++) {
    const s = await LogSegment.create(dir, BigInt(i * 1000), opts(cache));
    await s.append([appendBatch(valuesBatch('x', 2), BigInt(i * 1000), 2, 1n)], 4096);
    segs.push(s);
  }
  assert.ok(cache.openCount <= 2);
  for (const s of segs) {
    const r = await s.read(s.baseOffset, 1000, s.size, true);
    assert.equal(decodeAll(r!.records).length, 2);
  }
  assert.ok(cache.openCount <= 2);
  assert.ok(cache.evictions > 0);
  for (const s of segs) await s.close();
});
