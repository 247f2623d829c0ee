/**
 * One topic partition on this broker (Kafka's `Partition` with its `ProducerStateManager`): owns
 * its `PartitionLog`, the producer state of the idempotent producers writing to it (with its
 * snapshot files), its role and its leader epoch. Only the `ReplicaManager` creates and calls it.
 *
 * Role: every partition is the leader today (one replica); `role` and `makeLeader` are where a
 * follower role plugs in when replication comes (a follower's appends update producer state too).
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
import { isTransactional, type RecordBatchHeader, readBatchHeader } from '../protocol/records/batch-header.ts';
import { iterateBatches } from '../protocol/records/iterate-batches.ts';
import type { PartitionLog, StorageLogger } from '../storage/partition-log.ts';
import { type ProducerEntry, ProducerStateManager } from '../storage/producer-state.ts';
import { CorruptSegmentError } from '../storage/segment.ts';
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
    const onLogChange = options.onLogChange;
    this.#unwatch = onLogChange === undefined ? () => undefined : options.log.onAppend(onLogChange);
  }

  /** Stops reporting log changes (the partition leaves this broker). */
  detach(): void {
    this.#unwatch();
  }

  get role(): PartitionRole {
    return this.#role;
  }

  get leaderEpoch(): number {
    return this.#leaderEpoch;
  }

  /** Applies the partition state of the metadata: this broker leads the partition at `leaderEpoch`. */
  makeLeader(leaderEpoch: number): void {
    this.#role = PartitionRole.leader;
    this.#leaderEpoch = leaderEpoch;
  }

  /**
   * Applies the partition state of the metadata: another broker leads the partition at
   * `leaderEpoch`. Clients' appends and reads get NOT_LEADER_OR_FOLLOWER; fetching from the leader
   * (and its appends here) come with replication.
   */
  makeFollower(leaderEpoch: number): void {
    this.#role = PartitionRole.follower;
    this.#leaderEpoch = leaderEpoch;
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
  async appendRecordsToLeader(records: Buffer): Promise<AppendResult> {
    this.#checkLeader();
    const first = firstBatchHeader(records);
    if (isTransactional(first.attributes)) {
      // Without a transaction coordinator a transactional batch could never be committed or
      // aborted, and would hold the last stable offset back forever.
      throw new KafkaError(ErrorCode.INVALID_TXN_STATE, 'transactions are not supported by this broker yet');
    }
    if (first.producerId < 0n) {
      const info = await this.log.append(records, { leaderEpoch: this.#leaderEpoch });
      return { baseOffset: info.firstOffset, logAppendTimeMs: info.logAppendTime, logStartOffset: info.logStartOffset };
    }
    return this.#idempotentQueue.run(async () => {
      const producers = await this.#producerState();
      // Kafka checks every batch of the request; a produce request carries one batch per
      // partition from idempotent producers, so the first decides for the request.
      const check = producers.check({
        producerId: first.producerId,
        producerEpoch: first.producerEpoch,
        baseSequence: first.baseSequence,
        lastOffsetDelta: first.lastOffsetDelta,
        maxTimestamp: first.maxTimestamp,
      });
      if (check.kind === 'duplicate') {
        return { baseOffset: check.firstOffset, logAppendTimeMs: -1n, logStartOffset: this.log.logStartOffset };
      }
      const info = await this.log.append(records, { leaderEpoch: this.#leaderEpoch });
      const now = Date.now();
      this.#changed = true;
      for (const h of info.batches) {
        producers.record(
          {
            producerId: h.producerId,
            producerEpoch: h.producerEpoch,
            baseSequence: h.baseSequence,
            lastOffsetDelta: h.lastOffsetDelta,
            maxTimestamp: h.maxTimestamp,
          },
          h.baseOffset,
          h.baseOffset + BigInt(h.lastOffsetDelta),
          now,
        );
      }
      return { baseOffset: info.firstOffset, logAppendTimeMs: info.logAppendTime, logStartOffset: info.logStartOffset };
    });
  }

  /** A client's read; `currentLeaderEpoch` (-1: none) is fenced first, as Kafka's localLogWithEpochOrThrow does. */
  async read(
    fetchOffset: bigint,
    maxBytes: number,
    readCommitted: boolean,
    minOneBatch: boolean,
    currentLeaderEpoch = -1,
  ): Promise<ReadResult> {
    this.checkLeaderEpoch(currentLeaderEpoch);
    this.#checkLeader();
    const info = await this.log.read(fetchOffset, maxBytes, {
      isolation: readCommitted ? 'txnCommitted' : 'highWatermark',
      minOneMessage: minOneBatch,
    });
    return {
      records: info.records.length > 0 ? [info.records] : [],
      bytes: info.records.length,
      logStartOffset: info.logStartOffset,
      highWatermark: info.highWatermark,
      lastStableOffset: info.lastStableOffset,
      logEndOffset: info.logEndOffset,
      leaderEpoch: this.#leaderEpoch,
    };
  }

  offsets(): PartitionOffsets {
    const log = this.log;
    return {
      logStartOffset: log.logStartOffset,
      highWatermark: log.highWatermark,
      lastStableOffset: log.lastStableOffset,
      logEndOffset: log.logEndOffset,
      leaderEpoch: this.#leaderEpoch,
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
  async producers(): Promise<ProducerEntry[]> {
    return (await this.#producerState()).entries();
  }

  /** Drops producers idle longer than producer.id.expiration.ms, where the state is loaded. */
  expireProducers(now: number): void {
    if (this.#producers !== null && this.#producers.expire(now, this.#producerIdExpirationMs) > 0) this.#changed = true;
  }

  /** The partition's producer state, loaded on first use. */
  #producerState(): Promise<ProducerStateManager> {
    if (this.#producers !== null) return Promise.resolve(this.#producers);
    this.#loading ??= this.#loadProducerState().then(
      (producers) => {
        this.#producers = producers;
        return producers;
      },
      (err: unknown) => {
        this.#loading = null;
        throw err;
      },
    );
    return this.#loading;
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
    for (let i = snapshots.length - 1; i >= 0 && loadedFrom === null; i--) {
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
      let next = from;
      for (const { header } of iterateBatches(chunk.records, { partialTail: 'stop', verifyCrc: false })) {
        const last = header.baseOffset + BigInt(header.lastOffsetDelta);
        if (last >= from && header.producerId >= 0n) {
          replayed = true;
          producers.record(
            {
              producerId: header.producerId,
              producerEpoch: header.producerEpoch,
              baseSequence: header.baseSequence,
              lastOffsetDelta: header.lastOffsetDelta,
              maxTimestamp: header.maxTimestamp,
            },
            header.baseOffset,
            last,
            now,
          );
        }
        next = last + 1n;
      }
      if (next <= from) break;
      from = next;
    }
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
