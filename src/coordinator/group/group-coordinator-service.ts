/**
 * Runs the GroupCoordinator state machine inside the broker: the only place where the group
 * coordinator touches I/O, through the small interfaces it is handed.
 *
 * - Owns `__consumer_offsets` (compacted, `offsets.topic.num.partitions` partitions), creating it
 *   on first need as Kafka does on the first FindCoordinator.
 * - Loads it on start: every record of every partition is replayed into the state machine;
 *   until that finishes, group requests fail with COORDINATOR_LOAD_IN_PROGRESS.
 * - Each request: one synchronous state-machine call; its records are appended (one batch per
 *   partition, in call order, so the log order is the state-machine order) and only then are the
 *   response and the completed parked JoinGroup/SyncGroup responses released.
 * - One timer, armed at the state machine's next deadline, drives session/rebalance timeouts.
 * A crash between a state change and its append loses that change only: the response was not
 * sent, and replay on restart rebuilds the state the log holds.
 */
import type { Logger } from 'pino';
import type { TopicMetadata } from '../../metadata/local-metadata-store.ts';
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
  #closed = false;
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(options: GroupCoordinatorServiceOptions) {
    this.#topics = options.topics;
    this.#logs = options.logs;
    this.#log = options.logger;
    this.#clock = options.clock;
    this.config = options.config;
    this.coordinator = new GroupCoordinator({
      clock: options.clock,
      config: options.config,
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

  /** Starts loading `__consumer_offsets` (when it exists); resolves once loaded. */
  start(): Promise<void> {
    this.#loading ??= this.#load().then(
      () => {
        this.#loaded = true;
        this.coordinator.onLoaded();
        this.coordinator.startRetentionChecks();
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

  /** The `__consumer_offsets` partition (and so coordinator) of a group. */
  partitionFor(groupId: string): number {
    return partitionForGroup(
      groupId,
      this.#topics.get(CONSUMER_OFFSETS_TOPIC)?.partitions ?? this.config.offsetsTopicNumPartitions,
    );
  }

  #checkLoaded(): void {
    if (this.#closed)
      throw new KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, 'the group coordinator is shutting down');
    if (!this.#loaded) throw new KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  }

  /** Appends an operation's records, then releases its completions; returns its response. */
  async #finish<T>(result: CoordinatorResult<T>): Promise<T> {
    const done = this.#persist(result.records);
    this.#inFlight.add(done);
    try {
      await done;
    } finally {
      this.#inFlight.delete(done);
      for (const c of result.completions) c();
      this.#arm();
    }
    return result.response;
  }

  async #persist(records: readonly CoordinatorRecord[]): Promise<void> {
    if (records.length === 0) return;
    const byPartition = new Map<number, CoordinatorRecord[]>();
    const topicNow = this.#topics.get(CONSUMER_OFFSETS_TOPIC);
    const n = topicNow?.partitions ?? this.config.offsetsTopicNumPartitions;
    for (const r of records) {
      const p = partitionForGroup(r.group, n);
      let list = byPartition.get(p);
      if (list === undefined) {
        list = [];
        byPartition.set(p, list);
      }
      list.push(r);
    }
    const topic = topicNow ?? (await this.ensureTopic());
    const now = BigInt(this.#clock.now());
    await Promise.all(
      [...byPartition].map(([p, list]) => {
        const batch = buildRecordBatchSync({
          records: list.map((r) => {
            const e = encodeRecord(r);
            return { key: e.key, value: e.value, timestamp: now };
          }),
        });
        return this.#logs.append(topic, p, batch, -1);
      }),
    );
  }

  #arm(): void {
    if (this.#closed || !this.#loaded) return;
    const next = this.coordinator.nextDeadline();
    if (next === undefined) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerDeadline = undefined;
      return;
    }
    if (this.#timer !== undefined && this.#timerDeadline === next) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerDeadline = next;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, next - this.#clock.now()));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerDeadline = undefined;
    if (this.#closed) return;
    let result: CoordinatorResult<void>;
    try {
      result = this.coordinator.poll();
    } catch (err) {
      // A bug in a timeout handler must not take the broker down with it.
      this.#log.error({ err }, 'group coordinator timeout failed');
      this.#arm();
      return;
    }
    this.#finish(result).catch((err: unknown) =>
      this.#log.error({ err }, 'could not persist group coordinator timeouts'),
    );
  }

  #call<T>(op: () => CoordinatorResult<T>): Promise<T> {
    this.#checkLoaded();
    return this.#finish(op());
  }

  // ------------------------------------------------------------------------------------------
  // The requests, as the handlers call them

  joinGroup(info: RequestInfo, req: JoinGroupInput): Promise<JoinGroupResult> {
    this.#checkLoaded();
    return new Promise<JoinGroupResult>((resolve, reject) => {
      this.#finish(this.coordinator.joinGroup(info, req, resolve)).catch(reject);
    });
  }

  syncGroup(info: RequestInfo, req: SyncGroupInput): Promise<SyncGroupResult> {
    this.#checkLoaded();
    return new Promise<SyncGroupResult>((resolve, reject) => {
      this.#finish(this.coordinator.syncGroup(info, req, resolve)).catch(reject);
    });
  }

  heartbeat(info: RequestInfo, req: Parameters<GroupCoordinator['heartbeat']>[1]): Promise<number> {
    return this.#call(() => this.coordinator.heartbeat(info, req));
  }

  leaveGroup(info: RequestInfo, req: Parameters<GroupCoordinator['leaveGroup']>[1]) {
    return this.#call(() => this.coordinator.leaveGroup(info, req));
  }

  offsetCommit(info: RequestInfo, req: OffsetCommitInput) {
    return this.#call(() => this.coordinator.offsetCommit(info, req));
  }

  offsetFetch(info: RequestInfo, req: OffsetFetchInput) {
    return this.#call(() => this.coordinator.offsetFetch(info, req));
  }

  offsetDelete(info: RequestInfo, req: Parameters<GroupCoordinator['offsetDelete']>[1]) {
    return this.#call(() => this.coordinator.offsetDelete(info, req));
  }

  describeGroups(info: RequestInfo, groupIds: readonly string[]) {
    return this.#call(() => this.coordinator.describeGroups(info, groupIds));
  }

  listGroups(info: RequestInfo, statesFilter: readonly string[], typesFilter: readonly string[]) {
    return this.#call(() => this.coordinator.listGroups(info, statesFilter, typesFilter));
  }

  deleteGroups(info: RequestInfo, groupIds: readonly string[]) {
    return this.#call(() => this.coordinator.deleteGroups(info, groupIds));
  }

  consumerGroupHeartbeat(info: RequestInfo, req: ConsumerGroupHeartbeatInput) {
    return this.#call(() => this.coordinator.consumerGroupHeartbeat(info, req));
  }

  consumerGroupDescribe(info: RequestInfo, groupIds: readonly string[]) {
    return this.#call(() => this.coordinator.consumerGroupDescribe(info, groupIds));
  }

  /** Stops the timers and waits for appends in flight (the log service closes after). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const c of this.coordinator.releaseParked().completions) c();
    await this.#loading?.catch(() => undefined);
    await Promise.allSettled([...this.#inFlight]);
  }
}
