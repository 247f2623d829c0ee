// Random sequences of classic and KIP-848 requests and clock ticks (seeded, so a failure
// reproduces), with the coordinator's invariants checked after every step, and replay
// equivalence of the offsets and KIP-848 groups at the end. The same runs again with a third of
// the appends to __consumer_offsets failing: every failed operation must leave the state exactly
// as before it (the harness compares), and at the end the state must still be what the records
// that were appended replay to (issue 11 item 3: never hold state the log does not).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClassicGroup } from '../../../../src/coordinator/group/classic-group.ts';
import { ConsumerGroup } from '../../../../src/coordinator/group/consumer-group.ts';
import type { GroupCoordinator } from '../../../../src/coordinator/group/group-coordinator.ts';
import { GROUP, Harness, info } from './harness.ts';

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function checkClassic(c: GroupCoordinator): void {
  for (const g of c.groups.values()) {
    if (!(g instanceof ClassicGroup)) continue;
    for (const id of g.pendingMembers) assert.ok(!g.members.has(id), 'a pending member is not a member');
    for (const [instance, id] of g.staticMembers) assert.equal(g.members.get(id)?.groupInstanceId, instance);
    for (const m of g.members.values()) {
      if (m.groupInstanceId !== null) assert.equal(g.staticMembers.get(m.groupInstanceId), m.memberId);
    }
    assert.ok(g.leaderId === null || g.members.has(g.leaderId), 'the leader is a member');
    if (g.isInState('Stable', 'CompletingRebalance')) assert.ok(g.size > 0, `${g.state} with no member`);
    if (g.isInState('Empty')) assert.equal(g.size, 0, 'Empty with members');
    if (!g.isInState('CompletingRebalance')) {
      for (const m of g.members.values()) assert.equal(m.isAwaitingSync, false, `parked sync in ${g.state}`);
    }
  }
}

function checkConsumer(c: GroupCoordinator): void {
  for (const g of c.groups.values()) {
    if (!(g instanceof ConsumerGroup)) continue;
    // No partition is owned (assigned or pending revocation) by two members at once.
    const seen = new Set<string>();
    for (const m of g.members.values()) {
      for (const a of [m.assignedPartitions, m.partitionsPendingRevocation]) {
        for (const [t, parts] of a) {
          for (const p of parts) {
            const k = `${t}:${p}`;
            assert.ok(!seen.has(k), `${k} owned twice`);
            seen.add(k);
          }
        }
      }
      assert.ok(m.memberEpoch <= g.groupEpoch, 'member epoch beyond the group epoch');
    }
    assert.ok(g.assignmentEpoch <= g.groupEpoch);
  }
}

function classicRuns(failing: boolean): { states: Set<string>; reverted: number } {
  const states = new Set<string>();
  let reverted = 0;
  // Failures need more runs to reach rarer paths (a parked SyncGroup undone by a rebalance).
  for (let seed = 1; seed <= (failing ? 300 : 30); seed++) {
    const r = rng(seed);
    const h = new Harness({ groupInitialRebalanceDelayMs: r() < 0.5 ? 0 : 1000, groupMaxSize: 4 });
    const fails = rng(seed + 1000);
    if (failing) {
      h.failAppends = () => fails() < 1 / 3;
      h.batchMore = () => fails() < 0.6;
    }
    const known: { memberId: string; instance: string | null; generation: number }[] = [];
    const parked: {
      p: { result: { errorCode: number; memberId: string; generationId: number } | undefined };
      instance: string | null;
    }[] = [];
    for (let step = 0; step < 300; step++) {
      // Joins answered since the last step give the test members to act as.
      for (let i = parked.length - 1; i >= 0; i--) {
        const { p, instance } = parked[i]!;
        if (p.result === undefined) continue;
        parked.splice(i, 1);
        if (p.result.errorCode === 0)
          known.push({ memberId: p.result.memberId, instance, generation: p.result.generationId });
      }
      const x = r();
      const pick = known[Math.floor(r() * known.length)];
      if (x < 0.2) {
        const instance = r() < 0.3 ? `i${Math.floor(r() * 3)}` : null;
        const p = h.joinNew(
          { groupInstanceId: instance, sessionTimeoutMs: 6000, rebalanceTimeoutMs: 8000 },
          r() < 0.5 ? 5 : 3,
        );
        parked.push({ p, instance });
      } else if (x < 0.35 && pick !== undefined) {
        const p = h.join({ memberId: pick.memberId, groupInstanceId: pick.instance });
        if (p.result?.errorCode === 0) pick.generation = p.result.generationId;
      } else if (x < 0.5 && pick !== undefined) {
        const g = h.coordinator.groups.get(GROUP);
        const generation = g instanceof ClassicGroup ? g.generationId : pick.generation;
        h.sync({
          memberId: pick.memberId,
          generationId: generation,
          groupInstanceId: pick.instance,
          assignments:
            g instanceof ClassicGroup
              ? [...g.members.keys()].map((memberId) => ({ memberId, assignment: Buffer.from(memberId) }))
              : [],
        });
      } else if (x < 0.7 && pick !== undefined) {
        const g = h.coordinator.groups.get(GROUP);
        h.heartbeat(pick.memberId, g instanceof ClassicGroup ? g.generationId : 0, pick.instance);
      } else if (x < 0.75 && pick !== undefined) {
        h.op(() =>
          h.coordinator.leaveGroup(info(), {
            groupId: GROUP,
            members: [{ memberId: pick.memberId, groupInstanceId: pick.instance }],
          }),
        );
      } else if (x < 0.85) {
        const g = h.coordinator.groups.get(GROUP);
        h.commit(
          pick?.memberId ?? '',
          g instanceof ClassicGroup && pick !== undefined ? g.generationId : -1,
          BigInt(step),
          step % 3,
        );
      } else {
        h.tick(Math.floor(r() * 4000));
      }
      checkClassic(h.coordinator);
      const state = h.state();
      if (state !== undefined) states.add(state);
    }
    h.settle();
    const fresh = h.replayed();
    assert.deepEqual(fresh.offsets, h.coordinator.offsets, `seed ${seed}: offsets replay`);
    const a = h.coordinator.groups.get(GROUP);
    const b = fresh.groups.get(GROUP);
    if (a instanceof ClassicGroup && b instanceof ClassicGroup && a.isInState('Stable')) {
      // What a Stable group's last snapshot record says is what the coordinator holds.
      assert.equal(b.generationId, a.generationId, `seed ${seed}: generation replay`);
      assert.deepEqual(
        [...b.members.values()].map((m) => [m.memberId, m.assignment]),
        [...a.members.values()].map((m) => [m.memberId, m.assignment]),
        `seed ${seed}: members replay`,
      );
    }
    reverted += h.reverted;
  }
  return { states, reverted };
}

test('classic groups: random joins, syncs, heartbeats, leaves, commits and timeouts keep the invariants', () => {
  const { states } = classicRuns(false);
  assert.deepEqual([...states].sort(), ['CompletingRebalance', 'Empty', 'PreparingRebalance', 'Stable']);
});

test('classic groups: operations whose append fails are undone exactly, and the state stays what the log holds', () => {
  const { states, reverted } = classicRuns(true);
  assert.ok(reverted > 50, `only ${reverted} failed appends`);
  assert.deepEqual([...states].sort(), ['CompletingRebalance', 'Empty', 'PreparingRebalance', 'Stable']);
});

function consumerRuns(failing: boolean): { states: Set<string>; reverted: number } {
  const states = new Set<string>();
  let reverted = 0;
  for (let seed = 1; seed <= (failing ? 100 : 30); seed++) {
    const r = rng(seed);
    const h = new Harness({ consumerGroupSessionTimeoutMs: 6000 });
    const fails = rng(seed + 1000);
    if (failing) {
      h.failAppends = () => fails() < 1 / 3;
      h.batchMore = () => fails() < 0.6;
    }
    h.addTopic('a', 1 + Math.floor(r() * 6));
    h.addTopic('b', 1 + Math.floor(r() * 6));
    const ids = ['m1', 'm2', 'm3', 'm4'];
    for (let step = 0; step < 300; step++) {
      const x = r();
      const id = ids[Math.floor(r() * ids.length)]!;
      const g = h.coordinator.groups.get(GROUP);
      const m = g instanceof ConsumerGroup ? g.members.get(id) : undefined;
      const owned =
        m === undefined ? [] : [...m.assignedPartitions].map(([topicId, p]) => ({ topicId, partitions: [...p] }));
      const base = {
        groupId: GROUP,
        memberId: id,
        instanceId: null,
        rackId: null,
        subscribedTopicRegex: null,
        serverAssignor: r() < 0.8 ? null : r() < 0.5 ? 'range' : 'uniform',
      };
      if (x < 0.2 || m === undefined) {
        h.op(() =>
          h.coordinator.consumerGroupHeartbeat(info(1), {
            ...base,
            memberEpoch: 0,
            rebalanceTimeoutMs: 5000,
            subscribedTopicNames: r() < 0.7 ? ['a', 'b'] : ['a'],
            topicPartitions: [],
          }),
        );
      } else if (x < 0.8) {
        // The member acknowledges what it was told, or (sometimes) keeps revoked partitions longer.
        const keep = r() < 0.2;
        const stillOwned = keep
          ? [...owned, ...[...m.partitionsPendingRevocation].map(([topicId, p]) => ({ topicId, partitions: [...p] }))]
          : owned;
        h.op(() =>
          h.coordinator.consumerGroupHeartbeat(info(1), {
            ...base,
            memberEpoch: m.memberEpoch,
            rebalanceTimeoutMs: -1,
            subscribedTopicNames: null,
            topicPartitions: stillOwned,
          }),
        );
      } else if (x < 0.85) {
        h.op(() =>
          h.coordinator.consumerGroupHeartbeat(info(1), {
            ...base,
            memberEpoch: -1,
            rebalanceTimeoutMs: -1,
            subscribedTopicNames: null,
            topicPartitions: null,
          }),
        );
      } else if (x < 0.9) {
        h.addTopic(r() < 0.5 ? 'a' : 'b', 1 + Math.floor(r() * 8));
      } else {
        h.tick(Math.floor(r() * 3000));
      }
      checkConsumer(h.coordinator);
      const state = h.state();
      if (state !== undefined) states.add(state);
    }
    h.settle();
    const fresh = h.replayed();
    const a = h.coordinator.groups.get(GROUP);
    const b = fresh.groups.get(GROUP);
    if (a instanceof ConsumerGroup) {
      assert.ok(b instanceof ConsumerGroup, `seed ${seed}`);
      assert.deepEqual(b.members, a.members, `seed ${seed}: members replay`);
      assert.deepEqual(b.targetAssignment, a.targetAssignment, `seed ${seed}: target replay`);
      assert.equal(b.groupEpoch, a.groupEpoch);
      assert.equal(b.assignmentEpoch, a.assignmentEpoch);
    } else {
      assert.ok(!(b instanceof ConsumerGroup), `seed ${seed}: a consumer group only the log holds`);
    }
    reverted += h.reverted;
  }
  return { states, reverted };
}

test('KIP-848 groups: random heartbeats, acknowledgements, leaves and timeouts keep the invariants', () => {
  const { states } = consumerRuns(false);
  assert.deepEqual([...states].sort(), ['Assigning', 'Empty', 'Reconciling', 'Stable']);
});

test('KIP-848 groups: heartbeats whose append fails are undone exactly, and the state stays what the log holds', () => {
  const { states, reverted } = consumerRuns(true);
  assert.ok(reverted > 50, `only ${reverted} failed appends`);
  assert.deepEqual([...states].sort(), ['Assigning', 'Empty', 'Reconciling', 'Stable']);
});
