// The coordinator's runtime over in-memory topic and log fakes: COORDINATOR_LOAD_IN_PROGRESS
// until __consumer_offsets is loaded, records laid out as Kafka writes them in the group's
// partition, parked JoinGroup/SyncGroup answered only after the append, and a second runtime
// that loads the same log sees the same offsets and groups.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { partitionForGroup } from '../../../../src/coordinator/group/coordinator-records.ts';
import { DEFAULT_GROUP_COORDINATOR_CONFIG } from '../../../../src/coordinator/group/group-config.ts';
import {
  CONSUMER_OFFSETS_TOPIC,
  GroupCoordinatorService,
  type GroupLogAccess,
  type GroupTopicAccess,
} from '../../../../src/coordinator/group/group-coordinator-service.ts';
import type { TopicMetadata } from '../../../../src/metadata/local-metadata-store.ts';
import { ErrorCode, KafkaError } from '../../../../src/protocol/error-codes.ts';
import { readBatchHeader, setBaseOffset } from '../../../../src/protocol/records/batch-header.ts';
import { decodeRecordsSync } from '../../../../src/protocol/records/record.ts';
import { ManualClock } from '../../../../src/util/clock.ts';

class FakeCluster implements GroupTopicAccess, GroupLogAccess {
  readonly topics = new Map<string, TopicMetadata>();
  readonly logs = new Map<string, Buffer[]>();
  readonly createdConfigs: Record<string, string>[] = [];
  /** Resolves reads only once released (to observe the loading state). */
  gate: Promise<void> = Promise.resolve();

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
    this.createdConfigs.push(configs);
    return t;
  }
  private log(topic: TopicMetadata, p: number): Buffer[] {
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
  async read(topic: TopicMetadata, p: number, from: bigint) {
    await this.gate;
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

const INFO = { apiVersion: 5, clientId: 'c', clientHost: '/127.0.0.1' };
const config = { ...DEFAULT_GROUP_COORDINATOR_CONFIG, offsetsTopicNumPartitions: 5, groupInitialRebalanceDelayMs: 0 };

function service(cluster: FakeCluster, clock = new ManualClock()): GroupCoordinatorService {
  return new GroupCoordinatorService({
    topics: cluster,
    logs: cluster,
    config,
    clock,
    logger: { info: () => {}, warn: () => {}, error: () => {} } as never,
  });
}

function commit(s: GroupCoordinatorService, groupId: string, offset: bigint) {
  return s.offsetCommit(INFO, {
    groupId,
    generationIdOrMemberEpoch: -1,
    memberId: '',
    groupInstanceId: null,
    retentionTimeMs: -1n,
    topics: [
      {
        name: 'orders',
        partitions: [{ partitionIndex: 2, committedOffset: offset, committedLeaderEpoch: 4, committedMetadata: 'm' }],
      },
    ],
  });
}

test('COORDINATOR_LOAD_IN_PROGRESS until __consumer_offsets is loaded', async () => {
  const cluster = new FakeCluster();
  const first = service(cluster);
  await first.start();
  await commit(first, 'g', 7n);
  await first.close();

  const second = service(cluster);
  let release!: () => void;
  cluster.gate = new Promise((r) => {
    release = r;
  });
  const loading = second.start();
  assert.throws(
    () => second.heartbeat(INFO, { groupId: 'g', generationId: 1, memberId: 'm', groupInstanceId: null }),
    (err: unknown) => err instanceof KafkaError && err.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  );
  release();
  await loading;
  const fetched = await second.offsetFetch(INFO, {
    groupId: 'g',
    topics: [{ name: 'orders', partitionIndexes: [2] }],
    requireStable: false,
    memberId: null,
    memberEpoch: -1,
  });
  assert.deepEqual(fetched.topics[0]!.partitions[0], {
    partitionIndex: 2,
    committedOffset: 7n,
    committedLeaderEpoch: 4,
    metadata: 'm',
    errorCode: 0,
  });
  await second.close();
});

test('records go to the group partition of a compacted __consumer_offsets, in Kafka layout', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  await commit(s, 'my-group', 42n);
  assert.deepEqual(cluster.createdConfigs, [{ 'cleanup.policy': 'compact', 'compression.type': 'producer' }]);
  const topic = cluster.topics.get(CONSUMER_OFFSETS_TOPIC)!;
  assert.equal(topic.partitions, 5);
  const p = partitionForGroup('my-group', 5);
  assert.equal(s.partitionFor('my-group'), p);
  const batches = cluster.logs.get(`${CONSUMER_OFFSETS_TOPIC}-${p}`)!;
  assert.equal(batches.length, 1);
  const [record] = decodeRecordsSync(batches[0]!);
  // key: int16 version 1, group, topic, int32 partition
  const key = Buffer.alloc(2 + 2 + 8 + 2 + 6 + 4);
  let o = key.writeInt16BE(1, 0);
  o = key.writeInt16BE(8, o);
  o += key.write('my-group', o);
  o = key.writeInt16BE(6, o);
  o += key.write('orders', o);
  key.writeInt32BE(2, o);
  assert.deepEqual(record!.key, key);
  // value: int16 version 3, offset, leader epoch, metadata, commit timestamp
  assert.equal(record!.value!.readInt16BE(0), 3);
  assert.equal(record!.value!.readBigInt64BE(2), 42n);
  assert.equal(record!.value!.readInt32BE(10), 4);
  await s.close();
});

test('parked JoinGroup/SyncGroup are answered after the append; a restarted runtime loads the group', async () => {
  const cluster = new FakeCluster();
  const clock = new ManualClock();
  const s = service(cluster, clock);
  await s.start();
  const joinReq = {
    groupId: 'g',
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 10_000,
    memberId: '',
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from('sub') }],
  };
  const joined = await s.joinGroup({ ...INFO, apiVersion: 3 }, joinReq);
  assert.equal(joined.errorCode, ErrorCode.NONE);
  const synced = await s.syncGroup(INFO, {
    groupId: 'g',
    generationId: joined.generationId,
    memberId: joined.memberId,
    groupInstanceId: null,
    protocolType: null,
    protocolName: null,
    assignments: [{ memberId: joined.memberId, assignment: Buffer.from('A') }],
  });
  assert.equal(synced.assignment.toString(), 'A');
  await s.close();

  const again = service(cluster, clock);
  await again.start();
  const described = await again.describeGroups(INFO, ['g']);
  assert.equal(described[0]!.groupState, 'Stable');
  assert.equal(described[0]!.members[0]!.memberId, joined.memberId);
  assert.equal(described[0]!.members[0]!.memberAssignment.toString(), 'A');
  assert.equal(
    await again.heartbeat(INFO, {
      groupId: 'g',
      generationId: joined.generationId,
      memberId: joined.memberId,
      groupInstanceId: null,
    }),
    ErrorCode.NONE,
  );
  await again.close();
});
