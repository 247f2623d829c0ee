// The controller's leader election rules (Kafka's PartitionLeaderElectionAlgorithms): a clean
// election takes the first live in-sync replica in replica order; an unclean one any live replica
// when allowed; a partition whose replicas are all gone has no leader; the preferred replica gets
// leadership back when it is live and in sync. Every change bumps the leader epoch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { electLeader } from '../../../src/metadata/controller.ts';
import { NO_LEADER, type PartitionState } from '../../../src/metadata/metadata-store.ts';

const state = (leader: number, isr: number[], replicas = [1, 2, 3]): PartitionState => ({
  replicas,
  leader,
  leaderEpoch: 5,
  isr,
  partitionEpoch: 9,
});
const clean = { unclean: false, preferred: false };

test('a live leader stays', () => {
  assert.equal(electLeader(state(2, [1, 2, 3]), new Set([1, 2, 3]), clean), undefined);
});

test('a leader gone: the first live in-sync replica in replica order, the ISR without the dead', () => {
  assert.deepEqual(electLeader(state(1, [1, 3, 2]), new Set([2, 3]), clean), {
    replicas: [1, 2, 3],
    leader: 2,
    leaderEpoch: 6,
    isr: [3, 2],
  });
});

test('RF 1, its broker gone: no leader, the ISR kept so it is elected cleanly when it returns', () => {
  const gone = electLeader(state(1, [1], [1]), new Set([2, 3]), clean);
  assert.deepEqual(gone, { replicas: [1], leader: NO_LEADER, leaderEpoch: 6, isr: [1] });
  const back = electLeader({ ...gone!, partitionEpoch: 10 }, new Set([1, 2, 3]), clean);
  assert.deepEqual(back, { replicas: [1], leader: 1, leaderEpoch: 7, isr: [1] });
  // Already leaderless and still gone: nothing to write.
  assert.equal(electLeader({ ...gone!, partitionEpoch: 10 }, new Set([2]), clean), undefined);
});

test('no live in-sync replica: leaderless unless unclean.leader.election.enable', () => {
  const s = state(1, [1], [1, 2, 3]);
  assert.equal(electLeader(s, new Set([3]), clean)?.leader, NO_LEADER);
  assert.deepEqual(electLeader(s, new Set([3]), { unclean: true, preferred: false }), {
    replicas: [1, 2, 3],
    leader: 3,
    leaderEpoch: 6,
    isr: [3],
  });
});

test('auto.leader.rebalance.enable: back to the preferred replica once it is live and in sync', () => {
  const s = state(2, [1, 2, 3]);
  assert.equal(electLeader(s, new Set([1, 2, 3]), clean), undefined);
  assert.equal(electLeader(s, new Set([1, 2, 3]), { unclean: false, preferred: true })?.leader, 1);
  // Not in sync: stays where it is.
  assert.equal(electLeader(state(2, [2, 3]), new Set([1, 2, 3]), { unclean: false, preferred: true }), undefined);
});

test('a dead follower leaves the ISR of a partition whose leader is live, the leader epoch unchanged', () => {
  assert.deepEqual(electLeader(state(1, [1, 2, 3]), new Set([1, 3]), clean), {
    replicas: [1, 2, 3],
    leader: 1,
    leaderEpoch: 5,
    isr: [1, 3],
  });
});
