// Coordinator partitions loaded and unloaded with `__consumer_offsets` leadership ('elected'
// ownership, Kafka's CoordinatorRuntime scheduleLoadOperation/scheduleUnloadOperation), over
// in-memory topic and log fakes: an elected partition's groups run once it is loaded and answer
// COORDINATOR_LOAD_IN_PROGRESS while it loads; a resigned partition's requests, queued
// operations and parked JoinGroup get NOT_COORDINATOR and its state leaves the state machine; a
// new election loads it back from the log; elections and resignations are ordered by leader
// epoch. And 'all' ownership (one node) is what it always was.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { partitionForGroup } from '../../../../src/coordinator/group/coordinator-records.ts';
import { DEFAULT_GROUP_COORDINATOR_CONFIG } from '../../../../src/coordinator/group/group-config.ts';
import type { JoinGroupInput } from '../../../../src/coordinator/group/group-coordinator.ts';
import {
  type CoordinatorOwnership,
  GroupCoordinatorService,
  type GroupLogAccess,
  type GroupTopicAccess,
} from '../../../../src/coordinator/group/group-coordinator-service.ts';
import type { TopicMetadata } from '../../../../src/metadata/metadata-store.ts';
import { ErrorCode, KafkaError } from '../../../../src/protocol/error-codes.ts';
import { readBatchHeader, setBaseOffset } from '../../../../src/protocol/records/batch-header.ts';
import { ManualClock } from '../../../../src/util/clock.ts';

const PARTITIONS = 5;

/**
 * Topics and logs in memory. A read returns one batch (so a load takes several reads), and
 * reads of a held partition wait (a slow load).
 */
class FakeCluster implements GroupTopicAccess, GroupLogAccess {
  readonly topics = new Map<string, TopicMetadata>();
  readonly logs = new Map<string, Buffer[]>();
  readonly readGates = new Map<number, { from: bigint; gate: Promise<void> }>();
  appendGate: Promise<void> = Promise.resolve();

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
    await this.appendGate;
    const batches = this.log(topic, p);
    const copy = Buffer.from(records);
    setBaseOffset(copy, 0, this.end(batches));
    batches.push(copy);
    return {};
  }
  async read(topic: TopicMetadata, p: number, from: bigint) {
    const held = this.readGates.get(p);
    if (held !== undefined && from >= held.from) await held.gate;
    const batch = this.log(topic, p).find((b) => {
      const h = readBatchHeader(b);
      return h.baseOffset + BigInt(h.lastOffsetDelta) >= from;
    });
    return {
      records: batch === undefined ? [] : [batch],
      logStartOffset: 0n,
      logEndOffset: this.end(this.log(topic, p)),
    };
  }
  offsets(topic: TopicMetadata, p: number) {
    return { logStartOffset: 0n, logEndOffset: this.end(this.log(topic, p)) };
  }
  /** Holds the reads of a partition from an offset on until the returned function is called. */
  holdReads(p: number, from = 0n): () => void {
    let release!: () => void;
    this.readGates.set(p, {
      from,
      gate: new Promise((r) => {
        release = r;
      }),
    });
    return () => {
      this.readGates.delete(p);
      release();
    };
  }
  /** Holds every append until the returned function is called. */
  holdAppends(): () => void {
    let release!: () => void;
    this.appendGate = new Promise((r) => {
      release = r;
    });
    return release;
  }
}

const INFO = { apiVersion: 5, clientId: 'c', clientHost: '/127.0.0.1' };
const config = {
  ...DEFAULT_GROUP_COORDINATOR_CONFIG,
  offsetsTopicNumPartitions: PARTITIONS,
  groupInitialRebalanceDelayMs: 0,
};

function service(cluster: FakeCluster, ownership: CoordinatorOwnership = 'elected', clock = new ManualClock()) {
  return new GroupCoordinatorService({
    topics: cluster,
    logs: cluster,
    config,
    clock,
    logger: { info: () => {}, warn: () => {}, error: () => {} },
    ownership,
  });
}

/** A group id whose coordinator is `partition`. */
function groupIn(partition: number, name = 'g'): string {
  for (let i = 0; ; i++) if (partitionForGroup(`${name}-${i}`, PARTITIONS) === partition) return `${name}-${i}`;
}

/** A simple consumer's commit; a partition error is thrown, as a request error is. */
async function commit(s: GroupCoordinatorService, groupId: string, offset: bigint): Promise<void> {
  const answer = await s.offsetCommit(INFO, {
    groupId,
    generationIdOrMemberEpoch: -1,
    memberId: '',
    groupInstanceId: null,
    retentionTimeMs: -1n,
    topics: [
      {
        name: 'orders',
        partitions: [{ partitionIndex: 2, committedOffset: offset, committedLeaderEpoch: 4, committedMetadata: '' }],
      },
    ],
  });
  const errorCode = answer[0]!.partitions[0]!.errorCode;
  if (errorCode !== ErrorCode.NONE) throw new KafkaError(errorCode);
}

async function fetchOffset(s: GroupCoordinatorService, groupId: string): Promise<bigint> {
  const r = await s.offsetFetch(INFO, {
    groupId,
    topics: [{ name: 'orders', partitionIndexes: [2] }],
    requireStable: false,
    memberId: null,
    memberEpoch: -1,
  });
  return r.topics[0]!.partitions[0]!.committedOffset;
}

/** The error code a request fails with (thrown at once or rejected), NONE if it succeeds. */
async function errorOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return ErrorCode.NONE;
  } catch (err) {
    if (err instanceof KafkaError) return err.errorCode;
    throw err;
  }
}

function joinRequest(groupId: string): JoinGroupInput {
  return {
    groupId,
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 10_000,
    memberId: '',
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from('sub') }],
  };
}

/** A classic group with one member, joined and synced (so in the log). */
async function stableGroup(s: GroupCoordinatorService, groupId: string) {
  const joined = await s.joinGroup({ ...INFO, apiVersion: 3 }, joinRequest(groupId));
  assert.equal(joined.errorCode, ErrorCode.NONE);
  const synced = await s.syncGroup(INFO, {
    groupId,
    generationId: joined.generationId,
    memberId: joined.memberId,
    groupInstanceId: null,
    protocolType: null,
    protocolName: null,
    assignments: [{ memberId: joined.memberId, assignment: Buffer.from('A') }],
  });
  assert.equal(synced.errorCode, ErrorCode.NONE);
  return joined;
}

const tick = () => new Promise((r) => setImmediate(r));

test('an elected partition runs its groups; a partition never elected answers NOT_COORDINATOR', async () => {
  const cluster = new FakeCluster();
  await cluster.create('__consumer_offsets', PARTITIONS, 1, {});
  const s = service(cluster);
  await s.start();
  assert.equal(s.loaded, true, 'nothing elected, nothing loading');
  await s.onElection(1, 0);
  assert.equal(s.loaded, true);
  const mine = groupIn(1);
  const theirs = groupIn(2);
  assert.equal(await errorOf(() => commit(s, mine, 5n)), ErrorCode.NONE);
  assert.equal(await fetchOffset(s, mine), 5n);
  assert.equal(await errorOf(() => commit(s, theirs, 5n)), ErrorCode.NOT_COORDINATOR);
  assert.equal(await errorOf(() => s.joinGroup(INFO, joinRequest(theirs))), ErrorCode.NOT_COORDINATOR);
  const described = await s.describeGroups(INFO, [mine, theirs]);
  assert.deepEqual(
    described.map((g) => [g.groupId, g.errorCode]),
    [
      [mine, ErrorCode.NONE],
      [theirs, ErrorCode.NOT_COORDINATOR],
    ],
  );
  const deleted = await s.deleteGroups(INFO, [theirs]);
  assert.deepEqual(deleted, [{ groupId: theirs, errorCode: ErrorCode.NOT_COORDINATOR }]);
  assert.deepEqual(
    (await s.listGroups(INFO, [], [])).map((g) => g.groupId),
    [mine],
  );
  await s.close();
});

test('resignation: requests, queued operations and parked JoinGroup get NOT_COORDINATOR; the state leaves', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.onElection(3, 7);
  const g = groupIn(3);
  const member = await stableGroup(s, g);
  // Offsets of a simple consumer group of the same partition.
  const o = groupIn(3, 'o');
  assert.equal(await errorOf(() => commit(s, o, 11n)), ErrorCode.NONE);

  // A second member's JoinGroup is parked until the first rejoins (never, here).
  let parkedAnswer: number | undefined;
  const parked = s.joinGroup({ ...INFO, apiVersion: 3 }, joinRequest(g)).then((r) => {
    parkedAnswer = r.errorCode;
  });
  await tick();
  assert.equal(parkedAnswer, undefined, 'parked');
  // A commit being appended, and one queued on top of it.
  const release = cluster.holdAppends();
  const inFlight = errorOf(() => commit(s, o, 12n));
  const queued = errorOf(() => commit(s, o, 13n));
  await tick();

  s.onResignation(3, 8);
  await parked;
  assert.equal(parkedAnswer, ErrorCode.NOT_COORDINATOR);
  assert.equal(await inFlight, ErrorCode.NOT_COORDINATOR);
  assert.equal(await queued, ErrorCode.NOT_COORDINATOR);
  assert.equal(
    await errorOf(() =>
      s.heartbeat(INFO, {
        groupId: g,
        generationId: member.generationId,
        memberId: member.memberId,
        groupInstanceId: null,
      }),
    ),
    ErrorCode.NOT_COORDINATOR,
  );
  assert.equal(await errorOf(() => fetchOffset(s, o)), ErrorCode.NOT_COORDINATOR);
  assert.equal(s.coordinator.groups.has(g), false);
  assert.equal(s.coordinator.offsets.has(o), false);
  assert.deepEqual(
    [...s.coordinator.timers.entries()].filter(([, t]) => t.group === g),
    [],
    'its session and rebalance timers are gone',
  );
  assert.deepEqual(s.committedOffsets(), []);
  assert.deepEqual(await s.listGroups(INFO, [], []), []);
  release();
  await tick();
  await s.close();
});

test('a new election loads the partition back from the log: committed offsets and groups', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  await s.onElection(0, 1);
  const g = groupIn(0);
  const other = groupIn(4);
  await s.onElection(4, 1);
  const o = groupIn(0, 'o');
  const member = await stableGroup(s, g);
  await commit(s, o, 42n);
  await commit(s, other, 9n);
  s.onResignation(0, 2);
  assert.equal(await errorOf(() => fetchOffset(s, o)), ErrorCode.NOT_COORDINATOR);
  assert.equal(await fetchOffset(s, other), 9n, 'the other partition is untouched');

  await s.onElection(0, 3);
  assert.equal(await fetchOffset(s, o), 42n);
  const [described] = await s.describeGroups(INFO, [g]);
  assert.equal(described!.groupState, 'Stable');
  assert.equal(described!.members[0]!.memberId, member.memberId);
  assert.equal(
    await s.heartbeat(INFO, {
      groupId: g,
      generationId: member.generationId,
      memberId: member.memberId,
      groupInstanceId: null,
    }),
    ErrorCode.NONE,
  );
  assert.deepEqual(
    s
      .committedOffsets()
      .map((o) => [o.groupId, o.offset])
      .sort(),
    [
      [o, 42n],
      [other, 9n],
    ].sort(),
  );
  await s.close();
});

test('COORDINATOR_LOAD_IN_PROGRESS while the partition loads; other partitions keep running', async () => {
  const cluster = new FakeCluster();
  const clock = new ManualClock();
  const first = service(cluster, 'elected', clock);
  await first.onElection(2, 0);
  const g = groupIn(2);
  const o = groupIn(2, 'o');
  await stableGroup(first, g);
  await commit(first, o, 3n);
  await first.close();

  const s = service(cluster, 'elected', clock);
  await s.onElection(1, 0);
  const release = cluster.holdReads(2);
  const loading = s.onElection(2, 0);
  await tick();
  assert.equal(s.loaded, false, '/ready waits for the load');
  assert.equal(await errorOf(() => commit(s, o, 4n)), ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  const [described] = await s.describeGroups(INFO, [g]);
  assert.equal(described!.errorCode, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  assert.equal(await errorOf(() => s.listGroups(INFO, [], [])), ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  // A loaded partition runs meanwhile.
  assert.equal(await errorOf(() => commit(s, groupIn(1), 1n)), ErrorCode.NONE);
  assert.deepEqual(
    s.committedOffsets().map((o) => o.groupId),
    [groupIn(1)],
  );
  release();
  await loading;
  assert.equal(s.loaded, true);
  assert.equal(await fetchOffset(s, o), 3n);
  assert.equal(await errorOf(() => commit(s, o, 4n)), ErrorCode.NONE);
  assert.equal((await s.describeGroups(INFO, [g]))[0]!.groupState, 'Stable');
  await s.close();
});

test("a loading partition's timers do not fire before it is loaded", async () => {
  const cluster = new FakeCluster();
  const clock = new ManualClock();
  const first = service(cluster, 'elected', clock);
  await first.onElection(2, 0);
  const g = groupIn(2);
  const o = groupIn(2, 'o');
  await stableGroup(first, g);
  await commit(first, o, 3n);
  await first.close();

  const s = service(cluster, 'elected', clock);
  await s.onElection(1, 0);
  // The group's first batch is replayed (its member's session timeout armed), the rest waits.
  const release = cluster.holdReads(2, 1n);
  const loading = s.onElection(2, 0);
  await tick();
  assert.equal(s.coordinator.classicGroup(g)?.members.size, 1);
  clock.advance(60_000);
  // The timer fires for nothing (a partition that cannot run it) would spin.
  const timers = s.coordinator.timers;
  const due = timers.due.bind(timers);
  let fired = 0;
  timers.due = (now, filter) => {
    fired++;
    return due(now, filter);
  };
  // An operation of another partition re-arms the timer: the member's session is long over.
  await commit(s, groupIn(1), 1n);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(s.coordinator.classicGroup(g)?.members.size, 1, 'not expired while loading');
  assert.equal(fired, 0, 'the timer is not armed for a loading partition');
  release();
  await loading;
  assert.equal(await fetchOffset(s, o), 3n);
  await s.close();
});

test('a resignation during the load cancels it', async () => {
  const cluster = new FakeCluster();
  const first = service(cluster);
  await first.onElection(2, 0);
  const g = groupIn(2);
  await commit(first, g, 3n);
  await first.close();

  const s = service(cluster);
  const release = cluster.holdReads(2);
  const loading = s.onElection(2, 5);
  await tick();
  s.onResignation(2, 6);
  assert.equal(s.loaded, true, 'nothing loads any more');
  release();
  await loading;
  assert.equal(s.coordinator.offsets.has(g), false, 'nothing replayed after the resignation');
  assert.equal(await errorOf(() => fetchOffset(s, g)), ErrorCode.NOT_COORDINATOR);
  // Elected again: loaded again.
  await s.onElection(2, 7);
  assert.equal(await fetchOffset(s, g), 3n);
  await s.close();
});

test('elections and resignations are ordered by leader epoch: stale ones are ignored', async () => {
  const cluster = new FakeCluster();
  const s = service(cluster);
  const g = groupIn(3);
  await s.onElection(3, 5);
  await commit(s, g, 1n);
  s.onResignation(3, 4);
  s.onResignation(3, 5);
  assert.equal(await fetchOffset(s, g), 1n, 'a resignation not newer than the election is stale');
  // A newer election of a loaded partition only takes its epoch...
  await s.onElection(3, 9);
  s.onResignation(3, 8);
  assert.equal(await fetchOffset(s, g), 1n);
  // ...and a resignation newer than it unloads.
  s.onResignation(3, 10);
  assert.equal(await errorOf(() => fetchOffset(s, g)), ErrorCode.NOT_COORDINATOR);
  // Without an epoch (topic deleted, broker stopping): unloaded whatever the epoch.
  await s.onElection(3, 11);
  assert.equal(await fetchOffset(s, g), 1n);
  s.onResignation(3);
  assert.equal(await errorOf(() => fetchOffset(s, g)), ErrorCode.NOT_COORDINATOR);
  await s.close();
});

test("'all' ownership: start() loads every partition and owns every group; no elections", async () => {
  const cluster = new FakeCluster();
  const first = service(cluster, 'all');
  await first.start();
  const groups = [0, 1, 2, 3, 4].map((p) => groupIn(p));
  for (const [i, g] of groups.entries()) await commit(first, g, BigInt(i));
  await first.close();

  const s = service(cluster, 'all');
  assert.equal(s.loaded, false);
  assert.equal(await errorOf(() => commit(s, groups[0]!, 9n)), ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  await s.start();
  assert.equal(s.loaded, true);
  for (const [i, g] of groups.entries()) assert.equal(await fetchOffset(s, g), BigInt(i));
  assert.equal(s.committedOffsets().length, 5);
  await assert.rejects(s.onElection(0, 1), /ownership 'elected'/);
  assert.throws(() => s.onResignation(0, 1), /ownership 'elected'/);
  await s.close();
});
