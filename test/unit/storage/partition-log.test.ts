import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, KafkaError } from '../../../src/protocol/error-codes.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { ListOffsetsTimestamp, PartitionLog, type PartitionLogOptions } from '../../../src/storage/partition-log.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { FaultyFileLayer } from './faulty-file-layer.ts';
import { batch, decodeAll, onCleanup, readAll, str, tempDir, valuesBatch } from './helpers.ts';

async function openLog(dir: string, config: Record<string, string> = {}, extra: Partial<PartitionLogOptions> = {}) {
  return PartitionLog.open({
    dir: join(dir, 'topic-0'),
    topic: 'topic',
    partition: 0,
    config: new LogConfig({ 'file.delete.delay.ms': '0', ...config }),
    ...extra,
  });
}

function kafkaCode(code: number) {
  return (err: unknown) => err instanceof KafkaError && err.errorCode === code;
}

test('append assigns consecutive offsets in place and read returns them', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir);
  onCleanup(t, () => log.close());
  const a = await log.append(valuesBatch('a', 3));
  const b = await log.append(valuesBatch('b', 2));
  assert.equal(a.firstOffset, 0n);
  assert.equal(a.lastOffset, 2n);
  assert.equal(b.firstOffset, 3n);
  assert.equal(b.batches[0]!.baseOffset, 3n);
  assert.equal(log.logEndOffset, 5n);
  assert.equal(log.highWatermark, 5n);
  assert.equal(log.lastStableOffset, 5n);
  const recs = await readAll(log);
  assert.deepEqual(
    recs.map((r) => [r.offset, str(r.value)]),
    [
      [0n, 'a-0'],
      [1n, 'a-1'],
      [2n, 'a-2'],
      [3n, 'b-0'],
      [4n, 'b-1'],
    ],
  );
  // Fetch in the middle of a batch returns the whole batch.
  const mid = await log.read(1n, 1000);
  assert.equal(mid.firstBatchOffset, 0n);
  assert.equal(decodeAll(mid.records)[0]!.offset, 0n);
  // At the end: empty; past it: OFFSET_OUT_OF_RANGE.
  assert.equal((await log.read(5n, 1000)).records.length, 0);
  await assert.rejects(log.read(6n, 1000), kafkaCode(ErrorCode.OFFSET_OUT_OF_RANGE));
});

test('concurrent appends are coalesced and get distinct, gapless offsets', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir);
  onCleanup(t, () => log.close());
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(valuesBatch(`p${i}`, 2))));
  const firsts = results.map((r) => r.firstOffset).sort((x, y) => (x < y ? -1 : 1));
  assert.deepEqual(
    firsts,
    Array.from({ length: 50 }, (_, i) => BigInt(i * 2)),
  );
  assert.equal((await readAll(log)).length, 100);
});

test('read honours maxBytes, minOneMessage and the high watermark', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir, {}, { highWatermarkFollowsLogEnd: false });
  onCleanup(t, () => log.close());
  for (let i = 0; i < 10; i++) await log.append(valuesBatch(`x${i}`, 4));
  assert.equal(log.highWatermark, 0n);
  assert.equal((await log.read(0n, 1 << 20)).records.length, 0, 'nothing below the high watermark');
  log.updateHighWatermark(10n);
  const r = await log.read(0n, 1 << 20);
  assert.deepEqual(
    decodeAll(r.records).map((x) => x.offset),
    Array.from({ length: 8 }, (_, i) => BigInt(i)),
    'the batch containing the high watermark is excluded',
  );
  const le = await log.read(0n, 1 << 20, { isolation: 'logEnd' });
  assert.equal(decodeAll(le.records).length, 40);
  log.updateHighWatermark(40n);
  const small = await log.read(0n, 1);
  assert.equal(decodeAll(small.records).length, 4, 'one whole batch even if larger than maxBytes');
  const strict = await log.read(0n, 1, { minOneMessage: false });
  assert.equal(strict.records.length, 0);
  log.setFirstUnstableOffset(12n);
  assert.equal(log.lastStableOffset, 12n);
  const committed = await log.read(0n, 1 << 20, { isolation: 'txnCommitted' });
  assert.equal(decodeAll(committed.records).at(-1)!.offset, 11n);
});

test('append validation maps to Kafka error codes', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(1_000_000);
  const log = await openLog(dir, { 'max.message.bytes': '500', 'segment.bytes': '2000' }, { clock });
  onCleanup(t, () => log.close());
  const good = valuesBatch('ok', 1, clock.now());
  const corrupt = Buffer.from(good);
  corrupt[corrupt.length - 1]! ^= 0xff;
  await assert.rejects(log.append(corrupt), kafkaCode(ErrorCode.CORRUPT_MESSAGE));
  await assert.rejects(log.append(good.subarray(0, 30)), kafkaCode(ErrorCode.CORRUPT_MESSAGE));
  const big = batch([{ value: 'x'.repeat(600), timestamp: clock.now() }]);
  await assert.rejects(log.append(big), kafkaCode(ErrorCode.MESSAGE_TOO_LARGE));
  const many = Buffer.concat(Array.from({ length: 12 }, () => valuesBatch('m', 20, clock.now())));
  await assert.rejects(log.append(many), kafkaCode(ErrorCode.RECORD_LIST_TOO_LARGE));
  const future = valuesBatch('f', 1, clock.now() + 2 * 3_600_000);
  await assert.rejects(log.append(future), kafkaCode(ErrorCode.INVALID_TIMESTAMP));
  const gap = buildRecordBatchSync({ records: [{ key: null, value: Buffer.from('v') }], lastOffsetDelta: 3 });
  await assert.rejects(log.append(gap), kafkaCode(ErrorCode.INVALID_RECORD));
  const legacy = Buffer.from(good);
  legacy[16] = 1;
  await assert.rejects(log.append(legacy), kafkaCode(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT));
  assert.equal(log.logEndOffset, 0n, 'nothing was appended');
  await log.append(good);
  assert.equal(log.logEndOffset, 1n);
});

test('keyless records are rejected on compacted topics', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir, { 'cleanup.policy': 'compact' });
  onCleanup(t, () => log.close());
  await assert.rejects(log.append(valuesBatch('v', 2)), kafkaCode(ErrorCode.INVALID_RECORD));
  await log.append(batch([{ key: 'k', value: 'v' }]));
  assert.equal(log.logEndOffset, 1n);
});

test('LogAppendTime stamps the batch max timestamp and keeps the CRC valid', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(5_000_000);
  const log = await openLog(dir, { 'message.timestamp.type': 'LogAppendTime' }, { clock });
  onCleanup(t, () => log.close());
  const info = await log.append(valuesBatch('t', 2, 1));
  assert.equal(info.logAppendTime, 5_000_000n);
  const recs = decodeAll((await log.read(0n, 1000)).records);
  assert.deepEqual(
    recs.map((r) => r.timestamp),
    [5_000_000n, 5_000_000n],
  );
});

test('segments roll on segment.bytes, segment.ms and a full index', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(10_000_000);
  const log = await openLog(dir, { 'segment.bytes': '1000', 'segment.ms': '60000' }, { clock });
  onCleanup(t, () => log.close());
  for (let i = 0; i < 10; i++) await log.append(valuesBatch(`s${i}`, 5, clock.now()));
  assert.ok(log.numberOfSegments > 1, 'rolled on size');
  for (const s of log.segments) assert.ok(s.size <= 1000);
  const before = log.numberOfSegments;
  await log.append(valuesBatch('late', 1, clock.now() + 61_000));
  assert.equal(log.numberOfSegments, before + 1, 'rolled on segment.ms (message time)');
  assert.equal((await readAll(log)).length, 51);

  const dir2 = await tempDir(t);
  const log2 = await openLog(dir2, { 'segment.index.bytes': '16', 'index.interval.bytes': '1' });
  onCleanup(t, () => log2.close());
  for (let i = 0; i < 10; i++) await log2.append(valuesBatch(`i${i}`, 1));
  assert.ok(log2.numberOfSegments >= 3, 'rolled when the 2-entry index filled');
  assert.equal((await readAll(log2)).length, 10);
});

test('clean reopen restores offsets without scanning; files follow Kafka layout', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir, { 'segment.bytes': '2000' });
  for (let i = 0; i < 30; i++) await log.append(valuesBatch(`r${i}`, 3));
  const segs = log.numberOfSegments;
  await log.close();
  const names = await readdir(join(dir, 'topic-0'));
  assert.ok(names.includes('00000000000000000000.log'));
  assert.ok(names.includes('00000000000000000000.index'));
  assert.ok(names.includes('00000000000000000000.timeindex'));
  const again = await openLog(dir, { 'segment.bytes': '2000' }, { hadCleanShutdown: true });
  onCleanup(t, () => again.close());
  assert.equal(again.numberOfSegments, segs);
  assert.equal(again.logEndOffset, 90n);
  assert.equal(again.recoveredTruncatedBytes, 0);
  const info = await again.append(valuesBatch('next', 1));
  assert.equal(info.firstOffset, 90n);
  assert.equal((await readAll(again)).length, 91);
});

test('fetchOffsetByTimestamp finds the first record at or after a timestamp', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir, { 'segment.bytes': '1500', 'message.timestamp.before.max.ms': '9223372036854775807' });
  onCleanup(t, () => log.close());
  const base = Date.now() - 100_000;
  for (let i = 0; i < 40; i++) {
    await log.append(
      batch([
        { value: `a${i}`, timestamp: base + i * 10 },
        { value: `b${i}`, timestamp: base + i * 10 + 5 },
      ]),
    );
  }
  const hit = await log.fetchOffsetByTimestamp(BigInt(base + 123));
  assert.deepEqual(hit && [hit.offset, hit.timestamp], [25n, BigInt(base + 125)]);
  const exact = await log.fetchOffsetByTimestamp(BigInt(base + 200));
  assert.equal(exact?.offset, 40n);
  assert.equal(await log.fetchOffsetByTimestamp(BigInt(base + 10_000)), null);
  assert.equal((await log.fetchOffsetByTimestamp(ListOffsetsTimestamp.EARLIEST))?.offset, 0n);
  assert.equal((await log.fetchOffsetByTimestamp(ListOffsetsTimestamp.LATEST))?.offset, 80n);
  const max = await log.fetchOffsetByTimestamp(ListOffsetsTimestamp.MAX_TIMESTAMP);
  assert.equal(max?.offset, 79n);
});

test('deleteRecordsBefore moves the log start offset and drops whole segments', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir, { 'segment.bytes': '1000' });
  onCleanup(t, () => log.close());
  for (let i = 0; i < 20; i++) await log.append(valuesBatch(`d${i}`, 5));
  const segsBefore = log.numberOfSegments;
  assert.equal(await log.deleteRecordsBefore(42n), 42n);
  assert.equal(log.logStartOffset, 42n);
  assert.ok(log.numberOfSegments < segsBefore);
  await assert.rejects(log.read(41n, 100), kafkaCode(ErrorCode.OFFSET_OUT_OF_RANGE));
  const r = await log.read(42n, 100);
  assert.ok(decodeAll(r.records).some((x) => x.offset === 42n));
  await assert.rejects(log.deleteRecordsBefore(101n), kafkaCode(ErrorCode.OFFSET_OUT_OF_RANGE));
  assert.equal(await log.deleteRecordsBefore(-1n), 100n);
  assert.equal(log.logStartOffset, 100n);
  await log.awaitPendingDeletes();
  const files = await readdir(join(dir, 'topic-0'));
  assert.ok(!files.some((f) => f.endsWith('.deleted')));
});

test('retention.ms deletes expired segments; the active one only when wholly expired', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(100_000_000);
  const log = await openLog(dir, { 'segment.bytes': '1000', 'retention.ms': '60000' }, { clock });
  onCleanup(t, () => log.close());
  for (let i = 0; i < 10; i++) await log.append(valuesBatch(`old${i}`, 5, clock.now()));
  clock.advance(30_000);
  for (let i = 0; i < 10; i++) await log.append(valuesBatch(`new${i}`, 5, clock.now()));
  clock.advance(40_000);
  const deleted = await log.deleteOldSegments();
  assert.ok(deleted > 0);
  assert.ok(log.logStartOffset > 0n && log.logStartOffset <= 50n);
  const recs = await readAll(log);
  assert.ok(recs.every((r) => Number(r.timestamp) >= clock.now() - 70_000));
  assert.ok(recs.some((r) => str(r.value)?.startsWith('new')));
  clock.advance(100_000);
  await log.deleteOldSegments();
  assert.equal(log.logStartOffset, 100n);
  assert.equal(log.logEndOffset, 100n);
  assert.equal((await log.append(valuesBatch('after', 1, clock.now()))).firstOffset, 100n);
});

test('retention.bytes keeps the log under the limit by whole segments', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir, { 'segment.bytes': '1000', 'retention.bytes': '2500' });
  onCleanup(t, () => log.close());
  for (let i = 0; i < 30; i++) await log.append(valuesBatch(`b${i}`, 5));
  await log.deleteOldSegments();
  assert.ok(log.size <= 2500 + 1000);
  assert.ok(log.size > 1000);
  assert.equal(log.logStartOffset, log.segments[0]!.baseOffset);
});

test('a reader holding a segment finishes while retention deletes it', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir, { 'segment.bytes': '1000' });
  onCleanup(t, () => log.close());
  for (let i = 0; i < 20; i++) await log.append(valuesBatch(`r${i}`, 5));
  const reads = Array.from({ length: 20 }, () => log.read(0n, 1 << 20));
  const del = log.deleteRecordsBefore(90n);
  const results = await Promise.allSettled(reads);
  await del;
  for (const r of results) {
    if (r.status === 'rejected') assert.ok(kafkaCode(ErrorCode.OFFSET_OUT_OF_RANGE)(r.reason));
    else assert.equal(decodeAll(r.value.records)[0]!.offset, 0n);
  }
  assert.ok(results.some((r) => r.status === 'fulfilled'));
});

test('truncateTo drops the tail, updates leader epochs, and appends continue', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir, { 'segment.bytes': '1000' });
  onCleanup(t, () => log.close());
  for (let i = 0; i < 10; i++) await log.append(valuesBatch(`e${i}`, 5), { leaderEpoch: i < 5 ? 1 : 2 });
  assert.deepEqual(log.endOffsetForEpoch(1), { epoch: 1, endOffset: 25n });
  assert.deepEqual(log.endOffsetForEpoch(2), { epoch: 2, endOffset: 50n });
  await log.truncateTo(22n);
  assert.equal(log.logEndOffset, 20n);
  assert.deepEqual(log.leaderEpochCache.entries, [{ epoch: 1, startOffset: 0n }]);
  const info = await log.append(valuesBatch('z', 2), { leaderEpoch: 3 });
  assert.equal(info.firstOffset, 20n);
  assert.equal((await readAll(log)).length, 22);
});

test('flush.messages=1: each append resolves after fdatasync; concurrent appends share syncs', async (t) => {
  const dir = await tempDir(t);
  const files = new FaultyFileLayer();
  const log = await openLog(dir, { 'flush.messages': '1' }, { files });
  onCleanup(t, () => log.close());
  const syncsBefore = files.syncs;
  await log.append(valuesBatch('one', 1));
  assert.equal(files.syncs - syncsBefore, 1);
  const s2 = files.syncs;
  await Promise.all(Array.from({ length: 64 }, (_, i) => log.append(valuesBatch(`c${i}`, 1))));
  const used = files.syncs - s2;
  assert.ok(used < 64 / 2, `64 concurrent appends used ${used} fdatasyncs`);
});

test('an I/O error takes the log offline with KAFKA_STORAGE_ERROR instead of crashing', async (t) => {
  const dir = await tempDir(t);
  const files = new FaultyFileLayer();
  const errors: unknown[] = [];
  const log = await openLog(dir, {}, { files, onIoError: (e) => errors.push(e) });
  onCleanup(t, () => log.closeWithoutFlush());
  await log.append(valuesBatch('fine', 1));
  files.failNextWrite();
  await assert.rejects(log.append(valuesBatch('boom', 1)), kafkaCode(ErrorCode.KAFKA_STORAGE_ERROR));
  assert.equal(log.isOffline, true);
  assert.equal(errors.length, 1);
  await assert.rejects(log.read(0n, 100), kafkaCode(ErrorCode.KAFKA_STORAGE_ERROR));
  await assert.rejects(log.append(valuesBatch('more', 1)), kafkaCode(ErrorCode.KAFKA_STORAGE_ERROR));
});

test('a failed fdatasync rejects the waiting appends and takes the log offline', async (t) => {
  const dir = await tempDir(t);
  const files = new FaultyFileLayer();
  const log = await openLog(dir, { 'flush.messages': '1' }, { files });
  onCleanup(t, () => log.closeWithoutFlush());
  files.failNextSync();
  await assert.rejects(log.append(valuesBatch('x', 1)), kafkaCode(ErrorCode.KAFKA_STORAGE_ERROR));
  assert.equal(log.isOffline, true);
});

test('config changes apply at runtime', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir);
  onCleanup(t, () => log.close());
  await log.append(valuesBatch('a', 1));
  log.updateConfig(log.config.with({ 'cleanup.policy': 'compact' }));
  await assert.rejects(log.append(valuesBatch('b', 1)), kafkaCode(ErrorCode.INVALID_RECORD));
  log.updateConfig(log.config.with({ 'cleanup.policy': 'delete', 'max.message.bytes': '10' }));
  await assert.rejects(log.append(valuesBatch('b', 1)), kafkaCode(ErrorCode.MESSAGE_TOO_LARGE));
});
