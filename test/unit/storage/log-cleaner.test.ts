import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Compression } from '../../../src/protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { LogCleaner } from '../../../src/storage/log-cleaner.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { PartitionLog } from '../../../src/storage/partition-log.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { onCleanup, readAll, str, tempDir } from './helpers.ts';

async function compactedLog(
  t: import('node:test').TestContext,
  clock: ManualClock,
  extra: Record<string, string> = {},
) {
  const dir = await tempDir(t);
  const log = await PartitionLog.open({
    dir: join(dir, 'compacted-0'),
    topic: 'compacted',
    partition: 0,
    clock,
    config: new LogConfig({
      'cleanup.policy': 'compact',
      'segment.bytes': '1200',
      'file.delete.delay.ms': '0',
      'delete.retention.ms': '1000',
      'min.cleanable.dirty.ratio': '0.01',
      ...extra,
    }),
  });
  onCleanup(t, () => log.close());
  return log;
}

function keyed(entries: Array<[string, string | null]>, ts: number, compression: 0 | 1 = 0): Buffer {
  return buildRecordBatchSync({
    compression: compression === 1 ? Compression.gzip : Compression.none,
    records: entries.map(([k, v]) => ({
      key: Buffer.from(k),
      value: v === null ? null : Buffer.from(v),
      timestamp: BigInt(ts),
    })),
  });
}

async function cleanOnce(cleaner: LogCleaner, log: PartitionLog, firstDirty?: bigint) {
  const range = await cleaner.cleanableRange(log, firstDirty);
  if (!cleaner.shouldClean(log, range)) return null;
  return cleaner.clean(log, range);
}

test('compaction keeps the latest value per key at its original offset', async (t) => {
  const clock = new ManualClock();
  const log = await compactedLog(t, clock);
  const latest = new Map<string, { offset: bigint; value: string }>();
  for (let round = 0; round < 8; round++) {
    const entries: Array<[string, string]> = [];
    for (let k = 0; k < 5; k++) entries.push([`key${k}`, `r${round}-k${k}`]);
    const info = await log.append(keyed(entries, clock.now(), round % 2 === 0 ? 0 : 1));
    entries.forEach(([k, v], i) => {
      latest.set(k, { offset: info.firstOffset + BigInt(i), value: v });
    });
  }
  await log.roll();
  const before = log.size;
  const cleaner = new LogCleaner({ clock });
  const result = await cleanOnce(cleaner, log);
  assert.ok(result && result.segmentsCleaned > 0);
  assert.ok(log.size < before, 'log shrank');
  const records = await readAll(log);
  assert.equal(records.length, 5);
  for (const r of records) {
    const want = latest.get(str(r.key)!)!;
    assert.equal(r.offset, want.offset);
    assert.equal(str(r.value), want.value);
  }
  // Offsets continue after the compacted range.
  assert.equal((await log.append(keyed([['key0', 'new']], clock.now()))).firstOffset, 40n);
  await log.awaitPendingDeletes();
});

test('tombstones survive one cleaning and expire after delete.retention.ms', async (t) => {
  const clock = new ManualClock();
  const log = await compactedLog(t, clock);
  await log.append(
    keyed(
      [
        ['a', '1'],
        ['b', '1'],
      ],
      clock.now(),
    ),
  );
  await log.append(keyed([['a', null]], clock.now()));
  await log.roll();
  const cleaner = new LogCleaner({ clock });
  const first = await cleanOnce(cleaner, log);
  assert.ok(first);
  let records = await readAll(log);
  assert.deepEqual(
    records.map((r) => [str(r.key), str(r.value)]),
    [
      ['b', '1'],
      ['a', null],
    ],
    'the tombstone replaces the value and is still visible',
  );
  // New dirty data so the cleaner runs again; the tombstone is now in the cleaned part.
  await log.append(keyed([['c', '1']], clock.now()));
  await log.roll();
  const second = await cleanOnce(cleaner, log, first.cleanedUpTo);
  assert.ok(second);
  assert.ok(
    (await readAll(log)).some((r) => str(r.key) === 'a'),
    'not yet expired',
  );
  clock.advance(5000);
  await log.append(keyed([['d', '1']], clock.now()));
  await log.roll();
  const third = await cleanOnce(cleaner, log, second.cleanedUpTo);
  assert.ok(third && third.tombstonesRemoved === 1);
  records = await readAll(log);
  assert.deepEqual(records.map((r) => str(r.key)).sort(), ['b', 'c', 'd']);
});

test('min.compaction.lag.ms and the dirty ratio hold the cleaner back', async (t) => {
  const clock = new ManualClock();
  const log = await compactedLog(t, clock, { 'min.compaction.lag.ms': '60000', 'min.cleanable.dirty.ratio': '0.5' });
  for (let i = 0; i < 10; i++) await log.append(keyed([['k', `v${i}`]], clock.now()));
  await log.roll();
  const cleaner = new LogCleaner({ clock });
  assert.equal(await cleanOnce(cleaner, log), null, 'records younger than min.compaction.lag.ms');
  clock.advance(61_000);
  const result = await cleanOnce(cleaner, log);
  assert.ok(result);
  const range = await cleaner.cleanableRange(log, result.cleanedUpTo);
  assert.equal(range.dirtyBytes, 0);
  assert.equal(cleaner.shouldClean(log, range), false);
});

test('a reader during cleaning sees a consistent log', async (t) => {
  const clock = new ManualClock();
  const log = await compactedLog(t, clock, { 'segment.bytes': '3000' });
  for (let round = 0; round < 30; round++) {
    await log.append(
      keyed(
        Array.from({ length: 6 }, (_, k) => [`key${k}`, `r${round}`] as [string, string]),
        clock.now(),
      ),
    );
  }
  await log.roll();
  const cleaner = new LogCleaner({ clock });
  const range = await cleaner.cleanableRange(log, undefined);
  const cleaning = cleaner.clean(log, range);
  const snapshots: Array<Awaited<ReturnType<typeof readAll>>> = [];
  let done = false;
  void cleaning.finally(() => {
    done = true;
  });
  while (!done) snapshots.push(await readAll(log));
  await cleaning;
  snapshots.push(await readAll(log));
  for (const snap of snapshots) {
    // Offsets strictly increase, and for each key the last value seen is the latest one.
    for (let i = 1; i < snap.length; i++) assert.ok(snap[i]!.offset > snap[i - 1]!.offset);
    const last = new Map<string, string>();
    for (const r of snap) last.set(str(r.key)!, str(r.value)!);
    for (let k = 0; k < 6; k++) assert.equal(last.get(`key${k}`), 'r29');
  }
  assert.equal(snapshots.at(-1)!.length, 6);
});
