// Issue 11 item 3: a coordinator must never hold state its log does not. When the append of an
// operation's records to __consumer_offsets fails, Kafka reverts the in-memory state (its
// timeline snapshot) and answers the mapped error; Samsa changed the state first and kept it
// (OffsetFetch returned a commit that was never written, until a restart lost it).
//
// The failure here is real: the broker runs with message.max.bytes=4096, so __consumer_offsets
// refuses (MESSAGE_TOO_LARGE) any batch over 4 KiB, and each request below writes more than that
// in one operation: Kafka answers UNKNOWN_SERVER_ERROR for it. Afterwards every API shows the
// state as it was before, a later small operation works, and a restart finds the same state.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import { KafkaClient } from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { WireClient } from '../../helpers/wire-client.ts';
import { type BrokerProcess, spawnBroker } from './helpers.ts';

const OVERRIDES = {
  'message.max.bytes': '4096',
  'offsets.topic.num.partitions': '2',
  'group.initial.rebalance.delay.ms': '300',
};
const PARTITIONS = 24;

interface PartitionErrors {
  name: string;
  partitions: { partitionIndex: number; errorCode: number }[];
}
interface FetchedGroup {
  groupId: string;
  errorCode: number;
  topics: { name: string; partitions: { partitionIndex: number; committedOffset: bigint }[] }[];
}
interface ListedGroups {
  errorCode: number;
  groups: { groupId: string; groupState: string }[];
}
interface Described {
  groups: { groupId: string; errorCode: number; groupState: string; members: { memberAssignment: Buffer }[] }[];
}
interface JoinResponse {
  errorCode: number;
  generationId: number;
  leader: string;
  memberId: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ALL = Array.from({ length: PARTITIONS }, (_, p) => p);

/** Kafka answers a batch too large for __consumer_offsets with UNKNOWN_SERVER_ERROR. */
function assertAppendFailed(codes: number[], what: string): void {
  assert.deepEqual(codes, Array(codes.length).fill(ErrorCode.UNKNOWN_SERVER_ERROR), what);
}

test('operations whose append to __consumer_offsets fails change nothing, and a restart finds the same state', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-failed-append-'));
  let broker: BrokerProcess | undefined = await spawnBroker(dataDir, OVERRIDES);
  const clients: WireClient[] = [];
  const connect = async () => {
    const c = await WireClient.connect(broker!.bootstrap);
    clients.push(c);
    return c;
  };
  t.after(async () => {
    for (const c of clients) c.close();
    await broker?.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });
  const id = randomUUID().slice(0, 8);
  // Long names make each record big, so a few dozen of them fill more than 4 KiB.
  const topic = `failed-append-${id}-${'t'.repeat(180)}`;
  const g1 = `offsets-${id}`;
  const g2 = `never-${id}`;
  const g3 = `kip848-${id}`;
  const g4 = `classic-${id}`;
  const c = await connect();
  const created = await c.request<{ topics: { errorCode: number }[] }>(19, 4, {
    topics: [{ name: topic, numPartitions: PARTITIONS, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 5000,
  });
  assert.equal(created.topics[0]!.errorCode, ErrorCode.NONE);

  const commit = (groupId: string, partitions: number[], offset: bigint, metadata = '') =>
    c.request<{ topics: PartitionErrors[] }>(8, 8, {
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: '',
      topics: [
        {
          name: topic,
          partitions: partitions.map((p) => ({
            partitionIndex: p,
            committedOffset: offset + BigInt(p),
            committedMetadata: metadata,
          })),
        },
      ],
    });
  const codes = (r: { topics: PartitionErrors[] }) => r.topics.flatMap((x) => x.partitions.map((p) => p.errorCode));
  const fetch = async (client: WireClient, groupId: string): Promise<bigint[]> => {
    for (;;) {
      const r = await client.request<{ groups: FetchedGroup[] }>(9, 8, {
        groups: [{ groupId, topics: [{ name: topic, partitionIndexes: ALL }] }],
      });
      const g = r.groups[0]!;
      if (g.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) {
        await sleep(50);
        continue;
      }
      assert.equal(g.errorCode, ErrorCode.NONE);
      return g.topics[0]!.partitions.map((p) => p.committedOffset);
    }
  };
  const listed = async (client: WireClient): Promise<Map<string, string>> => {
    const r = await client.request<ListedGroups>(16, 4, { statesFilter: [] });
    assert.equal(r.errorCode, ErrorCode.NONE);
    return new Map(r.groups.map((g) => [g.groupId, g.groupState]));
  };

  await t.test('a failed OffsetCommit commits nothing and creates no group (was visible until a restart)', async () => {
    assert.deepEqual(codes(await commit(g1, [0], 5n)), [ErrorCode.NONE]);
    assertAppendFailed(codes(await commit(g1, ALL, 100n, 'm'.repeat(100))), 'the failed commit');
    assert.deepEqual(await fetch(c, g1), [5n, ...Array(PARTITIONS - 1).fill(-1n)], 'offsets after the failed commit');
    // A group-less commit that fails creates no simple group either.
    assertAppendFailed(codes(await commit(g2, ALL, 100n, 'm'.repeat(100))), 'the failed first commit');
    assert.deepEqual(await fetch(c, g2), Array(PARTITIONS).fill(-1n));
    assert.equal((await listed(c)).has(g2), false, 'a group only the failed commit made');
  });

  const committed = [5n, ...ALL.slice(1).map((p) => 10n + BigInt(p))];
  for (let from = 1; from < PARTITIONS; from += 6) {
    const chunk = ALL.slice(from, from + 6);
    assert.deepEqual(codes(await commit(g1, chunk, 10n)), Array(chunk.length).fill(ErrorCode.NONE));
  }
  assert.deepEqual(await fetch(c, g1), committed);

  await t.test('a failed OffsetDelete deletes no offset', async () => {
    const deleted = await c.request<{ errorCode: number }>(47, 0, {
      groupId: g1,
      topics: [{ name: topic, partitions: ALL.map((p) => ({ partitionIndex: p })) }],
    });
    assertAppendFailed([deleted.errorCode], 'the failed OffsetDelete');
    assert.deepEqual(await fetch(c, g1), committed, 'offsets after the failed OffsetDelete');
  });

  await t.test('a failed DeleteGroups keeps the group and its offsets', async () => {
    const deletedGroups = await c.request<{ results: { groupId: string; errorCode: number }[] }>(42, 2, {
      groupsNames: [g1],
    });
    assert.deepEqual(
      deletedGroups.results.map((r) => r.groupId),
      [g1],
    );
    assertAppendFailed(
      deletedGroups.results.map((r) => r.errorCode),
      'the failed DeleteGroups',
    );
    assert.equal((await listed(c)).get(g1), 'Empty', 'the group after the failed DeleteGroups');
    assert.deepEqual(await fetch(c, g1), committed, 'offsets after the failed DeleteGroups');
  });

  await t.test('a failed ConsumerGroupHeartbeat (KIP-848) leaves no group and no member', async () => {
    await kip848(c, g3, topic);
  });

  await t.test('a failed SyncGroup: the leader and the parked member get the error, the group rebalances', async () => {
    await syncTooBig(await connect(), await connect(), c, g4);
  });

  const g5 = `pipelined-${id}`;
  await t.test('commits pipelined with a too big one: they share batches, only the big one fails', async () => {
    const client = new KafkaClient({ bootstrap: broker!.bootstrap, clientId: 'failed-append-it' });
    try {
      const conn = await client.connect();
      const send = (partitions: number[], offset: (p: number) => bigint, metadata = '') =>
        conn
          .request(ApiKey.OffsetCommit, {
            groupId: g5,
            generationIdOrMemberEpoch: -1,
            memberId: '',
            topics: [
              {
                name: topic,
                partitions: partitions.map((p) => ({
                  partitionIndex: p,
                  committedOffset: offset(p),
                  committedMetadata: metadata,
                })),
              },
            ],
          })
          .then((r) => r.topics.flatMap((x) => x.partitions.map((q) => q.errorCode)));
      // 48 one-partition commits (partitions 0-11) in flight at once, the big one among them.
      const small = Array.from({ length: 48 }, (_, i) => send([i % 12], () => 1000n + BigInt(i)));
      const big = send(ALL, (p) => 5000n + BigInt(p), 'm'.repeat(100));
      const more = Array.from({ length: 48 }, (_, i) => send([i % 12], () => 2000n + BigInt(i)));
      assertAppendFailed(await big, 'the big commit');
      for (const codes of await Promise.all([...small, ...more])) assert.deepEqual(codes, [ErrorCode.NONE]);
    } finally {
      client.close();
    }
    assert.deepEqual(
      await fetch(c, g5),
      ALL.map((p) => (p < 12 ? 2036n + BigInt(p) : -1n)),
    );
  });

  await t.test('a restart loads the same state', async () => {
    const before = { g1: await fetch(c, g1), g5: await fetch(c, g5), groups: await listed(c) };
    const exit = await broker!.stop('SIGTERM');
    assert.equal(exit.code, 0, broker!.stderr());
    broker = await spawnBroker(dataDir, OVERRIDES);
    const after = await connect();
    assert.deepEqual(await fetch(after, g1), before.g1, 'offsets after the restart');
    assert.deepEqual(await fetch(after, g5), before.g5, 'pipelined offsets after the restart');
    assert.deepEqual(await fetch(after, g2), Array(PARTITIONS).fill(-1n));
    const groups = await listed(after);
    for (const g of [g1, g3, g4]) assert.ok(groups.has(g), `${g} after the restart`);
    assert.equal(groups.has(g2), false);
    const reloaded = await after.request<Described>(15, 5, { groups: [g4] });
    assert.deepEqual(
      reloaded.groups[0]!.members.map((m) => m.memberAssignment.toString()),
      ['A', 'A'],
    );
  });
});

/** A KIP-848 member whose ConsumerGroupMemberMetadata record is over 4 KiB. */
async function kip848(c: WireClient, g3: string, topic: string): Promise<void> {
  const names = Array.from({ length: 30 }, (_, i) => `${'s'.repeat(200)}-${i}`);
  const joinTooBig = await c.request<{ errorCode: number; memberEpoch: number }>(68, 0, {
    groupId: g3,
    memberId: '',
    memberEpoch: 0,
    rebalanceTimeoutMs: 10_000,
    subscribedTopicNames: names,
    topicPartitions: [],
  });
  assertAppendFailed([joinTooBig.errorCode], 'the failed heartbeat');
  const described848 = await c.request<{ groups: { errorCode: number }[] }>(69, 0, { groupIds: [g3] });
  assert.equal(
    described848.groups[0]!.errorCode,
    ErrorCode.GROUP_ID_NOT_FOUND,
    'a group only the failed heartbeat made',
  );
  const joined848 = await c.request<{ errorCode: number; memberEpoch: number }>(68, 0, {
    groupId: g3,
    memberId: '',
    memberEpoch: 0,
    rebalanceTimeoutMs: 10_000,
    subscribedTopicNames: [topic],
    topicPartitions: [],
  });
  assert.equal(joined848.errorCode, ErrorCode.NONE);
  assert.equal(joined848.memberEpoch, 1, 'the group starts from scratch');
}

/**
 * A classic group of two whose leader's assignment makes a GroupMetadata record over 4 KiB:
 * Kafka answers both SyncGroups with the error and rebalances; then a small one works.
 */
async function syncTooBig(a: WireClient, b: WireClient, c: WireClient, g4: string): Promise<void> {
  const protocols = [{ name: 'range', metadata: Buffer.from([0, 0, 0, 0, 0, 0]) }];
  const joinReq = {
    groupId: g4,
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 10_000,
    protocolType: 'consumer',
    protocols,
  };
  const joinA = a.request<JoinResponse>(11, 3, { ...joinReq, memberId: '' });
  await sleep(50);
  const joinB = b.request<JoinResponse>(11, 3, { ...joinReq, memberId: '' });
  const [ja, jb] = await Promise.all([joinA, joinB]);
  assert.deepEqual([ja.errorCode, jb.errorCode, ja.generationId, jb.generationId], [0, 0, 1, 1]);
  const [leader, follower, leaderClient, followerClient] = ja.leader === ja.memberId ? [ja, jb, a, b] : [jb, ja, b, a];
  const followerSync = followerClient.request<{ errorCode: number }>(14, 3, {
    groupId: g4,
    generationId: 1,
    memberId: follower.memberId,
    assignments: [],
  });
  await sleep(200);
  const leaderSync = await leaderClient.request<{ errorCode: number }>(14, 3, {
    groupId: g4,
    generationId: 1,
    memberId: leader.memberId,
    assignments: [leader, follower].map((m) => ({ memberId: m.memberId, assignment: Buffer.alloc(3000, 1) })),
  });
  assertAppendFailed([leaderSync.errorCode, (await followerSync).errorCode], 'the SyncGroups');
  const described = await c.request<Described>(15, 5, { groups: [g4] });
  assert.equal(described.groups[0]!.groupState, 'PreparingRebalance', 'the group after the failed SyncGroup');
  // Both rejoin; a small assignment then makes the group Stable.
  const [ra, rb] = await Promise.all([
    leaderClient.request<JoinResponse>(11, 3, { ...joinReq, memberId: leader.memberId }),
    followerClient.request<JoinResponse>(11, 3, { ...joinReq, memberId: follower.memberId }),
  ]);
  assert.deepEqual([ra.errorCode, rb.errorCode, ra.generationId], [0, 0, 2]);
  const small = [leader, follower].map((m) => ({ memberId: m.memberId, assignment: Buffer.from('A') }));
  const syncs = await Promise.all([
    followerClient.request<{ errorCode: number }>(14, 3, {
      groupId: g4,
      generationId: 2,
      memberId: follower.memberId,
      assignments: [],
    }),
    sleep(100).then(() =>
      leaderClient.request<{ errorCode: number }>(14, 3, {
        groupId: g4,
        generationId: 2,
        memberId: leader.memberId,
        assignments: small,
      }),
    ),
  ]);
  assert.deepEqual(
    syncs.map((s) => s.errorCode),
    [0, 0],
  );
  const stable = await c.request<Described>(15, 5, { groups: [g4] });
  assert.equal(stable.groups[0]!.groupState, 'Stable');
}
