/**
 * Random sequences of append, read, roll, retention, DeleteRecords, compaction and reopen (clean
 * and unclean) against a model of what was appended, checking the log's invariants after every
 * step:
 *   logStartOffset <= lastStableOffset <= highWatermark <= logEndOffset;
 *   reads return increasing offsets inside [logStartOffset, logEndOffset), each record equal to
 *   the one appended at that offset; without compaction there are no gaps; with it the latest
 *   record of every key is kept; segments are ordered and cover the log.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { Compression } from '../../../src/protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { LogCleaner } from '../../../src/storage/log-cleaner.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { PartitionLog } from '../../../src/storage/partition-log.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { seededRandom } from './faulty-file-layer.ts';
import { onCleanup, readAll, str, tempDir } from './helpers.ts';

interface ModelRecord {
  key: string;
  value: string | null;
}

async function run(t: TestContext, policy: 'delete' | 'compact,delete', seed: number, steps: number): Promise<void> {
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const dir = join(await tempDir(t), 'random-0');
  const clock = new ManualClock();
  const config = new LogConfig({
    'cleanup.policy': policy,
    'segment.bytes': '2048',
    'index.interval.bytes': '256',
    'retention.ms': '600000',
    'retention.bytes': '16384',
    'delete.retention.ms': '100000',
    'min.cleanable.dirty.ratio': '0.1',
    'file.delete.delay.ms': '0',
  });
  // As the log manager does: the log start offset and recovery point come from checkpoints.
  const open = (clean: boolean, logStartOffset = 0n, recoveryPoint = 0n) =>
    PartitionLog.open({
      dir,
      topic: 'random',
      partition: 0,
      config,
      clock,
      hadCleanShutdown: clean,
      logStartOffset,
      recoveryPoint,
    });
  let log = await open(false);
  onCleanup(t, () => log.close());
  const cleaner = new LogCleaner({ clock });
  let firstDirty: bigint | undefined;
  const model = new Map<bigint, ModelRecord>();
  const compacting = policy.includes('compact');
  let compactedOnce = false;

  const check = async (step: number, op: string): Promise<void> => {
    const where = `seed ${seed} step ${step} (${op})`;
    assert.ok(log.logStartOffset <= log.lastStableOffset, `${where}: logStartOffset <= lastStableOffset`);
    assert.ok(log.lastStableOffset <= log.highWatermark, `${where}: lastStableOffset <= highWatermark`);
    assert.ok(log.highWatermark <= log.logEndOffset, `${where}: highWatermark <= logEndOffset`);
    const segs = log.segments;
    for (let i = 1; i < segs.length; i++) assert.ok(segs[i - 1]!.baseOffset < segs[i]!.baseOffset, `${where}: order`);
    assert.ok(segs[0]!.baseOffset <= log.logStartOffset, `${where}: first segment covers the start`);
    const records = await readAll(log, 'highWatermark');
    let prev = -1n;
    for (const r of records) {
      assert.ok(r.offset > prev, `${where}: offsets increase`);
      prev = r.offset;
      assert.ok(r.offset >= log.logStartOffset && r.offset < log.logEndOffset, `${where}: offset in range`);
      const m = model.get(r.offset);
      assert.ok(m, `${where}: record at ${r.offset} was never appended`);
      assert.equal(str(r.key), m.key, `${where}: key at ${r.offset}`);
      assert.equal(str(r.value), m.value, `${where}: value at ${r.offset}`);
    }
    const live = [...model.keys()].filter((o) => o >= log.logStartOffset).sort((a, b) => (a < b ? -1 : 1));
    if (!compactedOnce) {
      assert.deepEqual(
        records.map((r) => r.offset),
        live,
        `${where}: no gaps`,
      );
    } else {
      const latest = new Map<string, bigint>();
      for (const o of live) latest.set(model.get(o)!.key, o);
      const present = new Set(records.map((r) => r.offset));
      for (const [k, o] of latest) {
        if (model.get(o)!.value === null) continue; // tombstones may expire
        assert.ok(present.has(o), `${where}: latest record of ${k} at ${o} kept`);
      }
    }
  };

  for (let step = 0; step < steps; step++) {
    const r = random();
    let op: string;
    if (r < 0.45) {
      op = 'append';
      const n = 1 + Math.floor(random() * 6);
      const recs: ModelRecord[] = [];
      for (let i = 0; i < n; i++) {
        recs.push({ key: `k${Math.floor(random() * 12)}`, value: random() < 0.1 ? null : `v${step}-${i}` });
      }
      const info = await log.append(
        buildRecordBatchSync({
          compression: random() < 0.3 ? Compression.gzip : Compression.none,
          records: recs.map((x) => ({
            key: Buffer.from(x.key),
            value: x.value === null ? null : Buffer.from(x.value),
            timestamp: BigInt(clock.now()),
          })),
        }),
      );
      recs.forEach((x, i) => {
        model.set(info.firstOffset + BigInt(i), x);
      });
    } else if (r < 0.6) {
      op = 'read';
      if (log.logEndOffset > log.logStartOffset) {
        const span = Number(log.logEndOffset - log.logStartOffset);
        const from = log.logStartOffset + BigInt(Math.floor(random() * span));
        const res = await log.read(from, pick([1, 500, 5000, 1 << 20]));
        if (res.records.length > 0) assert.ok(res.firstBatchOffset <= from || compactedOnce);
      }
    } else if (r < 0.67) {
      op = 'roll';
      await log.roll();
    } else if (r < 0.75) {
      op = 'retain';
      clock.advance(Math.floor(random() * 300_000));
      await log.deleteOldSegments();
      await log.awaitPendingDeletes();
    } else if (r < 0.81) {
      op = 'delete-records';
      const span = Number(log.highWatermark - log.logStartOffset);
      const target = log.logStartOffset + BigInt(Math.floor(random() * (span + 1) * 0.5));
      await log.deleteRecordsBefore(target);
    } else if (r < 0.9) {
      op = 'compact';
      if (compacting) {
        const range = await cleaner.cleanableRange(log, firstDirty);
        if (cleaner.shouldClean(log, range)) {
          const res = await cleaner.clean(log, range);
          if (res) {
            firstDirty = res.cleanedUpTo;
            compactedOnce = true;
          }
        }
      }
    } else {
      const clean = random() < 0.5;
      op = clean ? 'reopen clean' : 'reopen unclean';
      const start = log.logStartOffset;
      const recoveryPoint = BigInt(Math.floor(random() * Number(log.recoveryPoint + 1n)));
      if (clean) await log.close();
      else await log.closeWithoutFlush();
      log = await open(clean, start, recoveryPoint);
    }
    for (const o of [...model.keys()]) if (o < log.logStartOffset) model.delete(o);
    await check(step, op);
  }
}

test('random operations keep the invariants (cleanup.policy=delete)', async (t) => {
  for (const seed of [1, 2, 3]) await run(t, 'delete', seed, 120);
});

test('random operations keep the invariants (cleanup.policy=compact,delete)', async (t) => {
  for (const seed of [11, 12, 13]) await run(t, 'compact,delete', seed, 120);
});
