/**
 * Issue 11 item 4: an offset or time index entry that looks plausible (increasing, inside the log)
 * but does not point at the batch it names must never make a read return less than is on disk.
 * The segment detects it on use, rebuilds its indexes from the log and answers correctly; data
 * that is itself corrupt below the log end fails the read with KAFKA_STORAGE_ERROR.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, KafkaError } from '../../../src/protocol/error-codes.ts';
import { iterateBatches } from '../../../src/protocol/records/iterate-batches.ts';
import { LogCleaner } from '../../../src/storage/log-cleaner.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { PartitionLog, type StorageLogger } from '../../../src/storage/partition-log.ts';
import { batch, decodeAll, onCleanup, type readAll, tempDir } from './helpers.ts';

const CONFIG = {
  'file.delete.delay.ms': '0',
  'segment.bytes': String(64 * 1024),
  'message.timestamp.before.max.ms': '9223372036854775807',
};
const BASE_TS = Date.now() - 1_000_000;

function capturingLogger(): StorageLogger & { lines: Array<{ level: string; msg: string }> } {
  const lines: Array<{ level: string; msg: string }> = [];
  return {
    lines,
    info: (_o, msg) => lines.push({ level: 'info', msg: msg ?? '' }),
    warn: (_o, msg) => lines.push({ level: 'warn', msg: msg ?? '' }),
    error: (_o, msg) => lines.push({ level: 'error', msg: msg ?? '' }),
  };
}

async function openLog(dir: string, hadCleanShutdown: boolean, logger?: StorageLogger) {
  return PartitionLog.open({
    dir: join(dir, 't-0'),
    topic: 't',
    partition: 0,
    config: new LogConfig(CONFIG),
    hadCleanShutdown,
    ...(logger ? { logger } : {}),
  });
}

/** 3 segments of ~64 KiB; record i has value `v${i}` and timestamp BASE_TS + i. */
async function writeLog(dir: string): Promise<number> {
  const log = await openLog(dir, false);
  let n = 0;
  for (let b = 0; b < 1500; b++) {
    const recs = [];
    for (let r = 0; r < 2; r++, n++) recs.push({ value: `v${n}-${'x'.repeat(40)}`, timestamp: BASE_TS + n });
    await log.append(batch(recs));
  }
  assert.ok(log.numberOfSegments >= 3, `expected several segments, got ${log.numberOfSegments}`);
  await log.close();
  return n;
}

function segPath(dir: string, base: bigint, suffix: string): string {
  return join(dir, 't-0', `${base.toString().padStart(20, '0')}${suffix}`);
}

/** Batch start positions and last offsets of a .log file. */
async function batchesOf(path: string): Promise<Array<{ position: number; last: bigint; maxTs: bigint }>> {
  const data = await readFile(path);
  return [...iterateBatches(data)].map((b) => ({
    position: b.offset,
    last: b.header.baseOffset + BigInt(b.header.lastOffsetDelta),
    maxTs: b.header.maxTimestamp,
  }));
}

/** Rewrites offset-index entry `i` of the segment at `base` with `change`. */
async function patchOffsetIndex(
  dir: string,
  base: bigint,
  i: number,
  change: (
    entry: { rel: number; pos: number },
    batches: Awaited<ReturnType<typeof batchesOf>>,
  ) => {
    rel: number;
    pos: number;
  },
): Promise<void> {
  const path = segPath(dir, base, '.index');
  const idx = await readFile(path);
  const batches = await batchesOf(segPath(dir, base, '.log'));
  const entry = { rel: idx.readInt32BE(i * 8), pos: idx.readInt32BE(i * 8 + 4) };
  const next = change(entry, batches);
  // Still plausible: increasing and inside the log, so the load-time sanity check accepts it.
  if (i > 0) assert.ok(next.pos > idx.readInt32BE((i - 1) * 8 + 4) && next.rel > idx.readInt32BE((i - 1) * 8));
  if ((i + 1) * 8 < idx.length) assert.ok(next.pos < idx.readInt32BE((i + 1) * 8 + 4));
  idx.writeInt32BE(next.rel, i * 8);
  idx.writeInt32BE(next.pos, i * 8 + 4);
  await writeFile(path, idx);
}

/** Reads the log one batch per fetch, so every fetch looks its offset up in the index. */
async function readEach(log: PartitionLog): Promise<Awaited<ReturnType<typeof readAll>>> {
  const out: Awaited<ReturnType<typeof readAll>> = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const r = await log.read(offset, 1);
    if (r.records.length === 0) break;
    const recs = decodeAll(r.records).filter((x) => x.offset >= offset);
    out.push(...recs);
    offset = recs.at(-1)!.offset + 1n;
  }
  return out;
}

function assertAllRecords(records: Awaited<ReturnType<typeof readAll>>, n: number): void {
  assert.equal(records.length, n, `read ${records.length} of ${n} records`);
  records.forEach((r, i) => {
    assert.equal(r.offset, BigInt(i));
    assert.ok(r.value?.toString().startsWith(`v${i}-`));
  });
}

test('a plausible but wrong offset-index entry inside a batch does not make reads skip data', async (t) => {
  const dir = await tempDir(t);
  const n = await writeLog(dir);
  // Entry 3 of the first segment now points 7 bytes into its batch.
  await patchOffsetIndex(dir, 0n, 3, (e) => ({ rel: e.rel, pos: e.pos + 7 }));
  const logger = capturingLogger();
  const log = await openLog(dir, true, logger);
  onCleanup(t, () => log.close());
  assertAllRecords(await readEach(log), n);
  assert.equal(logger.lines.filter((l) => l.level === 'warn' && /rebuilt/.test(l.msg)).length, 1, 'one line says so');
  // A fetch starting at the entry's own offset returns the batch holding it, not a later one.
  const entryOffset = BigInt((await readFile(segPath(dir, 0n, '.index'))).readInt32BE(3 * 8));
  const r = await log.read(entryOffset, 1 << 20);
  assert.ok(r.firstBatchOffset <= entryOffset, `first batch ${r.firstBatchOffset} is past ${entryOffset}`);
});

test('a plausible but wrong offset-index entry at another batch boundary does not make reads skip data', async (t) => {
  const dir = await tempDir(t);
  const n = await writeLog(dir);
  // Entry 2 keeps its offset but points at a later, real batch start (before entry 3).
  await patchOffsetIndex(dir, 0n, 2, (e, batches) => {
    const at = batches.findIndex((b) => b.position === e.pos);
    return { rel: e.rel, pos: batches[at + 5]!.position };
  });
  // The active segment's last entry names the wrong offset for its batch.
  const segs = (await openLog(dir, true).then(async (l) => {
    const bases = l.segments.map((s) => s.baseOffset);
    await l.close();
    return bases;
  })) as bigint[];
  const activeBase = segs.at(-1)!;
  const activeIdx = await readFile(segPath(dir, activeBase, '.index'));
  const last = activeIdx.length / 8 - 1;
  assert.ok(last >= 1, 'the active segment has index entries');
  // Two offsets lower: the previous batch's last offset, so a fetch of it would start one batch late.
  await patchOffsetIndex(dir, activeBase, last, (e) => ({ rel: e.rel - 2, pos: e.pos }));
  const log = await openLog(dir, true);
  onCleanup(t, () => log.close());
  assert.equal(log.logEndOffset, BigInt(n), 'the log end comes from the data, not a wrong index entry');
  assertAllRecords(await readEach(log), n);
  const info = await log.append(batch([{ value: 'after', timestamp: BASE_TS + n }]));
  assert.equal(info.firstOffset, BigInt(n));
});

test('a plausible but wrong time-index entry does not make a timestamp lookup skip data', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir);
  // Time-index entry 2 of the first segment names a later offset (still increasing, inside the segment).
  const path = segPath(dir, 0n, '.timeindex');
  const ti = await readFile(path);
  assert.ok(ti.length >= 4 * 12, 'the first segment has time-index entries');
  const ts2 = ti.readBigInt64BE(2 * 12);
  const rel3 = ti.readInt32BE(3 * 12 + 8);
  ti.writeInt32BE(rel3, 2 * 12 + 8);
  await writeFile(path, ti);
  const log = await openLog(dir, true);
  onCleanup(t, () => log.close());
  // The first record with timestamp >= ts2 is offset ts2 - BASE_TS.
  const hit = await log.fetchOffsetByTimestamp(ts2);
  assert.equal(hit?.offset, ts2 - BigInt(BASE_TS));
  assert.equal(hit?.timestamp, ts2);
});

test('a corrupt batch below the log end fails the read with KAFKA_STORAGE_ERROR instead of skipping it', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir);
  const logPath = segPath(dir, 0n, '.log');
  const batches = await batchesOf(logPath);
  const victim = batches[Math.floor(batches.length / 2)]!;
  const data = await readFile(logPath);
  data.writeInt32BE(3, victim.position + 8); // batchLength below any valid batch
  await writeFile(logPath, data);
  const logger = capturingLogger();
  const log = await openLog(dir, true, logger);
  onCleanup(t, () => log.close());
  // Reads before the damage work; a read that reaches it fails loudly and the log stays online.
  const before = await log.read(0n, 1000);
  assert.ok(before.records.length > 0);
  await assert.rejects(
    readEach(log),
    (err: unknown) => err instanceof KafkaError && err.errorCode === ErrorCode.KAFKA_STORAGE_ERROR,
  );
  await assert.rejects(readEach(log));
  assert.equal(log.isOffline, false);
  assert.equal(logger.lines.filter((l) => l.level === 'error').length, 1, 'one error line per corrupt segment');
  // The segments after the damaged one are still served.
  const later = log.segments[1]!.baseOffset;
  assert.ok((await log.read(later, 1000)).records.length > 0);
});

test('the cleaner does not drop the batches after a corrupt one', async (t) => {
  const dir = await tempDir(t);
  const log = await PartitionLog.open({
    dir: join(dir, 'c-0'),
    topic: 'c',
    partition: 0,
    config: new LogConfig({
      'cleanup.policy': 'compact',
      'segment.bytes': '1500',
      'index.interval.bytes': '100',
      'file.delete.delay.ms': '0',
      'min.cleanable.dirty.ratio': '0.01',
    }),
  });
  onCleanup(t, () => log.close());
  for (let i = 0; i < 60; i++) await log.append(batch([{ key: `k${i}`, value: `v${i}` }]));
  const first = log.segments[0]!;
  const batches = await batchesOf(first.logPath);
  assert.ok(batches.length >= 6);
  // The magic byte of the second batch is damaged; the batches after it are intact and indexed.
  const data = await readFile(first.logPath);
  data[batches[1]!.position + 16] = 9;
  await writeFile(first.logPath, data);
  const tail = batches.at(-1)!.last;
  const readable = async () => decodeAll((await log.read(tail, 1 << 20)).records).some((r) => r.offset === tail);
  assert.ok(await readable(), 'the last batch of the damaged segment is readable before cleaning');
  const cleaner = new LogCleaner({ clock: log.clock });
  const range = await cleaner.cleanableRange(log, undefined);
  assert.ok(cleaner.shouldClean(log, range));
  const failure = await cleaner.clean(log, range).then(
    () => null,
    (err: unknown) => err,
  );
  assert.ok(await readable(), 'still readable after the cleaner ran');
  assert.ok(failure instanceof KafkaError && failure.errorCode === ErrorCode.KAFKA_STORAGE_ERROR, String(failure));
});

test('concurrent reads that meet one wrong index entry rebuild the indexes once', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir);
  await patchOffsetIndex(dir, 0n, 3, (e) => ({ rel: e.rel, pos: e.pos + 7 }));
  const entryOffset = BigInt((await readFile(segPath(dir, 0n, '.index'))).readInt32BE(3 * 8));
  const logger = capturingLogger();
  const log = await openLog(dir, true, logger);
  onCleanup(t, () => log.close());
  const reads = await Promise.all(Array.from({ length: 8 }, () => log.read(entryOffset, 1)));
  for (const r of reads) {
    const recs = decodeAll(r.records);
    assert.ok(
      recs.some((x) => x.offset === entryOffset),
      'each read returns the batch holding the offset',
    );
  }
  assert.equal(logger.lines.filter((l) => /rebuilt/.test(l.msg)).length, 1, 'one rebuild, one line');
});
