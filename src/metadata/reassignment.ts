/**
 * The partition-state transitions of the admin elections and of KIP-455 reassignments, as
 * Kafka's controller makes them (ReplicationControlManager, PartitionReassignmentReplicas,
 * PartitionChangeBuilder). Pure functions of a partition state and the live brokers: the
 * controller (reassignment-controller.ts) writes what they return by compare-and-swap.
 *
 * A reassignment keeps the partition's replicas as union(target, original) with `addingReplicas`
 * (target minus original) and `removingReplicas` (original minus target) while the added replicas
 * catch up; once every adding replica is in the ISR, the replicas become the target, the ISR loses
 * the removed replicas and a removed (or dead) leader gives way to the first live in-sync target
 * replica with the leader epoch bumped.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { NO_LEADER, type PartitionState, type PartitionStateUpdate } from './metadata-store.ts';

/** ElectLeaders' election types (Kafka's ElectionType). */
export const ElectionType = { PREFERRED: 0, UNCLEAN: 1 } as const;

/** A transition's outcome: the state to write, or the per-partition error to answer. */
export type Transition = { readonly update: PartitionStateUpdate } | { readonly error: KafkaError };

function update(state: PartitionState, change: Partial<PartitionStateUpdate>): Transition {
  return {
    update: {
      replicas: state.replicas,
      leader: state.leader,
      leaderEpoch: state.leaderEpoch,
      isr: state.isr,
      ...change,
    },
  };
}

function fail(code: number, message: string): Transition {
  return { error: new KafkaError(code, message) };
}

export function addingReplicas(state: PartitionState): readonly number[] {
  return state.addingReplicas ?? [];
}

export function removingReplicas(state: PartitionState): readonly number[] {
  return state.removingReplicas ?? [];
}

export function reassigning(state: PartitionState): boolean {
  return addingReplicas(state).length > 0 || removingReplicas(state).length > 0;
}

/**
 * Preferred election (type 0): the first replica leads if it is live and in sync;
 * ELECTION_NOT_NEEDED when it leads already, PREFERRED_LEADER_NOT_AVAILABLE otherwise.
 */
export function preferredElection(state: PartitionState, live: ReadonlySet<number>, name: string): Transition {
  const preferred = state.replicas[0];
  if (preferred !== undefined && state.leader === preferred)
    return fail(ErrorCode.ELECTION_NOT_NEEDED, `the preferred replica ${preferred} already leads ${name}`);
  if (preferred === undefined || !live.has(preferred) || !state.isr.includes(preferred))
    return fail(
      ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
      `the preferred replica ${preferred ?? '(none)'} of ${name} is ${preferred !== undefined && live.has(preferred) ? 'not in the ISR' : 'not live'}`,
    );
  return update(state, { leader: preferred, leaderEpoch: state.leaderEpoch + 1 });
}

/**
 * Unclean election (type 1): only for a partition without a live leader. A live in-sync replica
 * if there is one (a clean election), else any live replica, which becomes the whole ISR (records
 * acknowledged by the lost replicas may be gone); ELIGIBLE_LEADERS_NOT_AVAILABLE if none is live.
 */
export function uncleanElection(state: PartitionState, live: ReadonlySet<number>, name: string): Transition {
  if (state.leader !== NO_LEADER && live.has(state.leader))
    return fail(ErrorCode.ELECTION_NOT_NEEDED, `${name} has a live leader (broker ${state.leader})`);
  const isr = state.isr.filter((r) => live.has(r));
  const inSync = state.replicas.find((r) => isr.includes(r));
  if (inSync !== undefined) return update(state, { leader: inSync, leaderEpoch: state.leaderEpoch + 1, isr });
  const anyLive = state.replicas.find((r) => live.has(r));
  if (anyLive === undefined)
    return fail(
      ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
      `no replica of ${name} is live (${state.replicas.join(',')})`,
    );
  return update(state, { leader: anyLive, leaderEpoch: state.leaderEpoch + 1, isr: [anyLive] });
}

/** The replicas before the reassignment in progress (all of them when there is none). */
export function originalReplicas(state: PartitionState): number[] {
  const adding = addingReplicas(state);
  return state.replicas.filter((r) => !adding.includes(r));
}

/**
 * INVALID_REPLICA_ASSIGNMENT unless `target` is a usable replica list: not empty, no duplicates,
 * every broker registered (Kafka's validateManualPartitionAssignment).
 */
export function checkTarget(target: readonly number[], registered: ReadonlySet<number>, name: string): void {
  if (target.length === 0)
    throw new KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, `the target replicas of ${name} are empty`);
  if (new Set(target).size !== target.length)
    throw new KafkaError(
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      `the target replicas of ${name} name a broker twice: ${target.join(',')}`,
    );
  const unknown = target.filter((r) => !registered.has(r));
  if (unknown.length > 0)
    throw new KafkaError(
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      `the target replicas of ${name} include broker(s) ${unknown.join(',')}, which are not registered`,
    );
}

/**
 * Starts (or replaces) a reassignment to `target`: replicas := target followed by the original
 * replicas not in it. A replica that was being added for an earlier target and is not in this one
 * leaves at once (replicas and ISR). Completes at once when nothing needs to catch up.
 */
export function startReassignment(
  state: PartitionState,
  target: readonly number[],
  live: ReadonlySet<number>,
  name: string,
): Transition {
  const original = originalReplicas(state);
  const replicas = [...target, ...original.filter((r) => !target.includes(r))];
  const adding = target.filter((r) => !original.includes(r));
  const removing = original.filter((r) => !target.includes(r));
  const isr = state.isr.filter((r) => replicas.includes(r));
  // Only replicas being added for an earlier target are in sync: dropping them loses the data.
  if (isr.length === 0)
    return fail(
      ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      `${name}: no in-sync replica (${state.isr.join(',')}) would be left among ${replicas.join(',')}`,
    );
  let leader = state.leader;
  let leaderEpoch = state.leaderEpoch;
  if (leader !== NO_LEADER && !replicas.includes(leader)) {
    // The leader was an adding replica of the earlier target: the first live in-sync replica leads.
    leader = replicas.find((r) => live.has(r) && isr.includes(r)) ?? NO_LEADER;
    leaderEpoch++;
  }
  const next: PartitionState = {
    replicas,
    leader,
    leaderEpoch,
    isr,
    partitionEpoch: state.partitionEpoch,
    addingReplicas: adding,
    removingReplicas: removing,
  };
  const done = completeReassignment(next, live);
  if (done !== undefined) return done;
  return update(state, { replicas, leader, leaderEpoch, isr, addingReplicas: adding, removingReplicas: removing });
}

/**
 * Ends a reassignment whose adding replicas are all in the ISR: replicas := target (the replicas
 * not being removed), the removed leave the ISR, and a leader that is removed or dead gives way to
 * the first live in-sync target replica (epoch bumped). Undefined while still catching up, or when
 * no target replica is in sync yet.
 */
export function completeReassignment(state: PartitionState, live: ReadonlySet<number>): Transition | undefined {
  if (!reassigning(state)) return undefined;
  const adding = addingReplicas(state);
  const removing = removingReplicas(state);
  if (!adding.every((r) => state.isr.includes(r))) return undefined;
  const target = state.replicas.filter((r) => !removing.includes(r));
  const isr = state.isr.filter((r) => target.includes(r));
  if (isr.length === 0) return undefined;
  let leader = state.leader;
  let leaderEpoch = state.leaderEpoch;
  if (!target.includes(leader) || !live.has(leader)) {
    leader = target.find((r) => live.has(r) && isr.includes(r)) ?? NO_LEADER;
    leaderEpoch++;
  } else if (removing.length > 0) {
    // Replicas removed: a new epoch fences the removed replicas' fetches (Kafka bumps it when
    // the replica set shrinks) and restarts the leader's follower tracking on the new set.
    leaderEpoch++;
  }
  return update(state, { replicas: target, leader, leaderEpoch, isr, addingReplicas: [], removingReplicas: [] });
}

/**
 * Cancels the reassignment in progress (AlterPartitionReassignments with null replicas): back to
 * the original replicas; the adding ones leave (replicas and ISR), a leader among them gives way
 * to the first live in-sync original replica. NO_REASSIGNMENT_IN_PROGRESS when there is none.
 */
export function cancelReassignment(state: PartitionState, live: ReadonlySet<number>, name: string): Transition {
  if (!reassigning(state))
    return fail(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, `no reassignment of ${name} is in progress`);
  const adding = addingReplicas(state);
  const replicas = originalReplicas(state);
  const isr = state.isr.filter((r) => !adding.includes(r));
  if (isr.length === 0)
    return fail(
      ErrorCode.REASSIGNMENT_IN_PROGRESS,
      `cannot cancel the reassignment of ${name}: none of its original replicas (${replicas.join(',')}) is in sync`,
    );
  let leader = state.leader;
  let leaderEpoch = state.leaderEpoch;
  if (adding.includes(leader)) {
    leader = replicas.find((r) => live.has(r) && isr.includes(r)) ?? NO_LEADER;
    leaderEpoch++;
  } else if (adding.length > 0) {
    leaderEpoch++;
  }
  return update(state, { replicas, leader, leaderEpoch, isr, addingReplicas: [], removingReplicas: [] });
}
