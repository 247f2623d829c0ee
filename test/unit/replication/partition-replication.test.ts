// The leader's side of Kafka's ISR protocol in Partition, on a real log: the high watermark is the
// lowest log end of the ISR and only grows; a follower that reaches it joins the ISR (proposed, in
// effect once the metadata applies it), one behind for replica.lag.time.max.ms leaves it; acks=all
// waits for the high watermark and checks min.insync.replicas before and after; a follower whose
// last fetched epoch ends before its fetch offset gets the diverging epoch.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, type KafkaError } from '../../../src/protocol/error-codes.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { Partition, type ReplicaSet } from '../../../src/replication/partition.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { PartitionLog } from '../../../src/storage/partition-log.ts';

const batch = (n: number) =>
  buildRecordBatchSync({ records: Array.from({ length: n }, (_, i) => ({ key: null, value: Buffer.from(`v${i}`) })) });
const code = (errorCode: number) => (err: unknown) => (err as KafkaError).errorCode === errorCode;

async function leader(t: { after(fn: () => unknown): void }, minIsr = 2, lagMs = 30_000) {
  const dir = await mkdtemp(join(tmpdir(), 'samsa-replication-'));
  const log = await PartitionLog.open({
    dir: join(dir, 't-0'),
    topic: 't',
    partition: 0,
    config: new LogConfig({ 'min.insync.replicas': String(minIsr) }),
    highWatermarkFollowsLogEnd: false,
  });
  const proposals: { isr: readonly number[]; expected: number }[] = [];
  const partition = new Partition({
    topic: 't',
    partition: 0,
    log,
    leaderEpoch: 0,
    fresh: true,
    producerIdExpirationMs: 86_400_000,
    logger: { warn: () => undefined },
    replication: {
      localBrokerId: 1,
      replicaLagTimeMaxMs: lagMs,
      minInsyncReplicas: () => log.config.minInsyncReplicas,
      alterIsr: async (isr, expected) => {
        proposals.push({ isr, expected });
      },
      isLiveBroker: (id) => id !== 9,
    },
  });
  t.after(async () => {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });
  const set = (isr: number[], partitionEpoch: number): ReplicaSet => ({ replicas: [1, 2, 3], isr, partitionEpoch });
  partition.makeLeader(1, set([1, 2, 3], 0));
  return { partition, log, proposals, set };
}

test('the high watermark is the lowest log end of the ISR and acks=all waits for it', async (t) => {
  const { partition, log } = await leader(t);
  const appended = await partition.appendRecordsToLeader(batch(5), -1);
  assert.equal(log.logEndOffset, 5n);
  assert.equal(log.highWatermark, 0n, 'no follower has fetched yet');
  let acked = false;
  const waiting = partition.waitForReplication(appended.lastOffset + 1n, 5000).then(() => {
    acked = true;
  });
  partition.updateFollowerFetch(2, 5n, Date.now());
  await new Promise((r) => setImmediate(r));
  assert.equal(log.highWatermark, 0n, 'follower 3 is in the ISR and has not fetched');
  assert.equal(acked, false);
  partition.updateFollowerFetch(3, 3n, Date.now());
  assert.equal(log.highWatermark, 3n);
  partition.updateFollowerFetch(3, 5n, Date.now());
  assert.equal(log.highWatermark, 5n);
  await waiting;
  assert.equal(acked, true);
  // Never lower: a follower's older position does not move it back.
  partition.updateFollowerFetch(3, 4n, Date.now());
  assert.equal(log.highWatermark, 5n);
});

test('acks=all: NOT_ENOUGH_REPLICAS below min.insync.replicas, REQUEST_TIMED_OUT without replication, NOT_LEADER_OR_FOLLOWER when leadership moves', async (t) => {
  const { partition, set } = await leader(t);
  partition.makeLeader(1, set([1], 1));
  await assert.rejects(partition.appendRecordsToLeader(batch(1), -1), code(ErrorCode.NOT_ENOUGH_REPLICAS));
  // acks=1 is not bound by min.insync.replicas.
  await partition.appendRecordsToLeader(batch(1), 1);
  partition.makeLeader(1, set([1, 2], 2));
  const a = await partition.appendRecordsToLeader(batch(1), -1);
  await assert.rejects(partition.waitForReplication(a.lastOffset + 1n, 50), code(ErrorCode.REQUEST_TIMED_OUT));
  const waiting = partition.waitForReplication(a.lastOffset + 1n, 5000);
  partition.makeFollower(2, set([2], 3));
  await assert.rejects(waiting, code(ErrorCode.NOT_LEADER_OR_FOLLOWER));
});

test('acks=all: the ISR shrinking below min.insync.replicas while waiting gives NOT_ENOUGH_REPLICAS_AFTER_APPEND', async (t) => {
  const { partition, set } = await leader(t);
  partition.makeLeader(1, set([1, 2], 1));
  const a = await partition.appendRecordsToLeader(batch(2), -1);
  const waiting = partition.waitForReplication(a.lastOffset + 1n, 5000);
  partition.makeLeader(1, set([1], 2)); // the ISR shrank; the high watermark now only needs the leader
  partition.updateFollowerFetch(2, 2n, Date.now());
  await assert.rejects(waiting, code(ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND));
});

test('a follower that reaches the high watermark is proposed for the ISR; a dead broker is not', async (t) => {
  const { partition, log, proposals } = await leader(t, 1);
  partition.makeLeader(1, { replicas: [1, 2, 9], isr: [1], partitionEpoch: 4 });
  await partition.appendRecordsToLeader(batch(3), 1);
  assert.equal(log.highWatermark, 3n, 'the ISR is the leader alone');
  partition.updateFollowerFetch(2, 1n, Date.now());
  assert.deepEqual(proposals, [], 'behind the high watermark');
  partition.updateFollowerFetch(9, 3n, Date.now());
  assert.deepEqual(proposals, [], 'broker 9 is not live');
  partition.updateFollowerFetch(2, 3n, Date.now());
  assert.deepEqual(proposals, [{ isr: [1, 2], expected: 4 }]);
  // One proposal at a time until the metadata brings the result back.
  partition.updateFollowerFetch(2, 3n, Date.now());
  assert.equal(proposals.length, 1);
});

test('a follower not caught up for replica.lag.time.max.ms is proposed out of the ISR', async (t) => {
  const { partition, proposals } = await leader(t, 1, 1000);
  const start = Date.now();
  await partition.appendRecordsToLeader(batch(2), 1);
  partition.updateFollowerFetch(2, 2n, start);
  partition.maybeShrinkIsr(start + 500);
  assert.deepEqual(proposals, []);
  // Follower 2 keeps up; follower 3 never fetched since the leader took over.
  partition.updateFollowerFetch(2, 2n, start + 1500);
  partition.maybeShrinkIsr(start + 1600);
  assert.deepEqual(proposals, [{ isr: [1, 2], expected: 0 }]);
});

test("a follower whose last fetched epoch ends before its fetch offset gets the leader's end of that epoch", async (t) => {
  const { partition, log, set } = await leader(t, 1);
  await partition.appendRecordsToLeader(batch(4), 1); // epoch 1: offsets 0-3
  partition.makeLeader(2, set([1, 2, 3], 1));
  await partition.appendRecordsToLeader(batch(2), 1); // epoch 2: offsets 4-5
  assert.equal(log.logEndOffset, 6n);
  // The follower has epoch 1 up to offset 6 (it led epoch 1 further before losing leadership).
  const diverged = await partition.fetchForFollower(2, 6n, 1 << 20, 2, 1);
  assert.deepEqual(diverged.divergingEpoch, { epoch: 1, endOffset: 4n });
  assert.equal(diverged.records.length, 0);
  // In line: records from the fetch offset.
  const ok = await partition.fetchForFollower(2, 4n, 1 << 20, 2, 2);
  assert.equal(ok.divergingEpoch, null);
  assert.ok(ok.bytes > 0);
  // A follower at an older leader epoch is fenced (KIP-320).
  await assert.rejects(partition.fetchForFollower(2, 4n, 1 << 20, 1, 1), code(ErrorCode.FENCED_LEADER_EPOCH));
});
