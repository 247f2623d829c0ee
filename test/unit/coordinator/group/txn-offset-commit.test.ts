// Transactional offset commits (issue 15), on a real GroupCoordinatorService over an in-memory
// __consumer_offsets that keeps batches as the log would (transactional batches, markers as
// control batches): a TxnOffsetCommit's offsets are pending (invisible, UNSTABLE_OFFSET_COMMIT
// with require_stable) until the marker; commit applies them (unless a plain commit was written
// after them), abort drops them; a reload replays the same state; a failed marker leaves them
// pending. And the state machine's TxnOffsetCommit validation and undo.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { partitionForGroup } from '../../../../src/coordinator/group/coordinator-records.ts';
import { DEFAULT_GROUP_COORDINATOR_CONFIG } from '../../../../src/coordinator/group/group-config.ts';
import type { TxnOffsetCommitInput } from '../../../../src/coordinator/group/group-coordinator.ts';
import {
  CONSUMER_OFFSETS_TOPIC,
  GroupCoordinatorService,
  type GroupLogAccess,
  type GroupTopicAccess,
} from '../../../../src/coordinator/group/group-coordinator-service.ts';
import type { TopicMetadata } from '../../../../src/metadata/metadata-store.ts';
import { ErrorCode, KafkaError } from '../../../../src/protocol/error-codes.ts';
import {
  isControl,
  isTransactional,
  readBatchHeader,
  setBaseOffset,
} from '../../../../src/protocol/records/batch-header.ts';
import { buildControlBatch } from '../../../../src/protocol/records/control-record.ts';
import { decodeRecordsSync } from '../../../../src/protocol/records/record.ts';
import { ManualClock } from '../../../../src/util/clock.ts';
import { GROUP, Harness, info } from './harness.ts';

type Marker = { producerId: bigint; producerEpoch: number; coordinatorEpoch: number; commit: boolean };

class FakeCluster implements GroupTopicAccess, GroupLogAccess {
  readonly topics = new Map<string, TopicMetadata>();
  readonly logs = new Map<string, Buffer[]>();
  /** Markers fail with this (as the log would), when set. */
  markerError: KafkaError | undefined;
  markers: { partition: number; marker: Marker }[] = [];

  get(name: string) {
    return this.topics.get(name);
  }
  list() {
    return [...this.topics.values()];
  }
  async create(name: string, partitions: number, replicationFactor: number, configs: Record<string, string>) {
    const t: TopicMetadata = {
      name,
      topicId: 'AAAAAAAAAAAAAAAAAAAAAA',
      partitions,
      replicationFactor,
      configs,
      leaderEpochs: [],
    };
    this.topics.set(name, t);
    return t;
  }
  log(topic: TopicMetadata, p: number): Buffer[] {
    const k = `${topic.name}-${p}`;
    if (!this.logs.has(k)) this.logs.set(k, []);
    return this.logs.get(k)!;
  }
  private end(batches: Buffer[]): bigint {
    const last = batches.at(-1);
    if (last === undefined) return 0n;
    const h = readBatchHeader(last);
    return h.baseOffset + BigInt(h.lastOffsetDelta) + 1n;
  }
  async append(topic: TopicMetadata, p: number, records: Buffer) {
    const batches = this.log(topic, p);
    const copy = Buffer.from(records);
    setBaseOffset(copy, 0, this.end(batches));
    batches.push(copy);
    return {};
  }
  async appendTxnMarker(topic: TopicMetadata, p: number, marker: Marker, requiredAcks: number) {
    assert.equal(requiredAcks, -1);
    if (this.markerError !== undefined) throw this.markerError;
    this.markers.push({ partition: p, marker });
    return this.append(
      topic,
      p,
      buildControlBatch({
        type: marker.commit ? 'commit' : 'abort',
        producerId: marker.producerId,
        producerEpoch: marker.producerEpoch,
        coordinatorEpoch: marker.coordinatorEpoch,
        timestamp: 0n,
      }),
    );
  }
  async read(topic: TopicMetadata, p: number, from: bigint) {
    const batches = this.log(topic, p).filter((b) => {
      const h = readBatchHeader(b);
      return h.baseOffset + BigInt(h.lastOffsetDelta) >= from;
    });
    return {
      records: batches.length > 0 ? [Buffer.concat(batches)] : [],
      logStartOffset: 0n,
      logEndOffset: this.end(this.log(topic, p)),
    };
  }
  offsets(topic: TopicMetadata, p: number) {
    return { logStartOffset: 0n, logEndOffset: this.end(this.log(topic, p)) };
  }
}

const INFO = { apiVersion: 3, clientId: 'c', clientHost: '/127.0.0.1' };
const PARTITIONS = 5;
const config = {
  ...DEFAULT_GROUP_COORDINATOR_CONFIG,
  offsetsTopicNumPartitions: PARTITIONS,
  groupInitialRebalanceDelayMs: 0,
};
const PID = 42n;
const EPOCH = 3;

function service(cluster: FakeCluster, ownership: 'all' | 'elected' = 'all'): GroupCoordinatorService {
  return new GroupCoordinatorService({
    topics: cluster,
    logs: cluster,
    config,
    clock: new ManualClock(),
    logger: { info: () => {}, warn: () => {}, error: () => {} } as never,
    ownership,
  });
}

function txnCommit(
  s: GroupCoordinatorService,
  groupId: string,
  offset: bigint,
  producerId = PID,
  partition = 2,
  extra: Partial<TxnOffsetCommitInput> = {},
) {
  return s.txnOffsetCommit(INFO, {
    transactionalId: 'tx',
    groupId,
    producerId,
    producerEpoch: EPOCH,
    generationId: -1,
    memberId: '',
    groupInstanceId: null,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: partition, committedOffset: offset, committedLeaderEpoch: 4, committedMetadata: 'tm' },
        ],
      },
    ],
    ...extra,
  });
}

function commit(s: GroupCoordinatorService, groupId: string, offset: bigint, partition = 2) {
  return s.offsetCommit(INFO, {
    groupId,
    generationIdOrMemberEpoch: -1,
    memberId: '',
    groupInstanceId: null,
    retentionTimeMs: -1n,
    topics: [
      {
        name: 'orders',
        partitions: [
          { partitionIndex: partition, committedOffset: offset, committedLeaderEpoch: 4, committedMetadata: 'm' },
        ],
      },
    ],
  });
}

async function fetch(s: GroupCoordinatorService, groupId: string, requireStable: boolean, partition = 2) {
  const r = await s.offsetFetch(INFO, {
    groupId,
    topics: [{ name: 'orders', partitionIndexes: [partition] }],
    requireStable,
    memberId: null,
    memberEpoch: -1,
  });
  const p = r.topics[0]!.partitions[0]!;
  return { offset: p.committedOffset, errorCode: p.errorCode };
}

function complete(s: GroupCoordinatorService, groupId: string, commit: boolean, producerId = PID) {
  return s.completeTransaction(s.partitionFor(groupId), producerId, EPOCH, 7, commit);
}

test('pending transactional offsets are invisible; require_stable answers UNSTABLE_OFFSET_COMMIT', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  await commit(s, 'g', 5n);
  const r = await txnCommit(s, 'g', 10n);
  assert.deepEqual(r, [{ name: 'orders', partitions: [{ partitionIndex: 2, errorCode: ErrorCode.NONE }] }]);

  assert.deepEqual(await fetch(s, 'g', false), { offset: 5n, errorCode: ErrorCode.NONE });
  assert.deepEqual(await fetch(s, 'g', true), { offset: -1n, errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT });
  // Another partition of the group is stable.
  assert.deepEqual(await fetch(s, 'g', true, 3), { offset: -1n, errorCode: ErrorCode.NONE });
  assert.deepEqual(
    s.committedOffsets().map((o) => o.offset),
    [5n],
  );
  // Every offset of the group (topics null) lists only committed offsets.
  const all = await s.offsetFetch(INFO, {
    groupId: 'g',
    topics: null,
    requireStable: true,
    memberId: null,
    memberEpoch: -1,
  });
  assert.equal(all.topics[0]!.partitions[0]!.errorCode, ErrorCode.UNSTABLE_OFFSET_COMMIT);
  await s.close();
});

test('the TxnOffsetCommit batch is one transactional batch of the producer, not merged with plain records', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  const topicP = partitionForGroup('g', PARTITIONS);
  await Promise.all([commit(s, 'g', 1n, 0), txnCommit(s, 'g', 10n), commit(s, 'g', 2n, 1)]);
  const topic = cluster.get(CONSUMER_OFFSETS_TOPIC)!;
  const batches = cluster.log(topic, topicP);
  const txn = batches.filter((b) => isTransactional(readBatchHeader(b).attributes));
  assert.equal(txn.length, 1);
  const h = readBatchHeader(txn[0]!);
  assert.equal(h.producerId, PID);
  assert.equal(h.producerEpoch, EPOCH);
  assert.equal(isControl(h.attributes), false);
  const records = decodeRecordsSync(txn[0]!);
  assert.equal(records.length, 1);
  // Plain batches carry no producer.
  for (const b of batches.filter((x) => x !== txn[0])) assert.equal(readBatchHeader(b).producerId, -1n);
  await s.close();
});

test('a commit marker makes the pending offsets committed; an abort marker drops them', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  await commit(s, 'g', 5n);
  await txnCommit(s, 'g', 10n);
  await complete(s, 'g', true);
  assert.deepEqual(await fetch(s, 'g', true), { offset: 10n, errorCode: ErrorCode.NONE });
  assert.deepEqual(cluster.markers, [
    {
      partition: partitionForGroup('g', PARTITIONS),
      marker: { producerId: PID, producerEpoch: EPOCH, coordinatorEpoch: 7, commit: true },
    },
  ]);

  await txnCommit(s, 'g', 20n, 43n);
  await complete(s, 'g', false, 43n);
  assert.deepEqual(await fetch(s, 'g', true), { offset: 10n, errorCode: ErrorCode.NONE });
  // A marker for a producer with nothing pending is appended and changes nothing.
  await complete(s, 'g', true, 44n);
  assert.deepEqual(await fetch(s, 'g', false), { offset: 10n, errorCode: ErrorCode.NONE });
  assert.equal(cluster.markers.length, 3);
  await s.close();
});

test('a plain commit written after the transactional one wins when the transaction commits (Kafka)', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  await txnCommit(s, 'g', 10n);
  await commit(s, 'g', 7n);
  await complete(s, 'g', true);
  assert.deepEqual(await fetch(s, 'g', true), { offset: 7n, errorCode: ErrorCode.NONE });

  // Written before it: the transactional offset wins.
  await commit(s, 'g', 8n, 3);
  await txnCommit(s, 'g', 30n, PID, 3);
  await complete(s, 'g', true);
  assert.deepEqual(await fetch(s, 'g', true, 3), { offset: 30n, errorCode: ErrorCode.NONE });
  await s.close();
});

test('an offset tombstone (OffsetDelete) drops the pending transactional offsets of the partition', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  await txnCommit(s, 'g', 10n);
  const r = await s.offsetDelete(INFO, {
    groupId: 'g',
    topics: [{ name: 'orders', partitions: [{ partitionIndex: 2 }] }],
  });
  assert.equal(r.errorCode, ErrorCode.NONE);
  assert.deepEqual(await fetch(s, 'g', true), { offset: -1n, errorCode: ErrorCode.NONE });
  await complete(s, 'g', true);
  assert.deepEqual(await fetch(s, 'g', true), { offset: -1n, errorCode: ErrorCode.NONE });
  await s.close();
});

test('a reload replays transactional batches and markers into the same state', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  await commit(s, 'g', 5n);
  await txnCommit(s, 'g', 10n); // committed below
  await txnCommit(s, 'g', 20n, 43n, 3); // aborted below
  await txnCommit(s, 'g', 30n, 44n, 4); // still pending
  await txnCommit(s, 'g', 40n, 45n, 1); // committed, but a plain commit is written after it
  await commit(s, 'g', 41n, 1);
  await complete(s, 'g', true);
  await complete(s, 'g', false, 43n);
  await complete(s, 'g', true, 45n);
  // The same producer id pending in another group of another __consumer_offsets partition stays
  // pending when this partition's marker is replayed.
  const other = [...Array(50).keys()]
    .map((i) => `o${i}`)
    .find((g) => partitionForGroup(g, PARTITIONS) !== partitionForGroup('g', PARTITIONS))!;
  await txnCommit(s, other, 50n, 44n);

  const snapshot = async (x: GroupCoordinatorService) => ({
    p1: await fetch(x, 'g', true, 1),
    p2: await fetch(x, 'g', true, 2),
    p3: await fetch(x, 'g', false, 3),
    p3stable: await fetch(x, 'g', true, 3),
    p4: await fetch(x, 'g', false, 4),
    p4stable: await fetch(x, 'g', true, 4),
    other: await fetch(x, other, true),
  });
  const before = await snapshot(s);
  assert.deepEqual(before, {
    p1: { offset: 41n, errorCode: ErrorCode.NONE },
    p2: { offset: 10n, errorCode: ErrorCode.NONE },
    p3: { offset: -1n, errorCode: ErrorCode.NONE },
    p3stable: { offset: -1n, errorCode: ErrorCode.NONE },
    p4: { offset: -1n, errorCode: ErrorCode.NONE },
    p4stable: { offset: -1n, errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT },
    other: { offset: -1n, errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT },
  });
  await s.close();

  const again = service(cluster);
  await again.start();
  assert.deepEqual(await snapshot(again), before);
  // The pending offsets replayed are completed by a marker, as before the reload.
  await complete(again, 'g', true, 44n);
  assert.deepEqual(await fetch(again, 'g', true, 4), { offset: 30n, errorCode: ErrorCode.NONE });
  assert.deepEqual(await fetch(again, other, true), { offset: -1n, errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT });
  await again.close();

  // An elected partition loads the same way.
  const elected = service(cluster, 'elected');
  await elected.start();
  await elected.onElection(partitionForGroup('g', PARTITIONS), 1);
  assert.deepEqual(await fetch(elected, 'g', true, 4), { offset: 30n, errorCode: ErrorCode.NONE });
  assert.deepEqual(await fetch(elected, 'g', true, 1), before.p1);
  await elected.close();
});

test('a marker that cannot be appended fails with the log error and leaves the offsets pending', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  await commit(s, 'g', 5n);
  await txnCommit(s, 'g', 10n);
  cluster.markerError = new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, 'moved');
  await assert.rejects(
    complete(s, 'g', true),
    (e: unknown) => (e as KafkaError).errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER,
  );
  assert.deepEqual(await fetch(s, 'g', false), { offset: 5n, errorCode: ErrorCode.NONE });
  assert.deepEqual(await fetch(s, 'g', true), { offset: -1n, errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT });
  cluster.markerError = undefined;
  await complete(s, 'g', true);
  assert.deepEqual(await fetch(s, 'g', true), { offset: 10n, errorCode: ErrorCode.NONE });
  await s.close();
});

test('completeTransaction of a partition not coordinated here: NOT_COORDINATOR', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster, 'elected');
  await s.start();
  await assert.rejects(
    s.completeTransaction(1, PID, EPOCH, 0, true),
    (e: unknown) => (e as KafkaError).errorCode === ErrorCode.NOT_COORDINATOR,
  );
  await assert.rejects(
    s.completeTransaction(PARTITIONS, PID, EPOCH, 0, true),
    (e: unknown) => (e as KafkaError).errorCode === ErrorCode.NOT_COORDINATOR,
  );
  await s.onElection(1, 0);
  await s.completeTransaction(1, PID, EPOCH, 0, true);
  assert.equal(cluster.markers.length, 1);
  await s.close();
});

test('TxnOffsetCommit validation: unknown group with a generation, members, generations, metadata size', () => {
  const h = new Harness();
  const txn = (req: Partial<TxnOffsetCommitInput>, metadata = 'x') =>
    h
      .op(() =>
        h.coordinator.txnOffsetCommit(info(3), {
          transactionalId: 'tx',
          groupId: GROUP,
          producerId: PID,
          producerEpoch: 0,
          generationId: -1,
          memberId: '',
          groupInstanceId: null,
          topics: [
            {
              name: 't',
              partitions: [
                { partitionIndex: 0, committedOffset: 9n, committedLeaderEpoch: -1, committedMetadata: metadata },
              ],
            },
          ],
          ...req,
        }),
      )
      .map((t) => t.partitions[0]!.errorCode)[0];

  assert.equal(txn({ generationId: 1, memberId: 'm' }), ErrorCode.ILLEGAL_GENERATION);
  assert.equal(h.coordinator.groups.has(GROUP), false);
  assert.equal(txn({ groupId: '' }), ErrorCode.INVALID_GROUP_ID);

  const joined = h.joinNew();
  h.tick(0);
  const member = joined.result!.memberId;
  const generation = joined.result!.generationId;
  // Between JoinGroup and SyncGroup a transactional commit is accepted (not an OffsetCommit).
  assert.equal(txn({ generationId: generation, memberId: member }), ErrorCode.NONE);
  h.sync({
    memberId: member,
    generationId: generation,
    assignments: [{ memberId: member, assignment: Buffer.alloc(0) }],
  });
  assert.equal(txn({ generationId: generation + 1, memberId: member }), ErrorCode.ILLEGAL_GENERATION);
  assert.equal(txn({ generationId: generation, memberId: 'nobody' }), ErrorCode.UNKNOWN_MEMBER_ID);
  // v0-2 carry no member: accepted on a non-empty group.
  assert.equal(txn({}), ErrorCode.NONE);
  assert.equal(txn({}, 'x'.repeat(config.offsetMetadataMaxBytes + 1)), ErrorCode.OFFSET_METADATA_TOO_LARGE);
  assert.equal(h.coordinator.txnOffsets.has(GROUP, 't', 0), true);
});

test('TxnOffsetCommit and a marker are undone exactly when their append fails', () => {
  const h = new Harness();
  h.commit('', -1, 3n);
  const commitResult = h.coordinator.txnOffsetCommit(info(3), {
    transactionalId: 'tx',
    groupId: GROUP,
    producerId: PID,
    producerEpoch: 0,
    generationId: -1,
    memberId: '',
    groupInstanceId: null,
    topics: [
      {
        name: 't',
        partitions: [{ partitionIndex: 0, committedOffset: 9n, committedLeaderEpoch: -1, committedMetadata: '' }],
      },
    ],
  });
  assert.equal(commitResult.records.length, 1);
  assert.equal(h.coordinator.txnOffsets.has(GROUP, 't', 0), true);
  const marker = h.coordinator.completeTransaction(PID, true);
  assert.equal(marker.records.length, 0);
  assert.equal(h.fetchOffset(), 9n);
  assert.equal(h.coordinator.txnOffsets.has(GROUP), false);

  h.coordinator.revert(marker);
  assert.equal(h.fetchOffset(), 3n);
  assert.equal(h.coordinator.txnOffsets.get(PID, GROUP, 't', 0)?.offset, 9n);
  h.coordinator.revert(commitResult);
  assert.equal(h.coordinator.txnOffsets.has(GROUP), false);
  assert.deepEqual(h.coordinator.txnOffsets.producers(), []);
  assert.equal(h.fetchOffset(), 3n);
});
