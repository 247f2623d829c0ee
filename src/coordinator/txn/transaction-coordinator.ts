/**
 * The transaction coordinator (Kafka's TransactionCoordinator with its TransactionStateManager and
 * the completion side of the TransactionMarkerChannelManager).
 *
 * - A transactional id belongs to one `__transaction_state` partition (Kafka's hash); the broker
 *   leading that partition coordinates it. `onElection(partition, leaderEpoch)` loads the
 *   partition's records into the cache (requests for its ids answer COORDINATOR_LOAD_IN_PROGRESS
 *   meanwhile), `onResignation` drops them (NOT_COORDINATOR). The leader epoch is the
 *   coordinator epoch stamped into markers, so a deposed coordinator's markers are fenced.
 * - Every state change is written to `__transaction_state` (acks=all) before it takes effect
 *   (TransactionMetadata's prepare/complete): after a failover the new coordinator finds
 *   PrepareCommit/PrepareAbort and completes them by writing the markers again.
 * - EndTxn answers once PrepareCommit/PrepareAbort is written; the markers then go to every
 *   partition of the transaction (retried until written, the partition's topic is deleted, or the
 *   coordinator moves), and CompleteCommit/CompleteAbort is written last. Until then the producer's
 *   next transactional request gets CONCURRENT_TRANSACTIONS and retries.
 * - InitProducerId of a transactional id fences the previous instance (epoch + 1); one with an
 *   ongoing transaction has its epoch bumped and the transaction aborted first (the client retries
 *   on CONCURRENT_TRANSACTIONS). KIP-360 lets a producer bump its own epoch; an exhausted epoch
 *   moves the id to a new producer id.
 * - Timers: ongoing transactions older than their transaction.timeout.ms are fenced and aborted
 *   (transaction.abort.timed.out.transaction.cleanup.interval.ms); ids idle for
 *   transactional.id.expiration.ms are removed with a tombstone.
 */
import type { Logger } from 'pino';
import type { TopicMetadata } from '../../metadata/metadata-store.ts';
import { ErrorCode, KafkaError } from '../../protocol/error-codes.ts';
import { isControl } from '../../protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../../protocol/records/builder.ts';
import { iterateBatches } from '../../protocol/records/iterate-batches.ts';
import { decodeRecordsSync } from '../../protocol/records/record.ts';
import { appendFailureError, type GroupTopicAccess } from '../group/group-coordinator-service.ts';
import {
  isExpirationAllowed,
  NO_PRODUCER_ID,
  type TopicPartition,
  TRANSACTION_STATE_NAMES,
  TransactionMetadata,
  TransactionState,
  type TxnTransitMetadata,
} from './transaction-metadata.ts';
import { decodeTxnRecord, encodeTxnRecord, partitionForTransactionalId } from './transaction-records.ts';

export const TRANSACTION_STATE_TOPIC = '__transaction_state';
const S = TransactionState;
const LOAD_CHUNK_BYTES = 4 * 1024 * 1024;
const MARKER_RETRY_MIN_MS = 50;
const MARKER_RETRY_MAX_MS = 1000;
/** How long a request waits for the previous transaction's markers before CONCURRENT_TRANSACTIONS. */
const COMPLETION_WAIT_MS = 2000;
/** How long close waits for marker sends in flight. */
const CLOSE_WAIT_MS = 2000;

export interface TxnCoordinatorConfig {
  /** transaction.state.log.num.partitions */
  numPartitions: number;
  /** transaction.state.log.segment.bytes */
  segmentBytes: number;
  /** transaction.state.log.min.isr */
  minInsyncReplicas: number;
  /** transaction.max.timeout.ms */
  transactionMaxTimeoutMs: number;
  /** transactional.id.expiration.ms */
  transactionalIdExpirationMs: number;
  /** transaction.abort.timed.out.transaction.cleanup.interval.ms */
  abortTimedOutTransactionsIntervalMs: number;
  /** transaction.remove.expired.transaction.cleanup.interval.ms */
  removeExpiredTransactionalIdsIntervalMs: number;
}

function intProperty(props: Record<string, string>, name: string, fallback: number): number {
  const raw = props[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

/** Kafka's defaults for the transaction coordinator's settings. */
export function txnCoordinatorConfigFrom(props: Record<string, string>): TxnCoordinatorConfig {
  return {
    numPartitions: Math.max(1, intProperty(props, 'transaction.state.log.num.partitions', 50)),
    segmentBytes: intProperty(props, 'transaction.state.log.segment.bytes', 104857600),
    minInsyncReplicas: Math.max(1, intProperty(props, 'transaction.state.log.min.isr', 2)),
    transactionMaxTimeoutMs: intProperty(props, 'transaction.max.timeout.ms', 900000),
    transactionalIdExpirationMs: intProperty(props, 'transactional.id.expiration.ms', 604800000),
    abortTimedOutTransactionsIntervalMs: Math.max(
      1,
      intProperty(props, 'transaction.abort.timed.out.transaction.cleanup.interval.ms', 10000),
    ),
    removeExpiredTransactionalIdsIntervalMs: Math.max(
      1,
      intProperty(props, 'transaction.remove.expired.transaction.cleanup.interval.ms', 3600000),
    ),
  };
}

/** What the coordinator needs from the log service: its own partitions of `__transaction_state`. */
export interface TxnLogAccess {
  append(topic: TopicMetadata, partition: number, records: Buffer, requiredAcks: number): Promise<unknown>;
  readToLogEnd(
    topic: TopicMetadata,
    partition: number,
    fetchOffset: bigint,
    maxBytes: number,
  ): Promise<{ records: Buffer[]; logEndOffset: bigint }>;
  offsets(topic: TopicMetadata, partition: number): { logStartOffset: bigint; logEndOffset: bigint };
}

export interface TxnMarker {
  producerId: bigint;
  producerEpoch: number;
  coordinatorEpoch: number;
  commit: boolean;
}

/** Writes markers to the partitions' leaders, wherever they are (Kafka's marker channel). */
export interface TxnMarkerWriter {
  /** The error code per partition, in order (0: written and replicated). */
  writeMarkers(marker: TxnMarker, partitions: readonly TopicPartition[]): Promise<number[]>;
}

export interface TransactionCoordinatorOptions {
  topics: GroupTopicAccess;
  logs: TxnLogAccess;
  markers: TxnMarkerWriter;
  allocateProducerId: () => Promise<bigint>;
  config: TxnCoordinatorConfig;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** 'all' (one node: every partition, at start and when the topic is created) or 'elected'. */
  ownership: 'all' | 'elected';
  /** The replication factor `__transaction_state` is created with. */
  replicationFactor: () => number;
  now?: () => number;
}

/** One `__transaction_state` partition coordinated here. */
interface TxnShard {
  readonly partition: number;
  readonly leaderEpoch: number;
  status: 'loading' | 'active' | 'failed';
  readonly txns: Map<string, TransactionMetadata>;
  loading: Promise<void>;
}

export interface TransactionDescription {
  errorCode: number;
  transactionalId: string;
  transactionState: string;
  transactionTimeoutMs: number;
  transactionStartTimeMs: bigint;
  producerId: bigint;
  producerEpoch: number;
  topics: { topic: string; partitions: number[] }[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function tpKey(tp: TopicPartition): string {
  return `${tp.topic}:${tp.partition}`;
}

export class TransactionCoordinator {
  readonly config: TxnCoordinatorConfig;
  readonly #topics: GroupTopicAccess;
  readonly #logs: TxnLogAccess;
  readonly #markers: TxnMarkerWriter;
  readonly #allocateProducerId: () => Promise<bigint>;
  readonly #log: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly #ownership: 'all' | 'elected';
  readonly #replicationFactor: () => number;
  readonly #now: () => number;
  readonly #shards = new Map<number, TxnShard>();
  #topicReady: Promise<TopicMetadata> | undefined;
  #timers: NodeJS.Timeout[] = [];
  #closed = false;
  readonly #background = new Set<Promise<void>>();
  /** Transactions whose markers are being written, until CompleteCommit/CompleteAbort (or give-up). */
  readonly #completing = new Map<TransactionMetadata, Promise<void>>();
  /** Per transactional id, the tail of its client requests: they run one at a time. */
  readonly #queues = new Map<string, Promise<void>>();

  constructor(options: TransactionCoordinatorOptions) {
    this.config = options.config;
    this.#topics = options.topics;
    this.#logs = options.logs;
    this.#markers = options.markers;
    this.#allocateProducerId = options.allocateProducerId;
    this.#log = options.logger;
    this.#ownership = options.ownership;
    this.#replicationFactor = options.replicationFactor;
    this.#now = options.now ?? Date.now;
  }

  /** Starts the timers and, on one node, loads every partition of an existing topic. */
  start(): void {
    const abortEvery = this.config.abortTimedOutTransactionsIntervalMs;
    const expireEvery = this.config.removeExpiredTransactionalIdsIntervalMs;
    this.#timers.push(setInterval(() => this.abortTimedOutTransactions(), abortEvery).unref());
    this.#timers.push(setInterval(() => this.removeExpiredTransactionalIds(), expireEvery).unref());
    if (this.#ownership === 'all') {
      const topic = this.#topics.get(TRANSACTION_STATE_TOPIC);
      if (topic !== undefined) this.#electAll(topic);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#shards.clear();
    // Marker sends stop at their next step (the shards are gone); one waiting on a slow broker is
    // not waited for long: the next coordinator completes its transaction.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#background]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Nothing is loading (/ready). */
  get loaded(): boolean {
    for (const s of this.#shards.values()) if (s.status === 'loading') return false;
    return true;
  }

  #electAll(topic: TopicMetadata): void {
    for (let p = 0; p < topic.partitions; p++)
      if (!this.#shards.has(p)) this.onElection(p, topic.leaderEpochs[p] ?? 0).catch(() => undefined);
  }

  #partitionCount(): number {
    return this.#topics.get(TRANSACTION_STATE_TOPIC)?.partitions ?? this.config.numPartitions;
  }

  /** The `__transaction_state` partition of a transactional id. */
  partitionFor(transactionalId: string): number {
    return partitionForTransactionalId(transactionalId, this.#partitionCount());
  }

  /** Creates `__transaction_state` when missing (FindCoordinator with key type 1, as Kafka). */
  ensureTopic(): Promise<TopicMetadata> {
    const existing = this.#topics.get(TRANSACTION_STATE_TOPIC);
    if (existing !== undefined) {
      if (this.#ownership === 'all') this.#electAll(existing);
      return Promise.resolve(existing);
    }
    const rf = this.#replicationFactor();
    this.#topicReady ??= this.#topics
      .create(
        TRANSACTION_STATE_TOPIC,
        this.config.numPartitions,
        rf,
        {
          'cleanup.policy': 'compact',
          'compression.type': 'uncompressed',
          'min.insync.replicas': String(Math.min(this.config.minInsyncReplicas, rf)),
          'segment.bytes': String(this.config.segmentBytes),
          'unclean.leader.election.enable': 'false',
        },
        false,
      )
      .catch((err: unknown) => {
        this.#topicReady = undefined;
        const again = this.#topics.get(TRANSACTION_STATE_TOPIC);
        if (again !== undefined) return again;
        throw err;
      })
      .then((topic) => {
        if (this.#ownership === 'all') this.#electAll(topic);
        return topic;
      });
    return this.#topicReady;
  }

  // ------------------------------------------------------------------------------------------
  // Leadership

  /**
   * This broker leads `partition` of `__transaction_state` at `leaderEpoch`: loads its ids, then
   * completes the transactions it finds mid-commit or mid-abort.
   */
  onElection(partition: number, leaderEpoch: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const current = this.#shards.get(partition);
    if (current !== undefined && current.leaderEpoch >= leaderEpoch && current.status !== 'failed')
      return current.loading;
    const shard: TxnShard = {
      partition,
      leaderEpoch,
      status: 'loading',
      txns: new Map(),
      loading: Promise.resolve(),
    };
    this.#shards.set(partition, shard);
    shard.loading = this.#load(shard).then(
      () => {
        if (this.#shards.get(partition) !== shard) return;
        shard.status = 'active';
        this.#log.info({ partition, leaderEpoch, transactionalIds: shard.txns.size }, 'transaction coordinator loaded');
        for (const md of shard.txns.values()) {
          if (md.state === S.PrepareCommit || md.state === S.PrepareAbort)
            this.#startMarkers(shard, md, md.state === S.PrepareCommit);
        }
      },
      (err: unknown) => {
        if (this.#shards.get(partition) === shard) shard.status = 'failed';
        this.#log.error({ err, partition }, 'could not load __transaction_state partition');
      },
    );
    return shard.loading;
  }

  /** This broker no longer leads `partition`: its ids leave the cache (NOT_COORDINATOR). */
  onResignation(partition: number, leaderEpoch?: number): void {
    const current = this.#shards.get(partition);
    if (current === undefined) return;
    if (leaderEpoch !== undefined && current.leaderEpoch > leaderEpoch) return;
    this.#shards.delete(partition);
  }

  async #load(shard: TxnShard): Promise<void> {
    const topic = this.#topics.get(TRANSACTION_STATE_TOPIC);
    if (topic === undefined) return;
    const { logStartOffset, logEndOffset } = this.#logs.offsets(topic, shard.partition);
    let offset = logStartOffset;
    while (offset < logEndOffset) {
      if (this.#shards.get(shard.partition) !== shard) return;
      const chunk = await this.#logs.readToLogEnd(topic, shard.partition, offset, LOAD_CHUNK_BYTES);
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
            this.#replay(shard, Buffer.from(r.key), r.value === null ? null : Buffer.from(r.value));
          }
        }
      }
      if (next <= offset) break;
      offset = next;
    }
  }

  #replay(shard: TxnShard, key: Buffer, value: Buffer | null): void {
    let record: ReturnType<typeof decodeTxnRecord>;
    try {
      record = decodeTxnRecord(key, value);
    } catch (err) {
      this.#log.warn({ err, partition: shard.partition }, 'skipping an unreadable __transaction_state record');
      return;
    }
    if (record === null) return;
    const v = record.value;
    if (v === null) {
      shard.txns.delete(record.transactionalId);
      return;
    }
    shard.txns.set(
      record.transactionalId,
      new TransactionMetadata({
        transactionalId: record.transactionalId,
        producerId: v.producerId,
        lastProducerId: v.previousProducerId,
        producerEpoch: v.producerEpoch,
        txnTimeoutMs: v.txnTimeoutMs,
        state: v.state,
        topicPartitions: v.topicPartitions,
        txnStartTimestamp: v.txnStartTimestamp,
        txnLastUpdateTimestamp: v.txnLastUpdateTimestamp,
        nextProducerId: v.nextProducerId,
        clientTransactionVersion: v.clientTransactionVersion,
      }),
    );
  }

  /** The active shard coordinating `transactionalId`, or NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS. */
  #shardFor(transactionalId: string): TxnShard {
    const partition = this.partitionFor(transactionalId);
    const shard = this.#shards.get(partition);
    if (shard === undefined || shard.status === 'failed')
      throw new KafkaError(
        ErrorCode.NOT_COORDINATOR,
        `this broker does not coordinate __transaction_state partition ${partition}`,
      );
    if (shard.status === 'loading') throw new KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    return shard;
  }

  /**
   * Writes a prepared transition (acks=all) and applies it. A failed write drops it and answers
   * Kafka's error for the append; a coordinator that moved meanwhile answers NOT_COORDINATOR.
   */
  async #write(shard: TxnShard, md: TransactionMetadata, t: TxnTransitMetadata): Promise<void> {
    const topic = this.#topics.get(TRANSACTION_STATE_TOPIC);
    const dead = t.txnState === S.Dead;
    try {
      if (topic === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      const encoded = encodeTxnRecord(
        {
          transactionalId: md.transactionalId,
          value: dead
            ? null
            : {
                producerId: t.producerId,
                previousProducerId: t.clientTransactionVersion >= 2 ? t.lastProducerId : NO_PRODUCER_ID,
                nextProducerId: t.clientTransactionVersion >= 2 ? t.nextProducerId : NO_PRODUCER_ID,
                producerEpoch: t.producerEpoch,
                txnTimeoutMs: t.txnTimeoutMs,
                state: t.txnState,
                topicPartitions: [...t.topicPartitions],
                txnStartTimestamp: t.txnStartTimestamp,
                txnLastUpdateTimestamp: t.txnLastUpdateTimestamp,
                clientTransactionVersion: t.clientTransactionVersion,
              },
        },
        // Version 1 (flexible, with the tagged producer ids) only for transaction version 2, as Kafka.
        t.clientTransactionVersion >= 2 ? 1 : 0,
      );
      const batch = buildRecordBatchSync({
        records: [{ key: encoded.key, value: encoded.value, timestamp: BigInt(this.#now()) }],
      });
      await this.#logs.append(topic, shard.partition, batch, -1);
    } catch (err) {
      md.abortPendingTransition();
      throw appendFailureError(err);
    }
    if (this.#shards.get(shard.partition) !== shard) {
      md.abortPendingTransition();
      throw new KafkaError(ErrorCode.NOT_COORDINATOR, 'the transaction coordinator moved during the write');
    }
    if (dead) {
      md.abortPendingTransition();
      shard.txns.delete(md.transactionalId);
      return;
    }
    md.completeTransitionTo(t);
  }

  // ------------------------------------------------------------------------------------------
  // Requests

  /**
   * Runs a client request of `transactionalId` after the ones before it: a client sending several
   * AddPartitionsToTxn at once (kafkajs, one per broker) waits instead of failing with
   * CONCURRENT_TRANSACTIONS and backing off.
   */
  #serial<T>(transactionalId: string, op: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(transactionalId) ?? Promise.resolve();
    const run = previous.then(op, op);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(transactionalId, tail);
    void tail.then(() => {
      if (this.#queues.get(transactionalId) === tail) this.#queues.delete(transactionalId);
    });
    return run;
  }

  /** InitProducerId of a transactional id (Kafka's handleInitProducerId). */
  initProducerId(
    transactionalId: string,
    txnTimeoutMs: number,
    expectedProducerId: bigint,
    expectedProducerEpoch: number,
  ): Promise<{ producerId: bigint; producerEpoch: number }> {
    return this.#serial(transactionalId, () =>
      this.#initProducerId(transactionalId, txnTimeoutMs, expectedProducerId, expectedProducerEpoch),
    );
  }

  async #initProducerId(
    transactionalId: string,
    txnTimeoutMs: number,
    expectedProducerId: bigint,
    expectedProducerEpoch: number,
  ): Promise<{ producerId: bigint; producerEpoch: number }> {
    await this.#awaitCompletion(this.#shardFor(transactionalId).txns.get(transactionalId));
    let shard = this.#shardFor(transactionalId);
    let md = shard.txns.get(transactionalId);
    if (md === undefined) {
      const producerId = await this.#allocateProducerId();
      shard = this.#shardFor(transactionalId);
      md = shard.txns.get(transactionalId);
      if (md === undefined) {
        md = new TransactionMetadata({
          transactionalId,
          producerId,
          producerEpoch: -1,
          txnTimeoutMs,
          state: S.Empty,
          txnLastUpdateTimestamp: BigInt(this.#now()),
        });
        shard.txns.set(transactionalId, md);
      }
    }
    const expected = expectedProducerId >= 0n;
    if (expected && expectedProducerId !== md.producerId && expectedProducerId !== md.lastProducerId)
      throw new KafkaError(
        ErrorCode.PRODUCER_FENCED,
        `producer ${expectedProducerId} no longer owns transactional id ${transactionalId}`,
      );
    if (md.pendingTransitionInProgress) throw new KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS);
    switch (md.state) {
      case S.PrepareCommit:
      case S.PrepareAbort:
        throw new KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS);
      case S.Ongoing: {
        // Fence the current producer (epoch + 1) and abort its transaction; the client retries.
        const fence = md.prepareFenceProducerEpoch();
        md.applyEpochFence(fence);
        await this.#endTransaction(shard, md, md.producerId, md.producerEpoch, false, false).catch((err: unknown) => {
          md.hasFailedEpochFence = true;
          this.#log.warn({ err, transactionalId }, 'could not abort the fenced transaction; the client retries');
        });
        throw new KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS);
      }
      default: {
        let rotated: bigint | undefined;
        if (md.isProducerEpochExhausted) rotated = await this.#allocateProducerId();
        const t = md.prepareIncrementProducerEpoch(
          txnTimeoutMs,
          expected ? expectedProducerEpoch : null,
          BigInt(this.#now()),
          () => {
            if (rotated === undefined) throw new Error('no producer id allocated for the rotation');
            return rotated;
          },
        );
        await this.#write(shard, md, t);
        return { producerId: md.producerId, producerEpoch: md.producerEpoch };
      }
    }
  }

  #validateProducer(md: TransactionMetadata | undefined, producerId: bigint, transactionalId: string) {
    if (md === undefined || md.producerId !== producerId)
      throw new KafkaError(
        ErrorCode.INVALID_PRODUCER_ID_MAPPING,
        `producer ${producerId} does not own transactional id ${transactionalId}`,
      );
    return md;
  }

  /** AddPartitionsToTxn (and AddOffsetsToTxn's partition of `__consumer_offsets`). */
  addPartitions(
    transactionalId: string,
    producerId: bigint,
    producerEpoch: number,
    partitions: readonly TopicPartition[],
  ): Promise<void> {
    return this.#serial(transactionalId, () =>
      this.#addPartitions(transactionalId, producerId, producerEpoch, partitions),
    );
  }

  async #addPartitions(
    transactionalId: string,
    producerId: bigint,
    producerEpoch: number,
    partitions: readonly TopicPartition[],
  ): Promise<void> {
    await this.#awaitCompletion(this.#shardFor(transactionalId).txns.get(transactionalId));
    const shard = this.#shardFor(transactionalId);
    const md = this.#validateProducer(shard.txns.get(transactionalId), producerId, transactionalId);
    md.verifyCanAddPartitions(producerId, producerEpoch);
    const have = new Set(md.topicPartitions.map(tpKey));
    const added = partitions.filter((tp) => !have.has(tpKey(tp)));
    if (added.length === 0 && md.state === S.Ongoing) return;
    const t = md.prepareAddPartitions(added, BigInt(this.#now()));
    await this.#write(shard, md, t);
  }

  /**
   * KIP-890 part 1: whether `partition` is in the producer's ongoing transaction (AddPartitionsToTxn
   * v4+ verifyOnly, asked by a partition leader before a transaction's first batch there).
   */
  verifyPartition(transactionalId: string, producerId: bigint, producerEpoch: number, tp: TopicPartition): number {
    let md: TransactionMetadata | undefined;
    try {
      md = this.#shardFor(transactionalId).txns.get(transactionalId);
    } catch (err) {
      if (err instanceof KafkaError) return err.errorCode;
      throw err;
    }
    if (md === undefined || md.producerId !== producerId) return ErrorCode.INVALID_PRODUCER_ID_MAPPING;
    if (md.producerEpoch !== producerEpoch) return ErrorCode.PRODUCER_FENCED;
    if (md.state === S.PrepareCommit || md.state === S.PrepareAbort) return ErrorCode.CONCURRENT_TRANSACTIONS;
    if (md.state !== S.Ongoing || !md.topicPartitions.some((p) => p.topic === tp.topic && p.partition === tp.partition))
      return ErrorCode.INVALID_TXN_STATE;
    return ErrorCode.NONE;
  }

  /** EndTxn from a client. */
  /**
   * EndTxn from a client; `clientTransactionVersion` 2 (EndTxn v5+, KIP-890 part 2) bumps the epoch.
   * Answers the producer id and epoch the producer continues with.
   */
  endTxn(
    transactionalId: string,
    producerId: bigint,
    producerEpoch: number,
    commit: boolean,
    clientTransactionVersion = 0,
  ): Promise<{ producerId: bigint; producerEpoch: number }> {
    return this.#serial(transactionalId, async () => {
      const shard = this.#shardFor(transactionalId);
      const md = shard.txns.get(transactionalId);
      if (md === undefined)
        throw new KafkaError(
          ErrorCode.INVALID_PRODUCER_ID_MAPPING,
          `producer ${producerId} does not own transactional id ${transactionalId}`,
        );
      await this.#endTransaction(shard, md, producerId, producerEpoch, commit, true, clientTransactionVersion);
      return { producerId: md.producerId, producerEpoch: md.producerEpoch };
    });
  }

  /** Kafka's endTransaction: writes PrepareCommit/PrepareAbort, then sends the markers in the background. */
  async #endTransaction(
    shard: TxnShard,
    md: TransactionMetadata,
    producerId: bigint,
    producerEpoch: number,
    commit: boolean,
    fromClient: boolean,
    clientTransactionVersion = 0,
  ): Promise<void> {
    // Kafka's endTransaction checks. With transaction version 2 the epoch moved at the last EndTxn,
    // so a retry of it carries the epoch before (or, after an overflow, the previous producer id).
    const v2 = md.supportsEpochBump;
    const retryOnOverflow = v2 && md.lastProducerId === producerId && producerEpoch === 32766 && md.producerEpoch === 0;
    const retryOnEpochBump = v2 && md.producerEpoch === producerEpoch + 1;
    let validEpoch: boolean;
    if (!v2) validEpoch = (!fromClient || producerEpoch === md.producerEpoch) && producerEpoch >= md.producerEpoch;
    else if (md.state === S.PrepareCommit || md.state === S.PrepareAbort) validEpoch = retryOnEpochBump;
    else if (md.state === S.CompleteCommit || md.state === S.CompleteAbort)
      validEpoch = retryOnEpochBump || retryOnOverflow;
    else validEpoch = producerEpoch === md.producerEpoch;
    if (md.producerId !== producerId && !retryOnOverflow) throw new KafkaError(ErrorCode.INVALID_PRODUCER_ID_MAPPING);
    if (!validEpoch)
      throw new KafkaError(ErrorCode.PRODUCER_FENCED, `epoch ${producerEpoch} is not the current ${md.producerEpoch}`);
    if (md.pendingTransitionInProgress) throw new KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS);
    const invalid = () =>
      new KafkaError(
        ErrorCode.INVALID_TXN_STATE,
        `cannot ${commit ? 'commit' : 'abort'} a transaction in state ${TRANSACTION_STATE_NAMES[md.state]}`,
      );
    switch (md.state) {
      case S.Ongoing: {
        // Transaction version 2 at the last epoch: the id moves to a new producer id once complete.
        const nextProducerId =
          clientTransactionVersion >= 2 && md.isProducerEpochExhausted
            ? await this.#allocateProducerId()
            : NO_PRODUCER_ID;
        if (md.pendingTransitionInProgress || md.state !== S.Ongoing)
          throw new KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS);
        const t = md.prepareAbortOrCommit(
          commit ? S.PrepareCommit : S.PrepareAbort,
          BigInt(this.#now()),
          clientTransactionVersion,
          nextProducerId,
        );
        await this.#write(shard, md, t);
        this.#startMarkers(shard, md, commit);
        return;
      }
      case S.CompleteCommit:
        if (commit) return; // a retry of a commit that completed
        throw invalid();
      case S.CompleteAbort:
        if (!commit) return;
        throw invalid();
      case S.PrepareCommit:
        if (commit) throw new KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS);
        throw invalid();
      case S.PrepareAbort:
        if (!commit) throw new KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS);
        throw invalid();
      default:
        throw invalid();
    }
  }

  #startMarkers(shard: TxnShard, md: TransactionMetadata, commit: boolean): void {
    const done = this.#sendMarkers(shard, md, commit).finally(() => {
      if (this.#completing.get(md) === done) this.#completing.delete(md);
    });
    this.#completing.set(md, done);
    this.#track(done);
  }

  /**
   * A request arriving while the previous transaction's markers are being written waits for them
   * (a bounded time) rather than answering CONCURRENT_TRANSACTIONS at once: the client would back
   * off for far longer than the markers take.
   */
  async #awaitCompletion(md: TransactionMetadata | undefined): Promise<void> {
    const completing = md === undefined ? undefined : this.#completing.get(md);
    if (completing === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      completing,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, COMPLETION_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  #track(p: Promise<void>): void {
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }

  /**
   * Writes the markers of a prepared transaction to all its partitions, then CompleteCommit or
   * CompleteAbort. Stops when this broker no longer coordinates the partition (the next
   * coordinator completes it on load).
   */
  async #sendMarkers(shard: TxnShard, md: TransactionMetadata, commit: boolean): Promise<void> {
    const current = () => !this.#closed && this.#shards.get(shard.partition) === shard;
    const marker: TxnMarker = {
      producerId: md.producerId,
      producerEpoch: md.producerEpoch,
      coordinatorEpoch: shard.leaderEpoch,
      commit,
    };
    let backoff = MARKER_RETRY_MIN_MS;
    try {
      while (current()) {
        const pending = md.topicPartitions;
        if (pending.length > 0) {
          const codes = await this.#markers.writeMarkers(marker, pending).catch((err: unknown) => {
            this.#log.warn({ err, transactionalId: md.transactionalId }, 'transaction markers not written; retrying');
            return pending.map(() => ErrorCode.UNKNOWN_SERVER_ERROR as number);
          });
          if (!current()) return;
          let stale = false;
          pending.forEach((tp, i) => {
            const code = codes[i] ?? ErrorCode.UNKNOWN_SERVER_ERROR;
            // Written, or its topic was deleted: the partition needs no marker any more.
            if (code === ErrorCode.NONE || code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) md.removePartition(tp);
            // The partition saw a newer producer epoch or coordinator: this coordinator is stale.
            else if (code === ErrorCode.INVALID_PRODUCER_EPOCH || code === ErrorCode.TRANSACTION_COORDINATOR_FENCED) {
              this.#log.warn(
                { transactionalId: md.transactionalId, topic: tp.topic, partition: tp.partition, code },
                'transaction marker fenced; giving up on this partition',
              );
              md.removePartition(tp);
              stale = true;
            }
          });
          if (stale && md.topicPartitions.length === 0) break;
          if (md.topicPartitions.length > 0) {
            await sleep(backoff);
            backoff = Math.min(backoff * 2, MARKER_RETRY_MAX_MS);
            continue;
          }
        }
        // Every marker is written: complete the transaction.
        try {
          await this.#write(shard, md, md.prepareComplete(BigInt(this.#now())));
          return;
        } catch (err) {
          if (err instanceof KafkaError && err.errorCode === ErrorCode.NOT_COORDINATOR) return;
          this.#log.warn({ err, transactionalId: md.transactionalId }, 'could not complete the transaction; retrying');
          await sleep(backoff);
          backoff = Math.min(backoff * 2, MARKER_RETRY_MAX_MS);
        }
      }
    } catch (err) {
      this.#log.error({ err, transactionalId: md.transactionalId }, 'completing a transaction failed');
    }
  }

  // ------------------------------------------------------------------------------------------
  // Timers

  /** Fences and aborts ongoing transactions older than their timeout (Kafka's abortTimedOutTransactions). */
  abortTimedOutTransactions(): void {
    const now = this.#now();
    for (const shard of this.#shards.values()) {
      if (shard.status !== 'active') continue;
      for (const md of shard.txns.values()) {
        if (md.state !== S.Ongoing || md.pendingTransitionInProgress) continue;
        // Kafka: timed out once txnStartTimestamp + txnTimeoutMs < now.
        if (Number(md.txnStartTimestamp) + md.txnTimeoutMs >= now) continue;
        this.#log.info(
          { transactionalId: md.transactionalId, producerId: String(md.producerId), timeoutMs: md.txnTimeoutMs },
          'aborting a transaction that timed out',
        );
        const fence = md.prepareFenceProducerEpoch();
        md.applyEpochFence(fence);
        this.#track(
          this.#endTransaction(shard, md, md.producerId, md.producerEpoch, false, false).catch((err: unknown) => {
            md.hasFailedEpochFence = true;
            this.#log.warn({ err, transactionalId: md.transactionalId }, 'could not abort a timed-out transaction');
          }),
        );
      }
    }
  }

  /** Removes transactional ids idle for transactional.id.expiration.ms (a tombstone each). */
  removeExpiredTransactionalIds(): void {
    const now = this.#now();
    for (const shard of this.#shards.values()) {
      if (shard.status !== 'active') continue;
      for (const md of [...shard.txns.values()]) {
        if (!isExpirationAllowed(md.state) || md.pendingTransitionInProgress) continue;
        if (Number(md.txnLastUpdateTimestamp) + this.config.transactionalIdExpirationMs > now) continue;
        this.#track(
          this.#write(shard, md, md.prepareDead()).catch((err: unknown) =>
            this.#log.warn({ err, transactionalId: md.transactionalId }, 'could not expire a transactional id'),
          ),
        );
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Describe / list

  describeTransactions(ids: readonly string[]): TransactionDescription[] {
    return ids.map((transactionalId) => {
      const none = {
        transactionalId,
        transactionState: '',
        transactionTimeoutMs: 0,
        transactionStartTimeMs: -1n,
        producerId: -1n,
        producerEpoch: -1,
        topics: [],
      };
      let md: TransactionMetadata | undefined;
      try {
        md = this.#shardFor(transactionalId).txns.get(transactionalId);
      } catch (err) {
        if (err instanceof KafkaError) return { ...none, errorCode: err.errorCode };
        throw err;
      }
      if (md === undefined) return { ...none, errorCode: ErrorCode.TRANSACTIONAL_ID_NOT_FOUND };
      const byTopic = new Map<string, number[]>();
      for (const tp of md.topicPartitions) {
        const list = byTopic.get(tp.topic);
        if (list === undefined) byTopic.set(tp.topic, [tp.partition]);
        else list.push(tp.partition);
      }
      return {
        errorCode: ErrorCode.NONE,
        transactionalId,
        transactionState: TRANSACTION_STATE_NAMES[md.state],
        transactionTimeoutMs: md.txnTimeoutMs,
        transactionStartTimeMs: md.txnStartTimestamp,
        producerId: md.producerId,
        producerEpoch: md.producerEpoch,
        topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
      };
    });
  }

  /** ListTransactions (KIP-664; v1 KIP-994 duration filter): ids coordinated here. */
  listTransactions(
    stateFilters: readonly string[],
    producerIdFilters: readonly bigint[],
    durationFilterMs: bigint,
  ): {
    errorCode: number;
    unknownStateFilters: string[];
    transactionStates: { transactionalId: string; producerId: bigint; transactionState: string }[];
  } {
    const names = new Set(Object.values(TRANSACTION_STATE_NAMES));
    const unknownStateFilters = stateFilters.filter((s) => !names.has(s));
    const states = new Set(stateFilters);
    const pids = new Set(producerIdFilters);
    const now = BigInt(this.#now());
    let loading = false;
    const transactionStates = [];
    for (const shard of this.#shards.values()) {
      if (shard.status === 'loading') loading = true;
      if (shard.status !== 'active') continue;
      for (const md of shard.txns.values()) {
        const state = TRANSACTION_STATE_NAMES[md.state];
        if (states.size > 0 && !states.has(state)) continue;
        if (pids.size > 0 && !pids.has(md.producerId)) continue;
        if (durationFilterMs >= 0n && (md.state !== S.Ongoing || now - md.txnStartTimestamp <= durationFilterMs))
          continue;
        transactionStates.push({
          transactionalId: md.transactionalId,
          producerId: md.producerId,
          transactionState: state,
        });
      }
    }
    return {
      errorCode: loading ? ErrorCode.COORDINATOR_LOAD_IN_PROGRESS : ErrorCode.NONE,
      unknownStateFilters,
      transactionStates: loading ? [] : transactionStates,
    };
  }
}
