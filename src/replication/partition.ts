/**
 * One topic partition on this broker (Kafka's `Partition` with its `ProducerStateManager`): owns
 * its `PartitionLog`, the producer state of the idempotent producers writing to it (with its
 * snapshot files), its role and its leader epoch. Only the `ReplicaManager` creates and calls it.
 *
 * Role: leader or follower of its replicas, as the metadata's partition state says. A single node
 * leads every partition and its high watermark follows the log end. A cluster member's partition
 * (`replication` options) replicates as Kafka's ISR protocol does:
 * - the leader records each follower's fetch position (its log end offset) and when it last
 *   caught up; the high watermark is the lowest log end among the in-sync replicas, and only
 *   grows; a follower that caught up to the high watermark joins the ISR, one that has not caught
 *   up for `replica.lag.time.max.ms` leaves it, each change a compare-and-swap of the partition
 *   state (Kafka's AlterPartition) that takes effect when the metadata feed brings it back;
 * - acks=all: an append needs `min.insync.replicas` in-sync replicas (NOT_ENOUGH_REPLICAS), and
 *   is acknowledged once the high watermark passes it (`waitForReplication`);
 * - a follower appends the leader's batches with their offsets and epochs, records its producers
 *   (so idempotence survives a leader change), takes the leader's high watermark, and truncates
 *   where its log diverges from the leader's (KIP-101/KIP-279: by leader epoch).
 *
 * Idempotent batches are checked, appended and recorded under the partition's idempotent queue
 * so a retry can never race its original; other batches go straight to the log (whose own queue
 * orders them and shares fsyncs between concurrent appends).
 *
 * Producer state survives restarts: a snapshot `<offset, 20 digits>.snapshot` in the partition's
 * directory holds the state at that log offset; the batches appended after the newest readable
 * one are replayed when it is loaded. It is loaded when first needed (an idempotent append,
 * DescribeProducers), not at start, and a snapshot is written only where it changed: with 10,000
 * partitions, reading and writing one file each at every start, stop and 30 s pass cost seconds
 * (issue 11 item 18). A crash leaves at most the snapshots of the last pass plus a `.tmp` file;
 * snapshots past the log end after recovery describe lost data and are removed when listed.
 */
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { ProtocolError, ProtocolErrorCodes } from '../protocol/errors.ts';
import {
  isControl,
  isTransactional,
  type RecordBatchHeader,
  readBatchHeader,
} from '../protocol/records/batch-header.ts';
import { buildControlBatch, readControlRecord } from '../protocol/records/control-record.ts';
import { iterateBatches } from '../protocol/records/iterate-batches.ts';
import { decodeRecordsSync } from '../protocol/records/record.ts';
import type { TxnMarker } from '../storage/ongoing-transactions.ts';
import type { PartitionLog, StorageLogger } from '../storage/partition-log.ts';
import { type BatchIdentity, type ProducerEntry, ProducerStateManager } from '../storage/producer-state.ts';
import { CorruptSegmentError } from '../storage/segment.ts';
import type { AbortedTxn } from '../storage/transaction-index.ts';
import { SerialQueue } from '../util/serial-queue.ts';

const SNAPSHOT_SUFFIX = '.snapshot';
const SNAPSHOTS_KEPT = 2;
const REPLAY_CHUNK_BYTES = 8 * 1024 * 1024;

/** A partition's role on this broker. Only `leader` exists until replication (next issue). */
export const PartitionRole = { leader: 'leader', follower: 'follower' } as const;
export type PartitionRole = (typeof PartitionRole)[keyof typeof PartitionRole];

export interface PartitionOffsets {
  logStartOffset: bigint;
  highWatermark: bigint;
  lastStableOffset: bigint;
  logEndOffset: bigint;
  leaderEpoch: number;
  /**
   * A cluster leader's log end offset when it took its leader epoch (-1: not a cluster leader).
   * Until its high watermark reaches it, the new leader's high watermark may still be the stale
   * one it had as a follower (KIP-207).
   */
  leaderEpochStartOffset?: bigint;
}

export interface AppendResult {
  baseOffset: bigint;
  /** -1 unless the topic uses LogAppendTime. */
  logAppendTimeMs: bigint;
  logStartOffset: bigint;
}

export interface ReadResult extends PartitionOffsets {
  /** Whole record batches starting with the one containing the fetch offset (may be empty). */
  records: Buffer[];
  bytes: number;
  /**
   * A read_committed read: the aborted transactions overlapping the records returned (Fetch's
   * aborted_transactions), so the consumer drops their records. Absent otherwise.
   */
  abortedTransactions?: { producerId: bigint; firstOffset: bigint }[];
}

/** An active producer of the partition (DescribeProducers). */
export interface ActiveProducer extends ProducerEntry {
  /** The first offset of its ongoing transaction here, or -1. */
  currentTxnStartOffset: bigint;
}

/** A transaction marker the coordinator writes (WriteTxnMarkers). */
export interface TxnMarkerInput {
  producerId: bigint;
  producerEpoch: number;
  coordinatorEpoch: number;
  commit: boolean;
}

/** How a leader append was asked for. */
export interface LeaderAppendOptions {
  /**
   * KIP-890 part 1: the token `startTxnVerification` returned once the transaction coordinator
   * confirmed this partition is in the producer's transaction. A transactional batch that would
   * begin a transaction here without it is refused (INVALID_TXN_STATE), so a late retry of a
   * batch whose transaction already ended cannot open a transaction that never ends.
   */
  verificationGuard?: object | undefined;
  /** A coordinator's own write (e.g. TxnOffsetCommit to __consumer_offsets): trusted, not verified. */
  origin?: 'client' | 'coordinator';
}

/** The replica set of a partition as the metadata has it. */
export interface ReplicaSet {
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** The compare-and-swap guard of the partition state. */
  readonly partitionEpoch: number;
}

/** What a cluster member's partition needs to replicate (absent: a single node). */
export interface PartitionReplication {
  readonly localBrokerId: number;
  /** replica.lag.time.max.ms: a follower not caught up for this long leaves the ISR. */
  readonly replicaLagTimeMaxMs: number;
  /** The effective min.insync.replicas of the topic. */
  minInsyncReplicas(): number;
  /**
   * Proposes a new ISR (Kafka's AlterPartition) as a compare-and-swap of the partition state at
   * `expectedPartitionEpoch`; the change takes effect when the metadata feed applies it.
   */
  alterIsr(isr: readonly number[], expectedPartitionEpoch: number, leaderEpoch: number): Promise<void>;
  /**
   * Whether a broker is registered (live) now: only a live broker's replica may join the ISR
   * (a shutting-down broker's last fetch must not put it back, as KIP-841 has it).
   */
  isLiveBroker(nodeId: number): boolean;
}

/** What the leader knows of a follower (Kafka's Replica state). */
interface FollowerState {
  /** Its log end offset as its last fetch said; -1 until it fetches in this leader epoch. */
  logEndOffset: bigint;
  /** When it last had everything the leader had (at its previous fetch). */
  lastCaughtUpMs: number;
  /** The leader's log end at the follower's previous fetch, and when that fetch came. */
  lastFetchLeaderLogEndOffset: bigint;
  lastFetchMs: number;
}

/** A follower's fetch, as the leader answers it. */
export interface FollowerReadResult {
  records: Buffer[];
  bytes: number;
  highWatermark: bigint;
  lastStableOffset: bigint;
  logStartOffset: bigint;
  logEndOffset: bigint;
  /** Set when the follower's log diverges from the leader's: truncate to endOffset, fetch again. */
  divergingEpoch: { epoch: number; endOffset: bigint } | null;
}

export interface PartitionOptions {
  topic: string;
  partition: number;
  log: PartitionLog;
  leaderEpoch: number;
  /** The log was created empty just now: it has no producers and no snapshots to load, ever. */
  fresh: boolean;
  /** Called on each change of the log end or high watermark (wakes parked fetches). */
  onLogChange?: () => void;
  /** producer.id.expiration.ms: producers idle longer are dropped. */
  producerIdExpirationMs: number;
  logger: Pick<StorageLogger, 'warn'>;
  /** A cluster member's partition: replicated (see the header). */
  replication?: PartitionReplication | undefined;
}

export class Partition {
  readonly topic: string;
  readonly partition: number;
  readonly log: PartitionLog;
  #role: PartitionRole = PartitionRole.leader;
  #leaderEpoch: number;
  readonly #logger: Pick<StorageLogger, 'warn'>;
  readonly #producerIdExpirationMs: number;
  /** null until loaded (`#producerState`): a clean start reads no snapshot. */
  #producers: ProducerStateManager | null;
  #loading: Promise<ProducerStateManager> | null = null;
  /**
   * Loads (replays) and truncations of the producer state run one at a time here, so a replay never
   * reads a log being truncated nor writes the aborted-transaction index of a truncated range.
   */
  readonly #stateQueue = new SerialQueue();
  /** Bumped by each truncation: a load begun before one is stale and is not installed. */
  #stateGeneration = 0;
  readonly #idempotentQueue = new SerialQueue();
  /** The log end offset when this partition adopted the log: snapshots past it are stale. */
  readonly #openedAt: bigint;
  /** Offsets of the snapshot files in the partition directory, ascending; null until listed. */
  #snapshots: bigint[] | null;
  /**
   * Offset of a snapshot file that holds the current producer state (unless `#changed`); null when
   * none does. Its content also holds for any later log end until an idempotent batch arrives.
   */
  #current: bigint | null = null;
  /** The producer state changed since it was loaded or last snapshotted. */
  #changed = false;
  readonly #unwatch: () => void;
  readonly #replication: PartitionReplication | undefined;
  #replicaSet: ReplicaSet;
  readonly #followers = new Map<number, FollowerState>();
  /** See PartitionOffsets.leaderEpochStartOffset. */
  #leaderEpochStartOffset = -1n;
  /** An ISR change was proposed and has not come back through the metadata feed (or failed). */
  #isrChangePending = false;
  /** Called when the high watermark may have moved or the role changed (acks=all waiters). */
  readonly #replicationWaiters = new Set<() => void>();
  /** KIP-890 verification guards by producer id (see LeaderAppendOptions.verificationGuard). */
  readonly #verificationGuards = new Map<bigint, object>();
  readonly #unwatchTxns: () => void;

  constructor(options: PartitionOptions) {
    this.topic = options.topic;
    this.partition = options.partition;
    this.log = options.log;
    this.#leaderEpoch = options.leaderEpoch;
    this.#logger = options.logger;
    this.#producerIdExpirationMs = options.producerIdExpirationMs;
    this.#openedAt = options.log.logEndOffset;
    this.#producers = options.fresh ? new ProducerStateManager() : null;
    this.#snapshots = options.fresh ? [] : null;
    // Until the producer state is loaded its transactions are unknown: nothing past the log start
    // counts as stable (read_committed reads and ListOffsets load it first; so does the cleaner's
    // owner for compacted topics).
    if (!options.fresh) options.log.setFirstUnstableOffset(options.log.logStartOffset);
    // Registered before any reader's listener: the last stable offset moves with the high
    // watermark before woken read_committed fetches look at it.
    this.#unwatchTxns = options.log.onAppend(() => this.#onHighWatermarkMaybeMoved());
    const onLogChange = options.onLogChange;
    this.#unwatch = onLogChange === undefined ? () => undefined : options.log.onAppend(onLogChange);
    this.#replication = options.replication;
    const self = options.replication?.localBrokerId;
    this.#replicaSet =
      self === undefined
        ? { replicas: [], isr: [], partitionEpoch: -1 }
        : { replicas: [self], isr: [self], partitionEpoch: -1 };
  }

  /** Stops reporting log changes (the partition leaves this broker). */
  detach(): void {
    this.#unwatch();
    this.#unwatchTxns();
  }

  /** Completed transactions leave the unstable range once the high watermark passes their markers. */
  #onHighWatermarkMaybeMoved(): void {
    const producers = this.#producers;
    if (producers === null || !producers.txns.hasUnreplicated) return;
    producers.txns.onHighWatermarkUpdated(this.log.highWatermark);
    this.#syncLastStableOffset(producers);
  }

  #syncLastStableOffset(producers: ProducerStateManager): void {
    this.log.setFirstUnstableOffset(producers.txns.firstUnstableOffset());
  }

  get role(): PartitionRole {
    return this.#role;
  }

  get leaderEpoch(): number {
    return this.#leaderEpoch;
  }

  /** The replicas and ISR as the metadata last said. */
  get replicaSet(): ReplicaSet {
    return this.#replicaSet;
  }

  /**
   * Applies the partition state of the metadata: this broker leads the partition at `leaderEpoch`
   * (Kafka's makeLeader). A new epoch starts the followers' positions afresh; the same epoch only
   * updates the replica set (an ISR change).
   */
  makeLeader(leaderEpoch: number, replicaSet?: ReplicaSet): void {
    const newEpoch = this.#role !== PartitionRole.leader || leaderEpoch !== this.#leaderEpoch;
    // (A partition is created leading; its first makeLeader is where its leadership starts.)
    if (this.#replication !== undefined && (newEpoch || this.#leaderEpochStartOffset < 0n))
      this.#leaderEpochStartOffset = this.log.logEndOffset;
    this.#role = PartitionRole.leader;
    this.#leaderEpoch = leaderEpoch;
    if (replicaSet !== undefined) this.#replicaSet = replicaSet;
    this.#isrChangePending = false;
    if (this.#replication === undefined) return;
    const now = Date.now();
    const self = this.#replication.localBrokerId;
    if (newEpoch) this.#followers.clear();
    for (const id of this.#replicaSet.replicas) {
      if (id === self || this.#followers.has(id)) continue;
      // In sync until proven otherwise: a new leader gives its followers a full lag time.
      this.#followers.set(id, {
        logEndOffset: -1n,
        lastCaughtUpMs: now,
        lastFetchLeaderLogEndOffset: -1n,
        lastFetchMs: 0,
      });
    }
    for (const id of [...this.#followers.keys()])
      if (!this.#replicaSet.replicas.includes(id)) this.#followers.delete(id);
    this.#maybeIncrementHighWatermark();
    this.#wakeReplicationWaiters();
  }

  /**
   * Applies the partition state of the metadata: another broker (or none) leads the partition at
   * `leaderEpoch`. Clients' appends and reads get NOT_LEADER_OR_FOLLOWER; the replica fetcher
   * brings the leader's batches (`appendAsFollower`).
   */
  makeFollower(leaderEpoch: number, replicaSet?: ReplicaSet): void {
    this.#role = PartitionRole.follower;
    this.#leaderEpochStartOffset = -1n;
    this.#leaderEpoch = leaderEpoch;
    if (replicaSet !== undefined) this.#replicaSet = replicaSet;
    this.#followers.clear();
    this.#isrChangePending = false;
    this.#wakeReplicationWaiters();
  }

  /** NOT_LEADER_OR_FOLLOWER unless this broker leads the partition (Kafka's leaderLogIfLocal). */
  #checkLeader(): void {
    if (this.#role !== PartitionRole.leader)
      throw new KafkaError(
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        `this broker does not lead ${this.topic}-${this.partition} (leader epoch ${this.#leaderEpoch})`,
      );
  }

  /** The producer state changed since the last snapshot (a snapshot pass has work here). */
  get producerStateChanged(): boolean {
    return this.#changed;
  }

  /** Kafka's Partition.appendRecordsToLeader: the batches of one Produce partition. */
  async appendRecordsToLeader(
    records: Buffer,
    requiredAcks = 1,
    options: LeaderAppendOptions = {},
  ): Promise<AppendResult & { lastOffset: bigint }> {
    this.#checkLeader();
    if (requiredAcks === -1) this.#checkEnoughReplicas(ErrorCode.NOT_ENOUGH_REPLICAS);
    const result = await this.#appendRecordsToLeader(records, options);
    this.#maybeIncrementHighWatermark();
    return result;
  }

  /** Kafka's checkEnoughReplicasReachOffset / the min.insync.replicas check of appendRecordsToLeader. */
  #checkEnoughReplicas(errorCode: number): void {
    const replication = this.#replication;
    if (replication === undefined) return;
    const min = replication.minInsyncReplicas();
    const isr = this.#replicaSet.isr;
    if (isr.length < min)
      throw new KafkaError(
        errorCode,
        `The size of the current ISR [${isr.join(', ')}] is insufficient to satisfy the min.isr requirement of ${min} for partition ${this.topic}-${this.partition}`,
      );
  }

  async #appendRecordsToLeader(
    records: Buffer,
    options: LeaderAppendOptions,
  ): Promise<AppendResult & { lastOffset: bigint }> {
    const first = firstBatchHeader(records);
    const transactional = isTransactional(first.attributes);
    if (transactional && first.producerId < 0n)
      throw new KafkaError(ErrorCode.INVALID_RECORD, 'a transactional batch needs a producer id');
    if (first.producerId < 0n) {
      const info = await this.log.append(records, { leaderEpoch: this.#leaderEpoch });
      return {
        baseOffset: info.firstOffset,
        lastOffset: info.lastOffset,
        logAppendTimeMs: info.logAppendTime,
        logStartOffset: info.logStartOffset,
      };
    }
    return this.#idempotentQueue.run(async () => {
      const producers = await this.#producerState();
      const pid = first.producerId;
      // Verification first, as in Kafka (its append waits for it before the log checks sequences).
      if (transactional && options.origin !== 'coordinator' && producers.txns.ongoingFirstOffset(pid) === undefined) {
        const guard = this.#verificationGuards.get(pid);
        if (guard === undefined || guard !== options.verificationGuard)
          throw new KafkaError(
            ErrorCode.INVALID_TXN_STATE,
            `producer ${pid} has no verified ongoing transaction on ${this.topic}-${this.partition}`,
          );
      }
      // Kafka checks every batch of the request; a produce request carries one batch per
      // partition from idempotent producers, so the first decides for the request.
      // A coordinator's own transactional write (TxnOffsetCommit) has no client sequence to check
      // (Kafka verifies sequences of client appends only); its epoch is still checked.
      const check =
        options.origin === 'coordinator'
          ? producers.checkEpoch(first.producerId, first.producerEpoch)
          : producers.check(batchIdentity(first));
      if (check.kind === 'duplicate') {
        return {
          baseOffset: check.firstOffset,
          lastOffset: check.firstOffset + BigInt(first.lastOffsetDelta),
          logAppendTimeMs: -1n,
          logStartOffset: this.log.logStartOffset,
        };
      }
      const info = await this.log.append(records, { leaderEpoch: this.#leaderEpoch });
      const now = Date.now();
      this.#changed = true;
      for (const h of info.batches)
        producers.record(batchIdentity(h), h.baseOffset, h.baseOffset + BigInt(h.lastOffsetDelta), now);
      if (transactional) {
        // The transaction is ongoing here now: later batches need no verification.
        this.#verificationGuards.delete(pid);
        this.#syncLastStableOffset(producers);
      }
      return {
        baseOffset: info.firstOffset,
        lastOffset: info.lastOffset,
        logAppendTimeMs: info.logAppendTime,
        logStartOffset: info.logStartOffset,
      };
    });
  }

  /**
   * KIP-890 part 1 (Kafka's maybeStartTransactionVerificationForPartition): null when the producer's
   * transaction is already ongoing here; otherwise a new guard, to be passed to the append once the
   * transaction coordinator confirmed the partition is in the transaction. A marker in between
   * (the transaction ended) invalidates it.
   */
  async startTxnVerification(producerId: bigint): Promise<object | null> {
    this.#checkLeader();
    const producers = await this.#producerState();
    if (producers.txns.ongoingFirstOffset(producerId) !== undefined) return null;
    let guard = this.#verificationGuards.get(producerId);
    if (guard === undefined) {
      guard = {};
      this.#verificationGuards.set(producerId, guard);
    }
    return guard;
  }

  /**
   * Appends a transaction marker (WriteTxnMarkers; Kafka's appendRecordsToLeader with
   * AppendOrigin.COORDINATOR): ends the producer's transaction here, indexes it when aborted and
   * moves the last stable offset. Returns the marker's offset.
   */
  async appendTxnMarker(marker: TxnMarkerInput, requiredAcks = -1): Promise<bigint> {
    this.#checkLeader();
    if (requiredAcks === -1) this.#checkEnoughReplicas(ErrorCode.NOT_ENOUGH_REPLICAS);
    const offset = await this.#idempotentQueue.run(async () => {
      this.#checkLeader();
      const producers = await this.#producerState();
      producers.checkMarker(marker.producerId, marker.producerEpoch, marker.coordinatorEpoch);
      const now = Date.now();
      const batch = buildControlBatch({
        type: marker.commit ? 'commit' : 'abort',
        producerId: marker.producerId,
        producerEpoch: marker.producerEpoch,
        coordinatorEpoch: marker.coordinatorEpoch,
        timestamp: BigInt(now),
      });
      const info = await this.log.append(batch, { leaderEpoch: this.#leaderEpoch, origin: 'coordinator' });
      this.#changed = true;
      this.#verificationGuards.delete(marker.producerId);
      const aborted = producers.recordMarker(
        marker.producerId,
        marker.producerEpoch,
        marker.coordinatorEpoch,
        marker.commit ? 'commit' : 'abort',
        info.firstOffset,
        now,
      );
      await this.#indexAborted(aborted === null ? [] : [aborted]);
      producers.txns.onHighWatermarkUpdated(this.log.highWatermark);
      this.#syncLastStableOffset(producers);
      return info.lastOffset;
    });
    this.#maybeIncrementHighWatermark();
    return offset;
  }

  async #indexAborted(aborted: readonly AbortedTxn[]): Promise<void> {
    for (const a of aborted) await this.log.appendAbortedTxn(a);
  }

  /** The producer state is loaded (the last stable offset is then exact: read_committed reads and ListOffsets). */
  async loadTransactionState(): Promise<void> {
    await this.#producerState();
  }

  // ------------------------------------------------------------------------------------------
  // Replication: the leader's side

  /**
   * acks=all (Kafka's DelayedProduce): resolves once the high watermark reaches `offset` (one past
   * the append's last offset) with min.insync.replicas still in sync; NOT_LEADER_OR_FOLLOWER if
   * leadership moves first, REQUEST_TIMED_OUT after `timeoutMs`.
   */
  waitForReplication(offset: bigint, timeoutMs: number): Promise<void> {
    if (this.#replication === undefined) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = (): boolean => {
        try {
          this.#checkLeader();
          if (this.log.highWatermark < offset) return false;
          this.#checkEnoughReplicas(ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND);
          resolve();
        } catch (err) {
          reject(err);
        }
        return true;
      };
      if (check()) return;
      const done = (): void => {
        clearTimeout(timer);
        this.#replicationWaiters.delete(waiter);
        unwatch();
      };
      const waiter = (): void => {
        if (check()) done();
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new KafkaError(
            ErrorCode.REQUEST_TIMED_OUT,
            `${this.topic}-${this.partition}: not replicated to the in-sync replicas within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.#replicationWaiters.add(waiter);
      const unwatch = this.log.onAppend(waiter);
    });
  }

  #wakeReplicationWaiters(): void {
    for (const w of [...this.#replicationWaiters]) w();
  }

  /**
   * A follower's fetch (Kafka's Partition.fetchRecords from a follower): the leader's batches up
   * to its log end, the follower's position recorded. A follower whose last fetched epoch ends
   * before its fetch offset here has diverged: it gets that epoch's end and no records.
   */
  async fetchForFollower(
    replicaId: number,
    fetchOffset: bigint,
    maxBytes: number,
    currentLeaderEpoch: number,
    lastFetchedEpoch: number,
  ): Promise<FollowerReadResult> {
    this.checkLeaderEpoch(currentLeaderEpoch);
    this.#checkLeader();
    const log = this.log;
    if (lastFetchedEpoch >= 0) {
      const end = log.endOffsetForEpoch(lastFetchedEpoch);
      if (end.epoch < 0 || end.endOffset < 0n)
        throw new KafkaError(
          ErrorCode.OFFSET_OUT_OF_RANGE,
          `could not determine the end offset of ${this.topic}-${this.partition}'s epoch ${lastFetchedEpoch} on the leader`,
        );
      if (end.epoch < lastFetchedEpoch || end.endOffset < fetchOffset) {
        return {
          records: [],
          bytes: 0,
          highWatermark: log.highWatermark,
          lastStableOffset: log.lastStableOffset,
          logStartOffset: log.logStartOffset,
          logEndOffset: log.logEndOffset,
          divergingEpoch: { epoch: end.epoch, endOffset: end.endOffset },
        };
      }
    }
    if (fetchOffset < log.logStartOffset || fetchOffset > log.logEndOffset)
      throw new KafkaError(
        ErrorCode.OFFSET_OUT_OF_RANGE,
        `fetch offset ${fetchOffset} is outside ${this.topic}-${this.partition}'s log [${log.logStartOffset}, ${log.logEndOffset}]`,
      );
    this.updateFollowerFetch(replicaId, fetchOffset, Date.now());
    const info = await log.read(fetchOffset, maxBytes, { isolation: 'logEnd', minOneMessage: true });
    return {
      records: info.records.length > 0 ? [info.records] : [],
      bytes: info.records.length,
      highWatermark: log.highWatermark,
      lastStableOffset: log.lastStableOffset,
      logStartOffset: log.logStartOffset,
      logEndOffset: log.logEndOffset,
      divergingEpoch: null,
    };
  }

  /**
   * Records a follower's fetch position (Kafka's updateFollowerFetchState): its log end, whether
   * it had caught up, then the ISR expansion and high watermark that may follow.
   */
  updateFollowerFetch(replicaId: number, fetchOffset: bigint, now: number): void {
    const follower = this.#followers.get(replicaId);
    if (follower === undefined) return; // not a replica (any more)
    const leaderEnd = this.log.logEndOffset;
    if (fetchOffset >= leaderEnd) follower.lastCaughtUpMs = Math.max(follower.lastCaughtUpMs, now);
    else if (fetchOffset >= follower.lastFetchLeaderLogEndOffset && follower.lastFetchLeaderLogEndOffset >= 0n)
      follower.lastCaughtUpMs = Math.max(follower.lastCaughtUpMs, follower.lastFetchMs);
    follower.logEndOffset = fetchOffset;
    follower.lastFetchLeaderLogEndOffset = leaderEnd;
    follower.lastFetchMs = now;
    this.#maybeExpandIsr(replicaId, follower);
    this.#maybeIncrementHighWatermark();
  }

  /** A follower outside the ISR that has reached the high watermark joins it. */
  #maybeExpandIsr(replicaId: number, follower: FollowerState): void {
    const set = this.#replicaSet;
    if (set.isr.includes(replicaId) || !set.replicas.includes(replicaId)) return;
    if (!this.#replication?.isLiveBroker(replicaId)) return;
    if (follower.logEndOffset < this.log.highWatermark) return;
    this.#proposeIsr([...set.isr, replicaId]);
  }

  /**
   * KIP-392's RackAwareReplicaSelector at the leader: the in-sync replica in the consumer's rack
   * with the most of the log, or -1 (the leader itself: in that rack, or none is).
   */
  preferredReadReplica(clientRack: string, rackOf: (brokerId: number) => string | null | undefined): number {
    const replication = this.#replication;
    if (replication === undefined || this.#role !== PartitionRole.leader || clientRack === '') return -1;
    if (rackOf(replication.localBrokerId) === clientRack) return -1;
    let best = -1;
    let bestEnd = -1n;
    for (const id of this.#replicaSet.isr) {
      if (id === replication.localBrokerId || rackOf(id) !== clientRack || !replication.isLiveBroker(id)) continue;
      const end = this.#followers.get(id)?.logEndOffset ?? -1n;
      if (end > bestEnd) {
        best = id;
        bestEnd = end;
      }
    }
    return best;
  }

  /** Followers not caught up within replica.lag.time.max.ms leave the ISR (called periodically). */
  maybeShrinkIsr(now: number): void {
    const replication = this.#replication;
    if (replication === undefined || this.#role !== PartitionRole.leader) return;
    const self = replication.localBrokerId;
    const set = this.#replicaSet;
    const lagging = set.isr.filter((id) => {
      if (id === self) return false;
      const f = this.#followers.get(id);
      return f === undefined || now - f.lastCaughtUpMs > replication.replicaLagTimeMaxMs;
    });
    if (lagging.length > 0) this.#proposeIsr(set.isr.filter((id) => !lagging.includes(id)));
  }

  #proposeIsr(isr: readonly number[]): void {
    const replication = this.#replication;
    if (replication === undefined || this.#isrChangePending) return;
    this.#isrChangePending = true;
    replication.alterIsr(isr, this.#replicaSet.partitionEpoch, this.#leaderEpoch).catch((err: unknown) => {
      // Lost a race with the controller or another change: the feed brings the newer state.
      this.#isrChangePending = false;
      this.#logger.warn(
        { topic: this.topic, partition: this.partition, isr, err: (err as Error).message },
        'ISR change not written',
      );
    });
  }

  /**
   * The high watermark becomes the lowest log end among the in-sync replicas, never lower than
   * before (Kafka's maybeIncrementLeaderHW).
   */
  #maybeIncrementHighWatermark(): void {
    const replication = this.#replication;
    if (replication === undefined || this.#role !== PartitionRole.leader) return;
    let hw = this.log.logEndOffset;
    for (const id of this.#replicaSet.isr) {
      if (id === replication.localBrokerId) continue;
      const f = this.#followers.get(id);
      const end = f?.logEndOffset ?? -1n;
      if (end < hw) hw = end;
    }
    if (hw > this.log.highWatermark) this.log.updateHighWatermark(hw);
  }

  // ------------------------------------------------------------------------------------------
  // Replication: the follower's side

  /**
   * Appends the leader's batches as they are (offsets, epochs) and records their producers, then
   * takes the leader's high watermark as far as this log reaches (Kafka's appendRecordsToFollowerOrFutureReplica).
   */
  appendAsFollower(records: Buffer, leaderHighWatermark: bigint): Promise<void> {
    return this.#idempotentQueue.run(async () => {
      if (this.#role !== PartitionRole.follower)
        throw new KafkaError(
          ErrorCode.NOT_LEADER_OR_FOLLOWER,
          `${this.topic}-${this.partition} is not a follower here`,
        );
      if (records.length > 0) {
        // The state is loaded before the append: a replay running meanwhile would read these
        // batches too, and record them twice.
        const producers = hasProducerBatches(records) ? await this.#producerState() : null;
        const info = await this.log.append(records, { origin: 'replication' });
        if (producers !== null) {
          this.#changed = true;
          // The appended batches are exactly `records` (a follower keeps the leader's offsets).
          const { aborted } = recordProducerBatches(producers, records, info.firstOffset, Date.now());
          await this.#indexAborted(aborted);
          this.#syncLastStableOffset(producers);
        }
      }
      const end = this.log.logEndOffset;
      this.log.updateHighWatermark(leaderHighWatermark < end ? leaderHighWatermark : end);
    });
  }

  /** The latest leader epoch in this log's epoch cache, -1 if none (Fetch's lastFetchedEpoch). */
  get latestEpoch(): number {
    return this.log.leaderEpochCache.latestEpoch;
  }

  /**
   * Removes every offset >= `offset` (a diverged follower, KIP-101/KIP-279), or with `startAt`
   * empties the log to start at `offset` (the leader's log start passed this log's end). The
   * producer state is rebuilt from what is left.
   */
  truncate(offset: bigint, startAt = false): Promise<void> {
    return this.#idempotentQueue
      .run(() => this.#stateQueue.run(() => this.#truncate(offset, startAt)))
      .then(() => {
        // Replayed in the background (after the queue is free), so the last stable offset returns.
        if (this.#producers === null)
          this.#producerState().catch((err: unknown) =>
            this.#logger.warn({ err, dir: this.log.dir }, 'could not reload the producer state after a truncation'),
          );
      });
  }

  async #truncate(offset: bigint, startAt: boolean): Promise<void> {
    if (startAt) await this.log.truncateFullyAndStartAt(offset);
    else if (!(await this.log.truncateTo(offset))) return;
    const end = this.log.logEndOffset;
    // Snapshots past the new end describe removed batches.
    const snapshots = await this.#listSnapshots();
    for (const o of snapshots.filter((x) => x > end)) await rm(join(this.log.dir, snapshotName(o)), { force: true });
    this.#snapshots = snapshots.filter((x) => x <= end);
    this.#producers = null;
    this.#loading = null;
    this.#stateGeneration++;
    this.#current = null;
    this.#changed = false;
    this.#verificationGuards.clear();
    // Until the state is replayed, nothing beyond the log start is known to be stable.
    this.log.setFirstUnstableOffset(this.log.logStartOffset);
  }

  /** A client's read; `currentLeaderEpoch` (-1: none) is fenced first, as Kafka's localLogWithEpochOrThrow does. */
  async read(
    fetchOffset: bigint,
    maxBytes: number,
    readCommitted: boolean,
    minOneBatch: boolean,
    currentLeaderEpoch = -1,
    fromFollowerAllowed = false,
  ): Promise<ReadResult> {
    this.checkLeaderEpoch(currentLeaderEpoch);
    // KIP-392: a consumer that sends client metadata (Fetch v11+) may read a follower, up to its
    // high watermark (Kafka's fetchOnlyFromLeader is false for it).
    if (!(fromFollowerAllowed && this.#replication !== undefined && this.#role === PartitionRole.follower))
      this.#checkLeader();
    // The last stable offset is exact only once the producer state (with its transactions) is loaded.
    if (readCommitted) await this.#producerState();
    const info = await this.log.read(fetchOffset, maxBytes, {
      isolation: readCommitted ? 'txnCommitted' : 'highWatermark',
      minOneMessage: minOneBatch,
    });
    const result: ReadResult = {
      records: info.records.length > 0 ? [info.records] : [],
      bytes: info.records.length,
      logStartOffset: info.logStartOffset,
      highWatermark: info.highWatermark,
      lastStableOffset: info.lastStableOffset,
      logEndOffset: info.logEndOffset,
      leaderEpoch: this.#leaderEpoch,
    };
    if (readCommitted) {
      // Kafka's LocalLog.addAbortedTransactions: those overlapping [first batch, after the last).
      const upper = nextOffsetAfter(info.records);
      result.abortedTransactions =
        upper === null
          ? []
          : (await this.log.collectAbortedTxns(info.firstBatchOffset, upper)).map((t) => ({
              producerId: t.producerId,
              firstOffset: t.firstOffset,
            }));
    }
    return result;
  }

  offsets(): PartitionOffsets {
    const log = this.log;
    return {
      logStartOffset: log.logStartOffset,
      highWatermark: log.highWatermark,
      lastStableOffset: log.lastStableOffset,
      logEndOffset: log.logEndOffset,
      leaderEpoch: this.#leaderEpoch,
      leaderEpochStartOffset: this.#role === PartitionRole.leader ? this.#leaderEpochStartOffset : -1n,
    };
  }

  /**
   * KIP-320 fencing of a request carrying the leader epoch its client knows (-1: none): older than
   * ours is FENCED_LEADER_EPOCH (the client is behind), newer is UNKNOWN_LEADER_EPOCH (we are).
   */
  checkLeaderEpoch(currentLeaderEpoch: number): void {
    if (currentLeaderEpoch < 0) return;
    if (currentLeaderEpoch < this.#leaderEpoch)
      throw new KafkaError(ErrorCode.FENCED_LEADER_EPOCH, `${this.topic}-${this.partition} is at a newer leader epoch`);
    if (currentLeaderEpoch > this.#leaderEpoch)
      throw new KafkaError(
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        `${this.topic}-${this.partition} is at an older leader epoch`,
      );
  }

  /** Active idempotent producers (DescribeProducers). */
  async producers(): Promise<ActiveProducer[]> {
    const state = await this.#producerState();
    return state
      .entries()
      .map((e) => ({ ...e, currentTxnStartOffset: state.txns.ongoingFirstOffset(e.producerId) ?? -1n }));
  }

  /** Drops producers idle longer than producer.id.expiration.ms, where the state is loaded. */
  expireProducers(now: number): void {
    if (this.#producers !== null && this.#producers.expire(now, this.#producerIdExpirationMs) > 0) this.#changed = true;
  }

  /** The partition's producer state, loaded on first use. */
  #producerState(): Promise<ProducerStateManager> {
    if (this.#producers !== null) return Promise.resolve(this.#producers);
    if (this.#loading !== null) return this.#loading;
    const generation = this.#stateGeneration;
    const loading: Promise<ProducerStateManager> = this.#stateQueue
      .run(async () => {
        // A truncation ran first: this load was asked for the log before it; the caller's retry
        // (below) loads the log after it.
        if (this.#stateGeneration !== generation) return null;
        return this.#loadProducerState();
      })
      .then(
        (producers) => {
          if (this.#loading === loading) this.#loading = null;
          if (producers === null || this.#stateGeneration !== generation) return this.#producerState();
          this.#producers = producers;
          return producers;
        },
        (err: unknown) => {
          if (this.#loading === loading) this.#loading = null;
          throw err;
        },
      );
    this.#loading = loading;
    return loading;
  }

  /** Snapshot files of the partition, listed once; those past the log end at start are stale and go. */
  async #listSnapshots(): Promise<bigint[]> {
    if (this.#snapshots !== null) return this.#snapshots;
    const all = (await readdir(this.log.dir))
      .filter((f) => f.endsWith(SNAPSHOT_SUFFIX))
      .map((f) => BigInt(f.slice(0, -SNAPSHOT_SUFFIX.length)))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // Written before a crash whose recovery cut the log below them: they describe lost data.
    for (const o of all) if (o > this.#openedAt) await rm(join(this.log.dir, snapshotName(o)), { force: true });
    this.#snapshots = all.filter((o) => o <= this.#openedAt);
    return this.#snapshots;
  }

  /**
   * Newest readable snapshot at or below the log end at start, then the batches appended after
   * it (Kafka's loadProducerState). Producers that expired meanwhile are dropped.
   */
  async #loadProducerState(): Promise<ProducerStateManager> {
    const log = this.log;
    const snapshots = await this.#listSnapshots();
    let producers = new ProducerStateManager();
    let from = log.logStartOffset;
    let loadedFrom: bigint | null = null;
    // A damaged aborted-transaction index is rebuilt from the whole log: the snapshots only hold
    // the state at their offset, not the aborted transactions before it.
    const rebuildIndex = log.corruptTxnIndexFrom !== null;
    for (let i = snapshots.length - 1; i >= 0 && loadedFrom === null && !rebuildIndex; i--) {
      const offset = snapshots[i]!;
      try {
        producers = ProducerStateManager.fromSnapshot(await readFile(join(log.dir, snapshotName(offset))));
        loadedFrom = offset;
        if (offset > from) from = offset;
      } catch (err) {
        this.#logger.warn(
          { err, dir: log.dir },
          'unreadable producer snapshot; rebuilding from an older one or the log',
        );
      }
    }
    const now = Date.now();
    let replayed = false;
    // The aborted-transaction index from here on is rebuilt by the replay (it may have missed
    // markers written after this snapshot before a crash, or hold ones of a truncated tail).
    if (from < log.logEndOffset || rebuildIndex) await log.truncateAbortedTxnsFrom(from);
    while (from < log.logEndOffset) {
      let chunk: Awaited<ReturnType<PartitionLog['read']>>;
      try {
        chunk = await log.read(from, REPLAY_CHUNK_BYTES, { isolation: 'logEnd', minOneMessage: true });
      } catch (err) {
        if (!(err instanceof CorruptSegmentError)) throw err;
        // One damaged partition must not keep the broker from starting; reads reaching the damage fail.
        this.#logger.warn(
          { dir: log.dir, offset: String(from), err: err.message },
          'producer state replay stopped at a corrupt record batch; idempotent producers may see sequence errors',
        );
        break;
      }
      if (chunk.records.length === 0) break;
      const replay = recordProducerBatches(producers, chunk.records, from, now);
      if (replay.recorded) replayed = true;
      for (const a of replay.aborted) await log.appendAbortedTxn(a);
      const next = replay.next ?? from;
      if (next <= from) break;
      from = next;
    }
    producers.txns.onHighWatermarkUpdated(log.highWatermark);
    log.setFirstUnstableOffset(producers.txns.firstUnstableOffset());
    const expired = producers.expire(now, this.#producerIdExpirationMs) > 0;
    // The snapshot still describes the state unless the replay or the expiry changed it.
    this.#current = replayed || expired ? null : loadedFrom;
    this.#changed = replayed || expired;
    return producers;
  }

  /**
   * Snapshots the producer state if it changed since the last snapshot; true when one was written.
   * Taken under the idempotent queue: every idempotent batch below the log end offset is then
   * recorded, which is what a snapshot at that offset must contain.
   */
  snapshotIfChanged(): Promise<boolean> {
    return this.#idempotentQueue.run(async () => {
      if (!this.#changed || this.log.closed || this.#producers === null) return false;
      await this.#writeSnapshot(this.#producers);
      return true;
    });
  }

  /** Writes the producer state as the snapshot at the log end and drops the oldest beyond those kept. */
  async #writeSnapshot(producers: ProducerStateManager): Promise<void> {
    const end = this.log.logEndOffset;
    const snapshots = await this.#listSnapshots();
    const path = join(this.log.dir, snapshotName(end));
    this.#changed = false;
    try {
      await writeFile(`${path}.tmp`, producers.toSnapshot());
      await rename(`${path}.tmp`, path);
    } catch (err) {
      this.#changed = true;
      throw err;
    }
    this.#current = end;
    if (snapshots.at(-1) !== end) snapshots.push(end);
    while (snapshots.length > SNAPSHOTS_KEPT)
      await rm(join(this.log.dir, snapshotName(snapshots.shift()!)), { force: true });
  }

  /**
   * At a clean stop (before the log closes), the newest snapshot must hold the state at the log
   * end, so the next start replays nothing. Failures are logged: the next start replays instead.
   */
  snapshotAtStop(): Promise<void> {
    return this.#idempotentQueue.run(async () => {
      if (this.log.closed || this.log.isOffline) return;
      try {
        await this.#snapshotAtStop();
      } catch (err) {
        this.#logger.warn({ err, dir: this.log.dir }, 'could not write producer snapshot');
      }
    });
  }

  /**
   * Where the state changed it is written; where only the log end moved, the snapshot holding the
   * unchanged state is renamed to the log end (it was loaded, or the start found it at the log
   * end); where nothing moved, nothing is done.
   */
  async #snapshotAtStop(): Promise<void> {
    const end = this.log.logEndOffset;
    if (this.#producers !== null) {
      if (this.#changed || this.#current === null) {
        // (An empty log needs no snapshot: there is nothing to replay.)
        if (this.#changed || end > this.log.logStartOffset) await this.#writeSnapshot(this.#producers);
        return;
      }
    } else {
      if (end === this.#openedAt) return; // the files are as the start found them
      const snapshots = await this.#listSnapshots();
      // Only plain batches since the start (an idempotent one would have loaded the state): a
      // snapshot at the start's log end still holds. Otherwise the state stays for the replay.
      if (snapshots.at(-1) !== this.#openedAt) return;
      this.#current = this.#openedAt;
    }
    const from = this.#current!;
    if (from === end) return;
    await rename(join(this.log.dir, snapshotName(from)), join(this.log.dir, snapshotName(end)));
    const snapshots = await this.#listSnapshots();
    snapshots.splice(snapshots.indexOf(from), 1);
    snapshots.push(end);
    this.#current = end;
  }
}

/** The first batch's header; malformed or legacy bytes are the partition's error, as in Kafka. */
function firstBatchHeader(records: Buffer): RecordBatchHeader {
  try {
    return readBatchHeader(records, 0);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    const code =
      err.code === ProtocolErrorCodes.unsupportedVersion
        ? ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT
        : ErrorCode.CORRUPT_MESSAGE;
    throw new KafkaError(code, err.message, { cause: err });
  }
}

function snapshotName(offset: bigint): string {
  return `${offset.toString().padStart(20, '0')}${SNAPSHOT_SUFFIX}`;
}

function batchIdentity(h: RecordBatchHeader): BatchIdentity {
  return {
    producerId: h.producerId,
    producerEpoch: h.producerEpoch,
    baseSequence: h.baseSequence,
    lastOffsetDelta: h.lastOffsetDelta,
    maxTimestamp: h.maxTimestamp,
    transactional: isTransactional(h.attributes),
  };
}

/** The marker type and coordinator epoch of a control batch, or null for other control records. */
function markerOf(batch: Buffer): { type: TxnMarker; coordinatorEpoch: number } | null {
  const record = decodeRecordsSync(batch)[0];
  if (record === undefined) return null;
  const control = readControlRecord(record);
  return control.type === 'unknown' ? null : { type: control.type, coordinatorEpoch: control.coordinatorEpoch };
}

/**
 * Records the producer batches of `buf` whose last offset is >= `from`, in log order (a follower's
 * append, a replay): data batches into the producer state (transactional ones begin their
 * transaction), markers complete their transaction. Returns the aborted transactions to index,
 * whether any producer batch was recorded, and the offset after the last batch (null: none).
 */
function recordProducerBatches(
  producers: ProducerStateManager,
  buf: Buffer,
  from: bigint,
  now: number,
): { aborted: AbortedTxn[]; recorded: boolean; next: bigint | null } {
  const aborted: AbortedTxn[] = [];
  let recorded = false;
  let next: bigint | null = null;
  for (const { offset: position, size, header } of iterateBatches(buf, { partialTail: 'stop', verifyCrc: false })) {
    const last = header.baseOffset + BigInt(header.lastOffsetDelta);
    next = last + 1n;
    if (last < from || header.producerId < 0n) continue;
    recorded = true;
    if (isControl(header.attributes)) {
      const marker = markerOf(buf.subarray(position, position + size));
      if (marker === null) continue;
      const a = producers.recordMarker(
        header.producerId,
        header.producerEpoch,
        marker.coordinatorEpoch,
        marker.type,
        header.baseOffset,
        now,
      );
      if (a !== null) aborted.push(a);
    } else producers.record(batchIdentity(header), header.baseOffset, last, now);
  }
  return { aborted, recorded, next };
}

/** The offset after the last whole batch of `records`, or null when there is none. */
function nextOffsetAfter(records: Buffer): bigint | null {
  let next: bigint | null = null;
  for (const { header } of iterateBatches(records, { partialTail: 'stop', verifyCrc: false }))
    next = header.baseOffset + BigInt(header.lastOffsetDelta) + 1n;
  return next;
}

/** Whether `records` hold a batch of an idempotent or transactional producer (or a marker). */
function hasProducerBatches(records: Buffer): boolean {
  for (const { header } of iterateBatches(records, { partialTail: 'stop', verifyCrc: false }))
    if (header.producerId >= 0n) return true;
  return false;
}
