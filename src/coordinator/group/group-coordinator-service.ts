/**
 * Runs the GroupCoordinator state machine inside the broker: the only place where the group
 * coordinator touches I/O, through the small interfaces it is handed. Kafka's CoordinatorRuntime,
 * for one node.
 *
 * - Owns `__consumer_offsets` (compacted, `offsets.topic.num.partitions` partitions), creating it
 *   on first need as Kafka does on the first FindCoordinator.
 * - Loads it on start: every record of every partition is replayed into the state machine;
 *   until that finishes, group requests fail with COORDINATOR_LOAD_IN_PROGRESS.
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
import { isControl } from '../../protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../../protocol/records/builder.ts';
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
  type OffsetCommitInput,
  type OffsetFetchInput,
  type RequestInfo,
  type SyncGroupInput,
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
  offsets(topic: TopicMetadata, partition: number): { logStartOffset: bigint; logEndOffset: bigint };
}

export interface GroupCoordinatorServiceOptions {
  topics: GroupTopicAccess;
  logs: GroupLogAccess;
  config: GroupCoordinatorConfig;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/** An operation not executed yet. */
interface Task {
  run: () => CoordinatorResult<unknown>;
  resolve: (response: unknown) => void;
  reject: (err: unknown) => void;
  /** Runs only when everything before it is appended, and alone in its batch. */
  exclusive: boolean;
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

export class GroupCoordinatorService {
  readonly coordinator: GroupCoordinator;
  readonly config: GroupCoordinatorConfig;
  readonly #topics: GroupTopicAccess;
  readonly #logs: GroupLogAccess;
  readonly #log: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly #clock: Clock;
  #loaded = false;
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
    this.#logs = options.logs;
    this.#log = options.logger;
    this.#clock = options.clock;
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

  get loaded(): boolean {
    return this.#loaded;
  }

  /** Every committed offset of every group (for the metrics: kafka-exporter's consumer group offsets and lag). */
  committedOffsets(): { groupId: string; topic: string; partition: number; offset: bigint }[] {
    const out = [];
    for (const [groupId, topics] of this.coordinator.offsets)
      for (const [topic, partitions] of topics)
        for (const [partition, entry] of partitions) out.push({ groupId, topic, partition, offset: entry.offset });
    return out;
  }

  /** Starts loading `__consumer_offsets` (when it exists); resolves once loaded. */
  start(): Promise<void> {
    this.#loading ??= this.#load().then(
      () => {
        this.#loaded = true;
        this.coordinator.onLoaded();
        this.#scheduleRetention();
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
    for (let p = 0; p < topic.partitions; p++) {
      const { logStartOffset, logEndOffset } = this.#logs.offsets(topic, p);
      let offset = logStartOffset;
      while (offset < logEndOffset) {
        const chunk = await this.#logs.read(topic, p, offset, LOAD_CHUNK_BYTES, false, true);
        let next = offset;
        for (const buf of chunk.records) {
          for (const entry of iterateBatches(buf, { partialTail: 'stop', verifyCrc: false })) {
            const h = entry.header;
            next = h.baseOffset + BigInt(h.lastOffsetDelta) + 1n;
            if (isControl(h.attributes)) continue;
            for (const r of decodeRecordsSync(buf.subarray(entry.offset, entry.offset + entry.size), {
              verifyCrc: false,
            })) {
              if (r.offset < offset || r.key === null) continue;
              const record = decodeRecord(Buffer.from(r.key), r.value === null ? null : Buffer.from(r.value));
              if (record !== null) {
                this.coordinator.replay(record);
                count++;
              }
            }
          }
        }
        if (next <= offset) break;
        offset = next;
      }
    }
    this.#log.info({ records: count, groups: this.coordinator.groups.size }, 'group coordinator loaded');
  }

  /** Creates `__consumer_offsets` if it does not exist yet (FindCoordinator, first write). */
  ensureTopic(): Promise<TopicMetadata> {
    const existing = this.#topics.get(CONSUMER_OFFSETS_TOPIC);
    if (existing !== undefined) return Promise.resolve(existing);
    this.#topicReady ??= this.#topics
      .create(
        CONSUMER_OFFSETS_TOPIC,
        this.config.offsetsTopicNumPartitions,
        1,
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

  #checkLoaded(): void {
    if (this.#closed)
      throw new KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, 'the group coordinator is shutting down');
    if (!this.#loaded) throw new KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  }

  // ------------------------------------------------------------------------------------------
  // Operations: per partition, batched, undone when their append fails

  #shard(partition: number): Shard {
    let shard = this.#shards.get(partition);
    if (shard === undefined) {
      shard = { partition, waiting: [], pending: [], inFlight: undefined };
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
  #submit<T>(partition: number, run: () => CoordinatorResult<T>, exclusive: boolean): Promise<T> {
    const done = new Promise<T>((resolve, reject) => {
      this.#shard(partition).waiting.push({
        run,
        resolve: resolve as (value: unknown) => void,
        reject,
        exclusive,
      });
    });
    const settled = done.then(
      () => undefined,
      () => undefined,
    );
    this.#inFlight.add(settled);
    void settled.then(() => this.#inFlight.delete(settled));
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
    if (this.#closed) {
      task.reject(new KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, 'the group coordinator is shutting down'));
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
    if (shard.pending.length === 0 && shard.inFlight === undefined && records.length === 0) {
      // Nothing to append, and nothing unappended below it: done.
      this.#complete(op);
      return;
    }
    let batch = shard.pending.at(-1);
    if (
      batch === undefined ||
      batch.sealed ||
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
    const error = appendFailureError(err);
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
      reject: (e: unknown) => this.#log.error({ err: e }, 'group coordinator failure follow-up failed'),
      exclusive: false,
    });
  }

  /** Appends the next batch when none is in flight. */
  #flush(shard: Shard): void {
    if (shard.inFlight !== undefined) return;
    const batch = shard.pending.shift();
    if (batch === undefined) return;
    shard.inFlight = batch;
    this.#persist(batch.ops.flatMap((op) => op.records)).then(
      () => this.#appended(shard, batch),
      (err: unknown) => this.#appendFailed(shard, batch, err),
    );
  }

  #appended(shard: Shard, batch: Batch): void {
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
    shard.inFlight = undefined;
    const built = shard.pending.flatMap((b) => b.ops);
    shard.pending.length = 0;
    const undone = [...batch.ops, ...built];
    for (let i = undone.length - 1; i >= 0; i--) this.coordinator.revert(undone[i]!.result);
    const writers = batch.ops.filter((op) => op.records.length > 0);
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

  /** A request for one group: an operation of the group's partition. */
  #call<T>(groupId: string, op: () => CoordinatorResult<T>, exclusive = false): Promise<T> {
    this.#checkLoaded();
    return this.#submit(this.partitionFor(groupId), op, exclusive);
  }

  /**
   * A read about several groups (all: undefined), answered per partition from what each has
   * appended, as Kafka's shards answer it; `merge` puts the answers together.
   */
  async #readPartitions<T, R>(
    groupIds: readonly string[] | undefined,
    op: (groupIds: readonly string[] | undefined, partition: number) => CoordinatorResult<T>,
    merge: (parts: Map<number, T>) => R,
  ): Promise<R> {
    this.#checkLoaded();
    const byPartition = new Map<number, string[] | undefined>();
    if (groupIds === undefined) {
      for (let p = 0; p < this.#partitionCount(); p++) byPartition.set(p, undefined);
    } else {
      for (const g of groupIds) {
        const p = this.partitionFor(g);
        byPartition.set(p, [...(byPartition.get(p) ?? []), g]);
      }
    }
    const parts = new Map<number, T>();
    await Promise.all(
      [...byPartition].map(async ([p, ids]) => {
        parts.set(p, await this.#submit(p, () => op(ids, p), true));
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

  #arm(): void {
    if (this.#closed || !this.#loaded || this.#polling > 0) return;
    const deadline = this.coordinator.nextDeadline();
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
    const due = this.coordinator.timers.due(this.#clock.now());
    const partitions = new Set([...due.groups].map((g) => this.partitionFor(g)));
    const polls: Promise<void>[] = [];
    for (const p of partitions) {
      const inPartition = (g: string | undefined) => g !== undefined && this.partitionFor(g) === p;
      polls.push(this.#submit(p, () => this.coordinator.poll(inPartition), false));
    }
    if (due.ungrouped) {
      // Coordinator-wide timers: none in the broker (offset expiry runs per partition).
      polls.push(this.#submit(0, () => this.coordinator.poll((g) => g === undefined), false));
    }
    if (polls.length === 0) {
      this.#arm();
      return;
    }
    this.#polling += polls.length;
    for (const poll of polls) {
      poll
        .catch((err: unknown) => {
          // Undone: the timers are due again; try again after a pause, as Kafka's timer does.
          this.#retryAt = this.#clock.now() + TIMER_RETRY_BACKOFF_MS;
          if (!(err instanceof KafkaError)) this.#log.error({ err }, 'group coordinator timeout failed');
        })
        .finally(() => {
          this.#polling--;
          this.#arm();
        });
    }
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
    if (this.#closed || !this.#loaded) return;
    const byPartition = new Map<number, string[]>();
    for (const groupId of this.coordinator.offsets.keys()) {
      const p = this.partitionFor(groupId);
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
    this.#checkLoaded();
    return new Promise<JoinGroupResult>((resolve, reject) => {
      this.#call(req.groupId, () => this.coordinator.joinGroup(info, req, resolve)).catch(reject);
    });
  }

  syncGroup(info: RequestInfo, req: SyncGroupInput): Promise<SyncGroupResult> {
    this.#checkLoaded();
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
    );
  }

  listGroups(info: RequestInfo, statesFilter: readonly string[], typesFilter: readonly string[]) {
    return this.#readPartitions(
      undefined,
      (_ids, p) => this.coordinator.listGroups(info, statesFilter, typesFilter, (g) => this.partitionFor(g) === p),
      (parts) => [...parts.keys()].sort((a, b) => a - b).flatMap((p) => parts.get(p)!),
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
    this.#checkLoaded();
    const byPartition = new Map<number, string[]>();
    for (const groupId of groupIds) {
      const p = this.partitionFor(groupId);
      byPartition.set(p, [...(byPartition.get(p) ?? []), groupId]);
    }
    const answers = new Map<number, { groupId: string; errorCode: number }[]>();
    await Promise.all(
      [...byPartition].map(async ([p, ids]) => {
        try {
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
