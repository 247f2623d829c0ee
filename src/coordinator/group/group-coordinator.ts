/**
 * The group coordinator as a state machine, after Kafka's GroupMetadataManager and
 * OffsetMetadataManager: every request is a plain synchronous call that changes the in-memory
 * state and returns `{response, records, completions}`. It does no I/O and reads no clock but the
 * injected one; timeouts are deadlines in `timers` that the owner expires (`poll`).
 *
 * - `records` must be appended to `__consumer_offsets` (partition `partitionForGroup`) before
 *   the response is sent; `completions` (responses to parked JoinGroup/SyncGroup requests, which
 *   this operation completed) must run after that append too.
 * - If the append fails, `revert(result)` undoes the operation (its `undo` log: group map
 *   entries, groups snapshotted before their first change, committed offsets, timers), so the
 *   state is again exactly what the log holds, and `onFailure` says what to do next (Kafka's
 *   append-future failure callbacks). Operations of one `__consumer_offsets` partition are undone
 *   newest first; the owner must undo every operation that ran on top of a failed one.
 * - `replay(record)` applies a record read back from the topic; replaying every record of a
 *   coordinator into a fresh one gives the same groups and offsets (tests check it).
 *   Offset and KIP-848 records are applied through replay even when generated here, so the two
 *   paths cannot diverge; classic groups are changed directly (much of their state, such as
 *   parked requests and pending members, is not persisted) and their GroupMetadata record is a
 *   snapshot written where Kafka writes one.
 *
 * Classic protocol: KIP-394 member-id handshake for JoinGroup v4+ only, static membership
 * (KIP-345), group.initial.rebalance.delay.ms, rebalance/session/sync timeouts, group.max.size.
 * The KIP-848 consumer protocol lives in consumer-group-heartbeat.ts, on the same group map.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, KafkaError } from '../../protocol/error-codes.ts';
import type { GroupMetadataValue } from '../../protocol/messages/coordinator/group-metadata-value.ts';
import type { OffsetCommitValue } from '../../protocol/messages/coordinator/offset-commit-value.ts';
import type { Clock } from '../../util/clock.ts';
import {
  assignmentSizes,
  ClassicGroup,
  ClassicGroupMember,
  ClassicGroupState,
  type ClassicProtocol,
  type JoinGroupResult,
  type JoinSink,
  type SyncGroupResult,
  type SyncSink,
} from './classic-group.ts';
import { ConsumerGroup } from './consumer-group.ts';
import {
  type ConsumerGroupHeartbeatInput,
  type ConsumerGroupHeartbeatResult,
  ConsumerGroupProtocol,
  type DescribedConsumerGroup,
  type TopicLookup,
} from './consumer-group-heartbeat.ts';
import type { CoordinatorRecord } from './coordinator-records.ts';
import { DeadlineTimers } from './deadline-timers.ts';
import { DEFAULT_GROUP_COORDINATOR_CONFIG, type GroupCoordinatorConfig } from './group-config.ts';
import { PendingTxnOffsets } from './txn-offsets.ts';
import { snapshotObject, UndoLog } from './undo-log.ts';

export type { JoinGroupResult, SyncGroupResult } from './classic-group.ts';

/** Who sent a request: the parts of the request context the coordinator uses. */
export interface RequestInfo {
  apiVersion: number;
  clientId: string;
  clientHost: string;
}

export interface CoordinatorResult<T> {
  response: T;
  records: CoordinatorRecord[];
  /** Responses to parked requests, to deliver once `records` are appended. */
  completions: (() => void)[];
  /** How to undo the operation's changes to the in-memory state (`revert`), if the append fails. */
  undo: UndoLog;
  /**
   * What to do after a failed append was reverted (Kafka's append-future failure callbacks),
   * given the error code the requests get; run as an operation of its own.
   */
  onFailure: ((errorCode: number) => void)[];
}

export interface OffsetEntry {
  offset: bigint;
  leaderEpoch: number;
  metadata: string;
  commitTimestamp: bigint;
  /** -1 unless the commit carried a retention time (OffsetCommit v2-4). */
  expireTimestamp: bigint;
}

export interface JoinGroupInput {
  groupId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  memberId: string;
  groupInstanceId: string | null;
  protocolType: string;
  protocols: readonly ClassicProtocol[];
  reason?: string | null;
}

export interface SyncGroupInput {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  protocolType: string | null;
  protocolName: string | null;
  assignments: readonly { memberId: string; assignment: Buffer }[];
}

export interface OffsetCommitInput {
  groupId: string;
  generationIdOrMemberEpoch: number;
  memberId: string;
  groupInstanceId: string | null;
  retentionTimeMs: bigint;
  topics: readonly {
    name: string;
    partitions: readonly {
      partitionIndex: number;
      committedOffset: bigint;
      committedLeaderEpoch: number;
      committedMetadata: string | null;
    }[];
  }[];
}

/** TxnOffsetCommit (API 28), as the handler decodes it (v0-2 without generation and member). */
export interface TxnOffsetCommitInput {
  transactionalId: string;
  groupId: string;
  producerId: bigint;
  producerEpoch: number;
  /** -1 before v3. */
  generationId: number;
  /** '' before v3. */
  memberId: string;
  groupInstanceId: string | null;
  topics: readonly {
    name: string;
    partitions: readonly {
      partitionIndex: number;
      committedOffset: bigint;
      committedLeaderEpoch: number;
      committedMetadata: string | null;
    }[];
  }[];
}

/** A producer id in a batch that is not transactional (Kafka's RecordBatch.NO_PRODUCER_ID). */
export const NO_PRODUCER_ID = -1n;

export interface TopicPartitionErrors {
  name: string;
  partitions: { partitionIndex: number; errorCode: number }[];
}

export interface OffsetFetchInput {
  groupId: string;
  /** null: every committed offset of the group. */
  topics: readonly { name: string; partitionIndexes: readonly number[] }[] | null;
  requireStable: boolean;
  memberId: string | null;
  memberEpoch: number;
}

export interface OffsetFetchPartition {
  partitionIndex: number;
  committedOffset: bigint;
  committedLeaderEpoch: number;
  metadata: string | null;
  errorCode: number;
}

export interface OffsetFetchGroupResult {
  groupId: string;
  errorCode: number;
  topics: { name: string; partitions: OffsetFetchPartition[] }[];
}

export interface DescribedGroup {
  groupId: string;
  errorCode: number;
  groupState: string;
  protocolType: string;
  protocolData: string;
  members: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    memberMetadata: Buffer;
    memberAssignment: Buffer;
  }[];
}

export interface ListedGroup {
  groupId: string;
  protocolType: string;
  groupState: string;
  groupType: 'classic' | 'consumer';
}

export type Group = ClassicGroup | ConsumerGroup;

/** The coordinator's groups; every set and delete is reported first, for undo logging. */
export class GroupMap extends Map<string, Group> {
  onChange: ((groupId: string, next: Group | undefined) => void) | undefined;

  override set(groupId: string, group: Group): this {
    this.onChange?.(groupId, group);
    return super.set(groupId, group);
  }

  override delete(groupId: string): boolean {
    if (!this.has(groupId)) return false;
    this.onChange?.(groupId, undefined);
    return super.delete(groupId);
  }

  /** Puts an entry back as it was (undo); not reported. */
  restore(groupId: string, group: Group | undefined): void {
    if (group === undefined) super.delete(groupId);
    else super.set(groupId, group);
  }
}

/** Kafka's Long range: client-supplied int64 arithmetic saturates instead of overflowing. */
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

export function saturatedInt64(value: bigint): bigint {
  return value > INT64_MAX ? INT64_MAX : value < INT64_MIN ? INT64_MIN : value;
}

const UNKNOWN_MEMBER_ID = '';
const EMPTY = Buffer.alloc(0);

function fail(errorCode: number, message?: string): never {
  throw new KafkaError(errorCode, message);
}

/** Kafka's classic JoinGroup result carrying only an error. */
function joinError(memberId: string, errorCode: number): JoinGroupResult {
  return {
    errorCode,
    generationId: -1,
    protocolType: null,
    protocolName: null,
    leader: '',
    skipAssignment: false,
    memberId,
    members: [],
  };
}

function syncError(errorCode: number): SyncGroupResult {
  return { errorCode, protocolType: null, protocolName: null, assignment: EMPTY };
}

export interface GroupCoordinatorOptions {
  clock: Clock;
  config?: Partial<GroupCoordinatorConfig>;
  /** Topic metadata for KIP-848 assignments (names, ids, partition counts). */
  topics?: TopicLookup;
  /** Member id suffixes; random UUIDs by default (tests inject a counter). */
  newId?: () => string;
  /** Where rebalances and members joining and leaving are logged (after their records are appended). */
  logger?: GroupEventLogger | undefined;
}

/** The part of a pino logger the group coordinator logs to. */
export interface GroupEventLogger {
  info(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export class GroupCoordinator {
  readonly clock: Clock;
  readonly config: GroupCoordinatorConfig;
  readonly timers = new DeadlineTimers();
  readonly groups = new GroupMap();
  /** group -> topic -> partition -> committed offset. */
  readonly offsets = new Map<string, Map<string, Map<number, OffsetEntry>>>();
  /**
   * Transactional offsets not committed nor aborted yet, by producer id (Kafka's
   * pendingTransactionalOffsets and openTransactions).
   */
  readonly txnOffsets = new PendingTxnOffsets(() => this.#undo);
  readonly newId: () => string;
  readonly consumerProtocol: ConsumerGroupProtocol;

  /** Records, completions, undo log and failure callbacks of the operation in progress (`run`). */
  #records: CoordinatorRecord[] = [];
  #completions: (() => void)[] = [];
  #undo: UndoLog | undefined;
  #onFailure: ((errorCode: number) => void)[] = [];
  /**
   * Where each offset (committed or pending) was written in its `__consumer_offsets` partition,
   * as an increasing number: records are replayed in log order, and generated ones in the order
   * they are appended. Kafka compares record offsets when a transaction commits (the later of a
   * transactional and a plain commit wins); only the order matters.
   */
  readonly #logOrder = new WeakMap<OffsetEntry, number>();
  #nextLogOrder = 0;
  readonly #logger: GroupEventLogger | undefined;

  constructor(options: GroupCoordinatorOptions) {
    this.clock = options.clock;
    this.#logger = options.logger;
    this.config = { ...DEFAULT_GROUP_COORDINATOR_CONFIG, ...options.config };
    this.newId = options.newId ?? randomUUID;
    this.consumerProtocol = new ConsumerGroupProtocol(
      this,
      options.topics ?? { byName: () => undefined, all: () => [] },
    );
    this.groups.onChange = (groupId, next) => {
      const undo = this.#undo;
      if (undo === undefined) return;
      const previous = this.groups.get(groupId);
      if (next !== undefined && next !== previous) undo.created(next);
      undo.add(() => this.groups.restore(groupId, previous));
    };
    this.timers.journal = (name, previous) => this.#undo?.add(() => this.timers.restore(name, previous));
  }

  // ------------------------------------------------------------------------------------------
  // Operation plumbing

  /**
   * Runs one operation, collecting the records and completions it produces and an undo log of
   * its changes to the in-memory state. An operation that throws is undone before the error
   * propagates; one whose records cannot be appended must be undone with `revert`.
   */
  run<T>(op: () => T): CoordinatorResult<T> {
    const outerRecords = this.#records;
    const outerCompletions = this.#completions;
    const outerUndo = this.#undo;
    const outerOnFailure = this.#onFailure;
    const undo = outerUndo ?? new UndoLog();
    this.#records = [];
    this.#completions = [];
    this.#undo = undo;
    this.#onFailure = [];
    try {
      const response = op();
      return {
        response,
        records: this.#records,
        completions: this.#completions,
        undo,
        onFailure: this.#onFailure,
      };
    } catch (err) {
      if (outerUndo === undefined) {
        this.#undo = undefined;
        undo.revert();
      }
      throw err;
    } finally {
      this.#records = outerRecords;
      this.#completions = outerCompletions;
      this.#undo = outerUndo;
      this.#onFailure = outerOnFailure;
    }
  }

  /**
   * Undoes an operation whose records could not be appended: groups, members, committed
   * offsets and timers are as before it, and its completions must not run. Every operation of
   * the same `__consumer_offsets` partition that ran after it was built on its state: undo
   * those first (newest first), as the runtime does.
   */
  revert(result: CoordinatorResult<unknown>): void {
    if (this.#undo !== undefined) throw new Error('revert inside an operation');
    result.undo.revert();
  }

  /**
   * Snapshots a group before the operation changes it in place (classic groups are changed
   * directly; KIP-848 groups through replayed records, which touch them). Changes to the group
   * map, committed offsets and timers are logged where they happen.
   */
  touch(groupId: string): void {
    const undo = this.#undo;
    if (undo === undefined) return;
    const group = this.groups.get(groupId);
    if (group !== undefined) undo.capture(group, () => group.snapshot());
  }

  /**
   * Captures an object (a member) before the operation changes its fields; returns it. Members
   * are captured one by one, so an operation pays for what it changes.
   */
  changing<T extends object>(obj: T): T {
    this.#undo?.capture(obj, () => snapshotObject(obj));
    return obj;
  }

  /** Registers what to do if this operation's append fails (after its changes are undone). */
  onAppendFailure(fn: (errorCode: number) => void): void {
    this.#onFailure.push(fn);
  }

  /** Adds a record to the current operation; `apply` replays it into the state at once. */
  emit(record: CoordinatorRecord, apply: boolean): void {
    if (record.type === 'GroupMetadata' && record.value !== null && this.#undo !== undefined) {
      // A classic group's snapshot record: the group must have been captured before the
      // operation changed it, or a failed append could not undo those changes.
      const group = this.groups.get(record.group);
      if (group !== undefined && !this.#undo.covers(group)) {
        throw new Error(`group ${record.group} changed without an undo snapshot`);
      }
    }
    this.#records.push(record);
    if (apply) this.replay(record);
  }

  complete(fn: () => void): void {
    this.#completions.push(fn);
  }

  /**
   * A log line about what the current operation did (a rebalance step, a member joining or
   * leaving), written once its records are appended: never for a change that is undone, nor for
   * records replayed at load. The fields are taken now.
   */
  logEvent(level: 'info' | 'debug', fields: object, msg: string): void {
    const log = this.#logger;
    if (log === undefined || this.#undo === undefined) return;
    if (level === 'debug') {
      if (log.debug !== undefined) this.#completions.push(() => log.debug?.(fields, msg));
    } else {
      this.#completions.push(() => log.info(fields, msg));
    }
  }

  now(): number {
    return this.clock.now();
  }

  /**
   * Fires every timeout due now (session, rebalance, join delay, sync, retention); with
   * `accept`, only the timers of the groups it accepts (undefined: coordinator-wide timers),
   * e.g. those of one `__consumer_offsets` partition.
   */
  poll(accept?: (groupId: string | undefined) => boolean): CoordinatorResult<void> {
    return this.run(() => {
      this.timers.expire(this.now(), {
        filter: accept === undefined ? undefined : (t) => accept(t.group),
        before: (t) => {
          if (t.group !== undefined) this.touch(t.group);
        },
      });
    });
  }

  /** Expires the committed offsets of these groups (one partition's) as one operation. */
  expireOffsets(groupIds: Iterable<string>): CoordinatorResult<void> {
    return this.run(() => this.cleanupExpiredOffsets(groupIds));
  }

  /** The earliest deadline; with `accept`, of the timers of the groups it accepts (as `poll`). */
  nextDeadline(accept?: (groupId: string | undefined) => boolean): number | undefined {
    return this.timers.nextDeadline(accept === undefined ? undefined : (t) => accept(t.group));
  }

  /** Starts the periodic offset-retention check (the broker calls this once loaded). */
  startRetentionChecks(): void {
    const tick = (): void => {
      this.cleanupExpiredOffsets();
      this.timers.schedule('retention', this.now() + this.config.offsetsRetentionCheckIntervalMs, tick);
    };
    this.timers.schedule('retention', this.now() + this.config.offsetsRetentionCheckIntervalMs, tick);
  }

  /**
   * Answers every parked JoinGroup/SyncGroup with NOT_COORDINATOR (shutdown), as Kafka does
   * when it unloads a coordinator partition; clients look the coordinator up again.
   */
  releaseParked(): CoordinatorResult<void> {
    return this.run(() => {
      for (const g of this.groups.values()) for (const c of this.#detachParked(g)) this.complete(c);
    });
  }

  /**
   * Unloads the groups `accept` accepts (one `__consumer_offsets` partition's, when this broker
   * stops leading it; Kafka's GroupCoordinatorShard.onUnloaded): their groups, committed offsets
   * and timers leave the state machine. Returns the NOT_COORDINATOR answers of their parked
   * JoinGroup/SyncGroup requests, to run once the groups are gone. Not an operation (nothing is
   * appended, nothing can be undone): the owner must first revert the partition's operations
   * whose records are not appended, so that the parked requests they completed are parked again.
   */
  unloadGroups(accept: (groupId: string) => boolean): (() => void)[] {
    if (this.#undo !== undefined) throw new Error('unloadGroups inside an operation');
    const completions: (() => void)[] = [];
    for (const [groupId, g] of [...this.groups]) {
      if (!accept(groupId)) continue;
      completions.push(...this.#detachParked(g));
      this.groups.delete(groupId);
    }
    for (const [name, t] of [...this.timers.entries()])
      if (t.group !== undefined && accept(t.group)) this.timers.cancel(name);
    for (const groupId of [...this.offsets.keys()]) if (accept(groupId)) this.offsets.delete(groupId);
    this.txnOffsets.dropGroups(accept);
    return completions;
  }

  /** Takes a classic group's parked JoinGroup/SyncGroup responses, answered NOT_COORDINATOR. */
  #detachParked(g: Group): (() => void)[] {
    const out: (() => void)[] = [];
    if (!(g instanceof ClassicGroup)) return out;
    for (const m of g.members.values()) {
      if (m.joinSink !== undefined) {
        const s = m.joinSink;
        m.joinSink = undefined;
        out.push(() => s(joinError(m.memberId, ErrorCode.NOT_COORDINATOR)));
      }
      if (m.syncSink !== undefined) {
        const s = m.syncSink;
        m.syncSink = undefined;
        out.push(() => s(syncError(ErrorCode.NOT_COORDINATOR)));
      }
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Classic group lookup

  classicGroup(groupId: string): ClassicGroup | undefined {
    const g = this.groups.get(groupId);
    return g instanceof ClassicGroup ? g : undefined;
  }

  private getOrCreateClassicGroup(groupId: string, create: boolean): ClassicGroup {
    const g = this.groups.get(groupId);
    if (g instanceof ClassicGroup) return g;
    if (g instanceof ConsumerGroup) {
      // Kafka refuses classic requests to a non-empty consumer group; an empty one is
      // replaced by a classic group (KIP-848 offline downgrade).
      if (!g.isEmpty()) fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, `group ${groupId} uses the consumer protocol`);
      if (!create) fail(ErrorCode.GROUP_ID_NOT_FOUND);
      this.consumerProtocol.deleteGroupRecords(g);
    }
    if (!create) fail(ErrorCode.GROUP_ID_NOT_FOUND, `group ${groupId} not found`);
    const created = new ClassicGroup(groupId, this.now());
    this.groups.set(groupId, created);
    return created;
  }

  // ------------------------------------------------------------------------------------------
  // JoinGroup

  joinGroup(info: RequestInfo, req: JoinGroupInput, sink: JoinSink): CoordinatorResult<void> {
    return this.run(() => {
      this.touch(req.groupId);
      const respond = (r: JoinGroupResult): void => this.complete(() => sink(r));
      try {
        this.doJoinGroup(info, req, sink);
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        // A member id for a group that does not exist is an unknown member, as in Kafka.
        const code = err.errorCode === ErrorCode.GROUP_ID_NOT_FOUND ? ErrorCode.UNKNOWN_MEMBER_ID : err.errorCode;
        respond(joinError(req.memberId, code));
      }
    });
  }

  private doJoinGroup(info: RequestInfo, req: JoinGroupInput, sink: JoinSink): void {
    if (req.groupId === '') fail(ErrorCode.INVALID_GROUP_ID);
    if (
      req.sessionTimeoutMs < this.config.groupMinSessionTimeoutMs ||
      req.sessionTimeoutMs > this.config.groupMaxSessionTimeoutMs
    ) {
      fail(ErrorCode.INVALID_SESSION_TIMEOUT);
    }
    // v0 has no rebalance timeout: the session timeout serves for both, as in Kafka.
    const rebalanceTimeoutMs = req.rebalanceTimeoutMs < 0 ? req.sessionTimeoutMs : req.rebalanceTimeoutMs;
    const isUnknownMember = req.memberId === UNKNOWN_MEMBER_ID;
    const isNewGroup = !this.groups.has(req.groupId);
    const group = this.getOrCreateClassicGroup(req.groupId, isUnknownMember);
    try {
      if (group.isInState(ClassicGroupState.Dead)) fail(ErrorCode.COORDINATOR_NOT_AVAILABLE);
      if (!group.supportsProtocols(req.protocolType, req.protocols)) fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
      if (isUnknownMember) {
        this.joinUnknownMember(info, req, rebalanceTimeoutMs, group, sink);
      } else {
        this.joinKnownMember(info, req, rebalanceTimeoutMs, group, sink);
      }
    } finally {
      // A group this request created and could not join must not linger.
      if (isNewGroup && group.size === 0 && group.pendingMembers.size === 0) this.groups.delete(group.groupId);
    }
  }

  private acceptJoiningMember(group: ClassicGroup, memberId: string): boolean {
    return (
      group.isInState(ClassicGroupState.Empty) ||
      group.size < this.config.groupMaxSize ||
      group.hasMember(memberId) ||
      group.pendingMembers.has(memberId)
    );
  }

  private joinUnknownMember(
    info: RequestInfo,
    req: JoinGroupInput,
    rebalanceTimeoutMs: number,
    group: ClassicGroup,
    sink: JoinSink,
  ): void {
    const newMemberId =
      req.groupInstanceId !== null ? `${req.groupInstanceId}-${this.newId()}` : `${info.clientId}-${this.newId()}`;
    if (req.groupInstanceId !== null) {
      const existing = group.staticMemberId(req.groupInstanceId);
      if (existing !== undefined) {
        // A restarted static member replaces itself: the group does not grow.
        this.replaceStaticMember(info, req, rebalanceTimeoutMs, group, existing, newMemberId, sink);
        return;
      }
    }
    if (
      group.size + group.pendingMembers.size >= this.config.groupMaxSize &&
      !group.isInState(ClassicGroupState.Empty)
    ) {
      fail(ErrorCode.GROUP_MAX_SIZE_REACHED);
    }
    if (req.groupInstanceId !== null) {
      this.addMemberAndRebalance(info, req, rebalanceTimeoutMs, group, newMemberId, sink);
      return;
    }
    if (info.apiVersion >= 4) {
      // KIP-394: hand out the id and wait for the member to join with it.
      group.pendingMembers.add(newMemberId);
      this.timers.schedule(
        this.pendingMemberTimer(group, newMemberId),
        this.now() + req.sessionTimeoutMs,
        () => this.expirePendingMember(group, newMemberId),
        group.groupId,
      );
      this.complete(() => sink(joinError(newMemberId, ErrorCode.MEMBER_ID_REQUIRED)));
      this.logEvent(
        'debug',
        { group: group.groupId, memberId: newMemberId, clientId: info.clientId, clientHost: info.clientHost },
        'new member id given to a joining member; it is to rejoin with it (KIP-394)',
      );
      return;
    }
    this.addMemberAndRebalance(info, req, rebalanceTimeoutMs, group, newMemberId, sink);
  }

  private joinKnownMember(
    info: RequestInfo,
    req: JoinGroupInput,
    rebalanceTimeoutMs: number,
    group: ClassicGroup,
    sink: JoinSink,
  ): void {
    const memberId = req.memberId;
    if (group.pendingMembers.has(memberId)) {
      // The second JoinGroup of the KIP-394 handshake.
      if (!this.acceptJoiningMember(group, memberId)) fail(ErrorCode.GROUP_MAX_SIZE_REACHED);
      group.pendingMembers.delete(memberId);
      this.timers.cancel(this.pendingMemberTimer(group, memberId));
      this.addMemberAndRebalance(info, req, rebalanceTimeoutMs, group, memberId, sink);
      return;
    }
    this.validateMember(group, memberId, req.groupInstanceId);
    const member = group.members.get(memberId)!;
    switch (group.state) {
      case ClassicGroupState.PreparingRebalance:
        this.updateMemberAndRebalance(group, member, req, rebalanceTimeoutMs, sink, info);
        return;
      case ClassicGroupState.CompletingRebalance:
        if (member.protocolsMatch(req.protocols)) {
          // The member lost the JoinGroup response: send it again.
          this.complete(() => sink(this.currentJoinResult(group, member.memberId, false)));
        } else {
          this.updateMemberAndRebalance(group, member, req, rebalanceTimeoutMs, sink, info);
        }
        return;
      case ClassicGroupState.Stable:
        if (group.isLeader(memberId) || !member.protocolsMatch(req.protocols)) {
          // The leader rejoining forces a rebalance (it may see new topics); so do new protocols.
          this.updateMemberAndRebalance(group, member, req, rebalanceTimeoutMs, sink, info);
        } else {
          this.complete(() =>
            sink({
              errorCode: ErrorCode.NONE,
              generationId: group.generationId,
              protocolType: group.protocolType,
              protocolName: group.protocolName,
              leader: group.leaderId ?? '',
              skipAssignment: false,
              memberId,
              members: [],
            }),
          );
          this.rescheduleHeartbeat(group, member);
        }
        return;
      default:
        fail(ErrorCode.UNKNOWN_MEMBER_ID);
    }
  }

  /** The result a member gets for the current generation (the leader also gets the members). */
  private currentJoinResult(group: ClassicGroup, memberId: string, skipAssignment: boolean): JoinGroupResult {
    const isLeader = group.isLeader(memberId);
    return {
      errorCode: ErrorCode.NONE,
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leader: group.leaderId ?? '',
      skipAssignment,
      memberId,
      members: isLeader ? this.memberList(group) : [],
    };
  }

  private memberList(group: ClassicGroup): JoinGroupResult['members'] {
    const protocol = group.protocolName ?? '';
    return [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: m.metadataFor(protocol),
    }));
  }

  private addMemberAndRebalance(
    info: RequestInfo,
    req: JoinGroupInput,
    rebalanceTimeoutMs: number,
    group: ClassicGroup,
    memberId: string,
    sink: JoinSink,
  ): void {
    if (!this.acceptJoiningMember(group, memberId)) fail(ErrorCode.GROUP_MAX_SIZE_REACHED);
    const member = new ClassicGroupMember({
      memberId,
      groupInstanceId: req.groupInstanceId,
      clientId: info.clientId,
      clientHost: info.clientHost,
      rebalanceTimeoutMs,
      sessionTimeoutMs: req.sessionTimeoutMs,
      protocolType: req.protocolType,
      protocols: req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) })),
    });
    member.joinSink = sink;
    group.addMember(member);
    this.logEvent(
      'info',
      {
        group: group.groupId,
        memberId,
        ...(req.groupInstanceId === null ? {} : { groupInstanceId: req.groupInstanceId }),
        clientId: info.clientId,
        clientHost: info.clientHost,
        members: group.size,
      },
      'member joined group',
    );
    // Until the join phase completes, the member is kept alive by its parked JoinGroup.
    this.rescheduleHeartbeat(group, member);
    if (group.isInState(ClassicGroupState.PreparingRebalance)) this.maybeCompleteJoin(group);
    else this.prepareRebalance(group, `adding new member ${memberId}`);
  }

  private updateMemberAndRebalance(
    group: ClassicGroup,
    member: ClassicGroupMember,
    req: JoinGroupInput,
    rebalanceTimeoutMs: number,
    sink: JoinSink,
    info: RequestInfo,
  ): void {
    this.changing(member);
    member.protocols = req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }));
    member.rebalanceTimeoutMs = rebalanceTimeoutMs;
    member.sessionTimeoutMs = req.sessionTimeoutMs;
    member.clientId = info.clientId;
    member.clientHost = info.clientHost;
    if (member.joinSink !== undefined && member.joinSink !== sink) {
      // A duplicate JoinGroup replaces the earlier one, which is answered as Kafka does.
      const old = member.joinSink;
      this.complete(() => old(joinError(member.memberId, ErrorCode.UNKNOWN_MEMBER_ID)));
    }
    member.joinSink = sink;
    this.rescheduleHeartbeat(group, member);
    if (group.isInState(ClassicGroupState.PreparingRebalance)) this.maybeCompleteJoin(group);
    else this.prepareRebalance(group, `updating metadata of member ${member.memberId}`);
  }

  /** KIP-345: a static member rejoined with no member id (a restart): it takes a new id. */
  private replaceStaticMember(
    info: RequestInfo,
    req: JoinGroupInput,
    rebalanceTimeoutMs: number,
    group: ClassicGroup,
    oldMemberId: string,
    newMemberId: string,
    sink: JoinSink,
  ): void {
    const old = this.changing(group.members.get(oldMemberId)!);
    // Fence whoever still waits under the old id.
    if (old.joinSink !== undefined) {
      const s = old.joinSink;
      this.complete(() => s(joinError(oldMemberId, ErrorCode.FENCED_INSTANCE_ID)));
      old.joinSink = undefined;
    }
    if (old.syncSink !== undefined) {
      const s = old.syncSink;
      this.complete(() => s(syncError(ErrorCode.FENCED_INSTANCE_ID)));
      old.syncSink = undefined;
    }
    const wasLeader = group.isLeader(oldMemberId);
    this.timers.cancel(this.heartbeatTimer(group, oldMemberId));
    group.members.delete(oldMemberId);
    group.pendingSyncMembers.delete(oldMemberId);
    const protocolsChanged = !old.protocolsMatch(req.protocols);
    old.memberId = newMemberId;
    old.clientId = info.clientId;
    old.clientHost = info.clientHost;
    old.rebalanceTimeoutMs = rebalanceTimeoutMs;
    old.sessionTimeoutMs = req.sessionTimeoutMs;
    old.protocols = req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }));
    group.members.set(newMemberId, old);
    group.staticMembers.set(req.groupInstanceId!, newMemberId);
    if (wasLeader) group.leaderId = newMemberId;
    old.joinSink = sink;
    this.rescheduleHeartbeat(group, old);
    this.logEvent(
      'info',
      {
        group: group.groupId,
        groupInstanceId: req.groupInstanceId,
        memberId: newMemberId,
        previousMemberId: oldMemberId,
        clientId: info.clientId,
        clientHost: info.clientHost,
      },
      'static member rejoined group with a new member id, replacing its previous one',
    );

    switch (group.state) {
      case ClassicGroupState.Stable: {
        const selected = group.selectProtocol();
        if (!protocolsChanged || selected === group.protocolName) {
          // No rebalance: persist the new member id and answer with the current generation.
          // A leader gets the members but skips assignment (v9+) since nothing changed.
          old.joinSink = undefined;
          this.storeGroup(group);
          const result = this.currentJoinResult(group, newMemberId, wasLeader);
          this.complete(() => sink(result));
        } else {
          this.prepareRebalance(group, `static member ${req.groupInstanceId} rejoined with new protocols`);
        }
        return;
      }
      case ClassicGroupState.CompletingRebalance:
        this.prepareRebalance(group, `static member ${req.groupInstanceId} rejoined during the sync phase`);
        return;
      case ClassicGroupState.PreparingRebalance:
        this.maybeCompleteJoin(group);
        return;
      default:
        // Empty cannot have members; Dead was refused earlier.
        this.prepareRebalance(group, `static member ${req.groupInstanceId} joined`);
    }
  }

  /** FENCED_INSTANCE_ID / UNKNOWN_MEMBER_ID checks shared by every member request. */
  private validateMember(group: ClassicGroup, memberId: string, groupInstanceId: string | null): void {
    if (groupInstanceId !== null) {
      const existing = group.staticMembers.get(groupInstanceId);
      if (existing !== undefined && existing !== memberId) fail(ErrorCode.FENCED_INSTANCE_ID);
    }
    if (!group.hasMember(memberId)) fail(ErrorCode.UNKNOWN_MEMBER_ID);
    const member = group.members.get(memberId)!;
    if (member.groupInstanceId !== null && groupInstanceId !== null && member.groupInstanceId !== groupInstanceId) {
      fail(ErrorCode.FENCED_INSTANCE_ID);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Rebalance phases

  private prepareRebalance(group: ClassicGroup, reason: string): void {
    this.logEvent(
      'info',
      {
        group: group.groupId,
        state: group.state,
        generation: group.generationId,
        members: group.size,
        reason,
      },
      'preparing to rebalance group',
    );
    if (group.isInState(ClassicGroupState.CompletingRebalance)) {
      // The sync phase is abandoned: parked SyncGroups learn a new rebalance began.
      for (const m of group.members.values()) {
        this.changing(m);
        m.assignment = EMPTY;
        if (m.syncSink !== undefined) {
          const s = m.syncSink;
          m.syncSink = undefined;
          this.complete(() => s(syncError(ErrorCode.REBALANCE_IN_PROGRESS)));
        }
      }
    }
    group.pendingSyncMembers.clear();
    this.timers.cancel(this.syncTimer(group));
    const wasEmpty = group.isInState(ClassicGroupState.Empty);
    group.transitionTo(ClassicGroupState.PreparingRebalance, this.now());
    const timer = this.joinTimer(group);
    if (wasEmpty) {
      // group.initial.rebalance.delay.ms: let more members arrive before the first generation.
      const delay = this.config.groupInitialRebalanceDelayMs;
      const remaining = Math.max(group.rebalanceTimeoutMs() - delay, 0);
      group.newMemberAdded = false;
      this.scheduleInitialDelay(group, Math.min(delay, group.rebalanceTimeoutMs()), remaining);
    } else {
      this.timers.schedule(
        timer,
        this.now() + group.rebalanceTimeoutMs(),
        () => this.completeJoin(group),
        group.groupId,
      );
      this.maybeCompleteJoin(group);
    }
  }

  private scheduleInitialDelay(group: ClassicGroup, delay: number, remaining: number): void {
    this.timers.schedule(
      this.joinTimer(group),
      this.now() + delay,
      () => {
        if (group.newMemberAdded && remaining !== 0) {
          group.newMemberAdded = false;
          const next = Math.min(this.config.groupInitialRebalanceDelayMs, remaining);
          this.scheduleInitialDelay(group, next, Math.max(remaining - next, 0));
        } else {
          this.completeJoin(group);
        }
      },
      group.groupId,
    );
  }

  /** Completes the join phase early when every member rejoined (not during the initial delay). */
  private maybeCompleteJoin(group: ClassicGroup): void {
    if (
      group.isInState(ClassicGroupState.PreparingRebalance) &&
      group.hasAllMembersJoined() &&
      group.previousState !== ClassicGroupState.Empty
    ) {
      this.completeJoin(group);
    }
  }

  private completeJoin(group: ClassicGroup): void {
    if (!group.isInState(ClassicGroupState.PreparingRebalance)) return;
    this.timers.cancel(this.joinTimer(group));
    // Dynamic members that did not rejoin in time are dropped; static ones wait for their session.
    for (const m of [...group.members.values()]) {
      if (m.isAwaitingJoin || m.isStatic) continue;
      this.removeMemberQuietly(group, m);
      this.logMemberLeft(group, m, 'did not rejoin within the rebalance timeout');
    }
    if (group.size > 0 && ![...group.members.values()].some((m) => m.isAwaitingJoin)) {
      // Nobody rejoined (only absent static members remain): wait another rebalance timeout
      // for their sessions to expire, as Kafka does.
      this.timers.schedule(
        this.joinTimer(group),
        this.now() + group.rebalanceTimeoutMs(),
        () => this.completeJoin(group),
        group.groupId,
      );
      return;
    }
    if (group.leaderId !== null && !group.members.get(group.leaderId)?.isAwaitingJoin) {
      const next = [...group.members.values()].find((m) => m.isAwaitingJoin);
      group.leaderId = next?.memberId ?? null;
    }
    group.generationId++;
    group.protocolName = group.size > 0 ? group.selectProtocol() : null;
    if (group.size === 0) group.protocolType = group.protocolType ?? null;
    group.transitionTo(group.size > 0 ? ClassicGroupState.CompletingRebalance : ClassicGroupState.Empty, this.now());
    if (group.isInState(ClassicGroupState.Empty)) {
      this.logEvent('info', { group: group.groupId, generation: group.generationId }, 'group is now empty');
      this.storeGroup(group);
      return;
    }
    this.logEvent(
      'info',
      {
        group: group.groupId,
        generation: group.generationId,
        members: group.size,
        protocolType: group.protocolType,
        protocol: group.protocolName,
        leader: group.leaderId,
      },
      'stabilized group',
    );
    for (const m of group.members.values()) {
      // Every member must sync in this generation; a static member that has not rejoined
      // gets no answer now (it learns of the generation from ILLEGAL_GENERATION), as in Kafka.
      group.pendingSyncMembers.add(m.memberId);
      const sink = m.joinSink;
      if (sink === undefined) continue;
      this.changing(m);
      m.joinSink = undefined;
      m.isNew = false;
      const result = this.currentJoinResult(group, m.memberId, false);
      this.complete(() => sink(result));
      this.rescheduleHeartbeat(group, m);
    }
    // Members that do not send SyncGroup within the rebalance timeout are removed.
    const generationId = group.generationId;
    this.timers.schedule(
      this.syncTimer(group),
      this.now() + group.rebalanceTimeoutMs(),
      () => this.expirePendingSync(group, generationId),
      group.groupId,
    );
  }

  private expirePendingSync(group: ClassicGroup, generationId: number): void {
    if (generationId !== group.generationId) return;
    if (!group.isInState(ClassicGroupState.CompletingRebalance, ClassicGroupState.Stable)) return;
    if (group.pendingSyncMembers.size === 0) return;
    for (const id of [...group.pendingSyncMembers]) {
      const m = group.members.get(id);
      if (m === undefined) continue;
      this.removeMemberQuietly(group, m);
      this.logMemberLeft(group, m, 'did not send SyncGroup within the rebalance timeout');
    }
    group.pendingSyncMembers.clear();
    this.prepareRebalance(group, 'members did not sync in time');
  }

  private removeMemberQuietly(group: ClassicGroup, member: ClassicGroupMember): void {
    this.timers.cancel(this.heartbeatTimer(group, member.memberId));
    group.removeMember(member.memberId);
  }

  private logMemberLeft(group: ClassicGroup, member: ClassicGroupMember, reason: string): void {
    this.logEvent(
      'info',
      {
        group: group.groupId,
        memberId: member.memberId,
        ...(member.groupInstanceId === null ? {} : { groupInstanceId: member.groupInstanceId }),
        clientId: member.clientId,
        clientHost: member.clientHost,
        members: group.size,
        reason,
      },
      'member left group',
    );
  }

  /** Removes a member (left, expired or fenced) and moves the group on, as Kafka does. */
  private removeMemberAndUpdateGroup(group: ClassicGroup, member: ClassicGroupMember, reason: string): void {
    this.changing(member);
    if (member.joinSink !== undefined) {
      const s = member.joinSink;
      member.joinSink = undefined;
      this.complete(() => s(joinError(UNKNOWN_MEMBER_ID, ErrorCode.UNKNOWN_MEMBER_ID)));
    }
    if (member.syncSink !== undefined) {
      const s = member.syncSink;
      member.syncSink = undefined;
      this.complete(() => s(syncError(ErrorCode.UNKNOWN_MEMBER_ID)));
    }
    this.removeMemberQuietly(group, member);
    this.logMemberLeft(group, member, reason);
    switch (group.state) {
      case ClassicGroupState.Stable:
      case ClassicGroupState.CompletingRebalance:
        this.prepareRebalance(group, `member ${member.memberId} left`);
        break;
      case ClassicGroupState.PreparingRebalance:
        this.maybeCompleteJoin(group);
        break;
      default:
    }
  }

  private heartbeatTimer(group: ClassicGroup, memberId: string): string {
    return `hb\u0000${group.groupId}\u0000${memberId}`;
  }

  private pendingMemberTimer(group: ClassicGroup, memberId: string): string {
    return `pending\u0000${group.groupId}\u0000${memberId}`;
  }

  private joinTimer(group: ClassicGroup): string {
    return `join\u0000${group.groupId}`;
  }

  private syncTimer(group: ClassicGroup): string {
    return `sync\u0000${group.groupId}`;
  }

  private rescheduleHeartbeat(group: ClassicGroup, member: ClassicGroupMember): void {
    const id = member.memberId;
    this.timers.schedule(
      this.heartbeatTimer(group, id),
      this.now() + member.sessionTimeoutMs,
      () => this.expireMember(group, id),
      group.groupId,
    );
  }

  private expireMember(group: ClassicGroup, memberId: string): void {
    const member = group.members.get(memberId);
    if (member === undefined || this.groups.get(group.groupId) !== group) return;
    // A parked JoinGroup or SyncGroup keeps its member alive (Kafka's hasSatisfiedHeartbeat);
    // the join and sync phases have their own timeouts.
    if (member.isAwaitingJoin || member.isAwaitingSync) {
      this.rescheduleHeartbeat(group, member);
      return;
    }
    this.removeMemberAndUpdateGroup(group, member, 'session timeout');
  }

  private expirePendingMember(group: ClassicGroup, memberId: string): void {
    if (!group.pendingMembers.delete(memberId)) return;
    this.maybeCompleteJoin(group);
    if (group.isInState(ClassicGroupState.Empty) && group.size === 0 && group.generationId === 0) {
      if (!this.offsets.has(group.groupId) && !this.txnOffsets.has(group.groupId)) this.groups.delete(group.groupId);
    }
  }

  /** The classic group snapshot Kafka writes (GroupMetadataValue v3). */
  private storeGroup(group: ClassicGroup): void {
    this.emit({ type: 'GroupMetadata', group: group.groupId, value: this.groupMetadataValue(group) }, false);
  }

  groupMetadataValue(group: ClassicGroup): GroupMetadataValue {
    const protocol = group.protocolName ?? '';
    return {
      protocolType: group.protocolType ?? '',
      generation: group.generationId,
      protocol: group.protocolName,
      leader: group.leaderId,
      currentStateTimestamp: BigInt(group.stateTimestamp),
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        rebalanceTimeout: m.rebalanceTimeoutMs,
        sessionTimeout: m.sessionTimeoutMs,
        subscription: m.metadataFor(protocol),
        assignment: m.assignment,
      })),
    };
  }

  // ------------------------------------------------------------------------------------------
  // SyncGroup

  syncGroup(_info: RequestInfo, req: SyncGroupInput, sink: SyncSink): CoordinatorResult<void> {
    return this.run(() => {
      this.touch(req.groupId);
      try {
        this.doSyncGroup(req, sink);
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        const code = err.errorCode === ErrorCode.GROUP_ID_NOT_FOUND ? ErrorCode.UNKNOWN_MEMBER_ID : err.errorCode;
        this.complete(() => sink(syncError(code)));
      }
    });
  }

  private doSyncGroup(req: SyncGroupInput, sink: SyncSink): void {
    if (req.groupId === '') fail(ErrorCode.INVALID_GROUP_ID);
    const group = this.getOrCreateClassicGroup(req.groupId, false);
    if (group.isInState(ClassicGroupState.Dead)) fail(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    this.validateMember(group, req.memberId, req.groupInstanceId);
    if (req.generationId !== group.generationId) fail(ErrorCode.ILLEGAL_GENERATION);
    if (
      (req.protocolType !== null && req.protocolType !== group.protocolType) ||
      (req.protocolName !== null && req.protocolName !== group.protocolName)
    ) {
      fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    }
    const member = this.changing(group.members.get(req.memberId)!);
    switch (group.state) {
      case ClassicGroupState.Empty:
        fail(ErrorCode.UNKNOWN_MEMBER_ID);
        break;
      case ClassicGroupState.PreparingRebalance:
        fail(ErrorCode.REBALANCE_IN_PROGRESS);
        break;
      case ClassicGroupState.CompletingRebalance: {
        group.pendingSyncMembers.delete(member.memberId);
        if (member.syncSink !== undefined && member.syncSink !== sink) {
          const old = member.syncSink;
          this.complete(() => old(syncError(ErrorCode.REBALANCE_IN_PROGRESS)));
        }
        member.syncSink = sink;
        this.rescheduleHeartbeat(group, member);
        if (group.isLeader(member.memberId)) {
          const assignments = new Map(req.assignments.map((a) => [a.memberId, Buffer.from(a.assignment)]));
          for (const m of group.members.values()) this.changing(m).assignment = assignments.get(m.memberId) ?? EMPTY;
          // Kafka persists the group (with the assignment) and then completes every parked sync;
          // if that append fails, every parked sync gets the error and the group rebalances.
          this.storeGroup(group);
          const generationId = group.generationId;
          this.onAppendFailure((errorCode) => this.assignmentNotStored(group, generationId, errorCode));
          this.logEvent(
            'info',
            {
              group: group.groupId,
              generation: generationId,
              leader: member.memberId,
              members: group.size,
              staticMembers: group.staticMembers.size,
              ...assignmentSizes(group),
            },
            'assignment received from leader',
          );
          group.transitionTo(ClassicGroupState.Stable, this.now());
          for (const m of group.members.values()) {
            if (m.syncSink === undefined) continue;
            const s = m.syncSink;
            m.syncSink = undefined;
            const result: SyncGroupResult = {
              errorCode: ErrorCode.NONE,
              protocolType: group.protocolType,
              protocolName: group.protocolName,
              assignment: m.assignment,
            };
            this.complete(() => s(result));
          }
        }
        break;
      }
      case ClassicGroupState.Stable: {
        group.pendingSyncMembers.delete(member.memberId);
        this.rescheduleHeartbeat(group, member);
        const result: SyncGroupResult = {
          errorCode: ErrorCode.NONE,
          protocolType: group.protocolType,
          protocolName: group.protocolName,
          assignment: member.assignment,
        };
        this.complete(() => sink(result));
        break;
      }
      default:
        fail(ErrorCode.UNKNOWN_MEMBER_ID);
    }
  }

  /**
   * The leader's assignment could not be appended (its SyncGroup was undone): as Kafka does,
   * every member still waiting in SyncGroup gets the error and the group rebalances.
   */
  private assignmentNotStored(group: ClassicGroup, generationId: number, errorCode: number): void {
    if (this.groups.get(group.groupId) !== group) return;
    if (!group.isInState(ClassicGroupState.CompletingRebalance) || group.generationId !== generationId) return;
    this.touch(group.groupId);
    for (const m of group.members.values()) {
      this.changing(m).assignment = EMPTY;
      if (m.syncSink === undefined) continue;
      const s = m.syncSink;
      m.syncSink = undefined;
      this.complete(() => s(syncError(errorCode)));
      this.rescheduleHeartbeat(group, m);
    }
    this.prepareRebalance(group, `error ${errorCode} storing the group assignment`);
  }

  // ------------------------------------------------------------------------------------------
  // Heartbeat

  heartbeat(
    _info: RequestInfo,
    req: { groupId: string; generationId: number; memberId: string; groupInstanceId: string | null },
  ): CoordinatorResult<number> {
    return this.run(() => {
      try {
        const group = this.groups.get(req.groupId);
        if (group instanceof ConsumerGroup) return ErrorCode.INCONSISTENT_GROUP_PROTOCOL;
        if (group === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
        if (group.isInState(ClassicGroupState.Dead)) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
        this.validateMember(group, req.memberId, req.groupInstanceId);
        if (req.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
        const member = group.members.get(req.memberId)!;
        switch (group.state) {
          case ClassicGroupState.Empty:
            return ErrorCode.UNKNOWN_MEMBER_ID;
          case ClassicGroupState.PreparingRebalance:
            this.rescheduleHeartbeat(group, member);
            return ErrorCode.REBALANCE_IN_PROGRESS;
          default:
            this.rescheduleHeartbeat(group, member);
            return ErrorCode.NONE;
        }
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        return err.errorCode;
      }
    });
  }

  // ------------------------------------------------------------------------------------------
  // LeaveGroup

  leaveGroup(
    _info: RequestInfo,
    req: { groupId: string; members: readonly { memberId: string; groupInstanceId: string | null }[] },
  ): CoordinatorResult<{
    errorCode: number;
    members: { memberId: string; groupInstanceId: string | null; errorCode: number }[];
  }> {
    return this.run(() => {
      this.touch(req.groupId);
      const group = this.groups.get(req.groupId);
      if (group instanceof ConsumerGroup) {
        return { errorCode: ErrorCode.UNKNOWN_MEMBER_ID, members: [] };
      }
      if (group === undefined) return { errorCode: ErrorCode.UNKNOWN_MEMBER_ID, members: [] };
      if (group.isInState(ClassicGroupState.Dead))
        return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, members: [] };
      const results = req.members.map((identity) => {
        const errorCode = this.leaveOne(group, identity.memberId, identity.groupInstanceId);
        return { memberId: identity.memberId, groupInstanceId: identity.groupInstanceId, errorCode };
      });
      return { errorCode: ErrorCode.NONE, members: results };
    });
  }

  private leaveOne(group: ClassicGroup, memberId: string, groupInstanceId: string | null): number {
    if (groupInstanceId !== null) {
      const existing = group.staticMembers.get(groupInstanceId);
      if (existing === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
      if (memberId !== UNKNOWN_MEMBER_ID && memberId !== existing) return ErrorCode.FENCED_INSTANCE_ID;
      this.removeMemberAndUpdateGroup(group, group.members.get(existing)!, 'LeaveGroup');
      return ErrorCode.NONE;
    }
    if (group.pendingMembers.has(memberId)) {
      group.pendingMembers.delete(memberId);
      this.timers.cancel(this.pendingMemberTimer(group, memberId));
      this.maybeCompleteJoin(group);
      return ErrorCode.NONE;
    }
    const member = group.members.get(memberId);
    if (member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    this.removeMemberAndUpdateGroup(group, member, 'LeaveGroup');
    return ErrorCode.NONE;
  }

  // ------------------------------------------------------------------------------------------
  // Offsets

  offsetCommit(info: RequestInfo, req: OffsetCommitInput): CoordinatorResult<TopicPartitionErrors[]> {
    return this.run(() => {
      const allWith = (errorCode: number): TopicPartitionErrors[] =>
        req.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
        }));
      try {
        this.validateOffsetCommit(info, req);
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        return allWith(err.errorCode);
      }
      const now = BigInt(this.now());
      // v2-v4 retention: Kafka's expireTimestamp = commitTimestamp + retentionTime (a long),
      // saturated here so a huge retention cannot overflow the record's int64 field.
      const expireTimestamp = req.retentionTimeMs === -1n ? -1n : saturatedInt64(now + req.retentionTimeMs);
      return req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => {
          const metadata = p.committedMetadata ?? '';
          if (Buffer.byteLength(metadata) > this.config.offsetMetadataMaxBytes) {
            return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.OFFSET_METADATA_TOO_LARGE };
          }
          this.emit(
            {
              type: 'OffsetCommit',
              group: req.groupId,
              topic: t.name,
              partition: p.partitionIndex,
              value: {
                offset: p.committedOffset,
                leaderEpoch: p.committedLeaderEpoch,
                metadata,
                commitTimestamp: now,
                expireTimestamp,
              },
            },
            true,
          );
          return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.NONE };
        }),
      }));
    });
  }

  private validateOffsetCommit(info: RequestInfo, req: OffsetCommitInput): void {
    const group = this.groups.get(req.groupId);
    const generation = req.generationIdOrMemberEpoch;
    if (group === undefined) {
      if (generation >= 0) {
        // A member of a group that no longer exists (e.g. deleted, or expired with its offsets).
        fail(info.apiVersion >= 9 ? ErrorCode.GROUP_ID_NOT_FOUND : ErrorCode.ILLEGAL_GENERATION);
      }
      // Group-less consumers (assign() + commit, the admin client) store offsets under a simple
      // empty classic group, whatever member id they send: a KIP-848 consumer has one (KIP-1082)
      // even when it only uses assign(). Kafka's OffsetMetadataManager.validateOffsetCommit.
      this.getOrCreateClassicGroup(req.groupId, true);
      return;
    }
    if (group instanceof ConsumerGroup) {
      this.consumerProtocol.validateOffsetCommit(group, req.memberId, generation, info.apiVersion);
      return;
    }
    if (group.isInState(ClassicGroupState.Dead)) fail(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    if (generation < 0 && group.isInState(ClassicGroupState.Empty)) return;
    if (generation >= 0 || req.memberId !== '' || req.groupInstanceId !== null) {
      this.validateMember(group, req.memberId, req.groupInstanceId);
      if (generation !== group.generationId) fail(ErrorCode.ILLEGAL_GENERATION);
    } else if (!group.isInState(ClassicGroupState.Empty)) {
      fail(ErrorCode.UNKNOWN_MEMBER_ID);
    }
    // Commits with the current generation are fine while preparing a rebalance (consumers
    // commit what they revoke); between JoinGroup and SyncGroup they must wait.
    if (group.isInState(ClassicGroupState.CompletingRebalance)) fail(ErrorCode.REBALANCE_IN_PROGRESS);
  }

  /**
   * TxnOffsetCommit: the offsets are written (by the owner, in one transactional batch of the
   * producer) and stay pending until the transaction's marker (`completeTransaction`). Kafka's
   * OffsetMetadataManager.commitTransactionalOffset.
   */
  txnOffsetCommit(info: RequestInfo, req: TxnOffsetCommitInput): CoordinatorResult<TopicPartitionErrors[]> {
    return this.run(() => {
      const allWith = (errorCode: number): TopicPartitionErrors[] =>
        req.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
        }));
      try {
        this.validateTxnOffsetCommit(info, req);
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        return allWith(err.errorCode);
      }
      const now = BigInt(this.now());
      return req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => {
          const metadata = p.committedMetadata ?? '';
          if (Buffer.byteLength(metadata) > this.config.offsetMetadataMaxBytes) {
            return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.OFFSET_METADATA_TOO_LARGE };
          }
          const record: CoordinatorRecord = {
            type: 'OffsetCommit',
            group: req.groupId,
            topic: t.name,
            partition: p.partitionIndex,
            value: {
              offset: p.committedOffset,
              leaderEpoch: p.committedLeaderEpoch,
              metadata,
              commitTimestamp: now,
              expireTimestamp: -1n,
            },
          };
          this.emit(record, false);
          this.replay(record, req.producerId);
          return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.NONE };
        }),
      }));
    });
  }

  /** Kafka's validateTransactionalOffsetCommit (ClassicGroup/ConsumerGroup with isTransactional). */
  private validateTxnOffsetCommit(info: RequestInfo, req: TxnOffsetCommitInput): void {
    // Kafka's GroupCoordinatorService: an empty group id is refused before the coordinator.
    if (req.groupId === '') fail(ErrorCode.INVALID_GROUP_ID);
    const group = this.groups.get(req.groupId);
    const generation = req.generationId;
    if (group === undefined) {
      if (generation >= 0) fail(ErrorCode.ILLEGAL_GENERATION);
      this.getOrCreateClassicGroup(req.groupId, true);
      return;
    }
    if (group instanceof ConsumerGroup) {
      try {
        // Transactional commits of KIP-848 members have no OffsetCommit v9 requirement.
        this.consumerProtocol.validateOffsetCommit(group, req.memberId, generation, Math.max(info.apiVersion, 9));
      } catch (err) {
        if (err instanceof KafkaError && err.errorCode === ErrorCode.STALE_MEMBER_EPOCH) {
          fail(ErrorCode.ILLEGAL_GENERATION);
        }
        throw err;
      }
      return;
    }
    if (group.isInState(ClassicGroupState.Dead)) fail(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    if (generation < 0 && group.isInState(ClassicGroupState.Empty)) return;
    if (generation >= 0 || req.memberId !== '' || req.groupInstanceId !== null) {
      this.validateMember(group, req.memberId, req.groupInstanceId);
      if (generation !== group.generationId) fail(ErrorCode.ILLEGAL_GENERATION);
    }
    // Without member and generation (TxnOffsetCommit v0-2), a commit to a non-empty group is
    // accepted, and a transactional commit is accepted while completing a rebalance (Kafka).
  }

  /**
   * A transaction marker for a `__consumer_offsets` partition (WriteTxnMarkers): the producer's
   * pending offsets of the groups `accept` accepts (that partition's) are committed or dropped.
   * The owner appends the marker; nothing else is written.
   */
  completeTransaction(
    producerId: bigint,
    commit: boolean,
    accept?: (groupId: string) => boolean,
  ): CoordinatorResult<void> {
    return this.run(() => this.replayEndTransactionMarker(producerId, commit, accept));
  }

  offsetFetch(_info: RequestInfo, req: OffsetFetchInput): CoordinatorResult<OffsetFetchGroupResult> {
    return this.run(() => {
      const group = this.groups.get(req.groupId);
      if (group instanceof ConsumerGroup && (req.memberId !== null || req.memberEpoch >= 0)) {
        try {
          this.consumerProtocol.validateOffsetFetch(group, req.memberId ?? '', req.memberEpoch);
        } catch (err) {
          if (!(err instanceof KafkaError)) throw err;
          return { groupId: req.groupId, errorCode: err.errorCode, topics: [] };
        }
      }
      const committed = this.offsets.get(req.groupId);
      const entry = (topic: string, partition: number): OffsetFetchPartition => {
        if (req.requireStable && this.txnOffsets.has(req.groupId, topic, partition)) {
          // KIP-447: a transactional commit of the partition is pending; the client retries.
          return {
            partitionIndex: partition,
            committedOffset: -1n,
            committedLeaderEpoch: -1,
            metadata: '',
            errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT,
          };
        }
        const e = committed?.get(topic)?.get(partition);
        if (e === undefined) {
          return {
            partitionIndex: partition,
            committedOffset: -1n,
            committedLeaderEpoch: -1,
            metadata: '',
            errorCode: 0,
          };
        }
        return {
          partitionIndex: partition,
          committedOffset: e.offset,
          committedLeaderEpoch: e.leaderEpoch,
          metadata: e.metadata,
          errorCode: ErrorCode.NONE,
        };
      };
      if (req.topics === null) {
        const topics = [...(committed ?? new Map<string, Map<number, OffsetEntry>>()).entries()].map(
          ([name, parts]) => ({
            name,
            partitions: [...parts.keys()].sort((a, b) => a - b).map((p) => entry(name, p)),
          }),
        );
        return { groupId: req.groupId, errorCode: ErrorCode.NONE, topics };
      }
      return {
        groupId: req.groupId,
        errorCode: ErrorCode.NONE,
        topics: req.topics.map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((p) => entry(t.name, p)) })),
      };
    });
  }

  offsetDelete(
    _info: RequestInfo,
    req: { groupId: string; topics: readonly { name: string; partitions: readonly { partitionIndex: number }[] }[] },
  ): CoordinatorResult<{ errorCode: number; topics: TopicPartitionErrors[] }> {
    return this.run(() => {
      const group = this.groups.get(req.groupId);
      if (group === undefined || (group instanceof ClassicGroup && group.isInState(ClassicGroupState.Dead))) {
        return { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, topics: [] };
      }
      let subscribed: Set<string> | undefined;
      if (group instanceof ClassicGroup) {
        if (!group.isInState(ClassicGroupState.Empty)) {
          if (group.protocolType !== 'consumer') return { errorCode: ErrorCode.NON_EMPTY_GROUP, topics: [] };
          subscribed = group.subscribedTopics();
          // Kafka protects every offset when the subscriptions cannot be read.
          if (subscribed === undefined) return { errorCode: ErrorCode.NON_EMPTY_GROUP, topics: [] };
        }
      } else {
        subscribed = group.subscribedTopicNames();
      }
      const topics = req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => {
          if (subscribed?.has(t.name)) {
            return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC };
          }
          // A tombstone also drops the partition's pending transactional offsets (as Kafka).
          if (
            this.offsets.get(req.groupId)?.get(t.name)?.has(p.partitionIndex) ||
            this.txnOffsets.has(req.groupId, t.name, p.partitionIndex)
          ) {
            this.emit(
              { type: 'OffsetCommit', group: req.groupId, topic: t.name, partition: p.partitionIndex, value: null },
              true,
            );
          }
          return { partitionIndex: p.partitionIndex, errorCode: ErrorCode.NONE };
        }),
      }));
      return { errorCode: ErrorCode.NONE, topics };
    });
  }

  /**
   * Expires committed offsets past offsets.retention.minutes, as Kafka's cleanup does: of every
   * group with offsets, or of the given groups (one `__consumer_offsets` partition's).
   */
  cleanupExpiredOffsets(groupIds?: Iterable<string>): void {
    const now = this.now();
    const retention = BigInt(this.config.offsetsRetentionMs);
    for (const groupId of [...(groupIds ?? this.offsets.keys())]) {
      const topics = this.offsets.get(groupId);
      if (topics === undefined) continue;
      const group = this.groups.get(groupId);
      let base: ((e: OffsetEntry) => bigint) | undefined;
      let subscribed: Set<string> | undefined;
      if (group === undefined) base = (e) => e.commitTimestamp;
      else if (group instanceof ClassicGroup) {
        if (group.protocolType === null || group.protocolType === '') {
          base = (e) => e.commitTimestamp;
        } else if (group.isInState(ClassicGroupState.Empty)) {
          base = () => BigInt(group.stateTimestamp);
        } else if (group.protocolType === 'consumer' && group.isInState(ClassicGroupState.Stable)) {
          subscribed = group.subscribedTopics();
          if (subscribed !== undefined) base = (e) => e.commitTimestamp;
        }
      } else {
        subscribed = group.subscribedTopicNames();
        base = (e) => e.commitTimestamp;
      }
      if (base === undefined) continue;
      for (const [topic, parts] of [...topics]) {
        if (subscribed?.has(topic)) continue;
        for (const [partition, e] of [...parts]) {
          // Not while a transactional commit of the partition is pending (Kafka).
          if (this.txnOffsets.has(groupId, topic, partition)) continue;
          // An explicit expire timestamp (v2-v4 retention) wins, as in Kafka (-1 = none).
          const expired =
            e.expireTimestamp !== -1n ? BigInt(now) >= e.expireTimestamp : base(e) + retention <= BigInt(now);
          if (expired) this.emit({ type: 'OffsetCommit', group: groupId, topic, partition, value: null }, true);
        }
      }
      // A classic group with no members and no offsets left is deleted (Kafka writes a tombstone).
      if (
        group instanceof ClassicGroup &&
        group.isInState(ClassicGroupState.Empty) &&
        !this.offsets.has(groupId) &&
        !this.txnOffsets.has(groupId)
      ) {
        this.touch(groupId);
        group.transitionTo(ClassicGroupState.Dead, now);
        this.groups.delete(groupId);
        this.emit({ type: 'GroupMetadata', group: groupId, value: null }, false);
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Administration: DescribeGroups, ListGroups, DeleteGroups

  describeGroups(_info: RequestInfo, groupIds: readonly string[]): CoordinatorResult<DescribedGroup[]> {
    return this.run(() =>
      groupIds.map((groupId): DescribedGroup => {
        const group = this.groups.get(groupId);
        const dead: DescribedGroup = {
          groupId,
          errorCode: ErrorCode.NONE,
          groupState: ClassicGroupState.Dead,
          protocolType: '',
          protocolData: '',
          members: [],
        };
        if (group === undefined) return dead;
        if (group instanceof ConsumerGroup) {
          // DescribeGroups only knows classic groups; KIP-848 groups answer ConsumerGroupDescribe.
          return { ...dead, errorCode: ErrorCode.NONE, groupState: group.stateName(), protocolType: 'consumer' };
        }
        const stable = group.isInState(ClassicGroupState.Stable);
        const protocol = group.protocolName ?? '';
        return {
          groupId,
          errorCode: ErrorCode.NONE,
          groupState: group.state,
          protocolType: group.protocolType ?? '',
          protocolData: stable ? protocol : '',
          members: group.isInState(ClassicGroupState.Dead)
            ? []
            : [...group.members.values()].map((m) => ({
                memberId: m.memberId,
                groupInstanceId: m.groupInstanceId,
                clientId: m.clientId,
                clientHost: m.clientHost,
                memberMetadata: stable ? m.metadataFor(protocol) : EMPTY,
                memberAssignment: stable ? m.assignment : EMPTY,
              })),
        };
      }),
    );
  }

  /** ListGroups; with `groups`, only the groups it accepts (one `__consumer_offsets` partition's). */
  listGroups(
    _info: RequestInfo,
    statesFilter: readonly string[],
    typesFilter: readonly string[],
    groups?: (groupId: string) => boolean,
  ): CoordinatorResult<ListedGroup[]> {
    return this.run(() => {
      const states = new Set(statesFilter.map((s) => s.toLowerCase()));
      const types = new Set(typesFilter.map((s) => s.toLowerCase()));
      const out: ListedGroup[] = [];
      for (const group of this.groups.values()) {
        if (groups !== undefined && !groups(group.groupId)) continue;
        const listed: ListedGroup =
          group instanceof ClassicGroup
            ? {
                groupId: group.groupId,
                protocolType: group.protocolType ?? '',
                groupState: group.state,
                groupType: 'classic',
              }
            : {
                groupId: group.groupId,
                protocolType: 'consumer',
                groupState: group.stateName(),
                groupType: 'consumer',
              };
        if (listed.groupState === ClassicGroupState.Dead) continue;
        if (states.size > 0 && !states.has(listed.groupState.toLowerCase())) continue;
        if (types.size > 0 && !types.has(listed.groupType)) continue;
        out.push(listed);
      }
      return out;
    });
  }

  deleteGroups(
    _info: RequestInfo,
    groupIds: readonly string[],
  ): CoordinatorResult<{ groupId: string; errorCode: number }[]> {
    return this.run(() =>
      groupIds.map((groupId) => {
        const group = this.groups.get(groupId);
        if (groupId === '') return { groupId, errorCode: ErrorCode.INVALID_GROUP_ID };
        if (group === undefined) return { groupId, errorCode: ErrorCode.GROUP_ID_NOT_FOUND };
        if (group instanceof ClassicGroup) {
          if (group.isInState(ClassicGroupState.Dead)) return { groupId, errorCode: ErrorCode.GROUP_ID_NOT_FOUND };
          if (!group.isInState(ClassicGroupState.Empty)) return { groupId, errorCode: ErrorCode.NON_EMPTY_GROUP };
        } else if (!group.isEmpty()) {
          return { groupId, errorCode: ErrorCode.NON_EMPTY_GROUP };
        }
        this.touch(groupId);
        this.deleteOffsetsOf(groupId);
        if (group instanceof ClassicGroup) {
          group.transitionTo(ClassicGroupState.Dead, this.now());
          this.groups.delete(groupId);
          this.emit({ type: 'GroupMetadata', group: groupId, value: null }, false);
        } else {
          this.consumerProtocol.deleteGroupRecords(group);
        }
        return { groupId, errorCode: ErrorCode.NONE };
      }),
    );
  }

  private deleteOffsetsOf(groupId: string): void {
    const topics = this.offsets.get(groupId);
    for (const [topic, parts] of [...(topics ?? [])]) {
      for (const partition of [...parts.keys()]) {
        this.emit({ type: 'OffsetCommit', group: groupId, topic, partition, value: null }, true);
      }
    }
    // Pending transactional offsets too (one tombstone per partition, as Kafka's deleteAllOffsets).
    for (const { topic, partition } of this.txnOffsets.partitionsOf(groupId)) {
      this.emit({ type: 'OffsetCommit', group: groupId, topic, partition, value: null }, true);
    }
  }

  // ------------------------------------------------------------------------------------------
  // KIP-848 consumer groups (consumer-group-heartbeat.ts)

  consumerGroupHeartbeat(
    info: RequestInfo,
    req: ConsumerGroupHeartbeatInput,
  ): CoordinatorResult<ConsumerGroupHeartbeatResult> {
    return this.run(() => this.consumerProtocol.heartbeat(info, req));
  }

  consumerGroupDescribe(_info: RequestInfo, groupIds: readonly string[]): CoordinatorResult<DescribedConsumerGroup[]> {
    return this.run(() => this.consumerProtocol.describe(groupIds));
  }

  /**
   * Called once the log is loaded (with `accept`, one `__consumer_offsets` partition's groups):
   * session timeouts start for the loaded KIP-848 members.
   */
  onLoaded(accept?: (groupId: string) => boolean): void {
    this.consumerProtocol.onLoaded(accept);
  }

  // ------------------------------------------------------------------------------------------
  // Replay

  /**
   * Applies one record read from `__consumer_offsets` (or generated by an operation).
   * `producerId`: the producer of a transactional batch holding it (an offset it commits is
   * pending until the transaction's marker); NO_PRODUCER_ID otherwise.
   */
  replay(record: CoordinatorRecord, producerId: bigint = NO_PRODUCER_ID): void {
    switch (record.type) {
      case 'OffsetCommit':
        this.replayOffsetCommit(record.group, record.topic, record.partition, record.value, producerId);
        return;
      case 'GroupMetadata':
        this.replayGroupMetadata(record.group, record.value);
        return;
      default:
        this.consumerProtocol.replay(record);
    }
  }

  private replayOffsetCommit(
    groupId: string,
    topic: string,
    partition: number,
    value: OffsetCommitValue | null,
    producerId: bigint,
  ): void {
    if (value !== null && !this.groups.has(groupId)) {
      // Offsets of an unknown group belong to a simple (group-less) consumer: Kafka creates an
      // empty classic group for them.
      this.groups.set(groupId, new ClassicGroup(groupId, this.now()));
    }
    if (value === null) {
      // A tombstone removes the committed offset and every pending transactional one (Kafka).
      this.txnOffsets.clearPartition(groupId, topic, partition);
      this.setOffset(groupId, topic, partition, undefined);
      return;
    }
    const entry: OffsetEntry = {
      offset: value.offset,
      leaderEpoch: value.leaderEpoch,
      metadata: value.metadata,
      commitTimestamp: value.commitTimestamp,
      expireTimestamp: value.expireTimestamp,
    };
    this.#logOrder.set(entry, ++this.#nextLogOrder);
    if (producerId === NO_PRODUCER_ID) this.setOffset(groupId, topic, partition, entry);
    else this.txnOffsets.set(producerId, groupId, topic, partition, entry);
  }

  /** Sets (or removes) one committed offset, undoably. */
  private setOffset(groupId: string, topic: string, partition: number, entry: OffsetEntry | undefined): void {
    const previous = this.offsets.get(groupId)?.get(topic)?.get(partition);
    if (entry === undefined && previous === undefined) return;
    this.#undo?.add(() => this.putOffset(groupId, topic, partition, previous));
    this.putOffset(groupId, topic, partition, entry);
  }

  /**
   * Applies a transaction marker of a `__consumer_offsets` partition (read back, or appended by
   * `completeTransaction`): the producer's pending offsets of the groups `accept` accepts (that
   * partition's) are committed or dropped. As Kafka's replayEndTransactionMarker, a committed
   * one replaces the committed offset only if it was written after it: a plain commit written
   * later wins.
   */
  replayEndTransactionMarker(producerId: bigint, commit: boolean, accept?: (groupId: string) => boolean): void {
    for (const { groupId, topic, partition, entry } of this.txnOffsets.ofProducer(producerId, accept)) {
      this.txnOffsets.set(producerId, groupId, topic, partition, undefined);
      if (!commit) continue;
      const existing = this.offsets.get(groupId)?.get(topic)?.get(partition);
      const order = this.#logOrder.get(entry) ?? 0;
      if (existing === undefined || order > (this.#logOrder.get(existing) ?? 0)) {
        this.setOffset(groupId, topic, partition, entry);
      }
    }
  }

  /** Sets (or, with undefined, removes) one committed offset, keeping no empty maps. */
  private putOffset(groupId: string, topic: string, partition: number, entry: OffsetEntry | undefined): void {
    let topics = this.offsets.get(groupId);
    if (entry === undefined) {
      const parts = topics?.get(topic);
      parts?.delete(partition);
      if (parts?.size === 0) topics?.delete(topic);
      if (topics?.size === 0) this.offsets.delete(groupId);
      return;
    }
    if (topics === undefined) {
      topics = new Map();
      this.offsets.set(groupId, topics);
    }
    let parts = topics.get(topic);
    if (parts === undefined) {
      parts = new Map();
      topics.set(topic, parts);
    }
    parts.set(partition, entry);
  }

  private replayGroupMetadata(groupId: string, value: GroupMetadataValue | null): void {
    const existing = this.groups.get(groupId);
    if (value === null) {
      if (existing instanceof ClassicGroup) {
        for (const m of existing.members.values()) this.timers.cancel(this.heartbeatTimer(existing, m.memberId));
        this.groups.delete(groupId);
      }
      return;
    }
    if (existing instanceof ClassicGroup) {
      for (const m of existing.members.values()) this.timers.cancel(this.heartbeatTimer(existing, m.memberId));
    }
    const group = new ClassicGroup(
      groupId,
      Number(value.currentStateTimestamp) >= 0 ? Number(value.currentStateTimestamp) : this.now(),
    );
    group.generationId = value.generation;
    group.protocolType = value.protocolType === '' ? null : value.protocolType;
    group.protocolName = value.protocol;
    for (const m of value.members) {
      const member = new ClassicGroupMember({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        rebalanceTimeoutMs: m.rebalanceTimeout < 0 ? m.sessionTimeout : m.rebalanceTimeout,
        sessionTimeoutMs: m.sessionTimeout,
        protocolType: value.protocolType,
        protocols: [{ name: value.protocol ?? '', metadata: Buffer.from(m.subscription) }],
      });
      member.assignment = Buffer.from(m.assignment);
      member.isNew = false;
      group.members.set(member.memberId, member);
      if (member.groupInstanceId !== null) group.staticMembers.set(member.groupInstanceId, member.memberId);
    }
    group.leaderId = value.leader;
    group.state = group.size > 0 ? ClassicGroupState.Stable : ClassicGroupState.Empty;
    this.groups.set(groupId, group);
    // Loaded members must heartbeat within their session timeout, or they are removed.
    for (const m of group.members.values()) this.rescheduleHeartbeat(group, m);
  }
}
