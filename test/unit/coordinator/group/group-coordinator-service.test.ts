// The coordinator's runtime over in-memory topic and log fakes: COORDINATOR_LOAD_IN_PROGRESS
// until __consumer_offsets is loaded, records laid out as Kafka writes them in the group's
// partition, parked JoinGroup/SyncGroup answered only after the append, and a second runtime
// that loads the same log sees the same offsets and groups. And the runtime's answer to a failed
// append (issue 11 item 3): operations batched together or built on the failed batch are undone
// and run again, the one that failed gets Kafka's error, reads never see what was not appended.
// (The real log's failures are in test/integration/groups/failed-append.test.ts; here the fake
// log can fail any append, as an offline log directory would.)
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
import type { TopicMetadata } from '../../../../src/metadata/metadata-store.ts';
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
  /** Appends wait for this. */
  appendGate: Promise<void> = Promise.resolve();
  /** Appends (batches) this accepts; the others fail as an offline log does. */
  accept: (offsets: bigint[]) => boolean = () => true;
  appends = 0;

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
    this.appends++;
    await this.appendGate;
    const offsets = decodeRecordsSync(records).map((r) => (r.value === null ? -1n : r.value.readBigInt64BE(2)));
    if (!this.accept(offsets)) throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, 'log directory offline');
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

function fetchOffset(s: GroupCoordinatorService, groupId: string) {
  return s
    .offsetFetch(INFO, {
      groupId,
      topics: [{ name: 'orders', partitionIndexes: [2] }],
      requireStable: false,
      memberId: null,
      memberEpoch: -1,
    })
    .then((r) => r.topics[0]!.partitions[0]!.committedOffset);
}

/** A group id of the same __consumer_offsets partition as `groupId` (so of the same coordinator). */
function sibling(groupId: string, n: number): string {
  let found = -1;
  for (let i = 0; found < n; i++) {
    if (partitionForGroup(`${groupId}-${i}`, 5) === partitionForGroup(groupId, 5)) found++;
    if (found === n) return `${groupId}-${i}`;
  }
  throw new Error('unreachable');
}

/** A commit's error code, or the error the request failed with. */
function commitCode(s: GroupCoordinatorService, groupId: string, offset: bigint): Promise<number> {
  return commit(s, groupId, offset).then(
    (r) => r[0]!.partitions[0]!.errorCode,
    (err: unknown) => (err as KafkaError).errorCode,
  );
}

test('a failed append undoes the commit and answers NOT_COORDINATOR (a storage error); nothing is left behind', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  assert.equal(await commitCode(s, 'g', 1n), ErrorCode.NONE);
  cluster.accept = () => false;
  assert.equal(await commitCode(s, 'g', 2n), ErrorCode.NOT_COORDINATOR);
  assert.equal(await commitCode(s, 'new-group', 3n), ErrorCode.NOT_COORDINATOR);
  cluster.accept = () => true;
  assert.equal(await fetchOffset(s, 'g'), 1n);
  assert.equal(await fetchOffset(s, 'new-group'), -1n);
  assert.equal(s.coordinator.groups.has('new-group'), false);
  await s.close();
});

test('operations built on a batch that fails are undone and run again; only the failed one fails', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  let release!: () => void;
  cluster.appendGate = new Promise((r) => {
    release = r;
  });
  cluster.accept = (offsets) => !offsets.includes(666n);
  // The first commit is being appended; the others run on top of it, in the next batch.
  const first = commitCode(s, 'g', 666n);
  const h = sibling('g', 0);
  const later = [commitCode(s, 'g', 7n), commitCode(s, h, 8n)];
  await new Promise((r) => setImmediate(r));
  assert.equal(cluster.appends, 1, 'one batch in flight, the rest waits for it');
  release();
  assert.equal(await first, ErrorCode.NOT_COORDINATOR);
  assert.deepEqual(await Promise.all(later), [ErrorCode.NONE, ErrorCode.NONE]);
  assert.equal(await fetchOffset(s, 'g'), 7n);
  assert.equal(await fetchOffset(s, h), 8n);
  await s.close();
  // The log holds exactly that.
  const again = service(cluster);
  await again.start();
  assert.equal(await fetchOffset(again, 'g'), 7n);
  assert.equal(await fetchOffset(again, h), 8n);
  await again.close();
});

test('a batch of several operations that fails: each runs again alone, so only the failing one fails', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  let release!: () => void;
  cluster.appendGate = new Promise((r) => {
    release = r;
  });
  cluster.accept = (offsets) => !offsets.includes(666n);
  const [h, i] = [sibling('g', 0), sibling('g', 1)];
  const first = commitCode(s, 'g', 1n);
  // These three share the next batch, which the log refuses because of one of them.
  const batched = [commitCode(s, 'g', 2n), commitCode(s, h, 666n), commitCode(s, i, 3n)];
  await new Promise((r) => setImmediate(r));
  assert.equal(cluster.appends, 1, 'one batch in flight, the rest waits for it');
  release();
  assert.equal(await first, ErrorCode.NONE);
  assert.deepEqual(await Promise.all(batched), [ErrorCode.NONE, ErrorCode.NOT_COORDINATOR, ErrorCode.NONE]);
  assert.equal(cluster.appends, 5, 'the first, the failed batch, then its three operations one by one');
  assert.equal(await fetchOffset(s, 'g'), 2n);
  assert.equal(await fetchOffset(s, h), -1n);
  assert.equal(s.coordinator.groups.has(h), false);
  assert.equal(await fetchOffset(s, i), 3n);
  await s.close();
});

test('reads wait for what is being appended: a commit whose append fails is never read', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.start();
  assert.equal(await commitCode(s, 'g', 1n), ErrorCode.NONE);
  let release!: () => void;
  cluster.appendGate = new Promise((r) => {
    release = r;
  });
  cluster.accept = (offsets) => !offsets.includes(666n);
  const failing = commitCode(s, 'g', 666n);
  const read = fetchOffset(s, 'g');
  const after = commitCode(s, 'g', 2n);
  const readAfter = fetchOffset(s, 'g');
  let answered = false;
  void read.then(() => {
    answered = true;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(answered, false, 'the read waits for the append in flight');
  release();
  assert.equal(await failing, ErrorCode.NOT_COORDINATOR);
  assert.equal(await read, 1n, 'never 666');
  assert.equal(await after, ErrorCode.NONE);
  assert.equal(await readAfter, 2n);
  await s.close();
});
