// KIP-848 consumer groups driven with plain calls and a fake clock: joining, member epochs,
// server-side assignment (uniform and range), reconciliation that revokes before it assigns,
// regex subscriptions, fencing, session and revocation timeouts, leaving, offsets, describe,
// and replay equivalence.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rangeAssignor, uniformAssignor } from '../../../../src/coordinator/group/assignors.ts';
import { ConsumerGroup } from '../../../../src/coordinator/group/consumer-group.ts';
import type {
  ConsumerGroupHeartbeatInput,
  ConsumerGroupHeartbeatResult,
  TopicPartitions,
} from '../../../../src/coordinator/group/consumer-group-heartbeat.ts';
import { decodeRecord, encodeRecord } from '../../../../src/coordinator/group/coordinator-records.ts';
import { ErrorCode } from '../../../../src/protocol/error-codes.ts';
import { GROUP, Harness, info } from './harness.ts';

function hb(h: Harness, req: Partial<ConsumerGroupHeartbeatInput>, apiVersion = 1): ConsumerGroupHeartbeatResult {
  return h.drive(
    h.coordinator.consumerGroupHeartbeat(info(apiVersion), {
      groupId: GROUP,
      memberId: 'm',
      memberEpoch: 0,
      instanceId: null,
      rackId: null,
      rebalanceTimeoutMs: 30_000,
      subscribedTopicNames: ['t'],
      subscribedTopicRegex: null,
      serverAssignor: null,
      topicPartitions: [],
      ...req,
    }),
  );
}

/** A member's next heartbeat owning exactly its last assignment. */
function ack(h: Harness, memberId: string, epoch: number, owned: TopicPartitions[] | null) {
  return hb(h, {
    memberId,
    memberEpoch: epoch,
    topicPartitions: owned,
    subscribedTopicNames: null,
    rebalanceTimeoutMs: -1,
  });
}

function count(a: TopicPartitions[] | null): number {
  return (a ?? []).reduce((n, t) => n + t.partitions.length, 0);
}

function group(h: Harness): ConsumerGroup {
  const g = h.coordinator.groups.get(GROUP);
  assert.ok(g instanceof ConsumerGroup);
  return g;
}

test('a first member joins with epoch 0 and gets every partition at epoch 1', () => {
  const h = new Harness();
  const t = h.addTopic('t', 4);
  const r = hb(h, { memberId: 'a' });
  assert.equal(r.errorCode, ErrorCode.NONE);
  assert.equal(r.memberId, 'a');
  assert.equal(r.memberEpoch, 1);
  assert.equal(r.heartbeatIntervalMs, 5000);
  assert.deepEqual(r.assignment, [{ topicId: t.topicId, partitions: [0, 1, 2, 3] }]);
  assert.equal(h.state(), 'Stable');
  const g = group(h);
  assert.equal(g.groupEpoch, 1);
  assert.equal(g.assignmentEpoch, 1);
  // Records: member metadata, partition metadata, group epoch, target, target epoch, current.
  assert.deepEqual(
    h.records.map((x) => x.type),
    [
      'ConsumerGroupMemberMetadata',
      'ConsumerGroupPartitionMetadata',
      'ConsumerGroupMetadata',
      'ConsumerGroupTargetAssignmentMember',
      'ConsumerGroupTargetAssignmentMetadata',
      'ConsumerGroupCurrentMemberAssignment',
    ],
  );
  // A v0 member may let the coordinator pick its id; v1 must send one.
  assert.match(hb(h, { memberId: '' }, 0).memberId ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(hb(h, { memberId: '' }, 1).errorCode, ErrorCode.INVALID_REQUEST);
});

test('reconciliation revokes before it assigns; the newcomer waits for released partitions', () => {
  const h = new Harness();
  const t = h.addTopic('t', 4);
  const a1 = hb(h, { memberId: 'a' });
  assert.equal(count(a1.assignment), 4);
  const b1 = hb(h, { memberId: 'b' });
  // b's target is two partitions, but a still owns them: b gets nothing yet, at epoch 2.
  assert.equal(b1.memberEpoch, 2);
  assert.equal(count(b1.assignment), 0);
  assert.equal(h.state(), 'Reconciling');
  // a must give two up first: its assignment shrinks, its epoch stays 1.
  const a2 = ack(h, 'a', 1, a1.assignment);
  assert.equal(a2.memberEpoch, 1);
  assert.equal(count(a2.assignment), 2);
  const g = group(h);
  assert.equal(g.members.get('a')?.state, 1, 'UNREVOKED_PARTITIONS');
  // Still owning the revoked ones: nothing changes.
  assert.equal(ack(h, 'a', 1, a1.assignment).memberEpoch, 1);
  // b asks again: still unreleased.
  assert.equal(count(ack(h, 'b', 2, []).assignment), 0);
  // a confirms the revocation: epoch 2.
  const a3 = ack(h, 'a', 1, a2.assignment);
  assert.equal(a3.memberEpoch, 2);
  assert.equal(g.members.get('a')?.state, 0);
  // Now b gets the released partitions.
  const b2 = ack(h, 'b', 2, []);
  assert.equal(count(b2.assignment), 2);
  assert.equal(h.state(), 'Stable');
  assert.equal(a3.assignment, null, 'same partitions: no assignment in the response');
  const owned = new Set([...(a2.assignment ?? []), ...(b2.assignment ?? [])].flatMap((x) => x.partitions));
  assert.equal(owned.size, 4);
  assert.equal(a2.assignment?.[0]?.topicId, t.topicId);
});

test('member epoch checks: FENCED_MEMBER_EPOCH, the previous epoch tolerated, UNKNOWN_MEMBER_ID', () => {
  const h = new Harness();
  h.addTopic('t', 2);
  const a1 = hb(h, { memberId: 'a' });
  assert.equal(ack(h, 'a', 5, a1.assignment).errorCode, ErrorCode.FENCED_MEMBER_EPOCH);
  assert.equal(ack(h, 'nobody', 1, []).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  const b = hb(h, { memberId: 'b' });
  // a revokes and moves to epoch 2; the response may be lost, so epoch 1 with a subset is accepted.
  const a2 = ack(h, 'a', 1, a1.assignment);
  const a3 = ack(h, 'a', 1, a2.assignment);
  assert.equal(a3.memberEpoch, 2);
  assert.equal(ack(h, 'a', 1, a3.assignment).errorCode, ErrorCode.NONE);
  assert.equal(ack(h, 'a', 1, a1.assignment).errorCode, ErrorCode.FENCED_MEMBER_EPOCH, 'not a subset');
  const rejoined = hb(h, { memberId: 'a' });
  assert.equal(rejoined.memberEpoch, 2, 'a rejoin with epoch 0 starts over');
  assert.equal(count(rejoined.assignment), 1);
  void b;
});

test('request validation and unsupported assignors', () => {
  const h = new Harness();
  h.addTopic('t', 1);
  assert.equal(hb(h, { groupId: '' }).errorCode, ErrorCode.INVALID_REQUEST);
  assert.equal(hb(h, { rebalanceTimeoutMs: -1 }).errorCode, ErrorCode.INVALID_REQUEST);
  assert.equal(hb(h, { subscribedTopicNames: null }).errorCode, ErrorCode.INVALID_REQUEST);
  assert.equal(hb(h, { topicPartitions: null }).errorCode, ErrorCode.INVALID_REQUEST);
  assert.equal(hb(h, { serverAssignor: 'sticky' }).errorCode, ErrorCode.UNSUPPORTED_ASSIGNOR);
  assert.equal(
    hb(h, { subscribedTopicNames: null, subscribedTopicRegex: '(' }).errorCode,
    ErrorCode.INVALID_REGULAR_EXPRESSION,
  );
  assert.equal(hb(h, { memberEpoch: -3 }).errorCode, ErrorCode.INVALID_REQUEST);
  assert.equal(h.coordinator.groups.size, 0, 'failed joins leave no group behind');
  const max = new Harness({ consumerGroupMaxSize: 1 });
  max.addTopic('t', 1);
  assert.equal(hb(max, { memberId: 'a' }).errorCode, ErrorCode.NONE);
  assert.equal(hb(max, { memberId: 'b' }).errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
});

test('regex subscriptions resolve against topic names; new matching topics bump the group epoch', () => {
  const h = new Harness();
  const o1 = h.addTopic('orders-eu', 2);
  h.addTopic('payments', 2);
  const r = hb(h, { memberId: 'a', subscribedTopicNames: null, subscribedTopicRegex: 'orders-.*' });
  assert.deepEqual(r.assignment, [{ topicId: o1.topicId, partitions: [0, 1] }]);
  const o2 = h.addTopic('orders-us', 1);
  const r2 = ack(h, 'a', 1, r.assignment);
  assert.equal(r2.memberEpoch, 2);
  assert.deepEqual(r2.assignment?.map((x) => x.topicId).sort(), [o1.topicId, o2.topicId].sort());
});

test('leave (epoch -1) and session timeout remove a member; the others take its partitions', () => {
  const h = new Harness({ consumerGroupSessionTimeoutMs: 6000 });
  h.addTopic('t', 4);
  const a = hb(h, { memberId: 'a' });
  hb(h, { memberId: 'b' });
  const a2 = ack(h, 'a', 1, a.assignment);
  ack(h, 'a', 1, a2.assignment);
  const b2 = ack(h, 'b', 2, []);
  assert.equal(count(b2.assignment), 2);
  const c = hb(h, { memberId: 'c' });
  assert.equal(c.errorCode, ErrorCode.NONE);
  // c leaves at once.
  const left = hb(h, { memberId: 'c', memberEpoch: -1, topicPartitions: [] });
  assert.equal(left.memberEpoch, -1);
  assert.equal(group(h).members.has('c'), false);
  // b goes silent; a keeps heartbeating and ends up with all four.
  let last = ack(h, 'a', group(h).members.get('a')!.memberEpoch, null);
  for (let i = 0; i < 4; i++) {
    h.clock.advance(2000);
    h.tick(0);
    const m = group(h).members.get('a')!;
    last = ack(
      h,
      'a',
      m.memberEpoch,
      [...m.assignedPartitions].map(([topicId, p]) => ({ topicId, partitions: [...p] })),
    );
  }
  assert.equal(group(h).members.has('b'), false, 'b expired');
  assert.equal(
    count(
      last.assignment ??
        [...group(h).members.get('a')!.assignedPartitions].map(([topicId, p]) => ({ topicId, partitions: [...p] })),
    ),
    4,
  );
});

test('a member that does not revoke within its rebalance timeout is fenced', () => {
  const h = new Harness({ consumerGroupSessionTimeoutMs: 60_000 });
  h.addTopic('t', 2);
  const a = hb(h, { memberId: 'a', rebalanceTimeoutMs: 5000 });
  hb(h, { memberId: 'b' });
  ack(h, 'a', 1, a.assignment); // told to revoke, keeps owning
  h.clock.advance(5001);
  h.drive(h.coordinator.poll());
  assert.equal(group(h).members.has('a'), false);
  assert.equal(ack(h, 'a', 1, a.assignment).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  assert.equal(count(ack(h, 'b', group(h).members.get('b')!.memberEpoch, []).assignment), 2);
});

test('static members: a temporary leave (-2) keeps the assignment for the restarted instance', () => {
  const h = new Harness();
  h.addTopic('t', 2);
  const a = hb(h, { memberId: 'a', instanceId: 'i-a' });
  assert.equal(count(a.assignment), 2);
  assert.equal(hb(h, { memberId: 'a2', instanceId: 'i-a' }).errorCode, ErrorCode.UNRELEASED_INSTANCE_ID);
  const gone = hb(h, { memberId: 'a', instanceId: 'i-a', memberEpoch: -2, topicPartitions: [] });
  assert.equal(gone.memberEpoch, -2);
  const back = hb(h, { memberId: 'a2', instanceId: 'i-a' });
  assert.equal(back.errorCode, ErrorCode.NONE);
  assert.equal(back.memberEpoch, 1, 'no new epoch: nothing moved');
  assert.equal(count(back.assignment), 2);
  assert.equal(group(h).members.has('a'), false);
  assert.equal(ack(h, 'a', 1, []).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
});

test('assignors: uniform balances and sticks; range hands out contiguous ranges', () => {
  const topics = new Map([
    ['T1', 5],
    ['T2', 3],
  ]);
  const both = new Set(['T1', 'T2']);
  const members = [
    { memberId: 'a', subscribedTopicIds: both },
    { memberId: 'b', subscribedTopicIds: both },
    { memberId: 'c', subscribedTopicIds: new Set(['T1']) },
  ];
  const u = uniformAssignor({ members, topics, previous: new Map() });
  const sizes = [...u.values()].map((a) => [...a.values()].reduce((n, s) => n + s.size, 0)).sort();
  assert.deepEqual(sizes, [2, 3, 3]);
  assert.equal(u.get('c')?.has('T2'), false, 'c only gets what it subscribes to');
  // Adding a member moves as little as possible.
  const withD = uniformAssignor({
    members: [...members, { memberId: 'd', subscribedTopicIds: both }],
    topics,
    previous: u,
  });
  let moved = 0;
  for (const [m, a] of u) for (const [t, parts] of a) for (const p of parts) if (!withD.get(m)?.get(t)?.has(p)) moved++;
  assert.equal(moved, 2);
  const r = rangeAssignor({ members, topics, previous: new Map() });
  assert.deepEqual([...(r.get('a')?.get('T1') ?? [])], [0, 1]);
  assert.deepEqual([...(r.get('b')?.get('T1') ?? [])], [2, 3]);
  assert.deepEqual([...(r.get('c')?.get('T1') ?? [])], [4]);
  assert.deepEqual([...(r.get('a')?.get('T2') ?? [])], [0, 1]);
  assert.deepEqual([...(r.get('b')?.get('T2') ?? [])], [2]);

  const h = new Harness();
  h.addTopic('t', 4);
  const a = hb(h, { memberId: 'a', serverAssignor: 'range' });
  assert.equal(count(a.assignment), 4);
  assert.equal(h.drive(h.coordinator.consumerGroupDescribe(info(), [GROUP]))[0]?.assignorName, 'range');
});

test('offsets in consumer groups: member epoch checks, v9 required, fetch validation', () => {
  const h = new Harness();
  h.addTopic('t', 1);
  const a = hb(h, { memberId: 'a' });
  const commit = (memberId: string, epoch: number, apiVersion = 9) =>
    h.drive(
      h.coordinator.offsetCommit(info(apiVersion), {
        groupId: GROUP,
        generationIdOrMemberEpoch: epoch,
        memberId,
        groupInstanceId: null,
        retentionTimeMs: -1n,
        topics: [
          {
            name: 't',
            partitions: [{ partitionIndex: 0, committedOffset: 3n, committedLeaderEpoch: -1, committedMetadata: null }],
          },
        ],
      }),
    )[0]!.partitions[0]!.errorCode;
  assert.equal(commit('a', a.memberEpoch), ErrorCode.NONE);
  assert.equal(commit('a', a.memberEpoch + 1), ErrorCode.FENCED_MEMBER_EPOCH);
  assert.equal(commit('a', 0), ErrorCode.STALE_MEMBER_EPOCH);
  assert.equal(commit('x', 1), ErrorCode.UNKNOWN_MEMBER_ID);
  assert.equal(commit('a', a.memberEpoch, 8), ErrorCode.UNSUPPORTED_VERSION);
  const fetch = (memberId: string | null, memberEpoch: number) =>
    h.drive(
      h.coordinator.offsetFetch(info(9), { groupId: GROUP, topics: null, requireStable: false, memberId, memberEpoch }),
    );
  assert.equal(fetch('a', 1).topics[0]?.partitions[0]?.committedOffset, 3n);
  assert.equal(fetch('a', 0).errorCode, ErrorCode.STALE_MEMBER_EPOCH);
  assert.equal(fetch('x', 1).errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  assert.equal(fetch(null, -1).errorCode, ErrorCode.NONE, 'admin fetches are not checked');
  // OffsetDelete protects subscribed topics; DeleteGroups refuses a group with members.
  const del = h.drive(
    h.coordinator.offsetDelete(info(), {
      groupId: GROUP,
      topics: [{ name: 't', partitions: [{ partitionIndex: 0 }] }],
    }),
  );
  assert.equal(del.topics[0]?.partitions[0]?.errorCode, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC);
  assert.equal(h.drive(h.coordinator.deleteGroups(info(), [GROUP]))[0]?.errorCode, ErrorCode.NON_EMPTY_GROUP);
  hb(h, { memberId: 'a', memberEpoch: -1 });
  assert.equal(h.state(), 'Empty');
  assert.equal(h.drive(h.coordinator.deleteGroups(info(), [GROUP]))[0]?.errorCode, ErrorCode.NONE);
  assert.equal(h.coordinator.groups.size, 0);
});

test('ConsumerGroupDescribe, ListGroups type filter, DescribeGroups of a KIP-848 group', () => {
  const h = new Harness();
  const t = h.addTopic('t', 2);
  hb(h, { memberId: 'a', instanceId: 'i' });
  const d = h.drive(h.coordinator.consumerGroupDescribe(info(), [GROUP, 'missing']));
  assert.equal(d[0]?.groupState, 'Stable');
  assert.equal(d[0]?.groupEpoch, 1);
  assert.equal(d[0]?.assignorName, 'uniform');
  assert.deepEqual(d[0]?.members[0]?.assignment, [{ topicId: t.topicId, topicName: 't', partitions: [0, 1] }]);
  assert.equal(d[0]?.members[0]?.instanceId, 'i');
  assert.equal(d[1]?.errorCode, ErrorCode.GROUP_ID_NOT_FOUND);
  const listed = h.drive(h.coordinator.listGroups(info(), [], ['consumer']));
  assert.deepEqual(listed, [{ groupId: GROUP, protocolType: 'consumer', groupState: 'Stable', groupType: 'consumer' }]);
  assert.deepEqual(h.drive(h.coordinator.listGroups(info(), [], ['classic'])), []);
  // A classic JoinGroup to a non-empty consumer group is refused.
  assert.equal(h.join({}, 3).result?.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
});

test('replay: a fresh coordinator fed the records has the same consumer group', () => {
  const h = new Harness();
  h.addTopic('t', 4);
  const a = hb(h, { memberId: 'a', instanceId: 'ia' });
  hb(h, { memberId: 'b' });
  const a2 = ack(h, 'a', 1, a.assignment);
  ack(h, 'a', 1, a2.assignment);
  ack(h, 'b', 2, []);
  hb(h, { memberId: 'c', serverAssignor: 'range' });
  hb(h, { memberId: 'c', memberEpoch: -1 });
  const bytes = h.records.map((r) => {
    const e = encodeRecord(r);
    return decodeRecord(e.key, e.value);
  });
  assert.deepEqual(bytes, h.records);
  const fresh = h.replayed();
  const g1 = group(h);
  const g2 = fresh.groups.get(GROUP);
  assert.ok(g2 instanceof ConsumerGroup);
  assert.equal(g2.groupEpoch, g1.groupEpoch);
  assert.equal(g2.assignmentEpoch, g1.assignmentEpoch);
  assert.equal(g2.stateName(), g1.stateName());
  assert.deepEqual(g2.targetAssignment, g1.targetAssignment);
  assert.deepEqual(g2.subscriptionMetadata, g1.subscriptionMetadata);
  assert.deepEqual(g2.staticMembers, g1.staticMembers);
  assert.deepEqual(g2.members, g1.members);
});
