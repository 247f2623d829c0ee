// The partition-state transitions of ElectLeaders and KIP-455 reassignments, as Kafka's
// controller makes them: preferred and unclean elections with their "not needed" and
// "not available" answers; a reassignment's union of replicas with adding/removing, its
// completion once the adding replicas are in sync (leader moved off a removed broker, epoch
// bumped), a replaced target and a cancellation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NO_LEADER, type PartitionState } from '../../../src/metadata/metadata-store.ts';
import {
  cancelReassignment,
  checkTarget,
  completeReassignment,
  preferredElection,
  startReassignment,
  type Transition,
  uncleanElection,
} from '../../../src/metadata/reassignment.ts';
import { ErrorCode, KafkaError } from '../../../src/protocol/error-codes.ts';

const state = (s: Partial<PartitionState>): PartitionState => ({
  replicas: [1, 2, 3],
  leader: 1,
  leaderEpoch: 5,
  isr: [1, 2, 3],
  partitionEpoch: 9,
  ...s,
});
const all = new Set([1, 2, 3, 4]);

function errorOf(t: Transition | undefined): number | undefined {
  return t !== undefined && 'error' in t ? t.error.errorCode : undefined;
}
function updateOf(t: Transition | undefined) {
  if (t === undefined || 'error' in t) throw new Error(`no update: ${t === undefined ? 'none' : t.error.message}`);
  return t.update;
}

test('preferred election: the first replica when live and in sync, epoch bumped', () => {
  assert.deepEqual(updateOf(preferredElection(state({ leader: 2, isr: [2, 1] }), all, 't-0')), {
    replicas: [1, 2, 3],
    leader: 1,
    leaderEpoch: 6,
    isr: [2, 1],
  });
  assert.equal(errorOf(preferredElection(state({}), all, 't-0')), ErrorCode.ELECTION_NOT_NEEDED);
  assert.equal(
    errorOf(preferredElection(state({ leader: 2, isr: [2, 3] }), all, 't-0')),
    ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
  );
  assert.equal(
    errorOf(preferredElection(state({ leader: 2 }), new Set([2, 3]), 't-0')),
    ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
  );
});

test('unclean election: only without a live leader; in-sync first, else any live replica alone in the ISR', () => {
  assert.equal(errorOf(uncleanElection(state({}), all, 't-0')), ErrorCode.ELECTION_NOT_NEEDED);
  assert.deepEqual(updateOf(uncleanElection(state({ leader: NO_LEADER, isr: [1] }), new Set([2, 3]), 't-0')), {
    replicas: [1, 2, 3],
    leader: 2,
    leaderEpoch: 6,
    isr: [2],
  });
  assert.deepEqual(updateOf(uncleanElection(state({ leader: 1, isr: [1, 3] }), new Set([2, 3]), 't-0')).leader, 3);
  assert.equal(
    errorOf(uncleanElection(state({ leader: NO_LEADER }), new Set([4]), 't-0')),
    ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
  );
});

test('a reassignment holds the union of target and original replicas until the adding ones are in sync', () => {
  const start = updateOf(startReassignment(state({ replicas: [1, 2], isr: [1, 2] }), [2, 3], all, 't-0'));
  assert.deepEqual(start, {
    replicas: [2, 3, 1],
    leader: 1,
    leaderEpoch: 5,
    isr: [1, 2],
    addingReplicas: [3],
    removingReplicas: [1],
  });
  const moving = state({ ...start, partitionEpoch: 10 });
  assert.equal(completeReassignment(moving, all), undefined, 'broker 3 not in sync yet');
  // Broker 3 joined the ISR: the replicas become the target, broker 1 (the leader) gives way to 2.
  assert.deepEqual(updateOf(completeReassignment({ ...moving, isr: [1, 2, 3] }, all)), {
    replicas: [2, 3],
    leader: 2,
    leaderEpoch: 6,
    isr: [2, 3],
    addingReplicas: [],
    removingReplicas: [],
  });
});

test('a target within the current replicas completes at once; a new target replaces the earlier one', () => {
  assert.deepEqual(updateOf(startReassignment(state({}), [3, 2], all, 't-0')), {
    replicas: [3, 2],
    leader: 3,
    leaderEpoch: 6,
    isr: [2, 3],
    addingReplicas: [],
    removingReplicas: [],
  });
  const moving = state({ replicas: [2, 3, 1], isr: [1, 2], addingReplicas: [3], removingReplicas: [1] });
  // Original replicas [1, 2]; the new target [4, 2] drops the adding broker 3 at once.
  assert.deepEqual(updateOf(startReassignment(moving, [4, 2], all, 't-0')), {
    replicas: [4, 2, 1],
    leader: 1,
    leaderEpoch: 5,
    isr: [1, 2],
    addingReplicas: [4],
    removingReplicas: [1],
  });
});

test('cancelling goes back to the original replicas; nothing to cancel is NO_REASSIGNMENT_IN_PROGRESS', () => {
  const moving = state({ replicas: [2, 3, 1], isr: [1, 2, 3], addingReplicas: [3], removingReplicas: [1] });
  assert.deepEqual(updateOf(cancelReassignment(moving, all, 't-0')), {
    replicas: [2, 1],
    leader: 1,
    leaderEpoch: 6,
    isr: [1, 2],
    addingReplicas: [],
    removingReplicas: [],
  });
  assert.equal(errorOf(cancelReassignment(state({}), all, 't-0')), ErrorCode.NO_REASSIGNMENT_IN_PROGRESS);
});

test('a target must be non-empty, without duplicates, on registered brokers', () => {
  const registered = new Set([1, 2, 3]);
  for (const bad of [[], [1, 1], [1, 9]]) {
    assert.throws(
      () => checkTarget(bad, registered, 't-0'),
      (err: unknown) => err instanceof KafkaError && err.errorCode === ErrorCode.INVALID_REPLICA_ASSIGNMENT,
    );
  }
  checkTarget([3, 1], registered, 't-0');
});
