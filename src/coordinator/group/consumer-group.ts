/**
 * A KIP-848 consumer group (ConsumerGroupHeartbeat protocol): members with their subscriptions,
 * the group epoch (bumped whenever subscriptions or subscribed topic metadata change), the target
 * assignment computed by the server-side assignor at an assignment epoch, and each member's
 * current assignment as it reconciles towards its target.
 *
 * Everything here is rebuilt from the ConsumerGroup* records (consumer-group-heartbeat.ts
 * applies them); the state is derived, as in Kafka:
 *   Empty       no members
 *   Assigning   groupEpoch > assignmentEpoch (a new target assignment is due)
 *   Reconciling some member has not reached the target assignment epoch
 *   Stable      every member is at the assignment epoch
 */

import { snapshotObject } from './undo-log.ts';

/** topic id -> partitions. */
export type Assignment = Map<string, Set<number>>;

export const MemberState = {
  Stable: 0,
  UnrevokedPartitions: 1,
  UnreleasedPartitions: 2,
  Unknown: 127,
} as const;
export type MemberState = (typeof MemberState)[keyof typeof MemberState];

export class ConsumerGroupMember {
  readonly memberId: string;
  memberEpoch = 0;
  previousMemberEpoch = -1;
  state: MemberState = MemberState.Stable;
  instanceId: string | null = null;
  rackId: string | null = null;
  rebalanceTimeoutMs = -1;
  clientId = '';
  clientHost = '';
  subscribedTopicNames: string[] = [];
  subscribedTopicRegex: string | null = null;
  serverAssignor: string | null = null;
  assignedPartitions: Assignment = new Map();
  partitionsPendingRevocation: Assignment = new Map();

  constructor(memberId: string) {
    this.memberId = memberId;
  }
}

export class ConsumerGroup {
  readonly groupId: string;
  groupEpoch = 0;
  assignmentEpoch = 0;
  readonly members = new Map<string, ConsumerGroupMember>();
  /** member id -> target assignment. */
  readonly targetAssignment = new Map<string, Assignment>();
  /** instance id -> member id (static members). */
  readonly staticMembers = new Map<string, string>();
  /** Subscribed topic metadata the target assignment was computed from: topic name -> (id, partitions). */
  subscriptionMetadata = new Map<string, { topicId: string; numPartitions: number }>();
  /** Set once the group's metadata record was written or replayed (a new group has none). */
  exists = false;

  constructor(groupId: string) {
    this.groupId = groupId;
  }

  /**
   * Captures the group (its fields, members map, target assignment, static members); the
   * returned function puts it back in place (undo). A member's own fields are captured when a
   * replayed record changes them (GroupCoordinator.changing).
   */
  snapshot(): () => void {
    return snapshotObject(this);
  }

  isEmpty(): boolean {
    return this.members.size === 0;
  }

  stateName(): string {
    if (this.members.size === 0) return 'Empty';
    if (this.groupEpoch > this.assignmentEpoch) return 'Assigning';
    for (const m of this.members.values()) {
      if (m.memberEpoch !== this.assignmentEpoch || m.state !== MemberState.Stable) return 'Reconciling';
    }
    return 'Stable';
  }

  /** Topic names the members subscribe to by name or (resolved) regex. */
  subscribedTopicNames(): Set<string> {
    const out = new Set<string>();
    for (const m of this.members.values()) for (const t of m.subscribedTopicNames) out.add(t);
    for (const t of this.subscriptionMetadata.keys()) out.add(t);
    return out;
  }

  /** Which member currently owns (or still has to revoke) each partition. */
  partitionOwners(): Map<string, Map<number, string>> {
    const owners = new Map<string, Map<number, string>>();
    const add = (memberId: string, a: Assignment): void => {
      for (const [topicId, parts] of a) {
        let m = owners.get(topicId);
        if (m === undefined) {
          m = new Map();
          owners.set(topicId, m);
        }
        for (const p of parts) m.set(p, memberId);
      }
    };
    for (const m of this.members.values()) {
      add(m.memberId, m.assignedPartitions);
      add(m.memberId, m.partitionsPendingRevocation);
    }
    return owners;
  }
}
