/** The log cleaner's rules for transactional data (KIP-98, Kafka's CleanedTransactionMetadata). */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { hasDeleteHorizon, isControl, type RecordBatchHeader } from '../../../src/protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { buildControlBatch, readControlRecord } from '../../../src/protocol/records/control-record.ts';
import { iterateBatches } from '../../../src/protocol/records/iterate-batches.ts';
import { decodeRecordsSync } from '../../../src/protocol/records/record.ts';
import { LogCleaner } from '../../../src/storage/log-cleaner.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { PartitionLog } from '../../../src/storage/partition-log.ts';
import type { AbortedTxn } from '../../../src/storage/transaction-index.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { onCleanup, readAll, str, tempDir } from './helpers.ts';

const CONFIG = {
  'cleanup.policy': 'compact',
  'segment.bytes': '100000',
  'file.delete.delay.ms': '0',
  'delete.retention.ms': '1000',
  'min.cleanable.dirty.ratio': '0.01',
};

async function openLog(dir: string, clock: ManualClock, hadCleanShutdown = false, extra: Record<string, string> = {}) {
  return PartitionLog.open({
    dir: join(dir, 'compacted-0'),
    topic: 'compacted',
    partition: 0,
    clock,
    config: new LogConfig({ ...CONFIG, ...extra }),
    hadCleanShutdown,
  });
}

function records(entries: Array<[string, string | null]>, ts: number) {
  return entries.map(([k, v]) => ({
    key: Buffer.from(k),
    value: v === null ? null : Buffer.from(v),
    timestamp: BigInt(ts),
  }));
}

function plain(entries: Array<[string, string | null]>, ts: number): Buffer {
  return buildRecordBatchSync({ records: records(entries, ts) });
}

function txnData(producerId: bigint, entries: Array<[string, string | null]>, ts: number, seq = 0): Buffer {
  return buildRecordBatchSync({
    records: records(entries, ts),
    producerId,
    producerEpoch: 0,
    baseSequence: seq,
    transactional: true,
  });
}

async function endTxn(
  log: PartitionLog,
  type: 'abort' | 'commit',
  producerId: bigint,
  firstOffset: bigint,
  ts: number,
) {
  const m = await log.append(
    buildControlBatch({ type, producerId, producerEpoch: 0, coordinatorEpoch: 0, timestamp: BigInt(ts) }),
    { origin: 'coordinator' },
  );
  if (type === 'commit') return null;
  const txn: AbortedTxn = { producerId, firstOffset, lastOffset: m.lastOffset, lastStableOffset: m.lastOffset + 1n };
  await log.appendAbortedTxn(txn);
  return txn;
}

interface Seen {
  header: RecordBatchHeader;
  marker: 'abort' | 'commit' | 'unknown' | null;
  values: Array<[string | null, string | null]>;
  timestamps: bigint[];
}

/** Every batch in the log, with its records. */
async function batches(log: PartitionLog): Promise<Seen[]> {
  const out: Seen[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const r = await log.read(offset, 1 << 20, { isolation: 'logEnd' });
    if (r.records.length === 0) break;
    for (const { offset: at, size, header } of iterateBatches(r.records)) {
      if (header.baseOffset + BigInt(header.lastOffsetDelta) < offset) continue;
      const recs = decodeRecordsSync(r.records.subarray(at, at + size));
      out.push({
        header,
        marker: isControl(header.attributes) ? readControlRecord(recs[0]!).type : null,
        values: recs.map((x) => [str(x.key), str(x.value)]),
        timestamps: recs.map((x) => x.timestamp),
      });
      offset = header.baseOffset + BigInt(header.lastOffsetDelta) + 1n;
    }
  }
  return out;
}

async function cleanOnce(cleaner: LogCleaner, log: PartitionLog, firstDirty?: bigint) {
  const range = await cleaner.cleanableRange(log, firstDirty);
  if (!cleaner.shouldClean(log, range)) return null;
  return cleaner.clean(log, range);
}

test('aborted data is removed (and shadows nothing), committed data kept, markers kept then expire', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(1_000_000);
  let log = await openLog(dir, clock);
  const now = clock.now();
  // 0: committed k1=v1 (P1), 1: commit marker
  await log.append(txnData(1n, [['k1', 'v1']], now));
  await endTxn(log, 'commit', 1n, 0n, now);
  // 2..3: aborted P2 writes k1 and k2, 4: abort marker
  await log.append(txnData(2n, [['k1', 'bad']], now));
  await log.append(txnData(2n, [['k2', 'bad']], now, 1));
  const aborted = await endTxn(log, 'abort', 2n, 2n, now);
  // 5: plain k3
  await log.append(plain([['k3', 'v3']], now));
  await log.roll();

  const cleaner = new LogCleaner({ clock });
  const first = await cleanOnce(cleaner, log);
  assert.ok(first);
  assert.equal(first.abortedBatchesRemoved, 2);
  assert.equal(first.markersRemoved, 0);
  let seen = await batches(log);
  assert.deepEqual(
    seen.map((b) => [b.header.baseOffset, b.marker, b.marker === null ? b.values : b.values.length]),
    [
      [0n, null, [['k1', 'v1']]],
      [1n, 'commit', 1],
      [4n, 'abort', 1],
      [5n, null, [['k3', 'v3']]],
    ],
  );
  assert.ok(
    seen.every((b) => !hasDeleteHorizon(b.header.attributes)),
    'markers met with data are not stamped',
  );
  // The cleaned segment carries the entry of the abort marker it kept, also after a restart.
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [aborted]);
  await log.close();
  log = await openLog(dir, clock, true);
  onCleanup(t, () => log.close());
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [aborted]);
  assert.deepEqual(
    (await readdir(join(dir, 'compacted-0'))).filter((n) => n.includes('.txnindex')),
    ['00000000000000000000.txnindex'],
  );

  // Second pass: the aborted transaction has no data left; its marker is stamped with a delete
  // horizon and loses its index entry. The commit marker still has its transaction's data.
  await log.append(plain([['k4', 'v4']], now));
  await log.roll();
  clock.advance(10);
  const second = await cleanOnce(cleaner, log, 6n);
  assert.ok(second);
  seen = await batches(log);
  const abortMarker = seen.find((b) => b.marker === 'abort')!;
  assert.ok(hasDeleteHorizon(abortMarker.header.attributes));
  assert.equal(abortMarker.header.baseTimestamp, BigInt(clock.now() + 1000));
  assert.equal(abortMarker.header.maxTimestamp, BigInt(now), 'record timestamps are unchanged');
  assert.deepEqual(abortMarker.timestamps, [BigInt(now)]);
  assert.ok(!hasDeleteHorizon(seen.find((b) => b.marker === 'commit')!.header.attributes));
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), []);

  // Before the horizon the marker stays; after it, the next pass removes it.
  await log.append(plain([['k5', 'v5']], now));
  await log.roll();
  clock.advance(500);
  const third = await cleanOnce(cleaner, log, 7n);
  assert.equal(third?.markersRemoved, 0);
  assert.ok((await batches(log)).some((b) => b.marker === 'abort'));
  await log.append(plain([['k6', 'v6']], now));
  await log.roll();
  clock.advance(600);
  const fourth = await cleanOnce(cleaner, log, 8n);
  assert.equal(fourth?.markersRemoved, 1);
  seen = await batches(log);
  assert.deepEqual(
    seen.map((b) => [b.header.baseOffset, b.marker]),
    [
      [0n, null],
      [1n, 'commit'],
      [5n, null],
      [6n, null],
      [7n, null],
      [8n, null],
    ],
  );
  const values = (await readAll(log)).filter((r) => r.key?.toString() !== undefined && r.value !== null);
  assert.deepEqual(
    values.filter((r) => !isControlKey(r.key)).map((r) => [str(r.key), str(r.value)]),
    [
      ['k1', 'v1'],
      ['k3', 'v3'],
      ['k4', 'v4'],
      ['k5', 'v5'],
      ['k6', 'v6'],
    ],
  );
});

function isControlKey(key: Buffer | null): boolean {
  return key !== null && key.length === 4 && key.readInt16BE(0) === 0 && key.readInt16BE(2) <= 1;
}

test('a commit marker whose data was compacted away expires after the delete horizon', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(2_000_000);
  const log = await openLog(dir, clock);
  onCleanup(t, () => log.close());
  const now = clock.now();
  await log.append(txnData(1n, [['k', 'old']], now)); // 0
  await endTxn(log, 'commit', 1n, 0n, now); // 1
  await log.append(plain([['k', 'new']], now)); // 2
  await log.roll();
  const cleaner = new LogCleaner({ clock });
  // Pass 1 meets the transaction's batch (its record is superseded and removed): the marker stays.
  await cleanOnce(cleaner, log);
  let seen = await batches(log);
  assert.deepEqual(
    seen.map((b) => [b.header.baseOffset, b.marker, hasDeleteHorizon(b.header.attributes)]),
    [
      [1n, 'commit', false],
      [2n, null, false],
    ],
  );
  // Pass 2: no data of the transaction left: stamped; pass 3 after the horizon: removed.
  await log.append(plain([['x', '1']], now));
  await log.roll();
  await cleanOnce(cleaner, log, 3n);
  seen = await batches(log);
  assert.ok(hasDeleteHorizon(seen[0]!.header.attributes));
  assert.equal(seen[0]!.marker, 'commit');
  clock.advance(1001);
  await log.append(plain([['y', '1']], now));
  await log.roll();
  const r = await cleanOnce(cleaner, log, 4n);
  assert.equal(r?.markersRemoved, 1);
  assert.deepEqual(
    (await batches(log)).map((b) => b.header.baseOffset),
    [2n, 3n, 4n],
  );
});

test('nothing at or past the last stable offset is cleaned: ongoing transactions keep every batch', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(3_000_000);
  const log = await openLog(dir, clock);
  onCleanup(t, () => log.close());
  const now = clock.now();
  await log.append(plain([['k', 'a']], now)); // 0
  await log.append(plain([['k', 'b']], now)); // 1
  await log.roll();
  // An ongoing transaction from 2 (the transaction layer reports it), over several segments.
  await log.append(txnData(9n, [['k', 'ongoing-1']], now)); // 2
  log.setFirstUnstableOffset(2n);
  await log.roll();
  await log.append(txnData(9n, [['k', 'ongoing-2']], now, 1)); // 3
  await log.append(plain([['k', 'c']], now)); // 4
  await log.roll();
  assert.equal(log.lastStableOffset, 2n);
  const cleaner = new LogCleaner({ clock });
  const range = await cleaner.cleanableRange(log, undefined);
  assert.equal(range.firstUncleanableOffset, 2n);
  await cleaner.clean(log, range);
  const seen = await batches(log);
  assert.deepEqual(
    seen.map((b) => [b.header.baseOffset, b.values]),
    [
      [1n, [['k', 'b']]],
      [2n, [['k', 'ongoing-1']]],
      [3n, [['k', 'ongoing-2']]],
      [4n, [['k', 'c']]],
    ],
  );
});

test('an aborted transaction begun in an earlier segment is found through its marker segment', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(4_000_000);
  const log = await openLog(dir, clock);
  onCleanup(t, () => log.close());
  const now = clock.now();
  await log.append(plain([['a', '1']], now)); // 0
  await log.append(txnData(5n, [['a', 'aborted']], now)); // 1
  await log.roll();
  await log.append(txnData(5n, [['b', 'aborted']], now, 1)); // 2
  await log.append(plain([['b', '1']], now)); // 3
  await log.roll();
  // Another producer's transaction interleaves and commits.
  await log.append(txnData(6n, [['c', 'committed']], now)); // 4
  const aborted = await endTxn(log, 'abort', 5n, 1n, now); // 5
  await endTxn(log, 'commit', 6n, 4n, now); // 6
  await log.roll();
  assert.deepEqual(await log.collectAbortedTxns(1n, 2n), [aborted]);
  const cleaner = new LogCleaner({ clock });
  const r = await cleanOnce(cleaner, log);
  assert.equal(r?.abortedBatchesRemoved, 2);
  const seen = await batches(log);
  assert.deepEqual(
    seen.map((b) => [b.header.baseOffset, b.marker, b.values.length]),
    [
      [0n, null, 1],
      [3n, null, 1],
      [4n, null, 1],
      [5n, 'abort', 1],
      [6n, 'commit', 1],
    ],
  );
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [aborted]);
  assert.deepEqual(
    (await readAll(log)).filter((x) => !isControlKey(x.key)).map((x) => [str(x.key), str(x.value)]),
    [
      ['a', '1'],
      ['b', '1'],
      ['c', 'committed'],
    ],
  );
});

test('a transaction spanning two cleaning groups: its marker stays with its data removed in the earlier group', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(5_000_000);
  // Segments of ~600 bytes cannot share a 1000-byte group.
  const log = await openLog(dir, clock, false, { 'segment.bytes': '1000' });
  onCleanup(t, () => log.close());
  const now = clock.now();
  const big = 'x'.repeat(500);
  await log.append(plain([['a', big]], now)); // 0
  await log.append(txnData(7n, [['a', 'aborted']], now)); // 1
  await log.roll();
  await log.append(plain([['b', big]], now)); // 2
  const aborted = await endTxn(log, 'abort', 7n, 1n, now); // 3
  await log.roll();
  assert.equal(log.segments.length, 3);
  const cleaner = new LogCleaner({ clock });
  const r = await cleanOnce(cleaner, log);
  assert.equal(r?.segmentsCleaned, 2);
  assert.equal(r?.abortedBatchesRemoved, 1);
  assert.equal(log.segments.length, 3, 'two groups, two cleaned segments');
  const seen = await batches(log);
  assert.deepEqual(
    seen.map((b) => [b.header.baseOffset, b.marker, hasDeleteHorizon(b.header.attributes)]),
    [
      [0n, null, false],
      [2n, null, false],
      [3n, 'abort', false],
    ],
  );
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [aborted]);
});

test('no cleaning while a transaction index is damaged, nor a swap after the indexes changed', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(6_000_000);
  let log = await openLog(dir, clock);
  const now = clock.now();
  await log.append(plain([['k', 'v1']], now)); // 0
  await log.append(txnData(3n, [['k', 'aborted']], now)); // 1
  await endTxn(log, 'abort', 3n, 1n, now); // 2
  await log.roll();
  await log.close();
  await writeFile(join(dir, 'compacted-0', '00000000000000000000.txnindex'), Buffer.alloc(7));
  log = await openLog(dir, clock, true);
  onCleanup(t, () => log.close());
  assert.equal(log.corruptTxnIndexFrom, 0n);
  const cleaner = new LogCleaner({ clock });
  const range = await cleaner.cleanableRange(log, undefined);
  assert.equal(cleaner.shouldClean(log, range), false);
  assert.equal(await cleaner.clean(log, range), null);
  // The owner rebuilds the index; cleaning then goes on and keeps the committed value.
  await log.truncateAbortedTxnsFrom(0n);
  await log.appendAbortedTxn({ producerId: 3n, firstOffset: 1n, lastOffset: 2n, lastStableOffset: 3n });
  const generation = log.txnIndexGeneration;
  // A swap prepared before the indexes changed is refused.
  const cleaned = await log.createCleanedSegment(0n);
  await log.truncateAbortedTxnsFrom(2n);
  assert.equal(await log.replaceSegments(cleaned, [log.segments[0]!], generation), false);
  await log.appendAbortedTxn({ producerId: 3n, firstOffset: 1n, lastOffset: 2n, lastStableOffset: 3n });
  assert.ok(await cleanOnce(cleaner, log));
  assert.deepEqual(
    (await readAll(log)).filter((x) => !isControlKey(x.key)).map((x) => [str(x.key), str(x.value)]),
    [['k', 'v1']],
  );
});
