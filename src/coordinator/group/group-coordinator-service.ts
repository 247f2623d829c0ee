/**
 * Runs the GroupCoordinator state machine inside the broker: the only place where the group
 * coordinator touches I/O, through the small interfaces it is handed. Kafka's CoordinatorRuntime.
 *
 * - Creates `__consumer_offsets` (compacted, `offsets.topic.num.partitions` partitions) on first
 *   need, as Kafka does on the first FindCoordinator.
 * - Which of its partitions this broker coordinates (`ownership`):
 *   - 'all' (one node): every partition, present and future. `start()` loads them all: every
 *     record of every partition is replayed into the state machine; until that finishes, group
 *     requests fail with COORDINATOR_LOAD_IN_PROGRESS.
 *   - 'elected' (a cluster): the partitions this broker leads. `onElection(partition,
 *     leaderEpoch)` loads one (Kafka's scheduleLoadOperation): its records are replayed, and its
 *     groups answer COORDINATOR_LOAD_IN_PROGRESS until that finishes. `onResignation` unloads it
 *     (scheduleUnloadOperation, GroupCoordinatorShard.onUnloaded): its operations not appended
 *     yet are undone and fail with NOT_COORDINATOR, its groups, committed offsets and timers
 *     leave the state machine, and its parked JoinGroup/SyncGroup get NOT_COORDINATOR. Groups of
 *     a partition not elected (or whose load failed) answer NOT_COORDINATOR. Elections and
 *     resignations of a partition are ordered by leader epoch, as Kafka orders them: one not
 *     newer than the epoch already seen is ignored, and a resignation cancels a load in
 *     progress. Reads of every group (ListGroups, committed offsets for the metrics, offset
 *     expiry) cover only the loaded partitions, and ListGroups answers
 *     COORDINATOR_LOAD_IN_PROGRESS while one loads (Kafka's scheduleReadAllOperation).
 *   The state machine is shared by the partitions; it only holds groups of partitions loaded or
 *   loading, and a loading partition's timers (armed by replay) do not fire before it is loaded.
 * - Each `__consumer_offsets` partition is one coordinator: its operations (requests for its
 *   groups, its timeouts, its offset expiry) run in arrival order, each a synchronous
 *   state-machine call made on top of the operations whose records are not appended yet (as in
 *   Kafka). Their records are appended in order, in batches kept under max.message.bytes, one
 *   batch in flight at a time; an operation's response (and the parked JoinGroup/SyncGroup
 *   responses it completed) is released once its batch is appended. Reads wait for everything
 *   queued before them to be appended, so they never see state the log may not get.
 * - When an append fails (the log is offline, the batch is over max.message.bytes, ...), that
 *   batch and every operation executed on top of it are undone, newest first
 *   (`GroupCoordinator.revert`): the state is again exactly what the log holds. The operation
 *   that failed gets Kafka's error for it (NOT_COORDINATOR for a storage error,
 *   UNKNOWN_SERVER_ERROR for a batch too large, ...), and its failure callbacks run; the others
 *   run again, one batch each if the failed batch had several writers. A record that cannot be
 *   serialised fails its own operation before anything is batched.
 * - One timer, armed at the state machine's next deadline, drives session/rebalance timeouts,
 *   expired per partition; another runs the offset expiry every
 *   `offsets.retention.check.interval.ms`, per partition too.
 * A crash between a state change and its append loses that change only: the response was not
 * sent, and replay on restart rebuilds the state the log holds.
 */
import type { Logger } from 'pino';
import type { TopicMetadata } from '../../metadata/metadata-store.ts';
import { ErrorCode, KafkaError } from '../../protocol/error-codes.ts';
import { isControl, isTransactional } from '../../protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../../protocol/records/builder.ts';
import { readControlRecord } from '../../protocol/records/control-record.ts';
import { iterateBatches } from '../../protocol/records/iterate-batches.ts';
import { decodeRecordsSync } from '../../protocol/records/record.ts';
import type { Clock } from '../../util/clock.ts';
import type { JoinGroupResult, SyncGroupResult } from './classic-group.ts';
import type { ConsumerGroupHeartbeatInput, TopicInfo } from './consumer-group-heartbeat.ts';
import { type CoordinatorRecord, decodeRecord, encodeRecord, partitionForGroup } from './coordinator-records.ts';
import type { GroupCoordinatorConfig } from './group-config.ts';
import {
  type CoordinatorResult,
  GroupCoordinator,
  type JoinGroupInput,
  NO_PRODUCER_ID,
  type OffsetCommitInput,
  type OffsetFetchInput,
  type RequestInfo,
  type SyncGroupInput,
  type TopicPartitionErrors,
  type TxnOffsetCommitInput,
} from './group-coordinator.ts';

export const CONSUMER_OFFSETS_TOPIC = '__consumer_offsets';
const LOAD_CHUNK_BYTES = 4 * 1024 * 1024;
/** setTimeout's largest delay; longer ones would fire at once. */
const TIMEOUT_MAX_MS = 2 ** 31 - 1;
/** After timeouts could not be persisted, how long before trying again (Kafka's timer retry). */
const TIMER_RETRY_BACKOFF_MS = 500;

/**
 * What a request gets when its records could not be appended to `__consumer_offsets`: Kafka's
 * CoordinatorOperationExceptionHelper.handleOperationException mapping of the append error.
 */
export function appendFailureError(err: unknown): KafkaError {
  if (!(err instanceof KafkaError)) {
    return new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, undefined, { cause: err });
  }
  switch (err.errorCode) {
    case ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
    case ErrorCode.NOT_ENOUGH_REPLICAS:
    case ErrorCode.REQUEST_TIMED_OUT:
      return new KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, undefined, { cause: err });
    case ErrorCode.NOT_LEADER_OR_FOLLOWER:
    case ErrorCode.KAFKA_STORAGE_ERROR:
      return new KafkaError(ErrorCode.NOT_COORDINATOR, undefined, { cause: err });
    case ErrorCode.MESSAGE_TOO_LARGE:
    case ErrorCode.RECORD_LIST_TOO_LARGE:
    case ErrorCode.INVALID_FETCH_SIZE:
      return new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, undefined, { cause: err });
    case ErrorCode.NETWORK_EXCEPTION:
      return new KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, undefined, { cause: err });
    default:
      return err;
  }
}

/** What the service needs from the topic manager. */
export interface GroupTopicAccess {
  get(name: string): TopicMetadata | undefined;
  list(): TopicMetadata[];
  create(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    validateOnly: boolean,
  ): Promise<TopicMetadata>;
}

/** What the service needs from the log service. */
export interface GroupLogAccess {
  append(topic: TopicMetadata, partition: number, records: Buffer, requiredAcks: number): Promise<unknown>;
  read(
    topic: TopicMetadata,
    partition: number,
    fetchOffset: bigint,
    maxBytes: number,
    readCommitted: boolean,
    minOneBatch: boolean,
  ): Promise<{ records: Buffer[]; logEndOffset: bigint; logStartOffset: bigint }>;
  /**
   * A load's read: up to the log end, not the high watermark (Kafka's CoordinatorLoaderImpl reads
   * with LOG_END: a new leader's high watermark still trails what the ISR acknowledged).
   */
  readToLogEnd?(
    topic: TopicMetadata,
    partition: number,
    fetchOffset: bigint,
    maxBytes: number,
  ): Promise<{ records: Buffer[]; logEndOffset: bigint; logStartOffset: bigint }>;
  offsets(topic: TopicMetadata, partition: number): { logStartOffset: bigint; logEndOffset: bigint };
  /**
   * Appends a transaction marker (a control batch: commit or abort, with the transaction
   * coordinator's epoch) for a producer to a partition this broker leads, as Kafka's
   * ReplicaManager.appendRecords with a WriteTxnMarkers batch (origin COORDINATOR). Rejects with
   * the log's KafkaError (NOT_LEADER_OR_FOLLOWER, TRANSACTION_COORDINATOR_FENCED, ...).
   * Optional only so that log fakes without transactions need not have it; the broker's
   * ReplicaManager has it, and `completeTransaction` needs it.
   */
  appendTxnMarker?(
    topic: TopicMetadata,
    partition: number,
    marker: { producerId: bigint; producerEpoch: number; coordinatorEpoch: number; commit: boolean },
    requiredAcks: number,
  ): Promise<unknown>;
}

/**
 * The base sequence of the transactional batch a TxnOffsetCommit writes: 0, as Kafka's
 * coordinator writes it (the log does not check the sequences of coordinator batches).
 */
const TXN_OFFSET_COMMIT_BASE_SEQUENCE = 0;

/**
 * Which `__consumer_offsets` partitions the service coordinates: 'all' on one node; 'elected'
 * (a cluster), those `onElection` gives it, until `onResignation`.
 */
export type CoordinatorOwnership = 'all' | 'elected';

export interface GroupCoordinatorServiceOptions {
  topics: GroupTopicAccess;
  logs: GroupLogAccess;
  config: GroupCoordinatorConfig;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** 'all' by default. */
  ownership?: CoordinatorOwnership;
  /**
   * The replication factor `__consumer_offsets` is created with (a cluster: min of
   * offsets.topic.replication.factor and the live brokers); 1 by default.
   */
  offsetsTopicReplicationFactor?: () => number;
}

/**
 * An elected partition ('elected' ownership): loading until its records are replayed, then
 * active; failed when its load failed (NOT_COORDINATOR until the next election, as Kafka's
 * FAILED state). Unloaded partitions have none.
 */
interface Leadership {
  leaderEpoch: number;
  state: 'loading' | 'active' | 'failed';
  /** Settles when the load ends (loaded, failed or cancelled). */
  loading: Promise<void>;
}

/**
 * What an operation appends instead of a plain batch of its records: its records as one
 * transactional batch of a producer (TxnOffsetCommit), or a transaction marker. Either way its
 * batch holds it alone (operations after it may run on top of it, in batches of their own).
 */
type SpecialWrite =
  | { type: 'txn'; producerId: bigint; producerEpoch: number }
  | { type: 'marker'; producerId: bigint; producerEpoch: number; coordinatorEpoch: number; commit: boolean };

/** An operation not executed yet. */
interface Task {
  run: () => CoordinatorResult<unknown>;
  resolve: (response: unknown) => void;
  reject: (err: unknown) => void;
  /** Runs only when everything before it is appended, and alone in its batch. */
  exclusive: boolean;
  special?: SpecialWrite;
}

/** A record, serialised. */
interface EncodedRecord {
  group: string;
  key: Buffer;
  value: Buffer | null;
}

/** An executed operation waiting for its batch's append. */
interface Op {
  task: Task;
  result: CoordinatorResult<unknown>;
  records: EncodedRecord[];
  /** What its records add to a batch, at most. */
  bytes: number;
}

/** Operations whose records are appended together (one batch of __consumer_offsets). */
interface Batch {
  ops: Op[];
  bytes: number;
  /** Holds one exclusive operation: nothing joins it, nothing runs on top of it. */
  sealed: boolean;
  /** Holds one operation appended as a transactional batch or marker: nothing joins it. */
  special?: SpecialWrite;
}

/**
 * One `__consumer_offsets` partition's coordinator: `inFlight` is being appended, `pending`
 * (batches in order) was executed on top of it and is appended next, `waiting` has not run
 * yet (FIFO).
 */
interface Shard {
  readonly partition: number;
  readonly waiting: Task[];
  readonly pending: Batch[];
  inFlight: Batch | undefined;
  /** Unloaded: its operations were failed, and its append in flight no longer answers anyone. */
  closed: boolean;
}

/** An upper bound of a record batch's size holding `records` (v2 overhead, varints at most 5 bytes each). */
function batchBytes(records: readonly EncodedRecord[]): number {
  let n = 0;
  for (const r of records) n += r.key.length + (r.value?.length ?? 0) + 32;
  return n === 0 ? 0 : n + 61;
}

function toTopicInfo(t: TopicMetadata): TopicInfo {
  return { name: t.name, topicId: t.topicId, partitions: t.partitions };
}

/** What the operations of a partition that is no longer coordinated here get. */
function notCoordinator(partition: number): KafkaError {
  return new KafkaError(
    ErrorCode.NOT_COORDINATOR,
    `this broker does not coordinate __consumer_offsets partition ${partition}`,
  );
}

export class GroupCoordinatorService {
  readonly coordinator: GroupCoordinator;
  readonly config: GroupCoordinatorConfig;
  readonly #topics: GroupTopicAccess;
  readonly #offsetsTopicReplicationFactor: () => number;
  readonly #logs: GroupLogAccess;
  readonly #log: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly #clock: Clock;
  readonly #ownership: CoordinatorOwnership;
  /** 'all' ownership: every partition is loaded. */
  #loaded = false;
  /** 'elected' ownership: the partitions elected here, by partition. */
  readonly #leadership = new Map<number, Leadership>();
  /** 'elected' ownership: how many of them are loading. */
  #loadingCount = 0;
  #retentionStarted = false;
  #loading: Promise<void> | undefined;
  #topicReady: Promise<TopicMetadata> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerDeadline: number | undefined;
  #retentionTimer: NodeJS.Timeout | undefined;
  /** Timeout operations queued and not finished; the timer is re-armed when none is left. */
  #polling = 0;
  /** Timeouts are not fired again before this (after their records could not be appended). */
  #retryAt = 0;
  #closed = false;
  /** Per `__consumer_offsets` partition: its operations waiting, executed and being appended. */
  readonly #shards = new Map<number, Shard>();
  /** Every operation not answered yet (close waits for them). */
  readonly #inFlight = new Set<Promise<void>>();

  constructor(options: GroupCoordinatorServiceOptions) {
    this.#topics = options.topics;
    this.#offsetsTopicReplicationFactor = options.offsetsTopicReplicationFactor ?? (() => 1);
    this.#logs = options.logs;
    this.#log = options.logger;
    this.#clock = options.clock;
    this.#ownership = options.ownership ?? 'all';
    this.config = options.config;
    this.coordinator = new GroupCoordinator({
      clock: options.clock,
      config: options.config,
      // Rebalances and members joining and leaving, once appended (the pino logger's debug too).
      logger: options.logger,
      topics: {
        byName: (name) => {
          const t = options.topics.get(name);
          return t === undefined ? undefined : toTopicInfo(t);
        },
        all: () => options.topics.list().map(toTopicInfo),
      },
    });
  }

  /** Nothing is loading: every partition ('all') or every elected one ('elected') is loaded (/ready). */
  get loaded(): boolean {
    return this.#ownership === 'all' ? this.#loaded : this.#loadingCount === 0;
  }

  /**
   * Every committed offset of every group of the loaded partitions (for the metrics:
   * kafka-exporter's consumer group offsets and lag).
   */
  committedOffsets(): { groupId: string; topic: string; partition: number; offset: bigint }[] {
    const out = [];
    for (const [groupId, topics] of this.coordinator.offsets) {
      if (this.#ownership === 'elected' && !this.#isActive(this.partitionFor(groupId))) continue;
      for (const [topic, partitions] of topics)
        for (const [partition, entry] of partitions) out.push({ groupId, topic, partition, offset: entry.offset });
    }
    return out;
  }

  /**
   * 'all': starts loading `__consumer_offsets` (when it exists); resolves once loaded.
   * 'elected': starts the offset expiry; partitions are loaded as they are elected.
   */
  start(): Promise<void> {
    if (this.#ownership === 'elected') {
      this.#startRetention();
      return Promise.resolve();
    }
    this.#loading ??= this.#load().then(
      () => {
        this.#loaded = true;
        this.coordinator.onLoaded();
        this.#startRetention();
        this.#arm();
      },
      (err: unknown) => {
        this.#log.error({ err }, 'could not load __consumer_offsets; group coordinator unavailable');
        throw err;
      },
    );
    return this.#loading;
  }

  async #load(): Promise<void> {
    const topic = this.#topics.get(CONSUMER_OFFSETS_TOPIC);
    if (topic === undefined) return;
    let count = 0;
    for (let p = 0; p < topic.partitions; p++) count += await this.#replayPartition(topic, p, () => false);
    this.#log.info({ records: count, groups: this.coordinator.groups.size }, 'group coordinator loaded');
  }

  /**
   * Replays every record of one partition into the state machine; stops (before replaying
   * anything more) once `cancelled` says so. Returns how many records it replayed.
   */
  async #replayPartition(topic: TopicMetadata, p: number, cancelled: () => boolean): Promise<number> {
    let count = 0;
    const { logStartOffset, logEndOffset } = this.#logs.offsets(topic, p);
    let offset = logStartOffset;
    while (offset < logEndOffset) {
      const chunk =
        this.#logs.readToLogEnd === undefined
          ? await this.#logs.read(topic, p, offset, LOAD_CHUNK_BYTES, false, true)
          : await this.#logs.readToLogEnd(topic, p, offset, LOAD_CHUNK_BYTES);
      if (cancelled()) return count;
      let next = offset;
      for (const buf of chunk.records) {
        for (const entry of iterateBatches(buf, { partialTail: 'stop', verifyCrc: false })) {
          const h = entry.header;
          next = h.baseOffset + BigInt(h.lastOffsetDelta) + 1n;
          if (h.baseOffset + BigInt(h.lastOffsetDelta) < offset) continue;
          const records = decodeRecordsSync(buf.subarray(entry.offset, entry.offset + entry.size), {
            verifyCrc: false,
          });
          if (isControl(h.attributes)) {
            // A transaction marker completes the producer's pending offsets of this partition.
            const r = records[0];
            if (r === undefined || r.offset < offset) continue;
            const marker = readControlRecord({
              key: r.key === null ? null : Buffer.from(r.key),
              value: r.value === null ? null : Buffer.from(r.value),
            });
            if (marker.type === 'unknown') continue;
            this.coordinator.replayEndTransactionMarker(
              h.producerId,
              marker.type === 'commit',
              (g) => this.partitionFor(g) === p,
            );
            count++;
            continue;
          }
          const producerId = isTransactional(h.attributes) ? h.producerId : NO_PRODUCER_ID;
          for (const r of records) {
            if (r.offset < offset || r.key === null) continue;
            const record = decodeRecord(Buffer.from(r.key), r.value === null ? null : Buffer.from(r.value));
            if (record !== null) {
              this.coordinator.replay(record, producerId);
              count++;
            }
          }
        }
      }
      if (next <= offset) break;
      offset = next;
    }
    return count;
  }

  // ------------------------------------------------------------------------------------------
  // Leadership ('elected' ownership)

  /**
   * This broker became the leader of a `__consumer_offsets` partition at `leaderEpoch`: loads it
   * (Kafka's scheduleLoadOperation). Its groups answer COORDINATOR_LOAD_IN_PROGRESS until the
   * returned promise resolves, then run. An election not newer than the partition's epoch is
   * ignored; one of an elected partition only takes the newer epoch. Never rejects: a failed
   * load is logged and the partition answers NOT_COORDINATOR until elected again.
   */
  onElection(partition: number, leaderEpoch: number): Promise<void> {
    if (this.#ownership !== 'elected') return Promise.reject(this.#notElected('onElection'));
    if (this.#closed) return Promise.resolve();
    const current = this.#leadership.get(partition);
    if (current !== undefined && current.leaderEpoch >= leaderEpoch) {
      this.#log.info(
        { partition, leaderEpoch, currentLeaderEpoch: current.leaderEpoch },
        'group coordinator election ignored: not newer than the partition epoch',
      );
      return current.loading;
    }
    if (current !== undefined && current.state !== 'failed') {
      current.leaderEpoch = leaderEpoch;
      return current.loading;
    }
    const entry: Leadership = { leaderEpoch, state: 'loading', loading: Promise.resolve() };
    this.#leadership.set(partition, entry);
    this.#loadingCount++;
    entry.loading = this.#loadElected(partition, entry);
    this.#track(entry.loading);
    return entry.loading;
  }

  async #loadElected(partition: number, entry: Leadership): Promise<void> {
    // Stale once resigned (or re-elected after a resignation) or closed: replays nothing more.
    const cancelled = () => this.#closed || this.#leadership.get(partition) !== entry;
    const inPartition = (g: string) => this.partitionFor(g) === partition;
    let records = 0;
    try {
      const topic = this.#topics.get(CONSUMER_OFFSETS_TOPIC);
      // No topic yet: nothing was ever written, the partition starts empty.
      if (topic !== undefined) records = await this.#replayPartition(topic, partition, cancelled);
    } catch (err) {
      if (cancelled()) return;
      this.#log.error({ err, partition }, 'could not load __consumer_offsets partition; not coordinating its groups');
      this.#loadingCount--;
      entry.state = 'failed';
      // What was replayed before the failure must not stay (nothing was parked yet).
      this.coordinator.unloadGroups(inPartition);
      return;
    }
    if (cancelled()) return;
    this.#loadingCount--;
    entry.state = 'active';
    this.coordinator.onLoaded(inPartition);
    this.#log.info({ partition, leaderEpoch: entry.leaderEpoch, records }, 'group coordinator partition loaded');
    this.#startRetention();
    this.#arm();
  }

  /**
   * This broker no longer leads a `__consumer_offsets` partition: unloads it (Kafka's
   * scheduleUnloadOperation). `leaderEpoch` is the partition's new leader epoch; a resignation
   * not newer than the epoch it was elected in is stale and ignored. Without `leaderEpoch`
   * (topic deleted, broker fenced or stopping) it unloads whatever the epoch.
   */
  onResignation(partition: number, leaderEpoch?: number): void {
    if (this.#ownership !== 'elected') throw this.#notElected('onResignation');
    const entry = this.#leadership.get(partition);
    if (entry === undefined) return;
    if (leaderEpoch !== undefined && leaderEpoch <= entry.leaderEpoch) {
      this.#log.info(
        { partition, leaderEpoch, currentLeaderEpoch: entry.leaderEpoch },
        'group coordinator resignation ignored: not newer than the partition epoch',
      );
      return;
    }
    this.#leadership.delete(partition);
    if (entry.state === 'loading') this.#loadingCount--;
    this.#unload(partition);
    this.#log.info({ partition, leaderEpoch }, 'group coordinator partition unloaded');
  }

  /**
   * Fails the partition's operations and unloads its groups. Operations whose records are not
   * appended are undone first, newest first (so the parked requests they completed are parked
   * again, and answered below); an append still in flight answers no one.
   */
  #unload(partition: number): void {
    const shard = this.#shards.get(partition);
    if (shard !== undefined) {
      this.#shards.delete(partition);
      shard.closed = true;
      const executed = [...(shard.inFlight?.ops ?? []), ...shard.pending.flatMap((b) => b.ops)];
      shard.inFlight = undefined;
      shard.pending.length = 0;
      for (let i = executed.length - 1; i >= 0; i--) this.coordinator.revert(executed[i]!.result);
      const error = notCoordinator(partition);
      for (const op of executed) op.task.reject(error);
      for (const task of shard.waiting.splice(0)) task.reject(error);
    }
    const parked = this.coordinator.unloadGroups((g) => this.partitionFor(g) === partition);
    for (const c of parked) c();
    this.#arm();
  }

  /** A wiring bug: 'all' ownership coordinates every partition already. */
  #notElected(what: string): Error {
    return new Error(`${what} needs ownership 'elected'`);
  }

  #isActive(partition: number): boolean {
    return this.#ownership === 'all' ? this.#loaded : this.#leadership.get(partition)?.state === 'active';
  }

  /** Why a partition's operations cannot run now, or undefined when they can. */
  #unavailable(partition: number): KafkaError | undefined {
    if (this.#closed)
      return new KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, 'the group coordinator is shutting down');
    if (this.#ownership === 'all') {
      return this.#loaded ? undefined : new KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    }
    const state = this.#leadership.get(partition)?.state;
    if (state === 'active') return undefined;
    if (state === 'loading') return new KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    return notCoordinator(partition);
  }

  #check(partition: number): void {
    const error = this.#unavailable(partition);
    if (error !== undefined) throw error;
  }

  /** Keeps a promise until it settles: close waits for it. */
  #track(promise: Promise<unknown>): void {
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    this.#inFlight.add(settled);
    void settled.then(() => this.#inFlight.delete(settled));
  }

  /** Creates `__consumer_offsets` if it does not exist yet (FindCoordinator, first write). */
  ensureTopic(): Promise<TopicMetadata> {
    const existing = this.#topics.get(CONSUMER_OFFSETS_TOPIC);
    if (existing !== undefined) return Promise.resolve(existing);
    this.#topicReady ??= this.#topics
      .create(
        CONSUMER_OFFSETS_TOPIC,
        this.config.offsetsTopicNumPartitions,
        this.#offsetsTopicReplicationFactor(),
        { 'cleanup.policy': 'compact', 'compression.type': 'producer' },
        false,
      )
      .catch((err: unknown) => {
        this.#topicReady = undefined;
        const again = this.#topics.get(CONSUMER_OFFSETS_TOPIC);
        if (again !== undefined) return again;
        throw err;
      });
    return this.#topicReady;
  }

  #partitionCount(): number {
    return this.#topics.get(CONSUMER_OFFSETS_TOPIC)?.partitions ?? this.config.offsetsTopicNumPartitions;
  }

  /** The `__consumer_offsets` partition (and so coordinator) of a group. */
  partitionFor(groupId: string): number {
    return partitionForGroup(groupId, this.#partitionCount());
  }

  // ------------------------------------------------------------------------------------------
  // Operations: per partition, batched, undone when their append fails

  #shard(partition: number): Shard {
    let shard = this.#shards.get(partition);
    if (shard === undefined) {
      shard = { partition, waiting: [], pending: [], inFlight: undefined, closed: false };
      this.#shards.set(partition, shard);
    }
    return shard;
  }

  /**
   * Queues an operation on a partition's coordinator. Writes run at once, on top of what the
   * partition has not appended yet (Kafka's model; their records are appended in order, in
   * batches); reads (`exclusive`) run only once everything before them is appended, so they
   * never see state the log might not get.
   */
  #submit<T>(
    partition: number,
    run: () => CoordinatorResult<T>,
    exclusive: boolean,
    special?: SpecialWrite,
  ): Promise<T> {
    const done = new Promise<T>((resolve, reject) => {
      this.#shard(partition).waiting.push({
        run,
        resolve: resolve as (value: unknown) => void,
        reject,
        exclusive,
        ...(special === undefined ? {} : { special }),
      });
    });
    this.#track(done);
    this.#pump(this.#shard(partition));
    return done;
  }

  /** Runs the partition's waiting operations, in order, as far as they may run now. */
  #pump(shard: Shard): void {
    while (shard.waiting.length > 0) {
      const task = shard.waiting[0]!;
      const uncommitted = shard.inFlight !== undefined || shard.pending.length > 0;
      if ((task.exclusive && uncommitted) || shard.pending.at(-1)?.sealed === true) break;
      shard.waiting.shift();
      this.#execute(shard, task);
    }
    this.#flush(shard);
    this.#arm();
  }

  /** One operation: the state-machine call; its response waits for its batch's append. */
  #execute(shard: Shard, task: Task): void {
    const unavailable = this.#unavailable(shard.partition);
    if (unavailable !== undefined) {
      task.reject(unavailable);
      return;
    }
    let result: CoordinatorResult<unknown>;
    try {
      result = task.run();
    } catch (err) {
      // Undone by the state machine already; a bug, answered UNKNOWN_SERVER_ERROR.
      task.reject(err);
      return;
    }
    let records: EncodedRecord[];
    try {
      // Serialised before anything is batched (as Kafka does), so a record that cannot be
      // written fails its own operation only.
      records = result.records.map((r) => ({ group: r.group, ...encodeRecord(r) }));
    } catch (err) {
      this.coordinator.revert(result);
      this.#failed(shard, { task, result, records: [], bytes: 0 }, err);
      return;
    }
    const op: Op = { task, result, records, bytes: batchBytes(records) };
    // A TxnOffsetCommit that commits nothing (every partition failed) appends no batch.
    const special = task.special?.type === 'txn' && records.length === 0 ? undefined : task.special;
    if (shard.pending.length === 0 && shard.inFlight === undefined && records.length === 0 && special === undefined) {
      // Nothing to append, and nothing unappended below it: done.
      this.#complete(op);
      return;
    }
    if (special !== undefined) {
      shard.pending.push({ ops: [op], bytes: op.bytes, sealed: false, special });
      return;
    }
    let batch = shard.pending.at(-1);
    if (
      batch === undefined ||
      batch.sealed ||
      batch.special !== undefined ||
      task.exclusive ||
      (batch.bytes > 0 && batch.bytes + op.bytes > this.#maxBatchBytes())
    ) {
      // A new batch: the last one is for an operation alone, or this one would overflow it
      // (Kafka flushes its batch when the next records do not fit).
      batch = { ops: [], bytes: 0, sealed: task.exclusive };
      shard.pending.push(batch);
    }
    batch.ops.push(op);
    batch.bytes += op.bytes;
  }

  /** `__consumer_offsets`' max.message.bytes: the largest batch its log accepts. */
  #maxBatchBytes(): number {
    const override = this.#topics.get(CONSUMER_OFFSETS_TOPIC)?.configs['max.message.bytes'];
    const n = override === undefined ? Number.NaN : Number(override);
    return Number.isFinite(n) ? n : this.config.messageMaxBytes;
  }

  #complete(op: Op): void {
    for (const c of op.result.completions) c();
    op.task.resolve(op.result.response);
  }

  /**
   * An operation failed on its own (already undone): it gets Kafka's error for the failure and
   * its failure callbacks run next, before anything else of the partition.
   */
  #failed(shard: Shard, op: Op, err: unknown): void {
    // A marker's caller (WriteTxnMarkers) gets the log's error as it is, as Kafka's runtime does.
    const error = op.task.special?.type === 'marker' && err instanceof KafkaError ? err : appendFailureError(err);
    this.#logAppendFailure(err, op.result.records, 'operation undone');
    op.task.reject(error);
    const hooks = op.result.onFailure;
    if (hooks.length === 0) return;
    shard.waiting.unshift({
      run: () =>
        this.coordinator.run(() => {
          for (const fn of hooks) fn(error.errorCode);
        }),
      resolve: () => {},
      reject: (e: unknown) => {
        // A KafkaError: the partition was unloaded or the service closed; its groups are gone.
        if (!(e instanceof KafkaError)) this.#log.error({ err: e }, 'group coordinator failure follow-up failed');
      },
      exclusive: false,
    });
  }

  /** Appends the next batch when none is in flight. */
  #flush(shard: Shard): void {
    if (shard.inFlight !== undefined) return;
    const batch = shard.pending.shift();
    if (batch === undefined) return;
    shard.inFlight = batch;
    // Tracked on its own: after an unload its operations are answered, but close still waits
    // for the append before the log service closes.
    this.#track(
      (batch.special === undefined
        ? this.#persist(batch.ops.flatMap((op) => op.records))
        : this.#persistSpecial(shard.partition, batch.special, batch.ops[0]!.records)
      ).then(
        () => this.#appended(shard, batch),
        (err: unknown) => this.#appendFailed(shard, batch, err),
      ),
    );
  }

  #appended(shard: Shard, batch: Batch): void {
    if (shard.closed) return;
    shard.inFlight = undefined;
    for (const op of batch.ops) this.#complete(op);
    this.#pump(shard);
  }

  /**
   * The batch could not be appended: every operation of it, and every operation built on it
   * since, is undone (newest first), so the state is again what the log holds. An operation
   * alone with records in its batch failed: it gets Kafka's error for the append failure and its
   * failure callbacks run. Every other operation runs again; those of a batch with several
   * writers each alone in a batch (which one could not be appended is unknown).
   */
  #appendFailed(shard: Shard, batch: Batch, err: unknown): void {
    if (shard.closed) return;
    shard.inFlight = undefined;
    const built = shard.pending.flatMap((b) => b.ops);
    shard.pending.length = 0;
    const undone = [...batch.ops, ...built];
    for (let i = undone.length - 1; i >= 0; i--) this.coordinator.revert(undone[i]!.result);
    const writers = batch.ops.filter((op) => op.records.length > 0 || batch.special !== undefined);
    if (writers.length === 1) {
      shard.waiting.unshift(...undone.filter((op) => op !== writers[0]).map((op) => op.task));
      this.#failed(shard, writers[0]!, err);
    } else {
      this.#logAppendFailure(
        err,
        writers.flatMap((op) => op.result.records),
        'batch undone, its operations run again one by one',
      );
      shard.waiting.unshift(...batch.ops.map((op) => ({ ...op.task, exclusive: true })), ...built.map((op) => op.task));
    }
    this.#pump(shard);
  }

  #logAppendFailure(err: unknown, records: readonly CoordinatorRecord[], what: string): void {
    const groups = [...new Set(records.map((r) => r.group))];
    if (err instanceof KafkaError) {
      this.#log.warn({ err, groups, records: records.length }, `could not append to __consumer_offsets; ${what}`);
    } else {
      this.#log.error({ err, groups, records: records.length }, `could not append to __consumer_offsets; ${what}`);
    }
  }

  /** Appends records: one batch per partition (one partition but for coordinator-wide timers). */
  async #persist(records: readonly EncodedRecord[]): Promise<void> {
    if (records.length === 0) return;
    const topic = this.#topics.get(CONSUMER_OFFSETS_TOPIC) ?? (await this.ensureTopic());
    const byPartition = new Map<number, EncodedRecord[]>();
    for (const r of records) {
      const p = partitionForGroup(r.group, topic.partitions);
      let list = byPartition.get(p);
      if (list === undefined) {
        list = [];
        byPartition.set(p, list);
      }
      list.push(r);
    }
    const timestamp = BigInt(this.#clock.now());
    await Promise.all(
      [...byPartition].map(([p, list]) =>
        this.#logs.append(
          topic,
          p,
          buildRecordBatchSync({ records: list.map((r) => ({ key: r.key, value: r.value, timestamp })) }),
          -1,
        ),
      ),
    );
  }

  /** A transactional batch of a TxnOffsetCommit's records, or a transaction marker. */
  async #persistSpecial(partition: number, special: SpecialWrite, records: readonly EncodedRecord[]): Promise<void> {
    const topic = this.#topics.get(CONSUMER_OFFSETS_TOPIC) ?? (await this.ensureTopic());
    if (special.type === 'marker') {
      if (this.#logs.appendTxnMarker === undefined) {
        throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, 'the log service cannot append transaction markers');
      }
      const { producerId, producerEpoch, coordinatorEpoch, commit } = special;
      await this.#logs.appendTxnMarker(topic, partition, { producerId, producerEpoch, coordinatorEpoch, commit }, -1);
      return;
    }
    const timestamp = BigInt(this.#clock.now());
    await this.#logs.append(
      topic,
      partition,
      buildRecordBatchSync({
        records: records.map((r) => ({ key: r.key, value: r.value, timestamp })),
        producerId: special.producerId,
        producerEpoch: special.producerEpoch,
        baseSequence: TXN_OFFSET_COMMIT_BASE_SEQUENCE,
        transactional: true,
      }),
      -1,
    );
  }

  /** A request for one group: an operation of the group's partition. */
  #call<T>(groupId: string, op: () => CoordinatorResult<T>, exclusive = false): Promise<T> {
    const partition = this.partitionFor(groupId);
    this.#check(partition);
    return this.#submit(partition, op, exclusive);
  }

  /**
   * A read about several groups (all: undefined), answered per partition from what each has
   * appended, as Kafka's shards answer it; `merge` puts the answers together. 'all' ownership:
   * fails as a whole until loaded. 'elected': a partition that cannot answer gets
   * `failed(its groups, the error)` (Kafka answers such groups with the error), and all the
   * groups are those of the partitions elected here.
   */
  async #readPartitions<T, R>(
    groupIds: readonly string[] | undefined,
    op: (groupIds: readonly string[] | undefined, partition: number) => CoordinatorResult<T>,
    merge: (parts: Map<number, T>) => R,
    failed: (groupIds: readonly string[] | undefined, err: KafkaError) => T,
  ): Promise<R> {
    const elected = this.#ownership === 'elected';
    if (!elected) this.#check(0);
    const byPartition = new Map<number, string[] | undefined>();
    if (groupIds !== undefined) {
      for (const g of groupIds) {
        const p = this.partitionFor(g);
        byPartition.set(p, [...(byPartition.get(p) ?? []), g]);
      }
    } else if (elected) {
      for (const p of [...this.#leadership.keys()].sort((a, b) => a - b)) byPartition.set(p, undefined);
    } else {
      for (let p = 0; p < this.#partitionCount(); p++) byPartition.set(p, undefined);
    }
    const parts = new Map<number, T>();
    await Promise.all(
      [...byPartition].map(async ([p, ids]) => {
        if (!elected) {
          parts.set(p, await this.#submit(p, () => op(ids, p), true));
          return;
        }
        const unavailable = this.#unavailable(p);
        if (unavailable !== undefined) {
          parts.set(p, failed(ids, unavailable));
          return;
        }
        try {
          parts.set(p, await this.#submit(p, () => op(ids, p), true));
        } catch (err) {
          if (!(err instanceof KafkaError)) throw err;
          parts.set(p, failed(ids, err));
        }
      }),
    );
    return merge(parts);
  }

  /** Answers per partition put back in request order (each partition answered its ids in order). */
  #inRequestOrder<T>(groupIds: readonly string[], parts: Map<number, T[]>): T[] {
    const next = new Map<number, number>();
    return groupIds.map((groupId) => {
      const p = this.partitionFor(groupId);
      const i = next.get(p) ?? 0;
      next.set(p, i + 1);
      return parts.get(p)![i]!;
    });
  }

  // ------------------------------------------------------------------------------------------
  // Timeouts and offset expiry

  /**
   * Which groups' timers may fire (undefined: all). 'elected' ownership: those of loaded
   * partitions, since a loading partition's groups have timers from replay; coordinator-wide
   * timers (none in the broker) run in a loaded partition, so not while there is none. Only
   * computed when it matters: otherwise the state machine holds only loaded partitions' groups.
   */
  #timerFilter(): ((groupId: string | undefined) => boolean) | undefined {
    if (this.#ownership === 'all') return undefined;
    const ungrouped = this.#ungroupedPartition();
    if (this.#loadingCount === 0 && ungrouped !== undefined) return undefined;
    return (g) => (g === undefined ? ungrouped !== undefined : this.#isActive(this.partitionFor(g)));
  }

  /** Where coordinator-wide timers run: partition 0 ('all'), a loaded partition ('elected'). */
  #ungroupedPartition(): number | undefined {
    if (this.#ownership === 'all') return 0;
    for (const [p, entry] of this.#leadership) if (entry.state === 'active') return p;
    return undefined;
  }

  #arm(): void {
    if (this.#closed || (this.#ownership === 'all' && !this.#loaded) || this.#polling > 0) return;
    const deadline = this.coordinator.nextDeadline(this.#timerFilter());
    if (deadline === undefined) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerDeadline = undefined;
      return;
    }
    const next = Math.max(deadline, this.#retryAt);
    if (this.#timer !== undefined && this.#timerDeadline === next) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerDeadline = next;
    this.#timer = setTimeout(() => this.#fire(), Math.min(TIMEOUT_MAX_MS, Math.max(0, next - this.#clock.now())));
    this.#timer.unref();
  }

  /** Expires the due timeouts, one operation per partition that has some. */
  #fire(): void {
    this.#timer = undefined;
    this.#timerDeadline = undefined;
    if (this.#closed) return;
    const filter = this.#timerFilter();
    const due = this.coordinator.timers.due(
      this.#clock.now(),
      filter === undefined ? undefined : (t) => filter(t.group),
    );
    const partitions = new Set([...due.groups].map((g) => this.partitionFor(g)));
    const polls: Promise<void>[] = [];
    for (const p of partitions) {
      const inPartition = (g: string | undefined) => g !== undefined && this.partitionFor(g) === p;
      polls.push(this.#poll(p, inPartition));
    }
    const ungrouped = this.#ungroupedPartition();
    if (due.ungrouped && ungrouped !== undefined) {
      // Coordinator-wide timers: none in the broker (offset expiry runs per partition).
      polls.push(this.#poll(ungrouped, (g) => g === undefined));
    }
    if (polls.length === 0) {
      this.#arm();
      return;
    }
    this.#polling += polls.length;
    for (const poll of polls) {
      void poll.finally(() => {
        this.#polling--;
        this.#arm();
      });
    }
  }

  /** One partition's due timeouts, as an operation; never rejects. */
  #poll(partition: number, accept: (groupId: string | undefined) => boolean): Promise<void> {
    return this.#submit(partition, () => this.coordinator.poll(accept), false).catch((err: unknown) => {
      // Unloaded meanwhile: its timers are gone, nothing to try again.
      if (!this.#isActive(partition)) return;
      // Undone: the timers are due again; try again after a pause, as Kafka's timer does.
      this.#retryAt = this.#clock.now() + TIMER_RETRY_BACKOFF_MS;
      if (!(err instanceof KafkaError)) this.#log.error({ err }, 'group coordinator timeout failed');
    });
  }

  /** Starts the offset expiry once. */
  #startRetention(): void {
    if (this.#retentionStarted) return;
    this.#retentionStarted = true;
    this.#scheduleRetention();
  }

  #scheduleRetention(): void {
    if (this.#closed) return;
    const interval = Math.min(TIMEOUT_MAX_MS, Math.max(1, this.config.offsetsRetentionCheckIntervalMs));
    this.#retentionTimer = setTimeout(() => {
      this.#retentionTimer = undefined;
      void this.expireOffsets().finally(() => this.#scheduleRetention());
    }, interval);
    this.#retentionTimer.unref();
  }

  /** offsets.retention.minutes: expires committed offsets, one operation per partition. */
  async expireOffsets(): Promise<void> {
    if (this.#closed || (this.#ownership === 'all' && !this.#loaded)) return;
    const byPartition = new Map<number, string[]>();
    for (const groupId of this.coordinator.offsets.keys()) {
      const p = this.partitionFor(groupId);
      // A loading partition's offsets wait for its load ('elected').
      if (!this.#isActive(p)) continue;
      let list = byPartition.get(p);
      if (list === undefined) {
        list = [];
        byPartition.set(p, list);
      }
      list.push(groupId);
    }
    await Promise.all(
      [...byPartition].map(([p, groupIds]) =>
        this.#submit(p, () => this.coordinator.expireOffsets(groupIds), false).catch((err: unknown) => {
          if (!(err instanceof KafkaError)) this.#log.error({ err }, 'offset expiry failed');
        }),
      ),
    );
  }

  // ------------------------------------------------------------------------------------------
  // The requests, as the handlers call them

  joinGroup(info: RequestInfo, req: JoinGroupInput): Promise<JoinGroupResult> {
    this.#check(this.partitionFor(req.groupId));
    return new Promise<JoinGroupResult>((resolve, reject) => {
      this.#call(req.groupId, () => this.coordinator.joinGroup(info, req, resolve)).catch(reject);
    });
  }

  syncGroup(info: RequestInfo, req: SyncGroupInput): Promise<SyncGroupResult> {
    this.#check(this.partitionFor(req.groupId));
    return new Promise<SyncGroupResult>((resolve, reject) => {
      this.#call(req.groupId, () => this.coordinator.syncGroup(info, req, resolve)).catch(reject);
    });
  }

  heartbeat(info: RequestInfo, req: Parameters<GroupCoordinator['heartbeat']>[1]): Promise<number> {
    return this.#call(req.groupId, () => this.coordinator.heartbeat(info, req));
  }

  leaveGroup(info: RequestInfo, req: Parameters<GroupCoordinator['leaveGroup']>[1]) {
    return this.#call(req.groupId, () => this.coordinator.leaveGroup(info, req));
  }

  offsetCommit(info: RequestInfo, req: OffsetCommitInput) {
    return this.#call(req.groupId, () => this.coordinator.offsetCommit(info, req));
  }

  /**
   * TxnOffsetCommit (API 28): the offsets are appended as one transactional batch of the
   * producer to the group's partition, and stay pending (invisible to OffsetFetch, and
   * UNSTABLE_OFFSET_COMMIT with require_stable) until `completeTransaction`. Per-partition
   * errors in the answer; a failed append rejects with Kafka's error for it.
   */
  txnOffsetCommit(info: RequestInfo, req: TxnOffsetCommitInput): Promise<TopicPartitionErrors[]> {
    const partition = this.partitionFor(req.groupId);
    this.#check(partition);
    return this.#submit(partition, () => this.coordinator.txnOffsetCommit(info, req), false, {
      type: 'txn',
      producerId: req.producerId,
      producerEpoch: req.producerEpoch,
    });
  }

  /**
   * A transaction marker for `__consumer_offsets` partition `offsetsPartition` (WriteTxnMarkers):
   * in the partition's order, the marker is appended (GroupLogAccess.appendTxnMarker), then the
   * producer's pending offsets of the partition's groups are committed (`commit`) or dropped.
   * Rejects with NOT_COORDINATOR for a partition not coordinated here
   * (COORDINATOR_LOAD_IN_PROGRESS while it loads), or with the log's error for the append (the
   * pending offsets then stay).
   */
  completeTransaction(
    offsetsPartition: number,
    producerId: bigint,
    producerEpoch: number,
    coordinatorEpoch: number,
    commit: boolean,
  ): Promise<void> {
    if (!Number.isInteger(offsetsPartition) || offsetsPartition < 0 || offsetsPartition >= this.#partitionCount()) {
      return Promise.reject(notCoordinator(offsetsPartition));
    }
    try {
      this.#check(offsetsPartition);
    } catch (err) {
      return Promise.reject(err);
    }
    const inPartition = (g: string) => this.partitionFor(g) === offsetsPartition;
    return this.#submit(
      offsetsPartition,
      () => this.coordinator.completeTransaction(producerId, commit, inPartition),
      false,
      { type: 'marker', producerId, producerEpoch, coordinatorEpoch, commit },
    );
  }

  /** Reads what the log holds (Kafka reads at the last committed offset). */
  offsetFetch(info: RequestInfo, req: OffsetFetchInput) {
    return this.#call(req.groupId, () => this.coordinator.offsetFetch(info, req), true);
  }

  offsetDelete(info: RequestInfo, req: Parameters<GroupCoordinator['offsetDelete']>[1]) {
    return this.#call(req.groupId, () => this.coordinator.offsetDelete(info, req));
  }

  describeGroups(info: RequestInfo, groupIds: readonly string[]) {
    return this.#readPartitions(
      groupIds,
      (ids) => this.coordinator.describeGroups(info, ids!),
      (parts) => this.#inRequestOrder(groupIds, parts),
      (ids, err) =>
        ids!.map((groupId) => ({
          groupId,
          errorCode: err.errorCode,
          groupState: '',
          protocolType: '',
          protocolData: '',
          members: [],
        })),
    );
  }

  listGroups(info: RequestInfo, statesFilter: readonly string[], typesFilter: readonly string[]) {
    return this.#readPartitions(
      undefined,
      (_ids, p) => this.coordinator.listGroups(info, statesFilter, typesFilter, (g) => this.partitionFor(g) === p),
      (parts) => [...parts.keys()].sort((a, b) => a - b).flatMap((p) => parts.get(p)!),
      (_ids, err) => {
        // Kafka's ListGroups skips a partition no longer coordinated here, and fails while one
        // loads (COORDINATOR_LOAD_IN_PROGRESS: the client retries).
        if (err.errorCode === ErrorCode.NOT_COORDINATOR) return [];
        throw err;
      },
    );
  }

  /**
   * Deletes groups, one operation per partition (as Kafka does): a partition whose append fails
   * answers its groups with the error, the others are deleted.
   */
  async deleteGroups(
    info: RequestInfo,
    groupIds: readonly string[],
  ): Promise<{ groupId: string; errorCode: number }[]> {
    // 'all': fails as a whole until loaded; 'elected': per partition, as its other errors.
    if (this.#ownership === 'all') this.#check(0);
    const byPartition = new Map<number, string[]>();
    for (const groupId of groupIds) {
      const p = this.partitionFor(groupId);
      byPartition.set(p, [...(byPartition.get(p) ?? []), groupId]);
    }
    const answers = new Map<number, { groupId: string; errorCode: number }[]>();
    await Promise.all(
      [...byPartition].map(async ([p, ids]) => {
        try {
          this.#check(p);
          answers.set(p, await this.#submit(p, () => this.coordinator.deleteGroups(info, ids), false));
        } catch (err) {
          if (!(err instanceof KafkaError)) throw err;
          answers.set(
            p,
            ids.map((groupId) => ({ groupId, errorCode: err.errorCode })),
          );
        }
      }),
    );
    return this.#inRequestOrder(groupIds, answers);
  }

  consumerGroupHeartbeat(info: RequestInfo, req: ConsumerGroupHeartbeatInput) {
    return this.#call(req.groupId, () => this.coordinator.consumerGroupHeartbeat(info, req));
  }

  consumerGroupDescribe(info: RequestInfo, groupIds: readonly string[]) {
    return this.#readPartitions(
      groupIds,
      (ids) => this.coordinator.consumerGroupDescribe(info, ids!),
      (parts) => this.#inRequestOrder(groupIds, parts),
      (ids, err) =>
        ids!.map((groupId) => ({
          groupId,
          errorCode: err.errorCode,
          errorMessage: null,
          groupState: '',
          groupEpoch: -1,
          assignmentEpoch: -1,
          assignorName: '',
          members: [],
        })),
    );
  }

  /** Stops the timers and waits for queued operations and appends (the log service closes after). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#retentionTimer !== undefined) clearTimeout(this.#retentionTimer);
    this.#retentionTimer = undefined;
    for (const c of this.coordinator.releaseParked().completions) c();
    await this.#loading?.catch(() => undefined);
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }
}
