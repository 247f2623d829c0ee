// Transactions in Partition on a real PartitionLog: KIP-890 part 1's verification guard on a
// transaction's first batch, the last stable offset (LSO) held at the first offset of the earliest
// open transaction while the high watermark moves, commit/abort markers (Kafka's
// appendRecordsToLeader with AppendOrigin.COORDINATOR), the aborted-transaction index read by
// read_committed fetches, marker fencing (producer epoch, coordinator epoch), the state surviving
// a clean restart (snapshot) and a crash (replay), a follower reaching the same state from the
// leader's batches, and a truncation rebuilding it.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, KafkaError } from '../../../src/protocol/error-codes.ts';
import { isControl, readBatchHeader } from '../../../src/protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { iterateBatches } from '../../../src/protocol/records/iterate-batches.ts';
import { Partition, type TxnMarkerInput } from '../../../src/replication/partition.ts';
import { PartitionLog } from '../../../src/storage/partition-log.ts';

type Ctx = { after(fn: () => unknown): void };

const code = (errorCode: number) => (err: unknown) => {
  assert.ok(err instanceof KafkaError, `expected a KafkaError, got ${String(err)}`);
  assert.equal(err.errorCode, errorCode, `expected error ${errorCode}, got ${err.errorCode} (${err.message})`);
  return true;
};

const PID1 = 1001n;
const PID2 = 2002n;

function records(n: number, tag = 'v') {
  return Array.from({ length: n }, (_, i) => ({ key: null, value: Buffer.from(`${tag}${i}`) }));
}

/** A producer batch: transactional unless told otherwise. */
function producerBatch(
  producerId: bigint,
  producerEpoch: number,
  baseSequence: number,
  n: number,
  transactional = true,
) {
  return buildRecordBatchSync({ producerId, producerEpoch, baseSequence, transactional, records: records(n) });
}

const plainBatch = (n: number) => buildRecordBatchSync({ records: records(n, 'plain') });

const marker = (producerId: bigint, producerEpoch: number, commit: boolean, coordinatorEpoch = 0): TxnMarkerInput => ({
  producerId,
  producerEpoch,
  coordinatorEpoch,
  commit,
});

/** Logs opened by the running test, closed before its directories are removed. */
const openLogs: PartitionLog[] = [];

async function tempDir(t: Ctx): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'samsa-partition-txn-'));
  t.after(async () => {
    for (const log of openLogs.splice(0)) if (!log.closed) await log.close();
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

async function openLog(dir: string, highWatermarkFollowsLogEnd = true): Promise<PartitionLog> {
  const log = await PartitionLog.open({ dir, topic: 't', partition: 0, highWatermarkFollowsLogEnd });
  openLogs.push(log);
  return log;
}

function partitionOver(log: PartitionLog, fresh: boolean): Partition {
  return new Partition({
    topic: 't',
    partition: 0,
    log,
    leaderEpoch: 0,
    fresh,
    producerIdExpirationMs: 86_400_000,
    logger: { warn: () => undefined },
  });
}

async function leader(t: Ctx, dir?: string): Promise<{ partition: Partition; log: PartitionLog; dir: string }> {
  const d = dir ?? join(await tempDir(t), 't-0');
  const log = await openLog(d);
  const partition = partitionOver(log, true);
  return { partition, log, dir: d };
}

/** A transactional batch as a verified producer sends it (the guard when this starts its transaction). */
async function appendTxn(p: Partition, producerId: bigint, epoch: number, seq: number, n: number) {
  const guard = await p.startTxnVerification(producerId);
  return p.appendRecordsToLeader(producerBatch(producerId, epoch, seq, n), 1, {
    verificationGuard: guard ?? undefined,
  });
}

async function readCommitted(p: Partition, from = 0n) {
  return p.read(from, 1 << 20, true, true);
}

/** Offsets of the data (non-control) batches a read returned. */
function dataOffsets(bufs: Buffer[]): bigint[] {
  const out: bigint[] = [];
  for (const buf of bufs)
    for (const { header } of iterateBatches(buf, { partialTail: 'stop', verifyCrc: false }))
      if (!isControl(header.attributes))
        for (let i = 0n; i <= BigInt(header.lastOffsetDelta); i++) out.push(header.baseOffset + i);
  return out;
}

/**
 * The same history on any partition: PID1's transaction (0-1), PID2's (2-3) aborted by the marker
 * at 4, a plain batch at 5; PID1's transaction is still open.
 */
async function history(p: Partition): Promise<void> {
  await appendTxn(p, PID1, 0, 0, 2);
  await appendTxn(p, PID2, 3, 0, 2);
  assert.equal(await p.appendTxnMarker(marker(PID2, 3, false, 1)), 4n);
  await p.appendRecordsToLeader(plainBatch(1));
}

/** What a reader can see of the partition's transaction state. */
async function txnState(p: Partition) {
  await p.loadTransactionState();
  const o = p.offsets();
  return {
    lastStableOffset: o.lastStableOffset,
    highWatermark: o.highWatermark,
    logEndOffset: o.logEndOffset,
    aborted: await p.log.collectAbortedTxns(o.logStartOffset, o.logEndOffset),
    ongoing: (await p.producers())
      .filter((x) => x.currentTxnStartOffset >= 0n)
      .map((x) => [x.producerId, x.currentTxnStartOffset]),
  };
}

test('a transactional batch needs the verification guard to begin a transaction (KIP-890 part 1)', async (t) => {
  const { partition, log } = await leader(t);
  await assert.rejects(
    partition.appendRecordsToLeader(producerBatch(PID1, 0, 0, 3), 1),
    code(ErrorCode.INVALID_TXN_STATE),
  );
  await assert.rejects(
    partition.appendRecordsToLeader(producerBatch(PID1, 0, 0, 3), 1, { verificationGuard: {} }),
    code(ErrorCode.INVALID_TXN_STATE),
    'a guard that is not the partition’s',
  );
  const other = await partition.startTxnVerification(PID2);
  await assert.rejects(
    partition.appendRecordsToLeader(producerBatch(PID1, 0, 0, 3), 1, { verificationGuard: other ?? undefined }),
    code(ErrorCode.INVALID_TXN_STATE),
    'another producer’s guard',
  );
  assert.equal(log.logEndOffset, 0n, 'nothing appended');
  const guard = await partition.startTxnVerification(PID1);
  assert.ok(guard !== null);
  assert.equal(await partition.startTxnVerification(PID1), guard, 'the same guard until used');
  const a = await partition.appendRecordsToLeader(producerBatch(PID1, 0, 0, 3), 1, { verificationGuard: guard });
  assert.equal(a.baseOffset, 0n);
  assert.equal(a.lastOffset, 2n);
  // The transaction is ongoing here: no verification for its next batches, and none is offered.
  assert.equal(await partition.startTxnVerification(PID1), null);
  const b = await partition.appendRecordsToLeader(producerBatch(PID1, 0, 3, 2), 1);
  assert.equal(b.baseOffset, 3n);
  // A coordinator's own transactional write is trusted.
  const c = await partition.appendRecordsToLeader(producerBatch(PID2, 0, 0, 1), 1, { origin: 'coordinator' });
  assert.equal(c.baseOffset, 5n);
  // A retried batch is a duplicate, answered with its offset.
  const dup = await partition.appendRecordsToLeader(producerBatch(PID1, 0, 3, 2), 1);
  assert.equal(dup.baseOffset, 3n);
  assert.equal(log.logEndOffset, 6n);
});

test('the LSO stays at the first offset of the open transaction while the high watermark moves; a commit marker moves it to the high watermark', async (t) => {
  const { partition, log } = await leader(t);
  await partition.appendRecordsToLeader(plainBatch(2)); // 0-1
  await appendTxn(partition, PID1, 0, 0, 3); // 2-4
  await partition.appendRecordsToLeader(plainBatch(2)); // 5-6
  await appendTxn(partition, PID2, 0, 0, 1); // 7
  assert.equal(log.highWatermark, 8n);
  assert.equal(log.lastStableOffset, 2n);
  assert.equal(partition.offsets().lastStableOffset, 2n);
  let r = await readCommitted(partition);
  assert.equal(r.lastStableOffset, 2n);
  assert.deepEqual(dataOffsets(r.records), [0n, 1n], 'read_committed stops at the LSO');
  assert.deepEqual(r.abortedTransactions, []);
  const un = await partition.read(0n, 1 << 20, false, true);
  assert.equal(un.abortedTransactions, undefined, 'only read_committed reads carry aborted transactions');
  assert.equal(dataOffsets(un.records).length, 8);

  assert.equal(await partition.appendTxnMarker(marker(PID1, 0, true)), 8n);
  assert.equal(log.lastStableOffset, 7n, "PID2's transaction is still open");
  assert.equal(await partition.appendTxnMarker(marker(PID2, 0, true)), 9n);
  assert.equal(log.highWatermark, 10n);
  assert.equal(log.lastStableOffset, 10n);
  r = await readCommitted(partition);
  assert.deepEqual(dataOffsets(r.records), [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n]);
  assert.deepEqual(r.abortedTransactions, []);
  assert.deepEqual(await log.collectAbortedTxns(0n, 10n), []);
  // The markers are control batches carrying the producer and its epoch.
  const all = await log.read(8n, 1 << 20, { isolation: 'logEnd' });
  const h = readBatchHeader(all.records, 0);
  assert.ok(isControl(h.attributes));
  assert.equal(h.producerId, PID1);
});

test('an abort marker indexes the transaction: read_committed returns it as aborted and collectAbortedTxns finds it', async (t) => {
  const { partition, log } = await leader(t);
  await appendTxn(partition, PID1, 0, 0, 3); // 0-2
  await partition.appendRecordsToLeader(plainBatch(1)); // 3
  await appendTxn(partition, PID2, 5, 0, 2); // 4-5
  assert.equal(await partition.appendTxnMarker(marker(PID1, 0, false, 2)), 6n);
  assert.equal(log.lastStableOffset, 4n);
  assert.deepEqual(await log.collectAbortedTxns(0n, 7n), [
    { producerId: PID1, firstOffset: 0n, lastOffset: 6n, lastStableOffset: 4n },
  ]);
  assert.equal(await partition.appendTxnMarker(marker(PID2, 5, true, 2)), 7n);
  assert.equal(log.lastStableOffset, 8n);
  const r = await readCommitted(partition);
  assert.deepEqual(r.abortedTransactions, [{ producerId: PID1, firstOffset: 0n }]);
  assert.deepEqual(dataOffsets(r.records), [0n, 1n, 2n, 3n, 4n, 5n], 'the consumer drops the aborted records itself');
  // A read starting after the aborted transaction does not report it.
  const later = await readCommitted(partition, 7n);
  assert.deepEqual(later.abortedTransactions, []);
  // A marker for a producer without a transaction here (the coordinator writes to every
  // partition of the transaction) is an empty transaction at the marker.
  assert.equal(await partition.appendTxnMarker(marker(PID2, 5, false, 2)), 8n);
  assert.deepEqual(await log.collectAbortedTxns(8n, 9n), [
    { producerId: PID2, firstOffset: 8n, lastOffset: 8n, lastStableOffset: 9n },
  ]);
  assert.equal(log.lastStableOffset, 9n);
});

test('a marker invalidates an outstanding verification guard', async (t) => {
  const { partition, log } = await leader(t);
  const guard = await partition.startTxnVerification(PID1);
  assert.ok(guard !== null);
  // The transaction ended (aborted) before this partition got its first batch: a late batch must
  // not open a transaction that no marker would ever end.
  await partition.appendTxnMarker(marker(PID1, 0, false));
  await assert.rejects(
    partition.appendRecordsToLeader(producerBatch(PID1, 0, 0, 1), 1, { verificationGuard: guard }),
    code(ErrorCode.INVALID_TXN_STATE),
  );
  assert.equal(log.logEndOffset, 1n);
  // The next transaction verifies afresh.
  const next = await partition.startTxnVerification(PID1);
  assert.ok(next !== null && next !== guard);
  await partition.appendRecordsToLeader(producerBatch(PID1, 0, 0, 1), 1, { verificationGuard: next });
  assert.equal(log.logEndOffset, 2n);
  assert.equal(log.lastStableOffset, 1n);
});

test('a non-transactional batch of a producer whose transaction is open here is INVALID_TXN_STATE', async (t) => {
  const { partition, log } = await leader(t);
  await appendTxn(partition, PID1, 0, 0, 2);
  await assert.rejects(
    partition.appendRecordsToLeader(producerBatch(PID1, 0, 2, 1, false), 1),
    code(ErrorCode.INVALID_TXN_STATE),
  );
  assert.equal(log.logEndOffset, 2n);
  await partition.appendTxnMarker(marker(PID1, 0, true));
  // After the marker the producer may write idempotent batches again.
  const a = await partition.appendRecordsToLeader(producerBatch(PID1, 0, 2, 1, false), 1);
  assert.equal(a.baseOffset, 3n);
  assert.equal(log.lastStableOffset, 4n);
});

test('markers: an older producer epoch is INVALID_PRODUCER_EPOCH, an older coordinator epoch TRANSACTION_COORDINATOR_FENCED', async (t) => {
  const { partition, log } = await leader(t);
  await appendTxn(partition, PID1, 2, 0, 2);
  await assert.rejects(partition.appendTxnMarker(marker(PID1, 1, false, 0)), code(ErrorCode.INVALID_PRODUCER_EPOCH));
  assert.equal(log.logEndOffset, 2n, 'a refused marker is not appended');
  assert.equal(log.lastStableOffset, 0n);
  await partition.appendTxnMarker(marker(PID1, 2, true, 5));
  await appendTxn(partition, PID1, 2, 2, 1);
  await assert.rejects(
    partition.appendTxnMarker(marker(PID1, 2, true, 4)),
    code(ErrorCode.TRANSACTION_COORDINATOR_FENCED),
  );
  assert.equal(log.logEndOffset, 4n);
  assert.equal(log.lastStableOffset, 3n);
  // A bumped epoch (the coordinator fenced the producer) aborts the transaction.
  assert.equal(await partition.appendTxnMarker(marker(PID1, 3, false, 5)), 4n);
  assert.equal(log.lastStableOffset, 5n);
  // The producer at its old epoch is fenced now.
  await assert.rejects(
    partition.appendRecordsToLeader(producerBatch(PID1, 2, 3, 1), 1, {
      verificationGuard: (await partition.startTxnVerification(PID1)) ?? undefined,
    }),
    code(ErrorCode.INVALID_PRODUCER_EPOCH),
  );
});

test('a clean restart (snapshot) keeps the open transaction (LSO) and the aborted index', async (t) => {
  const { partition, log, dir } = await leader(t);
  await history(partition);
  const before = await txnState(partition);
  assert.deepEqual(before, {
    lastStableOffset: 0n,
    highWatermark: 6n,
    logEndOffset: 6n,
    aborted: [{ producerId: PID2, firstOffset: 2n, lastOffset: 4n, lastStableOffset: 0n }],
    ongoing: [[PID1, 0n]],
  });
  await partition.snapshotAtStop();
  partition.detach();
  await log.close();
  assert.ok((await readdir(dir)).includes('00000000000000000006.snapshot'));

  const log2 = await openLog(dir);
  const p2 = partitionOver(log2, false);
  assert.equal(log2.lastStableOffset, 0n, 'nothing is stable before the state is loaded');
  assert.deepEqual(await txnState(p2), before);
  // PID1's transaction goes on, and its commit makes everything stable.
  assert.equal(await p2.startTxnVerification(PID1), null, 'still ongoing');
  await p2.appendRecordsToLeader(producerBatch(PID1, 0, 2, 1), 1);
  await p2.appendTxnMarker(marker(PID1, 0, true, 1));
  assert.equal(log2.lastStableOffset, 8n);
  const r = await readCommitted(p2);
  assert.deepEqual(r.abortedTransactions, [{ producerId: PID2, firstOffset: 2n }]);
  // The marker fencing state survived too.
  await assert.rejects(p2.appendTxnMarker(marker(PID2, 2, false, 1)), code(ErrorCode.INVALID_PRODUCER_EPOCH));
  await assert.rejects(p2.appendTxnMarker(marker(PID2, 3, false, 0)), code(ErrorCode.TRANSACTION_COORDINATOR_FENCED));
});

test('a crash without a snapshot rebuilds the same state by replaying the log', async (t) => {
  const clean = await leader(t);
  await history(clean.partition);
  const expected = await txnState(clean.partition);

  const { partition, log, dir } = await leader(t);
  await history(partition);
  partition.detach();
  await log.closeWithoutFlush(); // a crash: no snapshotAtStop, no flush
  assert.ok(!(await readdir(dir)).some((f) => f.endsWith('.snapshot')));
  const log2 = await openLog(dir);
  const p2 = partitionOver(log2, false);
  assert.deepEqual(await txnState(p2), expected);
  const r = await readCommitted(p2);
  assert.equal(r.lastStableOffset, 0n);
  assert.deepEqual(r.records, []);
  await p2.appendTxnMarker(marker(PID1, 0, false, 1));
  // In the index's order: by marker.
  assert.deepEqual((await readCommitted(p2)).abortedTransactions, [
    { producerId: PID2, firstOffset: 2n },
    { producerId: PID1, firstOffset: 0n },
  ]);
});

test('a crash after a snapshot replays only what followed it', async (t) => {
  const { partition, log, dir } = await leader(t);
  await appendTxn(partition, PID1, 0, 0, 2); // 0-1
  assert.equal(await partition.snapshotIfChanged(), true);
  await appendTxn(partition, PID2, 3, 0, 2); // 2-3
  await partition.appendTxnMarker(marker(PID2, 3, false, 1)); // 4
  await partition.appendTxnMarker(marker(PID1, 0, true, 1)); // 5
  const expected = await txnState(partition);
  assert.equal(expected.lastStableOffset, 6n);
  partition.detach();
  await log.close();
  const p2 = partitionOver(await openLog(dir), false);
  assert.deepEqual(await txnState(p2), expected);
  assert.deepEqual((await readCommitted(p2)).abortedTransactions, [{ producerId: PID2, firstOffset: 2n }]);
});

test("a follower appending the leader's transactional batches and markers tracks the same LSO and aborted transactions", async (t) => {
  const l = await leader(t);
  const fdir = join(await tempDir(t), 't-0');
  const flog = await openLog(fdir, false);
  const follower = partitionOver(flog, true);
  follower.makeFollower(1);

  const replicate = async () => {
    const from = flog.logEndOffset;
    const r = await l.log.read(from, 1 << 20, { isolation: 'logEnd' });
    await follower.appendAsFollower(r.records, l.log.highWatermark);
  };

  await appendTxn(l.partition, PID1, 0, 0, 2); // 0-1
  await appendTxn(l.partition, PID2, 3, 0, 2); // 2-3
  await replicate();
  assert.equal(flog.logEndOffset, 4n);
  assert.equal(flog.highWatermark, 4n);
  assert.equal(flog.lastStableOffset, 0n);
  await l.partition.appendTxnMarker(marker(PID2, 3, false, 1)); // 4
  await l.partition.appendRecordsToLeader(plainBatch(1)); // 5
  await replicate();
  assert.deepEqual(await txnState(follower), await txnState(l.partition));
  assert.equal(flog.lastStableOffset, 0n);
  assert.deepEqual(await flog.collectAbortedTxns(0n, 6n), [
    { producerId: PID2, firstOffset: 2n, lastOffset: 4n, lastStableOffset: 0n },
  ]);

  await l.partition.appendTxnMarker(marker(PID1, 0, true, 1)); // 6
  await replicate();
  assert.equal(flog.lastStableOffset, 7n);
  assert.deepEqual(await txnState(follower), await txnState(l.partition));

  // A follower whose high watermark lags keeps the LSO below it.
  await appendTxn(l.partition, PID1, 0, 2, 1); // 7
  await l.partition.appendTxnMarker(marker(PID1, 0, false, 1)); // 8
  const r = await l.log.read(flog.logEndOffset, 1 << 20, { isolation: 'logEnd' });
  await follower.appendAsFollower(r.records, 7n);
  assert.equal(flog.highWatermark, 7n);
  assert.equal(flog.lastStableOffset, 7n);
  await follower.appendAsFollower(Buffer.alloc(0), 9n);
  assert.equal(flog.lastStableOffset, 9n);
  assert.deepEqual(await txnState(follower), await txnState(l.partition));

  // Promoted, it carries on: fencing state included. (Without replication options its high
  // watermark does not follow its log end by itself: moved by hand as caught-up followers would.)
  follower.makeLeader(2);
  await assert.rejects(follower.appendTxnMarker(marker(PID2, 2, true, 1)), code(ErrorCode.INVALID_PRODUCER_EPOCH));
  await appendTxn(follower, PID2, 3, 2, 1); // 9
  flog.updateHighWatermark(flog.logEndOffset);
  assert.equal(flog.lastStableOffset, 9n);
  await follower.appendTxnMarker(marker(PID2, 3, false, 2)); // 10
  assert.equal(flog.lastStableOffset, 9n, 'the marker is not replicated yet');
  flog.updateHighWatermark(flog.logEndOffset);
  assert.equal(flog.lastStableOffset, 11n);
  assert.deepEqual((await readCommitted(follower)).abortedTransactions, [
    { producerId: PID2, firstOffset: 2n },
    { producerId: PID1, firstOffset: 7n },
    { producerId: PID2, firstOffset: 9n },
  ]);
});

test('truncate() rebuilds the transaction state from what is left', async (t) => {
  const { partition, log } = await leader(t);
  await appendTxn(partition, PID1, 0, 0, 2); // 0-1
  await partition.appendTxnMarker(marker(PID1, 0, false, 1)); // 2
  await appendTxn(partition, PID2, 0, 0, 2); // 3-4
  await partition.appendTxnMarker(marker(PID2, 0, true, 1)); // 5
  await appendTxn(partition, PID1, 0, 2, 1); // 6: a new transaction of PID1
  assert.equal(log.lastStableOffset, 6n);
  assert.equal(await partition.snapshotIfChanged(), true); // a snapshot at 7, past the truncation

  // Cut PID2's marker and PID1's second transaction: PID2's transaction is open again.
  await partition.truncate(5n);
  assert.equal(log.logEndOffset, 5n);
  assert.deepEqual(await txnState(partition), {
    lastStableOffset: 3n,
    highWatermark: 5n,
    logEndOffset: 5n,
    aborted: [{ producerId: PID1, firstOffset: 0n, lastOffset: 2n, lastStableOffset: 3n }],
    ongoing: [[PID2, 3n]],
  });
  const r = await readCommitted(partition);
  assert.deepEqual(r.abortedTransactions, [{ producerId: PID1, firstOffset: 0n }]);
  assert.deepEqual(dataOffsets(r.records), [0n, 1n]);
  // PID1's transaction is over: its next transactional batch needs a fresh verification.
  await assert.rejects(
    partition.appendRecordsToLeader(producerBatch(PID1, 0, 2, 1), 1),
    code(ErrorCode.INVALID_TXN_STATE),
  );

  // Cut PID1's abort marker: its transaction is open again and no longer indexed.
  await partition.truncate(2n);
  assert.deepEqual(await txnState(partition), {
    lastStableOffset: 0n,
    highWatermark: 2n,
    logEndOffset: 2n,
    aborted: [],
    ongoing: [[PID1, 0n]],
  });
  await assert.rejects(
    partition.appendRecordsToLeader(producerBatch(PID1, 0, 2, 1, false), 1),
    code(ErrorCode.INVALID_TXN_STATE),
  );
  await partition.appendTxnMarker(marker(PID1, 0, true, 1)); // 2
  assert.equal(log.lastStableOffset, 3n);
  assert.deepEqual((await readCommitted(partition)).abortedTransactions, []);
});

test('a guard handed out before a truncation is void after it', async (t) => {
  const { partition } = await leader(t);
  await partition.appendRecordsToLeader(plainBatch(2));
  const guard = await partition.startTxnVerification(PID1);
  assert.ok(guard !== null);
  await partition.truncate(1n);
  await assert.rejects(
    partition.appendRecordsToLeader(producerBatch(PID1, 0, 0, 1), 1, { verificationGuard: guard }),
    code(ErrorCode.INVALID_TXN_STATE),
  );
});

test("an unverified transactional batch that is also out of sequence is INVALID_TXN_STATE (Kafka's analyzeAndValidateProducerState checks verification before sequences)", async (t) => {
  const { partition } = await leader(t);
  await appendTxn(partition, PID1, 0, 0, 2);
  await partition.appendTxnMarker(marker(PID1, 0, true));
  await assert.rejects(
    partition.appendRecordsToLeader(producerBatch(PID1, 0, 5, 1), 1),
    code(ErrorCode.INVALID_TXN_STATE),
  );
});

// Races of a (lazy) producer-state load found by the coordinator-kill test (issue 15): a restarted
// follower's load ran while it appended and truncated, so it recorded batches twice and kept the
// transactions of a truncated range.
test('a follower append during a producer-state load records its batches once', async (t) => {
  const l = await leader(t);
  await appendTxn(l.partition, PID1, 0, 0, 2); // 0-1
  await l.partition.appendTxnMarker(marker(PID1, 0, false, 1)); // 2
  const fdir = join(await tempDir(t), 't-0');
  const flog = await openLog(fdir, false);
  const first = await l.log.read(0n, 1 << 20, { isolation: 'logEnd' });
  const bootstrap = partitionOver(flog, true);
  bootstrap.makeFollower(1);
  await bootstrap.appendAsFollower(first.records, 3n);
  // A restart: the state is not loaded until first needed.
  const follower = partitionOver(flog, false);
  follower.makeFollower(1);
  await appendTxn(l.partition, PID2, 0, 0, 1); // 3
  await l.partition.appendTxnMarker(marker(PID2, 0, false, 1)); // 4
  const next = await l.log.read(3n, 1 << 20, { isolation: 'logEnd' });
  // A reader's load and the replica fetcher's append at once.
  await Promise.all([follower.loadTransactionState(), follower.appendAsFollower(next.records, 5n)]);
  assert.deepEqual(await flog.collectAbortedTxns(0n, 5n), [
    { producerId: PID1, firstOffset: 0n, lastOffset: 2n, lastStableOffset: 3n },
    { producerId: PID2, firstOffset: 3n, lastOffset: 4n, lastStableOffset: 5n },
  ]);
  assert.equal(flog.lastStableOffset, 5n);
});

test('a producer-state load racing a truncation installs the state of the truncated log', async (t) => {
  const { partition, log, dir } = await leader(t);
  await appendTxn(partition, PID1, 0, 0, 2); // 0-1
  await partition.appendTxnMarker(marker(PID1, 0, true, 1)); // 2
  await appendTxn(partition, PID2, 0, 0, 2); // 3-4: open
  await log.close();
  const reopened = await openLog(dir);
  const p = partitionOver(reopened, false);
  p.makeFollower(1);
  // Load and truncate below PID2's transaction at once: PID2 must not stay open.
  await Promise.all([p.loadTransactionState(), p.truncate(3n)]);
  await p.loadTransactionState();
  assert.deepEqual(
    (await p.producers()).filter((x) => x.currentTxnStartOffset >= 0n).map((x) => x.producerId),
    [],
  );
  assert.equal(reopened.logEndOffset, 3n);
  reopened.updateHighWatermark(3n);
  assert.equal(reopened.lastStableOffset, 3n);
});
