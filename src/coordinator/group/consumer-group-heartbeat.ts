/**
 * KIP-848 consumer groups inside the GroupCoordinator, after Kafka's GroupMetadataManager:
 * ConsumerGroupHeartbeat (join, heartbeat, subscription changes, leave), ConsumerGroupDescribe,
 * session and revocation timeouts, and the replay of the ConsumerGroup* records.
 *
 * Each heartbeat:
 *  1. validates the request and the member epoch (FENCED_MEMBER_EPOCH unless it is the current
 *     epoch, or the previous one with owned partitions that are a subset of the assignment: the
 *     response carrying the bump may have been lost);
 *  2. records subscription changes (ConsumerGroupMemberMetadata) and subscribed topic metadata
 *     changes (ConsumerGroupPartitionMetadata); either bumps the group epoch
 *     (ConsumerGroupMetadata);
 *  3. when the group epoch is ahead of the assignment epoch, runs the server-side assignor and
 *     records the new target (ConsumerGroupTargetAssignmentMember/Metadata);
 *  4. reconciles the member towards its target, revoking before assigning: partitions to give up
 *     are withheld first (state UNREVOKED_PARTITIONS, epoch unchanged) until the member's owned
 *     partitions no longer include them; new partitions are handed out only once no other member
 *     still owns them (UNRELEASED_PARTITIONS), with the epoch bumped to the assignment epoch
 *     (ConsumerGroupCurrentMemberAssignment).
 * State changes go through records replayed at once, so loading the topic rebuilds the same state;
 * replay snapshots the group first, so the runtime can undo an operation whose append failed.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, KafkaError } from '../../protocol/error-codes.ts';
import { ASSIGNORS } from './assignors.ts';
import { ClassicGroup } from './classic-group.ts';
import { type Assignment, ConsumerGroup, ConsumerGroupMember, MemberState } from './consumer-group.ts';
import type { CoordinatorRecord } from './coordinator-records.ts';
import type { GroupCoordinator, RequestInfo } from './group-coordinator.ts';

export interface TopicInfo {
  name: string;
  topicId: string;
  partitions: number;
}

/** The topic metadata the coordinator reads (the broker's topic manager). */
export interface TopicLookup {
  byName(name: string): TopicInfo | undefined;
  all(): TopicInfo[];
}

export interface TopicPartitions {
  topicId: string;
  partitions: number[];
}

export interface ConsumerGroupHeartbeatInput {
  groupId: string;
  memberId: string;
  memberEpoch: number;
  instanceId: string | null;
  rackId: string | null;
  rebalanceTimeoutMs: number;
  subscribedTopicNames: readonly string[] | null;
  subscribedTopicRegex: string | null;
  serverAssignor: string | null;
  topicPartitions: readonly TopicPartitions[] | null;
}

export interface ConsumerGroupHeartbeatResult {
  errorCode: number;
  errorMessage: string | null;
  memberId: string | null;
  memberEpoch: number;
  heartbeatIntervalMs: number;
  assignment: TopicPartitions[] | null;
}

export interface DescribedConsumerGroup {
  groupId: string;
  errorCode: number;
  errorMessage: string | null;
  groupState: string;
  groupEpoch: number;
  assignmentEpoch: number;
  assignorName: string;
  members: {
    memberId: string;
    instanceId: string | null;
    rackId: string | null;
    memberEpoch: number;
    clientId: string;
    clientHost: string;
    subscribedTopicNames: string[];
    subscribedTopicRegex: string | null;
    assignment: { topicId: string; topicName: string; partitions: number[] }[];
    targetAssignment: { topicId: string; topicName: string; partitions: number[] }[];
  }[];
}

const LEAVE_GROUP_MEMBER_EPOCH = -1;
const LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2;

const MEMBER_STATE_NAMES: Record<number, string> = {
  [MemberState.Stable]: 'stable',
  [MemberState.UnrevokedPartitions]: 'unrevoked_partitions',
  [MemberState.UnreleasedPartitions]: 'unreleased_partitions',
  [MemberState.Unknown]: 'unknown',
};

function partitionCount(a: Assignment): number {
  let n = 0;
  for (const ps of a.values()) n += ps.size;
  return n;
}

function fail(errorCode: number, message?: string): never {
  throw new KafkaError(errorCode, message);
}

function toAssignment(tps: readonly TopicPartitions[]): Assignment {
  const a: Assignment = new Map();
  for (const tp of tps) if (tp.partitions.length > 0) a.set(tp.topicId, new Set(tp.partitions));
  return a;
}

function fromAssignment(a: Assignment): TopicPartitions[] {
  return [...a]
    .filter(([, parts]) => parts.size > 0)
    .map(([topicId, parts]) => ({ topicId, partitions: [...parts].sort((x, y) => x - y) }));
}

function assignmentsEqual(a: Assignment, b: Assignment): boolean {
  const aa = fromAssignment(a);
  const bb = fromAssignment(b);
  if (aa.length !== bb.length) return false;
  const byTopic = new Map(bb.map((t) => [t.topicId, t.partitions]));
  return aa.every((t) => {
    const other = byTopic.get(t.topicId);
    return other !== undefined && other.length === t.partitions.length && other.every((p, i) => p === t.partitions[i]);
  });
}

function isSubset(owned: Assignment, of: Assignment): boolean {
  for (const [topicId, parts] of owned) {
    const target = of.get(topicId);
    for (const p of parts) if (!target?.has(p)) return false;
  }
  return true;
}

function intersects(a: Assignment, b: Assignment): boolean {
  for (const [topicId, parts] of a) {
    const other = b.get(topicId);
    if (other === undefined) continue;
    for (const p of parts) if (other.has(p)) return true;
  }
  return false;
}

/** A JavaScript RegExp for a subscription pattern, matched against whole topic names (Java's matches()). */
export function compileTopicRegex(regex: string): RegExp {
  try {
    return new RegExp(`^(?:${regex})$`);
  } catch (err) {
    throw new KafkaError(ErrorCode.INVALID_REGULAR_EXPRESSION, `invalid regular expression ${regex}`, { cause: err });
  }
}

export class ConsumerGroupProtocol {
  readonly coordinator: GroupCoordinator;
  readonly topics: TopicLookup;

  constructor(coordinator: GroupCoordinator, topics: TopicLookup) {
    this.coordinator = coordinator;
    this.topics = topics;
  }

  private emit(record: CoordinatorRecord): void {
    this.coordinator.emit(record, true);
  }

  private logEvent(level: 'info' | 'debug', fields: object, msg: string): void {
    this.coordinator.logEvent(level, fields, msg);
  }

  private get config() {
    return this.coordinator.config;
  }

  consumerGroup(groupId: string): ConsumerGroup | undefined {
    const g = this.coordinator.groups.get(groupId);
    return g instanceof ConsumerGroup ? g : undefined;
  }

  // ------------------------------------------------------------------------------------------
  // ConsumerGroupHeartbeat

  heartbeat(info: RequestInfo, req: ConsumerGroupHeartbeatInput): ConsumerGroupHeartbeatResult {
    try {
      this.validateRequest(info, req);
      if (req.memberEpoch === LEAVE_GROUP_MEMBER_EPOCH || req.memberEpoch === LEAVE_GROUP_STATIC_MEMBER_EPOCH) {
        return this.leave(req);
      }
      return this.join(info, req);
    } catch (err) {
      if (!(err instanceof KafkaError)) throw err;
      return {
        errorCode: err.errorCode,
        errorMessage: err.message,
        memberId: null,
        memberEpoch: -1,
        heartbeatIntervalMs: 0,
        assignment: null,
      };
    }
  }

  private validateRequest(info: RequestInfo, req: ConsumerGroupHeartbeatInput): void {
    if (req.groupId === '') fail(ErrorCode.INVALID_REQUEST, 'GroupId can not be empty.');
    if (req.instanceId === '') fail(ErrorCode.INVALID_REQUEST, 'InstanceId can not be empty.');
    if (req.rackId === '') fail(ErrorCode.INVALID_REQUEST, 'RackId can not be empty.');
    if (req.memberEpoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH) fail(ErrorCode.INVALID_REQUEST, 'MemberEpoch is invalid.');
    // v1 clients generate their member id (KIP-1082); v0 may leave it to the coordinator.
    if ((info.apiVersion >= 1 || req.memberEpoch !== 0) && req.memberId === '') {
      fail(ErrorCode.INVALID_REQUEST, 'MemberId can not be empty.');
    }
    if (req.memberEpoch === 0) {
      if (req.rebalanceTimeoutMs === -1)
        fail(ErrorCode.INVALID_REQUEST, 'RebalanceTimeoutMs must be provided in first request.');
      if (req.topicPartitions === null || req.topicPartitions.some((t) => t.partitions.length > 0)) {
        fail(ErrorCode.INVALID_REQUEST, 'TopicPartitions must be empty when (re-)joining.');
      }
      if (req.subscribedTopicNames === null && req.subscribedTopicRegex === null) {
        fail(ErrorCode.INVALID_REQUEST, 'SubscribedTopicNames or SubscribedTopicRegex must be set in first request.');
      }
    }
    if (req.memberEpoch === LEAVE_GROUP_STATIC_MEMBER_EPOCH && req.instanceId === null) {
      fail(ErrorCode.INVALID_REQUEST, 'InstanceId can not be null if MemberEpoch is -2.');
    }
    if (req.serverAssignor !== null && !this.config.consumerGroupAssignors.includes(req.serverAssignor)) {
      fail(ErrorCode.UNSUPPORTED_ASSIGNOR, `ServerAssignor ${req.serverAssignor} is not supported.`);
    }
    if (req.subscribedTopicRegex !== null) compileTopicRegex(req.subscribedTopicRegex);
  }

  private getOrCreateGroup(groupId: string, create: boolean): ConsumerGroup {
    const existing = this.coordinator.groups.get(groupId);
    if (existing instanceof ConsumerGroup) return existing;
    if (existing instanceof ClassicGroup) {
      // An empty classic group (offsets only) becomes a consumer group, keeping its offsets.
      if (existing.size > 0 || existing.pendingMembers.size > 0) {
        fail(ErrorCode.GROUP_ID_NOT_FOUND, `Group ${groupId} is not a consumer group.`);
      }
      if (!create) fail(ErrorCode.UNKNOWN_MEMBER_ID);
      if (existing.generationId > 0 || existing.protocolType !== null) {
        this.coordinator.emit({ type: 'GroupMetadata', group: groupId, value: null }, false);
      }
      this.coordinator.groups.delete(groupId);
    } else if (!create) {
      fail(ErrorCode.UNKNOWN_MEMBER_ID, `Group ${groupId} does not exist.`);
    }
    const g = new ConsumerGroup(groupId);
    this.coordinator.groups.set(groupId, g);
    return g;
  }

  private join(info: RequestInfo, req: ConsumerGroupHeartbeatInput): ConsumerGroupHeartbeatResult {
    const joining = req.memberEpoch === 0;
    const group = this.getOrCreateGroup(req.groupId, joining);
    const created = !group.exists;
    try {
      return this.heartbeatInGroup(info, req, group);
    } finally {
      if (created && !group.exists && group.isEmpty()) this.coordinator.groups.delete(group.groupId);
    }
  }

  private heartbeatInGroup(
    info: RequestInfo,
    req: ConsumerGroupHeartbeatInput,
    group: ConsumerGroup,
  ): ConsumerGroupHeartbeatResult {
    const owned = req.topicPartitions === null ? null : toAssignment(req.topicPartitions);
    let member: ConsumerGroupMember | undefined;
    let memberId = req.memberId;
    if (req.instanceId !== null) {
      const staticId = group.staticMembers.get(req.instanceId);
      const existing = staticId === undefined ? undefined : group.members.get(staticId);
      if (req.memberEpoch === 0) {
        if (existing !== undefined && existing.memberId !== memberId) {
          // A static member restarting takes over the old member's assignment (KIP-345 for KIP-848),
          // but only once the old one left temporarily (epoch -2).
          if (existing.memberEpoch !== LEAVE_GROUP_STATIC_MEMBER_EPOCH) {
            fail(ErrorCode.UNRELEASED_INSTANCE_ID, `Static member ${req.instanceId} is still in use.`);
          }
          if (memberId === '') memberId = randomUUID();
          this.replaceStaticMember(group, existing, memberId);
          member = group.members.get(memberId)!;
        } else {
          member = existing;
        }
      } else {
        if (existing === undefined) fail(ErrorCode.UNKNOWN_MEMBER_ID);
        if (existing.memberId !== memberId) fail(ErrorCode.FENCED_INSTANCE_ID);
        member = existing;
      }
    } else {
      member = group.members.get(memberId);
    }
    if (member === undefined) {
      if (req.memberEpoch !== 0)
        fail(ErrorCode.UNKNOWN_MEMBER_ID, `Member ${memberId} is not in group ${group.groupId}.`);
      if (group.members.size >= this.config.consumerGroupMaxSize) {
        fail(ErrorCode.GROUP_MAX_SIZE_REACHED, `The consumer group has reached its maximum capacity.`);
      }
      if (memberId === '') memberId = randomUUID();
    } else if (req.memberEpoch === 0) {
      // A rejoin with the same id (after a fence): the member owns nothing now. Kafka fences
      // such a heartbeat until the old member's session expires; taking it as a fresh join
      // lets clients that reset their epoch on any error (@platformatic/kafka) recover at once.
      if (
        member.memberEpoch !== 0 ||
        member.assignedPartitions.size > 0 ||
        member.partitionsPendingRevocation.size > 0
      ) {
        this.emit({
          type: 'ConsumerGroupCurrentMemberAssignment',
          group: group.groupId,
          memberId: member.memberId,
          value: {
            memberEpoch: 0,
            previousMemberEpoch: member.memberEpoch,
            state: MemberState.Stable,
            assignedPartitions: [],
            partitionsPendingRevocation: [],
          },
        });
      }
    } else if (req.memberEpoch > member.memberEpoch) {
      fail(
        ErrorCode.FENCED_MEMBER_EPOCH,
        `The consumer group member has a greater member epoch (${req.memberEpoch}) than the one known by the group coordinator (${member.memberEpoch}).`,
      );
    } else if (req.memberEpoch < member.memberEpoch) {
      if (
        req.memberEpoch !== member.previousMemberEpoch ||
        (owned !== null && !isSubset(owned, member.assignedPartitions))
      ) {
        fail(
          ErrorCode.FENCED_MEMBER_EPOCH,
          `The consumer group member has a smaller member epoch (${req.memberEpoch}) than the one known by the group coordinator (${member.memberEpoch}).`,
        );
      }
    }
    const before = member;
    const assignedBefore = before === undefined ? new Map() : before.assignedPartitions;

    // 2. Member metadata and subscription.
    const subscribedTopicNames = req.subscribedTopicNames ?? before?.subscribedTopicNames ?? [];
    const subscribedTopicRegex =
      req.subscribedTopicRegex !== null
        ? req.subscribedTopicRegex === ''
          ? null
          : req.subscribedTopicRegex
        : (before?.subscribedTopicRegex ?? null);
    const next = {
      instanceId: req.instanceId ?? before?.instanceId ?? null,
      rackId: req.rackId ?? before?.rackId ?? null,
      clientId: info.clientId,
      clientHost: info.clientHost,
      subscribedTopicNames: [...subscribedTopicNames].sort(),
      subscribedTopicRegex,
      rebalanceTimeoutMs: req.rebalanceTimeoutMs !== -1 ? req.rebalanceTimeoutMs : (before?.rebalanceTimeoutMs ?? -1),
      serverAssignor: req.serverAssignor ?? before?.serverAssignor ?? null,
    };
    let bumpGroupEpoch = false;
    const subscriptionChanged =
      before === undefined ||
      before.subscribedTopicNames.join('\u0000') !== next.subscribedTopicNames.join('\u0000') ||
      before.subscribedTopicRegex !== next.subscribedTopicRegex ||
      before.serverAssignor !== next.serverAssignor;
    const metadataChanged =
      subscriptionChanged ||
      before.instanceId !== next.instanceId ||
      before.rackId !== next.rackId ||
      before.clientId !== next.clientId ||
      before.clientHost !== next.clientHost ||
      before.rebalanceTimeoutMs !== next.rebalanceTimeoutMs;
    if (metadataChanged) {
      this.emit({
        type: 'ConsumerGroupMemberMetadata',
        group: group.groupId,
        memberId,
        value: { ...next, classicMemberMetadata: null },
      });
      if (subscriptionChanged) bumpGroupEpoch = true;
    }
    member = group.members.get(memberId)!;

    // Subscribed topic metadata (names, ids, partition counts) of the whole group.
    if (this.refreshSubscriptionMetadata(group)) bumpGroupEpoch = true;
    if (bumpGroupEpoch || !group.exists) {
      this.emit({ type: 'ConsumerGroupMetadata', group: group.groupId, value: { epoch: group.groupEpoch + 1 } });
    }
    if (before === undefined) {
      // One line per member joining; it carries the group epoch the join moved the group to.
      this.logEvent(
        'info',
        {
          group: group.groupId,
          memberId,
          ...(next.instanceId === null ? {} : { instanceId: next.instanceId }),
          clientId: next.clientId,
          clientHost: next.clientHost,
          ...(next.subscribedTopicRegex === null
            ? { subscribedTopics: next.subscribedTopicNames }
            : { subscribedTopicRegex: next.subscribedTopicRegex }),
          groupEpoch: group.groupEpoch,
          members: group.members.size,
        },
        'member joined consumer group',
      );
    } else if (bumpGroupEpoch) {
      this.logEvent(
        'info',
        {
          group: group.groupId,
          groupEpoch: group.groupEpoch,
          reason: subscriptionChanged ? `member ${memberId} changed its subscription` : 'subscribed topics changed',
        },
        'bumped consumer group epoch',
      );
    }

    // 3. Target assignment.
    if (group.groupEpoch > group.assignmentEpoch) this.computeTargetAssignment(group);

    // 4. Reconciliation.
    this.reconcile(group, member, owned);
    member = group.members.get(memberId)!;

    this.scheduleSessionTimeout(group, memberId);
    if (member.state === MemberState.UnrevokedPartitions) this.scheduleRevocationTimeout(group, member);
    else this.coordinator.timers.cancel(this.revocationTimer(group.groupId, memberId));

    const fullRequest =
      req.memberEpoch === 0 ||
      (req.rebalanceTimeoutMs !== -1 && req.subscribedTopicNames !== null && req.topicPartitions !== null);
    const changed = !assignmentsEqual(assignedBefore, member.assignedPartitions);
    return {
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      memberId,
      memberEpoch: member.memberEpoch,
      heartbeatIntervalMs: this.config.consumerGroupHeartbeatIntervalMs,
      assignment: fullRequest || changed ? fromAssignment(member.assignedPartitions) : null,
    };
  }

  private replaceStaticMember(group: ConsumerGroup, old: ConsumerGroupMember, newMemberId: string): void {
    this.logEvent(
      'info',
      { group: group.groupId, instanceId: old.instanceId, memberId: newMemberId, previousMemberId: old.memberId },
      'static member rejoined consumer group with a new member id, replacing its previous one',
    );
    this.coordinator.timers.cancel(this.sessionTimer(group.groupId, old.memberId));
    this.coordinator.timers.cancel(this.revocationTimer(group.groupId, old.memberId));
    const target = group.targetAssignment.get(old.memberId);
    this.removeMemberRecords(group, old.memberId);
    this.emit({
      type: 'ConsumerGroupMemberMetadata',
      group: group.groupId,
      memberId: newMemberId,
      value: {
        instanceId: old.instanceId,
        rackId: old.rackId,
        clientId: old.clientId,
        clientHost: old.clientHost,
        subscribedTopicNames: old.subscribedTopicNames,
        subscribedTopicRegex: old.subscribedTopicRegex,
        rebalanceTimeoutMs: old.rebalanceTimeoutMs,
        serverAssignor: old.serverAssignor,
        classicMemberMetadata: null,
      },
    });
    if (target !== undefined) {
      this.emit({
        type: 'ConsumerGroupTargetAssignmentMember',
        group: group.groupId,
        memberId: newMemberId,
        value: { topicPartitions: fromAssignment(target) },
      });
    }
    // The new member starts from the old one's epoch and partitions (they were never released).
    this.emit({
      type: 'ConsumerGroupCurrentMemberAssignment',
      group: group.groupId,
      memberId: newMemberId,
      value: {
        memberEpoch: group.assignmentEpoch,
        previousMemberEpoch: old.previousMemberEpoch,
        state: MemberState.Stable,
        assignedPartitions: fromAssignment(old.assignedPartitions),
        partitionsPendingRevocation: [],
      },
    });
  }

  /** The topics the group subscribes to, with ids and partition counts; true when it changed. */
  private refreshSubscriptionMetadata(group: ConsumerGroup): boolean {
    const names = new Set<string>();
    const regexes: RegExp[] = [];
    for (const m of group.members.values()) {
      for (const t of m.subscribedTopicNames) names.add(t);
      if (m.subscribedTopicRegex !== null) regexes.push(compileTopicRegex(m.subscribedTopicRegex));
    }
    const metadata = new Map<string, { topicId: string; numPartitions: number }>();
    const consider = (t: { name: string; topicId: string; partitions: number }): void => {
      metadata.set(t.name, { topicId: t.topicId, numPartitions: t.partitions });
    };
    for (const name of names) {
      const t = this.topics.byName(name);
      if (t !== undefined) consider(t);
    }
    if (regexes.length > 0) {
      for (const t of this.topics.all()) {
        if (t.name.startsWith('__')) continue;
        if (regexes.some((r) => r.test(t.name))) consider(t);
      }
    }
    const current = group.subscriptionMetadata;
    let same = current.size === metadata.size;
    if (same) {
      for (const [name, m] of metadata) {
        const c = current.get(name);
        if (c === undefined || c.topicId !== m.topicId || c.numPartitions !== m.numPartitions) {
          same = false;
          break;
        }
      }
    }
    if (same) return false;
    this.emit({
      type: 'ConsumerGroupPartitionMetadata',
      group: group.groupId,
      value: {
        topics: [...metadata]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([topicName, m]) => ({
            topicId: m.topicId,
            topicName,
            numPartitions: m.numPartitions,
            partitionMetadata: [],
          })),
      },
    });
    return true;
  }

  /** The assignor most members ask for, else the configured default (Kafka's preferredServerAssignor). */
  assignorName(group: ConsumerGroup): string {
    const votes = new Map<string, number>();
    for (const m of group.members.values()) {
      if (m.serverAssignor !== null) votes.set(m.serverAssignor, (votes.get(m.serverAssignor) ?? 0) + 1);
    }
    let best = this.config.consumerGroupAssignors[0] ?? 'uniform';
    let bestVotes = 0;
    for (const [name, n] of votes) {
      if (n > bestVotes) {
        best = name;
        bestVotes = n;
      }
    }
    return best;
  }

  private computeTargetAssignment(group: ConsumerGroup): void {
    const topicsByName = group.subscriptionMetadata;
    const regexCache = new Map<string, RegExp>();
    const members = [...group.members.values()].map((m) => {
      const ids = new Set<string>();
      for (const name of m.subscribedTopicNames) {
        const t = topicsByName.get(name);
        if (t !== undefined) ids.add(t.topicId);
      }
      if (m.subscribedTopicRegex !== null) {
        let r = regexCache.get(m.subscribedTopicRegex);
        if (r === undefined) {
          r = compileTopicRegex(m.subscribedTopicRegex);
          regexCache.set(m.subscribedTopicRegex, r);
        }
        for (const [name, t] of topicsByName) if (r.test(name)) ids.add(t.topicId);
      }
      return { memberId: m.memberId, subscribedTopicIds: ids };
    });
    const topics = new Map<string, number>();
    for (const t of topicsByName.values()) topics.set(t.topicId, t.numPartitions);
    const assignor = ASSIGNORS[this.assignorName(group)] ?? ASSIGNORS.uniform!;
    const target = assignor({ members, topics, previous: group.targetAssignment });
    for (const m of members) {
      const next = target.get(m.memberId) ?? new Map();
      const prev = group.targetAssignment.get(m.memberId);
      if (prev === undefined || !assignmentsEqual(prev, next)) {
        this.emit({
          type: 'ConsumerGroupTargetAssignmentMember',
          group: group.groupId,
          memberId: m.memberId,
          value: { topicPartitions: fromAssignment(next) },
        });
      }
    }
    this.emit({
      type: 'ConsumerGroupTargetAssignmentMetadata',
      group: group.groupId,
      value: { assignmentEpoch: group.groupEpoch },
    });
    let partitions = 0;
    for (const a of target.values()) for (const ps of a.values()) partitions += ps.size;
    this.logEvent(
      'debug',
      {
        group: group.groupId,
        groupEpoch: group.groupEpoch,
        assignor: this.assignorName(group),
        members: members.length,
        assignedPartitions: partitions,
      },
      'computed a new target assignment',
    );
  }

  /** Moves a member towards its target assignment: revoke first, then assign what is free. */
  private reconcile(group: ConsumerGroup, member: ConsumerGroupMember, owned: Assignment | null): void {
    const targetEpoch = group.assignmentEpoch;
    const target = group.targetAssignment.get(member.memberId) ?? new Map<string, Set<number>>();
    if (member.state === MemberState.Stable && member.memberEpoch === targetEpoch) return;
    if (member.state === MemberState.UnrevokedPartitions) {
      // Wait until the member confirms (through its owned partitions) that it revoked them.
      if (owned === null || intersects(owned, member.partitionsPendingRevocation)) return;
    }
    const owners = group.partitionOwners();
    const kept: Assignment = new Map();
    const revoke: Assignment = new Map();
    const gain: Assignment = new Map();
    let unreleased = false;
    const topicIds = new Set([...member.assignedPartitions.keys(), ...target.keys()]);
    for (const topicId of topicIds) {
      const current = member.assignedPartitions.get(topicId) ?? new Set<number>();
      const wanted = target.get(topicId) ?? new Set<number>();
      for (const p of current) {
        if (wanted.has(p)) {
          if (!kept.has(topicId)) kept.set(topicId, new Set());
          kept.get(topicId)!.add(p);
        } else {
          if (!revoke.has(topicId)) revoke.set(topicId, new Set());
          revoke.get(topicId)!.add(p);
        }
      }
      for (const p of wanted) {
        if (current.has(p)) continue;
        const owner = owners.get(topicId)?.get(p);
        if (owner !== undefined && owner !== member.memberId) {
          unreleased = true;
          continue;
        }
        if (!gain.has(topicId)) gain.set(topicId, new Set());
        gain.get(topicId)!.add(p);
      }
    }
    let value: {
      memberEpoch: number;
      previousMemberEpoch: number;
      state: number;
      assigned: Assignment;
      pending: Assignment;
    };
    if (revoke.size > 0) {
      value = {
        memberEpoch: member.memberEpoch,
        previousMemberEpoch: member.previousMemberEpoch,
        state: MemberState.UnrevokedPartitions,
        assigned: kept,
        pending: revoke,
      };
    } else {
      const assigned: Assignment = new Map([...kept].map(([t, s]) => [t, new Set(s)]));
      for (const [t, s] of gain) {
        if (!assigned.has(t)) assigned.set(t, new Set());
        for (const p of s) assigned.get(t)!.add(p);
      }
      value = {
        memberEpoch: targetEpoch,
        previousMemberEpoch: member.memberEpoch === targetEpoch ? member.previousMemberEpoch : member.memberEpoch,
        state: unreleased ? MemberState.UnreleasedPartitions : MemberState.Stable,
        assigned,
        pending: new Map(),
      };
    }
    if (
      value.memberEpoch === member.memberEpoch &&
      value.previousMemberEpoch === member.previousMemberEpoch &&
      value.state === member.state &&
      assignmentsEqual(value.assigned, member.assignedPartitions) &&
      assignmentsEqual(value.pending, member.partitionsPendingRevocation)
    ) {
      return;
    }
    const wasReconciled = member.state === MemberState.Stable && member.memberEpoch === group.groupEpoch;
    this.emit({
      type: 'ConsumerGroupCurrentMemberAssignment',
      group: group.groupId,
      memberId: member.memberId,
      value: {
        memberEpoch: value.memberEpoch,
        previousMemberEpoch: value.previousMemberEpoch,
        state: value.state,
        assignedPartitions: fromAssignment(value.assigned),
        partitionsPendingRevocation: fromAssignment(value.pending),
      },
    });
    this.logEvent(
      'debug',
      {
        group: group.groupId,
        memberId: member.memberId,
        memberEpoch: value.memberEpoch,
        previousMemberEpoch: value.previousMemberEpoch,
        state: MEMBER_STATE_NAMES[value.state] ?? value.state,
        assignedPartitions: partitionCount(value.assigned),
        partitionsPendingRevocation: partitionCount(value.pending),
      },
      'member assignment state changed',
    );
    if (!wasReconciled && value.state === MemberState.Stable && value.memberEpoch === group.groupEpoch) {
      this.maybeLogStabilized(group);
    }
  }

  /**
   * The rebalance is complete when every member holds its target assignment at the group
   * epoch: one line then (checked only when a member reaches it, so once per member per epoch).
   */
  private maybeLogStabilized(group: ConsumerGroup): void {
    if (group.assignmentEpoch !== group.groupEpoch) return;
    let partitions = 0;
    for (const m of group.members.values()) {
      if (m.state !== MemberState.Stable || m.memberEpoch !== group.groupEpoch) return;
      partitions += partitionCount(m.assignedPartitions);
    }
    this.logEvent(
      'info',
      {
        group: group.groupId,
        groupEpoch: group.groupEpoch,
        members: group.members.size,
        assignedPartitions: partitions,
        assignor: this.assignorName(group),
      },
      'stabilized consumer group',
    );
  }

  // ------------------------------------------------------------------------------------------
  // Leaving, fencing, timeouts

  private leave(req: ConsumerGroupHeartbeatInput): ConsumerGroupHeartbeatResult {
    const group = this.consumerGroup(req.groupId);
    if (group === undefined) fail(ErrorCode.UNKNOWN_MEMBER_ID, `Group ${req.groupId} does not exist.`);
    let member = group.members.get(req.memberId);
    if (req.instanceId !== null) {
      const staticId = group.staticMembers.get(req.instanceId);
      if (staticId === undefined) fail(ErrorCode.UNKNOWN_MEMBER_ID);
      if (staticId !== req.memberId) fail(ErrorCode.FENCED_INSTANCE_ID);
      member = group.members.get(staticId);
    }
    if (member === undefined)
      fail(ErrorCode.UNKNOWN_MEMBER_ID, `Member ${req.memberId} is not in group ${req.groupId}.`);
    if (req.memberEpoch === LEAVE_GROUP_STATIC_MEMBER_EPOCH) {
      this.logEvent(
        'info',
        { group: group.groupId, memberId: member.memberId, instanceId: member.instanceId },
        'static member left consumer group temporarily; it keeps its partitions until its session times out',
      );
      // A static member leaving temporarily keeps its assignment until its session expires.
      this.emit({
        type: 'ConsumerGroupCurrentMemberAssignment',
        group: group.groupId,
        memberId: member.memberId,
        value: {
          memberEpoch: LEAVE_GROUP_STATIC_MEMBER_EPOCH,
          previousMemberEpoch: member.memberEpoch,
          state: member.state,
          assignedPartitions: fromAssignment(member.assignedPartitions),
          partitionsPendingRevocation: fromAssignment(member.partitionsPendingRevocation),
        },
      });
    } else {
      this.removeMember(group, member.memberId, 'left the group');
    }
    return {
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      memberId: member.memberId,
      memberEpoch: req.memberEpoch,
      heartbeatIntervalMs: 0,
      assignment: null,
    };
  }

  private removeMemberRecords(group: ConsumerGroup, memberId: string): void {
    this.emit({ type: 'ConsumerGroupCurrentMemberAssignment', group: group.groupId, memberId, value: null });
    this.emit({ type: 'ConsumerGroupTargetAssignmentMember', group: group.groupId, memberId, value: null });
    this.emit({ type: 'ConsumerGroupMemberMetadata', group: group.groupId, memberId, value: null });
  }

  /** Removes a member (left or fenced); the group epoch moves so the others are reassigned. */
  removeMember(group: ConsumerGroup, memberId: string, reason: string): void {
    const member = group.members.get(memberId);
    this.coordinator.timers.cancel(this.sessionTimer(group.groupId, memberId));
    this.coordinator.timers.cancel(this.revocationTimer(group.groupId, memberId));
    this.removeMemberRecords(group, memberId);
    this.refreshSubscriptionMetadata(group);
    this.emit({ type: 'ConsumerGroupMetadata', group: group.groupId, value: { epoch: group.groupEpoch + 1 } });
    this.logEvent(
      'info',
      {
        group: group.groupId,
        memberId,
        ...(member?.instanceId == null ? {} : { instanceId: member.instanceId }),
        ...(member === undefined ? {} : { clientId: member.clientId, clientHost: member.clientHost }),
        groupEpoch: group.groupEpoch,
        members: group.members.size,
        reason,
      },
      'member left consumer group',
    );
  }

  private sessionTimer(groupId: string, memberId: string): string {
    return `cg-session\u0000${groupId}\u0000${memberId}`;
  }

  private revocationTimer(groupId: string, memberId: string): string {
    return `cg-revoke\u0000${groupId}\u0000${memberId}`;
  }

  scheduleSessionTimeout(group: ConsumerGroup, memberId: string): void {
    const groupId = group.groupId;
    this.coordinator.timers.schedule(
      this.sessionTimer(groupId, memberId),
      this.coordinator.now() + this.config.consumerGroupSessionTimeoutMs,
      () => {
        const g = this.consumerGroup(groupId);
        if (g?.members.has(memberId)) this.removeMember(g, memberId, 'session timeout');
      },
      groupId,
    );
  }

  private scheduleRevocationTimeout(group: ConsumerGroup, member: ConsumerGroupMember): void {
    const name = this.revocationTimer(group.groupId, member.memberId);
    if (this.coordinator.timers.has(name)) return;
    const { groupId } = group;
    const { memberId, memberEpoch } = member;
    const timeout =
      member.rebalanceTimeoutMs > 0 ? member.rebalanceTimeoutMs : this.config.consumerGroupSessionTimeoutMs;
    this.coordinator.timers.schedule(
      name,
      this.coordinator.now() + timeout,
      () => {
        const g = this.consumerGroup(groupId);
        const m = g?.members.get(memberId);
        // Fenced: it did not revoke its partitions within its rebalance timeout.
        if (
          g !== undefined &&
          m !== undefined &&
          m.state === MemberState.UnrevokedPartitions &&
          m.memberEpoch === memberEpoch
        ) {
          this.removeMember(g, memberId, 'did not revoke its partitions within the rebalance timeout');
        }
      },
      groupId,
    );
  }

  /**
   * After loading (the groups `accept` accepts: one `__consumer_offsets` partition's; all by
   * default): every member must heartbeat within the session timeout again.
   */
  onLoaded(accept?: (groupId: string) => boolean): void {
    for (const g of this.coordinator.groups.values()) {
      if (!(g instanceof ConsumerGroup) || (accept !== undefined && !accept(g.groupId))) continue;
      for (const m of g.members.values()) {
        this.scheduleSessionTimeout(g, m.memberId);
        if (m.state === MemberState.UnrevokedPartitions) this.scheduleRevocationTimeout(g, m);
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Offsets, describe, delete

  validateOffsetCommit(group: ConsumerGroup, memberId: string, memberEpoch: number, apiVersion: number): void {
    if (memberEpoch < 0 && group.members.size === 0) return;
    const member = group.members.get(memberId);
    if (member === undefined) fail(ErrorCode.UNKNOWN_MEMBER_ID);
    if (apiVersion < 9) {
      fail(
        ErrorCode.UNSUPPORTED_VERSION,
        'OffsetCommit version 9 or above must be used by members using the consumer group protocol',
      );
    }
    if (memberEpoch > member.memberEpoch) fail(ErrorCode.FENCED_MEMBER_EPOCH);
    if (memberEpoch < member.memberEpoch) fail(ErrorCode.STALE_MEMBER_EPOCH);
  }

  validateOffsetFetch(group: ConsumerGroup, memberId: string, memberEpoch: number): void {
    const member = group.members.get(memberId);
    if (member === undefined) fail(ErrorCode.UNKNOWN_MEMBER_ID);
    if (memberEpoch > member.memberEpoch) fail(ErrorCode.FENCED_MEMBER_EPOCH);
    if (memberEpoch < member.memberEpoch) fail(ErrorCode.STALE_MEMBER_EPOCH);
  }

  /** Tombstones for every record of an (empty) consumer group. */
  deleteGroupRecords(group: ConsumerGroup): void {
    for (const memberId of [...group.members.keys()]) this.removeMemberRecords(group, memberId);
    this.emit({ type: 'ConsumerGroupTargetAssignmentMetadata', group: group.groupId, value: null });
    this.emit({ type: 'ConsumerGroupPartitionMetadata', group: group.groupId, value: null });
    this.emit({ type: 'ConsumerGroupMetadata', group: group.groupId, value: null });
    this.coordinator.groups.delete(group.groupId);
  }

  describe(groupIds: readonly string[]): DescribedConsumerGroup[] {
    const names = new Map(this.topics.all().map((t) => [t.topicId, t.name]));
    const withNames = (a: Assignment) =>
      fromAssignment(a).map((t) => ({
        topicId: t.topicId,
        topicName: names.get(t.topicId) ?? '',
        partitions: t.partitions,
      }));
    return groupIds.map((groupId): DescribedConsumerGroup => {
      const group = this.consumerGroup(groupId);
      const base = { groupId, groupState: 'Dead', groupEpoch: -1, assignmentEpoch: -1, assignorName: '', members: [] };
      if (group === undefined) {
        const isClassic = this.coordinator.groups.has(groupId);
        return {
          ...base,
          errorCode: ErrorCode.GROUP_ID_NOT_FOUND,
          errorMessage: isClassic ? `Group ${groupId} is not a consumer group.` : `Group ${groupId} not found.`,
        };
      }
      return {
        groupId,
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        groupState: group.stateName(),
        groupEpoch: group.groupEpoch,
        assignmentEpoch: group.assignmentEpoch,
        assignorName: this.assignorName(group),
        members: [...group.members.values()].map((m) => ({
          memberId: m.memberId,
          instanceId: m.instanceId,
          rackId: m.rackId,
          memberEpoch: m.memberEpoch,
          clientId: m.clientId,
          clientHost: m.clientHost,
          subscribedTopicNames: m.subscribedTopicNames,
          subscribedTopicRegex: m.subscribedTopicRegex,
          assignment: withNames(m.assignedPartitions),
          targetAssignment: withNames(group.targetAssignment.get(m.memberId) ?? new Map()),
        })),
      };
    });
  }

  // ------------------------------------------------------------------------------------------
  // Replay

  private groupForReplay(groupId: string): ConsumerGroup {
    const existing = this.coordinator.groups.get(groupId);
    if (existing instanceof ConsumerGroup) return existing;
    // A consumer group record for a group known as classic: the group was converted.
    const g = new ConsumerGroup(groupId);
    this.coordinator.groups.set(groupId, g);
    return g;
  }

  private memberForReplay(group: ConsumerGroup, memberId: string): ConsumerGroupMember {
    const m = group.members.get(memberId);
    if (m !== undefined) return this.coordinator.changing(m);
    const created = new ConsumerGroupMember(memberId);
    group.members.set(memberId, created);
    return created;
  }

  replay(record: CoordinatorRecord): void {
    // Inside an operation, the group is snapshotted before its first change (undo).
    this.coordinator.touch(record.group);
    switch (record.type) {
      case 'ConsumerGroupMetadata': {
        if (record.value === null) {
          const g = this.consumerGroup(record.group);
          if (g !== undefined) this.coordinator.groups.delete(record.group);
          return;
        }
        const g = this.groupForReplay(record.group);
        g.groupEpoch = record.value.epoch;
        g.exists = true;
        return;
      }
      case 'ConsumerGroupPartitionMetadata': {
        const g = record.value === null ? this.consumerGroup(record.group) : this.groupForReplay(record.group);
        if (g === undefined) return;
        g.subscriptionMetadata = new Map(
          (record.value?.topics ?? []).map((t) => [
            t.topicName,
            { topicId: t.topicId, numPartitions: t.numPartitions },
          ]),
        );
        return;
      }
      case 'ConsumerGroupMemberMetadata': {
        if (record.value === null) {
          const g = this.consumerGroup(record.group);
          const m = g?.members.get(record.memberId);
          if (g === undefined || m === undefined) return;
          g.members.delete(record.memberId);
          if (m.instanceId !== null && g.staticMembers.get(m.instanceId) === record.memberId)
            g.staticMembers.delete(m.instanceId);
          return;
        }
        const g = this.groupForReplay(record.group);
        const m = this.memberForReplay(g, record.memberId);
        const v = record.value;
        m.instanceId = v.instanceId;
        m.rackId = v.rackId;
        m.clientId = v.clientId;
        m.clientHost = v.clientHost;
        m.subscribedTopicNames = [...v.subscribedTopicNames];
        m.subscribedTopicRegex = v.subscribedTopicRegex;
        m.rebalanceTimeoutMs = v.rebalanceTimeoutMs;
        m.serverAssignor = v.serverAssignor;
        if (v.instanceId !== null) g.staticMembers.set(v.instanceId, record.memberId);
        return;
      }
      case 'ConsumerGroupTargetAssignmentMetadata': {
        const g = record.value === null ? this.consumerGroup(record.group) : this.groupForReplay(record.group);
        if (g === undefined) return;
        g.assignmentEpoch = record.value?.assignmentEpoch ?? 0;
        return;
      }
      case 'ConsumerGroupTargetAssignmentMember': {
        if (record.value === null) {
          this.consumerGroup(record.group)?.targetAssignment.delete(record.memberId);
          return;
        }
        const g = this.groupForReplay(record.group);
        g.targetAssignment.set(record.memberId, toAssignment(record.value.topicPartitions));
        return;
      }
      case 'ConsumerGroupCurrentMemberAssignment': {
        if (record.value === null) {
          const m = this.consumerGroup(record.group)?.members.get(record.memberId);
          if (m !== undefined) {
            this.coordinator.changing(m);
            m.assignedPartitions = new Map();
            m.partitionsPendingRevocation = new Map();
            m.memberEpoch = 0;
            m.previousMemberEpoch = -1;
            m.state = MemberState.Stable;
          }
          return;
        }
        const g = this.groupForReplay(record.group);
        const m = this.memberForReplay(g, record.memberId);
        const v = record.value;
        m.memberEpoch = v.memberEpoch;
        m.previousMemberEpoch = v.previousMemberEpoch;
        m.state = v.state as MemberState;
        m.assignedPartitions = toAssignment(v.assignedPartitions);
        m.partitionsPendingRevocation = toAssignment(v.partitionsPendingRevocation);
        return;
      }
      default:
    }
  }
}
