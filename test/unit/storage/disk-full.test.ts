/**
 * Issue 11 item 6 at the storage level: a write that finds the file system full (ENOSPC) fails
 * that operation with KAFKA_STORAGE_ERROR but does not take the log or its directory offline.
 * What the failed append wrote (a torn batch, whole batches before a roll, the rolled segment)
 * is undone, so no offset is given twice and no garbage sits behind the next append; reads go
 * on, and appends resume as soon as space is free. The full disk itself is simulated by
 * FaultyFileLayer (the broker test in test/integration/broker/disk-full.test.ts uses a tmpfs).
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, KafkaError } from '../../../src/protocol/error-codes.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { LogManager } from '../../../src/storage/log-manager.ts';
import { PartitionLog } from '../../../src/storage/partition-log.ts';
import { FaultyFileLayer } from './faulty-file-layer.ts';
import { onCleanup, readAll, tempDir, valuesBatch } from './helpers.ts';

const storageError = (err: unknown) => err instanceof KafkaError && err.errorCode === ErrorCode.KAFKA_STORAGE_ERROR;

async function openLog(dir: string, files: FaultyFileLayer, config: Record<string, string>) {
  return PartitionLog.open({
    dir: join(dir, 't-0'),
    topic: 't',
    partition: 0,
    files,
    config: new LogConfig({ 'file.delete.delay.ms': '0', ...config }),
  });
}

test('disk full: a torn append is cut, the log stays online, reads go on and appends resume at the next offset', async (t) => {
  const dir = await tempDir(t);
  const files = new FaultyFileLayer();
  const log = await openLog(dir, files, {});
  onCleanup(t, () => log.close());
  for (let i = 0; i < 5; i++) await log.append(valuesBatch(`a${i}`, 2));
  const sizeBefore = log.activeSegment.size;
  files.spaceLeft = 30; // the next batch is torn after 30 bytes
  await assert.rejects(log.append(valuesBatch('torn', 2)), (err: unknown) => {
    return storageError(err) && /out of space/.test((err as Error).message);
  });
  await assert.rejects(log.append(valuesBatch('still-full', 2)), storageError);
  assert.equal(log.isOffline, false);
  assert.equal((await stat(log.activeSegment.logPath)).size, sizeBefore, 'no torn bytes left in the file');
  assert.equal((await readAll(log)).length, 10, 'reads go on');
  files.spaceLeft = null;
  const info = await log.append(valuesBatch('after', 2));
  assert.equal(info.firstOffset, 10n);
  const values = (await readAll(log)).map((r) => `${r.offset}:${r.value?.toString()}`);
  assert.deepEqual(values.slice(-3), ['9:a4-1', '10:after-0', '11:after-1']);
});

test('disk full: an append that rolled a segment before failing leaves neither the rolled segment nor its batches', async (t) => {
  const dir = await tempDir(t);
  const files = new FaultyFileLayer();
  const log = await openLog(dir, files, { 'segment.bytes': '1000' });
  onCleanup(t, () => log.close());
  for (let i = 0; i < 5; i++) await log.append(valuesBatch(`a${i}`, 1));
  const end = log.logEndOffset;
  const segments = log.numberOfSegments;
  const sizeBefore = log.activeSegment.size;
  // Concurrent appends are written by one drain: some fill the segment, a roll, then the rest,
  // which no longer fit on the disk.
  files.spaceLeft = 1000 - sizeBefore;
  const results = await Promise.allSettled(Array.from({ length: 15 }, (_, i) => log.append(valuesBatch(`b${i}`, 1))));
  const rejected = results.filter((r) => r.status === 'rejected');
  assert.ok(rejected.length > 0, 'the disk filled up');
  for (const r of rejected) assert.ok(storageError(r.reason), String(r.reason));
  const acked = results.filter((r) => r.status === 'fulfilled').length;
  assert.equal(log.isOffline, false);
  assert.equal(log.logEndOffset, end + BigInt(acked));
  files.spaceLeft = null;
  const info = await log.append(valuesBatch('after', 1));
  assert.equal(info.firstOffset, end + BigInt(acked), 'the next append gets the next offset');
  const records = await readAll(log);
  records.forEach((r, i) => {
    assert.equal(r.offset, BigInt(i), 'offsets are contiguous and given once');
  });
  assert.equal(records.length, Number(end) + acked + 1);
  assert.equal(records.at(-1)!.value?.toString(), 'after-0');
  assert.ok(log.numberOfSegments >= segments);
  // A clean reopen finds exactly that: nothing torn, nothing extra.
  await log.close();
  const again = await PartitionLog.open({
    dir: join(dir, 't-0'),
    topic: 't',
    partition: 0,
    config: new LogConfig({ 'segment.bytes': '1000' }),
    hadCleanShutdown: true,
  });
  onCleanup(t, () => again.close());
  assert.equal(again.recoveredTruncatedBytes, 0);
  assert.equal((await readAll(again)).length, records.length);
});

test('disk full: the directory is reported out of space once, stays online, and is healthy after the next append', async (t) => {
  const d = await tempDir(t);
  const files = new FaultyFileLayer();
  const lines: Array<{ level: string; msg: string }> = [];
  const logger = {
    info: (_o: object, msg?: string) => lines.push({ level: 'info', msg: msg ?? '' }),
    warn: (_o: object, msg?: string) => lines.push({ level: 'warn', msg: msg ?? '' }),
    error: (_o: object, msg?: string) => lines.push({ level: 'error', msg: msg ?? '' }),
  };
  const mgr = new LogManager({ dataDirs: [d], logger, files });
  onCleanup(t, () => mgr.shutdown());
  const failed: string[] = [];
  mgr.onLogDirFailure((dir) => failed.push(dir));
  await mgr.startup();
  const a = await mgr.getOrCreateLog('a', 0);
  const b = await mgr.getOrCreateLog('b', 0);
  await a.append(valuesBatch('x', 1));
  files.spaceLeft = 0;
  await assert.rejects(a.append(valuesBatch('y', 1)), storageError);
  await assert.rejects(b.append(valuesBatch('y', 1)), storageError);
  await mgr.checkpointRecoveryPoints(); // a checkpoint that cannot be written does not take it offline either
  assert.deepEqual(mgr.offlineDirs, []);
  assert.deepEqual(mgr.outOfSpaceDirs, [d]);
  assert.deepEqual(failed, []);
  assert.equal(lines.filter((l) => l.level === 'error').length, 1);
  assert.match(lines.find((l) => l.level === 'error')!.msg, /out of space/);
  assert.equal((await readAll(a)).length, 1);
  files.spaceLeft = null;
  await b.append(valuesBatch('z', 1));
  assert.deepEqual(mgr.outOfSpaceDirs, []);
  assert.equal(lines.filter((l) => l.level === 'error').length, 1);
});

test('disk full: the first append of a new partition, whose leader epoch cannot be recorded, fails without taking the log offline', async (t) => {
  const dir = await tempDir(t);
  const files = new FaultyFileLayer();
  const log = await openLog(dir, files, {});
  onCleanup(t, () => log.close());
  const first = valuesBatch('first', 1);
  files.spaceLeft = first.length; // the batch fits, the leader-epoch-checkpoint after it does not
  await assert.rejects(log.append(first, { leaderEpoch: 0 }), storageError);
  assert.equal(log.isOffline, false);
  assert.equal(log.logEndOffset, 0n);
  assert.deepEqual(log.leaderEpochCache.entries, []);
  files.spaceLeft = null;
  const info = await log.append(valuesBatch('first', 1), { leaderEpoch: 0 });
  assert.equal(info.firstOffset, 0n);
  assert.deepEqual(log.leaderEpochCache.entries, [{ epoch: 0, startOffset: 0n }]);
});
