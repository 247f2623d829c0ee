/**
 * A classic group (JoinGroup/SyncGroup/Heartbeat/LeaveGroup protocol): its members, generation,
 * selected protocol and leader, and the bookkeeping of a rebalance in progress. Owned by the
 * GroupCoordinator, which is the only code that changes it; this file holds the data and the
 * pure queries Kafka's ClassicGroup offers (protocol support, protocol election, subscriptions).
 *
 * States (Kafka's ClassicGroupState), and what moves a group between them:
 *   Empty               -> PreparingRebalance   first JoinGroup
 *   PreparingRebalance  -> CompletingRebalance  every member rejoined, or the rebalance timeout
 *   PreparingRebalance  -> Empty                the join phase ended with no member left
 *   CompletingRebalance -> Stable               the leader's SyncGroup carried the assignment
 *   CompletingRebalance -> PreparingRebalance   a member left/died/changed, or a sync timeout
 *   Stable              -> PreparingRebalance   a member joins, leaves, dies or changes protocols
 *   any                 -> Dead                 DeleteGroups, or the group's offsets all expired
 * Invariants: a member is in `members` or in `pendingMembers` (KIP-394), never both; every
 * static member has exactly one entry in `staticMembers`; `leaderId` is a member or null.
 */
import { readConsumerProtocolAssignment } from '../../protocol/messages/data/consumer-protocol-assignment.ts';
import { readConsumerProtocolSubscription } from '../../protocol/messages/data/consumer-protocol-subscription.ts';
import { Reader } from '../../protocol/reader.ts';
import { snapshotObject } from './undo-log.ts';

export const ClassicGroupState = {
  Empty: 'Empty',
  PreparingRebalance: 'PreparingRebalance',
  CompletingRebalance: 'CompletingRebalance',
  Stable: 'Stable',
  Dead: 'Dead',
} as const;
export type ClassicGroupState = (typeof ClassicGroupState)[keyof typeof ClassicGroupState];

export interface ClassicProtocol {
  name: string;
  metadata: Buffer;
}

/** What a parked JoinGroup receives once the join phase completes (or fails). */
export interface JoinGroupResult {
  errorCode: number;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string;
  skipAssignment: boolean;
  memberId: string;
  members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
}

/** What a parked SyncGroup receives once the leader's assignment is in (or the rebalance failed). */
export interface SyncGroupResult {
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Buffer;
}

export type JoinSink = (result: JoinGroupResult) => void;
export type SyncSink = (result: SyncGroupResult) => void;

export class ClassicGroupMember {
  memberId: string;
  readonly groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  rebalanceTimeoutMs: number;
  sessionTimeoutMs: number;
  protocolType: string;
  protocols: ClassicProtocol[];
  assignment: Buffer = Buffer.alloc(0);
  /** Set while the member's JoinGroup is parked. */
  joinSink: JoinSink | undefined;
  /** Set while the member's SyncGroup is parked. */
  syncSink: SyncSink | undefined;
  /** True until the member's first join phase completes (Kafka's isNew). */
  isNew = true;

  constructor(init: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    rebalanceTimeoutMs: number;
    sessionTimeoutMs: number;
    protocolType: string;
    protocols: ClassicProtocol[];
  }) {
    this.memberId = init.memberId;
    this.groupInstanceId = init.groupInstanceId;
    this.clientId = init.clientId;
    this.clientHost = init.clientHost;
    this.rebalanceTimeoutMs = init.rebalanceTimeoutMs;
    this.sessionTimeoutMs = init.sessionTimeoutMs;
    this.protocolType = init.protocolType;
    this.protocols = init.protocols;
  }

  get isAwaitingJoin(): boolean {
    return this.joinSink !== undefined;
  }

  get isAwaitingSync(): boolean {
    return this.syncSink !== undefined;
  }

  get isStatic(): boolean {
    return this.groupInstanceId !== null;
  }

  metadataFor(protocolName: string): Buffer {
    return this.protocols.find((p) => p.name === protocolName)?.metadata ?? Buffer.alloc(0);
  }

  /** Same protocol names and metadata, in the same order (Kafka's `matches`). */
  protocolsMatch(protocols: readonly ClassicProtocol[]): boolean {
    if (protocols.length !== this.protocols.length) return false;
    return protocols.every(
      (p, i) => p.name === this.protocols[i]!.name && p.metadata.equals(this.protocols[i]!.metadata),
    );
  }

  /** The first of this member's protocols (its preference order) that is among `candidates`. */
  vote(candidates: ReadonlySet<string>): string | undefined {
    return this.protocols.find((p) => candidates.has(p.name))?.name;
  }
}

export class ClassicGroup {
  readonly groupId: string;
  state: ClassicGroupState = ClassicGroupState.Empty;
  previousState: ClassicGroupState = ClassicGroupState.Empty;
  /** When the group last changed state (GroupMetadataValue.currentStateTimestamp). */
  stateTimestamp: number;
  generationId = 0;
  protocolType: string | null = null;
  protocolName: string | null = null;
  leaderId: string | null = null;
  readonly members = new Map<string, ClassicGroupMember>();
  /** group.instance.id -> member id. */
  readonly staticMembers = new Map<string, string>();
  /** Member ids handed out by the KIP-394 handshake that have not joined with them yet. */
  readonly pendingMembers = new Set<string>();
  /** Members of the current generation that have not sent SyncGroup yet. */
  readonly pendingSyncMembers = new Set<string>();
  /** Set when a member joins during the initial rebalance delay (extends the delay). */
  newMemberAdded = false;

  constructor(groupId: string, now: number) {
    this.groupId = groupId;
    this.stateTimestamp = now;
  }

  /**
   * Captures the group (its fields, and which members, static members, pending members it
   * has); the returned function puts it back in place (undo). A member's own fields are
   * captured when an operation changes them (GroupCoordinator.changing), so an operation pays
   * for the members it changes, not for every member.
   */
  snapshot(): () => void {
    return snapshotObject(this);
  }

  transitionTo(state: ClassicGroupState, now: number): void {
    this.previousState = this.state;
    this.state = state;
    this.stateTimestamp = now;
  }

  isInState(...states: ClassicGroupState[]): boolean {
    return states.includes(this.state);
  }

  get size(): number {
    return this.members.size;
  }

  hasMember(memberId: string): boolean {
    return this.members.has(memberId);
  }

  staticMemberId(groupInstanceId: string | null): string | undefined {
    return groupInstanceId === null ? undefined : this.staticMembers.get(groupInstanceId);
  }

  isLeader(memberId: string): boolean {
    return this.leaderId === memberId;
  }

  addMember(member: ClassicGroupMember): void {
    if (this.members.size === 0) this.protocolType = member.protocolType;
    if (this.leaderId === null) this.leaderId = member.memberId;
    this.members.set(member.memberId, member);
    if (member.groupInstanceId !== null) this.staticMembers.set(member.groupInstanceId, member.memberId);
    if (this.state === ClassicGroupState.PreparingRebalance && this.generationId === 0) this.newMemberAdded = true;
  }

  removeMember(memberId: string): ClassicGroupMember | undefined {
    const member = this.members.get(memberId);
    if (member === undefined) return undefined;
    this.members.delete(memberId);
    if (member.groupInstanceId !== null) this.staticMembers.delete(member.groupInstanceId);
    this.pendingSyncMembers.delete(memberId);
    if (this.leaderId === memberId) this.leaderId = this.members.keys().next().value ?? null;
    return member;
  }

  /** Protocols every member supports. */
  candidateProtocols(): Set<string> {
    const counts = new Map<string, number>();
    for (const m of this.members.values())
      for (const p of m.protocols) counts.set(p.name, (counts.get(p.name) ?? 0) + 1);
    const out = new Set<string>();
    for (const [name, n] of counts) if (n === this.members.size) out.add(name);
    return out;
  }

  /** Whether a member with these protocols may join (Kafka's supportsProtocols). */
  supportsProtocols(protocolType: string, protocols: readonly ClassicProtocol[]): boolean {
    if (this.members.size === 0) return protocolType !== '' && protocols.length > 0;
    if (protocolType !== this.protocolType) return false;
    const candidates = this.candidateProtocols();
    return protocols.some((p) => candidates.has(p.name));
  }

  /** The protocol most members prefer among those all support (Kafka's selectProtocol). */
  selectProtocol(): string | null {
    const candidates = this.candidateProtocols();
    if (candidates.size === 0) return null;
    const votes = new Map<string, number>();
    for (const m of this.members.values()) {
      const v = m.vote(candidates);
      if (v !== undefined) votes.set(v, (votes.get(v) ?? 0) + 1);
    }
    let best: string | null = null;
    let bestVotes = -1;
    for (const [name, n] of votes) {
      if (n > bestVotes) {
        best = name;
        bestVotes = n;
      }
    }
    return best;
  }

  /** The longest rebalance timeout of the members: how long a join phase may last. */
  rebalanceTimeoutMs(): number {
    let max = 0;
    for (const m of this.members.values()) max = Math.max(max, m.rebalanceTimeoutMs);
    return max;
  }

  hasAllMembersJoined(): boolean {
    for (const m of this.members.values()) if (!m.isAwaitingJoin) return false;
    return this.pendingMembers.size === 0;
  }

  /**
   * The topics the members subscribe to, when the group uses the consumer protocol and every
   * subscription decodes; undefined when unknown (then no offset may be deleted as unused).
   */
  subscribedTopics(): Set<string> | undefined {
    if (this.protocolType !== 'consumer') return undefined;
    if (this.members.size === 0) return new Set();
    if (this.protocolName === null) return undefined;
    const topics = new Set<string>();
    for (const m of this.members.values()) {
      const s = decodeSubscription(m.metadataFor(this.protocolName));
      if (s === undefined) return undefined;
      for (const t of s) topics.add(t);
    }
    return topics;
  }
}

/** The topics of a ConsumerProtocolSubscription (int16 version + struct), or undefined. */
export function decodeSubscription(metadata: Buffer): string[] | undefined {
  try {
    const r = new Reader(metadata);
    const version = r.int16();
    return readConsumerProtocolSubscription(r, Math.min(version, 3)).topics;
  } catch {
    return undefined;
  }
}

/** The partitions of a ConsumerProtocolAssignment (int16 version + struct), or undefined. */
export function assignedPartitionCount(assignment: Buffer): number | undefined {
  if (assignment.length === 0) return 0;
  try {
    const r = new Reader(assignment);
    const version = r.int16();
    let n = 0;
    for (const tp of readConsumerProtocolAssignment(r, Math.min(version, 3)).assignedPartitions) {
      n += tp.partitions.length;
    }
    return n;
  } catch {
    return undefined;
  }
}

/**
 * How much the leader assigned, for the rebalance's log line: partitions (consumer protocol), or
 * the assignments' bytes when the protocol is another one (Connect, Streams' own metadata aside).
 */
export function assignmentSizes(group: ClassicGroup): { assignedPartitions: number } | { assignmentBytes: number } {
  let partitions = 0;
  let bytes = 0;
  let decodable = group.protocolType === 'consumer';
  for (const m of group.members.values()) {
    bytes += m.assignment.length;
    if (!decodable) continue;
    const n = assignedPartitionCount(m.assignment);
    if (n === undefined) decodable = false;
    else partitions += n;
  }
  return decodable ? { assignedPartitions: partitions } : { assignmentBytes: bytes };
}
