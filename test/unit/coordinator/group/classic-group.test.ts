// The classic group state machine driven with plain calls and a fake clock: every state
// transition, the KIP-394 handshake, static membership, timeouts, concurrent joins, commits
// during a rebalance, and replay equivalence.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClassicGroup } from '../../../../src/coordinator/group/classic-group.ts';
import {
  decodeRecord,
  encodeRecord,
  javaStringHashCode,
  partitionForGroup,
} from '../../../../src/coordinator/group/coordinator-records.ts';
import type { GroupCoordinator } from '../../../../src/coordinator/group/group-coordinator.ts';
import { ErrorCode } from '../../../../src/protocol/error-codes.ts';
import { GROUP, Harness, info, parked } from './harness.ts';

function classic(c: GroupCoordinator, groupId = GROUP): ClassicGroup {
  const g = c.groups.get(groupId);
  assert.ok(g instanceof ClassicGroup);
  return g;
}

/** Two members through a full rebalance to Stable; returns their ids and the generation. */
function stableGroupOfTwo(h: Harness): { leader: string; follower: string; generation: number } {
  const a = h.joinNew();
  const b = h.joinNew();
  h.tick(0);
  assert.equal(a.result?.errorCode, ErrorCode.NONE);
  assert.equal(b.result?.errorCode, ErrorCode.NONE);
  const generation = a.result!.generationId;
  const leader = a.result!.leader;
  const follower = leader === a.result!.memberId ? b.result!.memberId : a.result!.memberId;
  const fs = h.sync({ memberId: follower, generationId: generation });
  assert.ok(parked(fs), 'a follower SyncGroup parks until the leader syncs');
  const ls = h.sync({
    memberId: leader,
    generationId: generation,
    assignments: [
      { memberId: leader, assignment: Buffer.from('L') },
      { memberId: follower, assignment: Buffer.from('F') },
    ],
  });
  assert.equal(ls.result?.assignment.toString(), 'L');
  assert.equal(fs.result?.assignment.toString(), 'F');
  assert.equal(h.state(), 'Stable');
  return { leader, follower, generation };
}

test('KIP-394: JoinGroup v4+ from an unknown member gets MEMBER_ID_REQUIRED; v3 joins at once', () => {
  const h = new Harness();
  const first = h.join({}, 4);
  assert.equal(first.result?.errorCode, ErrorCode.MEMBER_ID_REQUIRED);
  assert.match(first.result!.memberId, /^client-id\d+$/);
  assert.equal(classic(h.coordinator).size, 0, 'a pending member is not a member yet');
  const second = h.join({ memberId: first.result!.memberId }, 4);
  assert.ok(parked(second), 'the second JoinGroup parks');
  h.tick(0);
  assert.equal(second.result?.errorCode, ErrorCode.NONE);
  assert.equal(second.result?.generationId, 1);
  assert.equal(second.result?.leader, first.result!.memberId);
  assert.equal(second.result?.members.length, 1, 'the leader gets the member list');
  assert.equal(h.state(), 'CompletingRebalance');

  const old = new Harness();
  const v3 = old.join({}, 3);
  assert.ok(parked(v3), 'v3 parks without a handshake');
  old.tick(0);
  assert.equal(v3.result?.errorCode, ErrorCode.NONE);
});

test('a pending KIP-394 member that never rejoins expires after the session timeout', () => {
  const h = new Harness();
  const first = h.join({}, 4);
  h.tick(10_001);
  const late = h.join({ memberId: first.result!.memberId }, 4);
  assert.equal(late.result?.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
});

test('JoinGroup validation: group id, session timeout, protocols, unknown member', () => {
  const h = new Harness();
  assert.equal(h.join({ groupId: '' }).result?.errorCode, ErrorCode.INVALID_GROUP_ID);
  assert.equal(h.join({ sessionTimeoutMs: 10 }).result?.errorCode, ErrorCode.INVALID_SESSION_TIMEOUT);
  assert.equal(h.join({ protocolType: '' }, 3).result?.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  assert.equal(h.coordinator.groups.size, 0, 'failed joins leave no group behind');
  assert.equal(h.join({ memberId: 'nobody' }).result?.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  stableGroupOfTwo(h);
  assert.equal(
    h.join({ protocols: [{ name: 'other', metadata: Buffer.alloc(0) }] }, 3).result?.errorCode,
    ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
  );
  assert.equal(h.join({ protocolType: 'connect' }, 3).result?.errorCode, ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
});

test('protocol selection: the protocol most members prefer among those all support', () => {
  const h = new Harness();
  const p = (...names: string[]) => names.map((name) => ({ name, metadata: Buffer.from(name) }));
  h.joinNew({ protocols: p('roundrobin', 'range') });
  h.joinNew({ protocols: p('range', 'roundrobin') });
  h.joinNew({ protocols: p('range', 'sticky') });
  h.tick(0);
  assert.equal(classic(h.coordinator).protocolName, 'range');
});

test('full rebalance: Empty -> PreparingRebalance -> CompletingRebalance -> Stable, GroupMetadata stored', () => {
  const h = new Harness();
  assert.equal(h.state(), undefined);
  const { leader, follower, generation } = stableGroupOfTwo(h);
  assert.equal(generation, 1);
  const stored = h.records.filter((r) => r.type === 'GroupMetadata');
  assert.equal(stored.length, 1);
  const v = stored[0]!.type === 'GroupMetadata' ? stored[0]!.value! : undefined;
  assert.equal(v?.generation, 1);
  assert.equal(v?.leader, leader);
  assert.equal(v?.protocol, 'range');
  assert.deepEqual(
    v?.members.map((m) => [m.memberId, m.assignment.toString()]).sort(),
    [
      [leader, 'L'],
      [follower, 'F'],
    ].sort(),
  );
  assert.equal(h.heartbeat(leader, 1), ErrorCode.NONE);
  assert.equal(h.heartbeat(follower, 1), ErrorCode.NONE);
  // A Stable follower rejoining with the same protocols gets the current generation back.
  const again = h.join({ memberId: follower });
  assert.equal(again.result?.generationId, 1);
  assert.equal(h.state(), 'Stable');
});

test('heartbeat errors: unknown group/member, stale generation, rebalance in progress', () => {
  const h = new Harness();
  assert.equal(h.heartbeat('x', 1), ErrorCode.UNKNOWN_MEMBER_ID);
  const { leader, follower } = stableGroupOfTwo(h);
  assert.equal(h.heartbeat('x', 1), ErrorCode.UNKNOWN_MEMBER_ID);
  assert.equal(h.heartbeat(leader, 0), ErrorCode.ILLEGAL_GENERATION);
  // The leader rejoining starts a rebalance; the follower hears of it through its heartbeat.
  const lj = h.join({ memberId: leader });
  assert.ok(parked(lj));
  assert.equal(h.state(), 'PreparingRebalance');
  assert.equal(h.heartbeat(follower, 1), ErrorCode.REBALANCE_IN_PROGRESS);
  const fj = h.join({ memberId: follower });
  assert.equal(lj.result?.generationId, 2);
  assert.equal(fj.result?.generationId, 2);
  assert.equal(h.state(), 'CompletingRebalance');
  assert.equal(h.sync({ memberId: follower, generationId: 1 }).result?.errorCode, ErrorCode.ILLEGAL_GENERATION);
});

test('session timeout: a silent member is removed and the others rebalance without it', () => {
  const h = new Harness();
  const { leader, follower } = stableGroupOfTwo(h);
  for (let i = 0; i < 4; i++) {
    h.clock.advance(3000);
    assert.equal(h.heartbeat(leader, 1), ErrorCode.NONE);
    h.tick(0);
  }
  assert.equal(h.state(), 'PreparingRebalance', 'the follower expired after 10 s');
  assert.equal(classic(h.coordinator).hasMember(follower), false);
  assert.equal(h.heartbeat(leader, 1), ErrorCode.REBALANCE_IN_PROGRESS);
  const lj = h.join({ memberId: leader });
  assert.equal(lj.result?.generationId, 2);
  assert.equal(lj.result?.members.length, 1);
  assert.equal(h.heartbeat(follower, 1), ErrorCode.UNKNOWN_MEMBER_ID);
});

test('rebalance timeout: a member that does not rejoin in time is dropped from the generation', () => {
  const h = new Harness();
  const { leader, follower } = stableGroupOfTwo(h);
  const lj = h.join({ memberId: leader });
  // The follower keeps heartbeating but never rejoins.
  for (let t = 0; t < 30_000; t += 5000) {
    h.clock.advance(5000);
    h.heartbeat(follower, 1);
    h.tick(0);
  }
  assert.equal(lj.result?.errorCode, ErrorCode.NONE);
  assert.equal(lj.result?.generationId, 2);
  assert.deepEqual(
    lj.result?.members.map((m) => m.memberId),
    [leader],
  );
  assert.equal(h.heartbeat(follower, 2), ErrorCode.UNKNOWN_MEMBER_ID);
});

test('sync timeout: members that never send SyncGroup are removed after the rebalance timeout', () => {
  const h = new Harness();
  const a = h.joinNew();
  const b = h.joinNew();
  h.tick(0);
  const leader = a.result!.leader;
  const other = leader === a.result!.memberId ? b.result!.memberId : a.result!.memberId;
  // The follower syncs and waits; the leader never sends its assignment.
  const fs = h.sync({ memberId: other, generationId: 1 });
  assert.ok(parked(fs));
  // Both keep their sessions alive; only the sync phase times out.
  for (let t = 0; t < 30_000; t += 5000) {
    h.clock.advance(5000);
    h.heartbeat(leader, 1);
    h.heartbeat(other, 1);
    h.tick(0);
  }
  assert.equal(fs.result?.errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
  assert.equal(classic(h.coordinator).hasMember(leader), false);
  assert.equal(classic(h.coordinator).hasMember(other), true);
  assert.equal(h.state(), 'PreparingRebalance');
});

test('group.initial.rebalance.delay.ms: members arriving during the delay share the first generation', () => {
  const h = new Harness({ groupInitialRebalanceDelayMs: 3000 });
  const a = h.joinNew();
  h.tick(2000);
  const b = h.joinNew();
  h.tick(2000);
  assert.ok(parked(a), 'a new member extends the delay');
  const c = h.joinNew();
  h.tick(3000);
  assert.ok(parked(a), 'each new member extends the delay again');
  h.tick(3000);
  assert.deepEqual(
    [a, b, c].map((p) => p.result?.generationId),
    [1, 1, 1],
  );
  assert.equal(classic(h.coordinator).size, 3);
});

test('concurrent joins: a join during the sync phase restarts the rebalance; parked syncs are told', () => {
  const h = new Harness();
  const a = h.joinNew();
  const b = h.joinNew();
  h.tick(0);
  const follower = a.result!.leader === a.result!.memberId ? b.result!.memberId : a.result!.memberId;
  const fs = h.sync({ memberId: follower, generationId: 1 });
  const c = h.joinNew();
  assert.equal(fs.result?.errorCode, ErrorCode.REBALANCE_IN_PROGRESS);
  assert.equal(h.state(), 'PreparingRebalance');
  const aj = h.join({ memberId: a.result!.memberId });
  assert.ok(parked(c), 'waits for every member to rejoin');
  const bj = h.join({ memberId: b.result!.memberId });
  assert.deepEqual(
    [aj, bj, c].map((p) => p.result?.generationId),
    [2, 2, 2],
  );
  const memberIds = new Set([aj, bj, c].map((p) => p.result!.memberId));
  assert.equal(memberIds.size, 3, 'distinct member ids');
});

test('static membership: a restarted member takes a new id without a rebalance; the old id is fenced', () => {
  const h = new Harness();
  const a = h.joinNew({ groupInstanceId: 'i-a' });
  const b = h.joinNew({ groupInstanceId: 'i-b' });
  assert.ok(parked(a), 'static members skip the KIP-394 handshake');
  h.tick(0);
  const leader = a.result!.leader;
  for (const p of [a, b]) {
    h.sync({
      memberId: p.result!.memberId,
      generationId: 1,
      groupInstanceId: p === a ? 'i-a' : 'i-b',
      assignments:
        p.result!.memberId === leader ? [{ memberId: b.result!.memberId, assignment: Buffer.from('B') }] : [],
    });
  }
  assert.equal(h.state(), 'Stable');
  const oldB = b.result!.memberId;
  const restarted = h.join({ groupInstanceId: 'i-b' });
  assert.equal(restarted.result?.errorCode, ErrorCode.NONE);
  assert.equal(restarted.result?.generationId, 1, 'same generation: no rebalance');
  assert.notEqual(restarted.result?.memberId, oldB);
  assert.equal(h.state(), 'Stable');
  const newB = restarted.result!.memberId;
  assert.equal(h.sync({ memberId: newB, generationId: 1, groupInstanceId: 'i-b' }).result?.assignment.toString(), 'B');
  assert.equal(h.heartbeat(oldB, 1, 'i-b'), ErrorCode.FENCED_INSTANCE_ID);
  assert.equal(h.heartbeat(newB, 1, 'i-b'), ErrorCode.NONE);
  // The new member id is persisted.
  const last = h.records.filter((r) => r.type === 'GroupMetadata').at(-1);
  assert.ok(last?.type === 'GroupMetadata' && last.value?.members.some((m) => m.memberId === newB));
  // A static leader that restarts gets the members and skip_assignment.
  const restartedLeader = h.join({ groupInstanceId: leader === a.result!.memberId ? 'i-a' : 'i-b' });
  assert.equal(restartedLeader.result?.skipAssignment, true);
  assert.equal(restartedLeader.result?.members.length, 2);
});

test('static membership: a static member that stops heartbeating expires; LeaveGroup by instance id', () => {
  const h = new Harness();
  const a = h.joinNew({ groupInstanceId: 'i-a' });
  const b = h.joinNew({ groupInstanceId: 'i-b' });
  h.tick(0);
  const leaveWrong = h.drive(
    h.coordinator.leaveGroup(info(), { groupId: GROUP, members: [{ memberId: 'wrong', groupInstanceId: 'i-a' }] }),
  );
  assert.equal(leaveWrong.members[0]!.errorCode, ErrorCode.FENCED_INSTANCE_ID);
  const leaveUnknown = h.drive(
    h.coordinator.leaveGroup(info(), { groupId: GROUP, members: [{ memberId: '', groupInstanceId: 'nope' }] }),
  );
  assert.equal(leaveUnknown.members[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
  const leave = h.drive(
    h.coordinator.leaveGroup(info(), { groupId: GROUP, members: [{ memberId: '', groupInstanceId: 'i-a' }] }),
  );
  assert.equal(leave.members[0]!.errorCode, ErrorCode.NONE);
  assert.equal(h.state(), 'PreparingRebalance');
  h.join({ memberId: b.result!.memberId, groupInstanceId: 'i-b' });
  assert.equal(h.state(), 'CompletingRebalance');
  void a;
});

test('LeaveGroup: the last member leaving empties the group (a GroupMetadata record with no members)', () => {
  const h = new Harness();
  const { leader, follower } = stableGroupOfTwo(h);
  for (const m of [leader, follower]) {
    const r = h.drive(
      h.coordinator.leaveGroup(info(), { groupId: GROUP, members: [{ memberId: m, groupInstanceId: null }] }),
    );
    assert.equal(r.members[0]!.errorCode, ErrorCode.NONE);
  }
  assert.equal(h.state(), 'Empty');
  const last = h.records.at(-1);
  assert.ok(last?.type === 'GroupMetadata' && last.value?.members.length === 0 && last.value.generation === 2);
  const again = h.drive(
    h.coordinator.leaveGroup(info(), { groupId: GROUP, members: [{ memberId: leader, groupInstanceId: null }] }),
  );
  assert.equal(again.members[0]!.errorCode, ErrorCode.UNKNOWN_MEMBER_ID);
});

test('group.max.size: a member beyond the limit gets GROUP_MAX_SIZE_REACHED; a static restart does not count', () => {
  const h = new Harness({ groupMaxSize: 2 });
  stableGroupOfTwo(h);
  const third = h.join({}, 3);
  assert.equal(third.result?.errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
  assert.equal(h.join({}, 4).result?.errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);

  const s = new Harness({ groupMaxSize: 1 });
  s.joinNew({ groupInstanceId: 'only' });
  s.tick(0);
  assert.equal(s.join({ groupInstanceId: 'only' }).result?.errorCode, ErrorCode.NONE);
  assert.equal(s.join({ groupInstanceId: 'other' }).result?.errorCode, ErrorCode.GROUP_MAX_SIZE_REACHED);
});

test('commits during a rebalance: allowed while preparing, refused while completing, fenced when stale', () => {
  const h = new Harness();
  const { leader, follower } = stableGroupOfTwo(h);
  assert.equal(h.commit(follower, 1, 10n), ErrorCode.NONE);
  h.join({ memberId: leader });
  assert.equal(h.state(), 'PreparingRebalance');
  // A member commits what it revokes before rejoining: same generation, accepted.
  assert.equal(h.commit(follower, 1, 11n), ErrorCode.NONE);
  h.join({ memberId: follower });
  assert.equal(h.state(), 'CompletingRebalance');
  assert.equal(h.commit(follower, 2, 12n), ErrorCode.REBALANCE_IN_PROGRESS);
  assert.equal(h.commit(follower, 1, 12n), ErrorCode.ILLEGAL_GENERATION);
  assert.equal(h.commit('stranger', 2, 12n), ErrorCode.UNKNOWN_MEMBER_ID);
  assert.equal(h.commit('', -1, 12n), ErrorCode.UNKNOWN_MEMBER_ID, 'admin commits need an empty group');
  assert.equal(h.fetchOffset(), 11n);
});

test('simple (group-less) commits create an empty group; unknown groups fetch -1', () => {
  const h = new Harness();
  assert.equal(h.fetchOffset(0, 't', 'nobody'), -1n);
  assert.equal(h.commit('', -1, 5n), ErrorCode.NONE);
  assert.equal(h.state(), 'Empty');
  assert.equal(h.fetchOffset(), 5n);
  assert.equal(h.commit('m', 3, 5n, 0, 't', 9), ErrorCode.UNKNOWN_MEMBER_ID);
  const fresh = new Harness();
  assert.equal(fresh.commit('m', 3, 5n, 0, 't', 8), ErrorCode.ILLEGAL_GENERATION);
  assert.equal(fresh.commit('m', 3, 5n, 0, 't', 9), ErrorCode.GROUP_ID_NOT_FOUND);
  // Metadata over offset.metadata.max.bytes is refused per partition.
  const big = h.drive(
    h.coordinator.offsetCommit(info(8), {
      groupId: GROUP,
      generationIdOrMemberEpoch: -1,
      memberId: '',
      groupInstanceId: null,
      retentionTimeMs: -1n,
      topics: [
        {
          name: 't',
          partitions: [
            { partitionIndex: 1, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: 'x'.repeat(5000) },
          ],
        },
      ],
    }),
  );
  assert.equal(big[0]!.partitions[0]!.errorCode, ErrorCode.OFFSET_METADATA_TOO_LARGE);
});

test('OffsetFetch of every topic, OffsetDelete, DeleteGroups', () => {
  const h = new Harness();
  h.commit('', -1, 5n, 0, 'a');
  h.commit('', -1, 6n, 1, 'a');
  h.commit('', -1, 7n, 0, 'b');
  const all = h.drive(
    h.coordinator.offsetFetch(info(), {
      groupId: GROUP,
      topics: null,
      requireStable: true,
      memberId: null,
      memberEpoch: -1,
    }),
  );
  assert.deepEqual(
    all.topics.map((t) => [t.name, t.partitions.map((p) => [p.partitionIndex, p.committedOffset])]),
    [
      [
        'a',
        [
          [0, 5n],
          [1, 6n],
        ],
      ],
      ['b', [[0, 7n]]],
    ],
  );
  const del = h.drive(
    h.coordinator.offsetDelete(info(), {
      groupId: GROUP,
      topics: [{ name: 'b', partitions: [{ partitionIndex: 0 }] }],
    }),
  );
  assert.equal(del.errorCode, ErrorCode.NONE);
  assert.equal(h.fetchOffset(0, 'b'), -1n);
  assert.equal(
    h.drive(h.coordinator.offsetDelete(info(), { groupId: 'none', topics: [] })).errorCode,
    ErrorCode.GROUP_ID_NOT_FOUND,
  );

  const other = new Harness();
  const { leader } = stableGroupOfTwo(other);
  const nonEmpty = other.drive(other.coordinator.deleteGroups(info(), [GROUP, 'missing', '']));
  assert.deepEqual(
    nonEmpty.map((r) => r.errorCode),
    [ErrorCode.NON_EMPTY_GROUP, ErrorCode.GROUP_ID_NOT_FOUND, ErrorCode.INVALID_GROUP_ID],
  );
  // OffsetDelete on a non-empty consumer group protects subscribed topics only.
  other.commit(leader, 1, 3n, 0, 'unsubscribed');
  const protectedDel = other.drive(
    other.coordinator.offsetDelete(info(), {
      groupId: GROUP,
      topics: [{ name: 'unsubscribed', partitions: [{ partitionIndex: 0 }] }],
    }),
  );
  assert.equal(
    protectedDel.errorCode,
    ErrorCode.NON_EMPTY_GROUP,
    'subscriptions that do not decode protect every offset',
  );

  const deleted = h.drive(h.coordinator.deleteGroups(info(), [GROUP]));
  assert.equal(deleted[0]!.errorCode, ErrorCode.NONE);
  assert.equal(h.state(), undefined);
  const tombstones = h.records.slice(-3);
  assert.deepEqual(
    tombstones.map((r) => [r.type, r.value]),
    [
      ['OffsetCommit', null],
      ['OffsetCommit', null],
      ['GroupMetadata', null],
    ],
  );
});

test('DescribeGroups and ListGroups with state and type filters', () => {
  const h = new Harness();
  const { leader } = stableGroupOfTwo(h);
  h.commit('', -1, 1n, 0, 't');
  const d = h.drive(h.coordinator.describeGroups(info(), [GROUP, 'missing']));
  assert.equal(d[0]!.groupState, 'Stable');
  assert.equal(d[0]!.protocolData, 'range');
  assert.equal(d[0]!.members.length, 2);
  assert.equal(d[0]!.members.find((m) => m.memberId === leader)?.memberAssignment.toString(), 'L');
  assert.equal(d[1]!.groupState, 'Dead');
  const list = (states: string[], types: string[]) =>
    h.drive(h.coordinator.listGroups(info(), states, types)).map((g) => g.groupId);
  assert.deepEqual(list([], []), [GROUP]);
  assert.deepEqual(list(['stable'], []), [GROUP]);
  assert.deepEqual(list(['Empty'], []), []);
  assert.deepEqual(list([], ['classic']), [GROUP]);
  assert.deepEqual(list([], ['consumer']), []);
});

test('offsets.retention.minutes: offsets of an empty group expire, then the group is deleted', () => {
  const h = new Harness({ offsetsRetentionMs: 60_000, offsetsRetentionCheckIntervalMs: 10_000 });
  h.coordinator.startRetentionChecks();
  assert.equal(h.commit('', -1, 5n), ErrorCode.NONE);
  h.tick(50_000);
  assert.equal(h.fetchOffset(), 5n);
  h.tick(20_000);
  assert.equal(h.fetchOffset(), -1n);
  assert.equal(h.state(), undefined);
  assert.deepEqual(
    h.records.slice(-2).map((r) => [r.type, r.value]),
    [
      ['OffsetCommit', null],
      ['GroupMetadata', null],
    ],
  );
});

test('replay: a fresh coordinator fed every record has the same groups and offsets', () => {
  const h = new Harness();
  const { leader, follower } = stableGroupOfTwo(h);
  h.commit(leader, 1, 42n, 0);
  h.commit(follower, 1, 43n, 1);
  h.commit(follower, 1, 44n, 1);
  h.drive(
    h.coordinator.offsetCommit(info(8), {
      groupId: 'simple',
      generationIdOrMemberEpoch: -1,
      memberId: '',
      groupInstanceId: null,
      retentionTimeMs: -1n,
      topics: [
        {
          name: 'x',
          partitions: [{ partitionIndex: 3, committedOffset: 9n, committedLeaderEpoch: 2, committedMetadata: 'meta' }],
        },
      ],
    }),
  );
  // Every record survives its byte encoding too.
  const bytesRoundTrip = h.records.map((r) => {
    const e = encodeRecord(r);
    return decodeRecord(e.key, e.value);
  });
  assert.deepEqual(bytesRoundTrip, h.records);

  const fresh = h.replayed();
  assert.deepEqual(fresh.offsets, h.coordinator.offsets);
  const a = classic(h.coordinator);
  const b = classic(fresh);
  assert.equal(b.state, 'Stable');
  assert.equal(b.generationId, a.generationId);
  assert.equal(b.leaderId, a.leaderId);
  assert.equal(b.protocolType, a.protocolType);
  assert.equal(b.protocolName, a.protocolName);
  assert.deepEqual(
    [...b.members.values()].map((m) => [m.memberId, m.assignment.toString(), m.sessionTimeoutMs]),
    [...a.members.values()].map((m) => [m.memberId, m.assignment.toString(), m.sessionTimeoutMs]),
  );
  assert.equal(classic(fresh, 'simple').state, 'Empty');
  // Loaded members resume: the follower syncs and heartbeats against the replayed state.
  const bh = fresh.heartbeat(info(), { groupId: GROUP, memberId: follower, generationId: 1, groupInstanceId: null });
  assert.equal(bh.response, ErrorCode.NONE);
});

test('__consumer_offsets partition: abs(String.hashCode) % partitions, as Kafka computes it', () => {
  assert.equal(javaStringHashCode('hello'), 99162322);
  assert.equal(javaStringHashCode(''), 0);
  assert.equal(javaStringHashCode('polygenelubricants'), -2147483648);
  assert.equal(partitionForGroup('polygenelubricants', 50), 0);
  assert.equal(partitionForGroup('hello', 50), 99162322 % 50);
  assert.equal(partitionForGroup('console-consumer-1', 50), Math.abs(javaStringHashCode('console-consumer-1')) % 50);
});

test('a static member that does not rejoin stays for the next generation until it syncs or times out', () => {
  const h = new Harness();
  const a = h.joinNew({ groupInstanceId: 'i-a', sessionTimeoutMs: 60_000 });
  const b = h.joinNew({ groupInstanceId: 'i-b', sessionTimeoutMs: 60_000 });
  h.tick(0);
  const leader = a.result!.leader;
  h.sync({ memberId: leader, generationId: 1, groupInstanceId: leader === a.result!.memberId ? 'i-a' : 'i-b' });
  const rejoining = leader === a.result!.memberId ? a : b;
  const absent = rejoining === a ? b : a;
  const absentInstance = absent === a ? 'i-a' : 'i-b';
  const again = h.join({ memberId: rejoining.result!.memberId, groupInstanceId: rejoining === a ? 'i-a' : 'i-b' });
  assert.ok(parked(again));
  h.tick(30_000);
  assert.equal(again.result?.generationId, 2, 'the rebalance timeout completes the join without the absent member');
  assert.equal(classic(h.coordinator).hasMember(absent.result!.memberId), true, 'static members are kept');
  assert.equal(h.heartbeat(absent.result!.memberId, 1, absentInstance), ErrorCode.ILLEGAL_GENERATION);
  h.tick(30_000);
  assert.equal(classic(h.coordinator).hasMember(absent.result!.memberId), false, 'removed when it never synced');
});
