/**
 * Per-partition idempotent-producer state (Kafka's ProducerStateManager): for every producer id
 * its epoch and the metadata of its last 5 batches, so that a retried batch is recognised as a
 * duplicate (answered with its original offset), a gap is OUT_OF_ORDER_SEQUENCE_NUMBER and an
 * old epoch is INVALID_PRODUCER_EPOCH.
 *
 * Pure logic, no I/O: the partition's owner calls `check` before appending a batch and `record`
 * after, under its append queue. The state is rebuilt after a restart from the newest snapshot
 * (`toSnapshot`/`fromSnapshot`, written as `<offset>.snapshot` next to the segments) plus the
 * batch headers appended after it (`record` again, in log order).
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { OngoingTransactions, type TxnMarker } from './ongoing-transactions.ts';
import type { AbortedTxn } from './transaction-index.ts';

/** Kafka keeps the metadata of this many batches per producer (max.in.flight = 5). */
export const NUM_BATCHES_TO_RETAIN = 5;
const NO_SEQUENCE = -1;
const INT_MAX = 2147483647;

export interface BatchIdentity {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  /** lastOffsetDelta of the batch: lastSequence = baseSequence + lastOffsetDelta (wrapping). */
  lastOffsetDelta: number;
  maxTimestamp: bigint;
  /** A batch of a transaction (KIP-98). */
  transactional?: boolean;
}

export interface BatchMetadata {
  firstSeq: number;
  lastSeq: number;
  firstOffset: bigint;
  lastOffset: bigint;
  timestamp: bigint;
}

export interface ProducerEntry {
  producerId: bigint;
  producerEpoch: number;
  /** Newest last. */
  batches: BatchMetadata[];
  lastTimestampMs: number;
  /** The coordinator epoch of its last transaction marker (-1: none); older markers are fenced. */
  coordinatorEpoch: number;
}

export type CheckResult = { kind: 'append' } | { kind: 'duplicate'; firstOffset: bigint; lastOffset: bigint };

function lastSequenceOf(b: BatchIdentity): number {
  const last = b.baseSequence + b.lastOffsetDelta;
  return last > INT_MAX ? last - INT_MAX - 1 : last;
}

function inSequence(lastSeq: number, nextSeq: number): boolean {
  return nextSeq === lastSeq + 1 || (nextSeq === 0 && lastSeq === INT_MAX);
}

export class ProducerStateManager {
  private readonly producers = new Map<bigint, ProducerEntry>();
  /** The partition's ongoing transactions (LSO, aborted-transaction index). */
  readonly txns = new OngoingTransactions();

  get size(): number {
    return this.producers.size;
  }

  entry(producerId: bigint): ProducerEntry | undefined {
    return this.producers.get(producerId);
  }

  entries(): ProducerEntry[] {
    return [...this.producers.values()];
  }

  /**
   * Validates a batch from a client before it is appended. Throws KafkaError with
   * INVALID_PRODUCER_EPOCH or OUT_OF_ORDER_SEQUENCE_NUMBER; returns 'duplicate' with the
   * original offsets when the batch was already appended.
   */
  check(batch: BatchIdentity): CheckResult {
    if (batch.producerId < 0n) return { kind: 'append' };
    const entry = this.producers.get(batch.producerId);
    // Kafka's ProducerAppendInfo: a producer in a transaction here writes only transactional batches.
    if (
      !batch.transactional &&
      this.txns.ongoingFirstOffset(batch.producerId) !== undefined &&
      (entry === undefined || batch.producerEpoch <= entry.producerEpoch)
    )
      throw new KafkaError(
        ErrorCode.INVALID_TXN_STATE,
        `expected a transactional write from producer ${batch.producerId}: its transaction is ongoing`,
      );
    if (entry === undefined) return { kind: 'append' }; // unknown producers may start at any sequence (KIP-360)
    if (batch.producerEpoch < entry.producerEpoch) {
      throw new KafkaError(
        ErrorCode.INVALID_PRODUCER_EPOCH,
        `epoch ${batch.producerEpoch} of producer ${batch.producerId} is older than the current epoch ${entry.producerEpoch}`,
      );
    }
    if (batch.producerEpoch > entry.producerEpoch) {
      // A bumped epoch restarts the sequence at 0.
      if (batch.baseSequence !== 0) {
        throw new KafkaError(
          ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
          `new epoch ${batch.producerEpoch} of producer ${batch.producerId} must start at sequence 0, got ${batch.baseSequence}`,
        );
      }
      return { kind: 'append' };
    }
    const lastSeq = lastSequenceOf(batch);
    const dup = entry.batches.find((b) => b.firstSeq === batch.baseSequence && b.lastSeq === lastSeq);
    if (dup !== undefined) return { kind: 'duplicate', firstOffset: dup.firstOffset, lastOffset: dup.lastOffset };
    const current = entry.batches.at(-1);
    const currentLastSeq = current === undefined ? NO_SEQUENCE : current.lastSeq;
    if (current !== undefined && !inSequence(currentLastSeq, batch.baseSequence)) {
      throw new KafkaError(
        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
        `out of order sequence for producer ${batch.producerId} at epoch ${batch.producerEpoch}: ` +
          `expected ${currentLastSeq === INT_MAX ? 0 : currentLastSeq + 1}, got ${batch.baseSequence}`,
      );
    }
    return { kind: 'append' };
  }

  /** Only the epoch check of `check` (a coordinator's write carries no client sequence). */
  checkEpoch(producerId: bigint, producerEpoch: number): CheckResult {
    const entry = this.producers.get(producerId);
    if (entry !== undefined && producerEpoch < entry.producerEpoch)
      throw new KafkaError(
        ErrorCode.INVALID_PRODUCER_EPOCH,
        `epoch ${producerEpoch} of producer ${producerId} is older than the current epoch ${entry.producerEpoch}`,
      );
    return { kind: 'append' };
  }

  /** Records an appended batch (also used to replay the log after a restart). */
  record(batch: BatchIdentity, firstOffset: bigint, lastOffset: bigint, nowMs: number): void {
    if (batch.producerId < 0n) return;
    const entry = this.#entryAtEpoch(batch.producerId, batch.producerEpoch, nowMs);
    if (batch.baseSequence !== NO_SEQUENCE) {
      entry.batches.push({
        firstSeq: batch.baseSequence,
        lastSeq: lastSequenceOf(batch),
        firstOffset,
        lastOffset,
        timestamp: batch.maxTimestamp,
      });
      if (entry.batches.length > NUM_BATCHES_TO_RETAIN) entry.batches.shift();
    }
    entry.lastTimestampMs = nowMs;
    if (batch.transactional) this.txns.begin(batch.producerId, firstOffset);
  }

  /** The producer's entry at `epoch`: a newer epoch starts afresh (sequences restart at 0). */
  #entryAtEpoch(producerId: bigint, epoch: number, nowMs: number): ProducerEntry {
    let entry = this.producers.get(producerId);
    if (entry === undefined || epoch > entry.producerEpoch) {
      entry = {
        producerId,
        producerEpoch: epoch,
        batches: [],
        lastTimestampMs: nowMs,
        coordinatorEpoch: entry?.coordinatorEpoch ?? -1,
      };
      this.producers.set(producerId, entry);
    }
    return entry;
  }

  /**
   * Validates a transaction marker from the coordinator (Kafka's checkProducerEpoch and
   * coordinator-epoch check for an EndTransactionMarker): an older producer epoch is
   * INVALID_PRODUCER_EPOCH, an older coordinator epoch TRANSACTION_COORDINATOR_FENCED.
   */
  checkMarker(producerId: bigint, producerEpoch: number, coordinatorEpoch: number): void {
    const entry = this.producers.get(producerId);
    if (entry === undefined) return;
    if (producerEpoch < entry.producerEpoch)
      throw new KafkaError(
        ErrorCode.INVALID_PRODUCER_EPOCH,
        `marker epoch ${producerEpoch} of producer ${producerId} is older than its current epoch ${entry.producerEpoch}`,
      );
    if (coordinatorEpoch < entry.coordinatorEpoch)
      throw new KafkaError(
        ErrorCode.TRANSACTION_COORDINATOR_FENCED,
        `marker of producer ${producerId} from coordinator epoch ${coordinatorEpoch}, older than ${entry.coordinatorEpoch}`,
      );
  }

  /**
   * Records a marker appended at `offset` (also in replay): completes the producer's transaction.
   * Returns the entry for the segment's aborted-transaction index when it aborts, else null.
   */
  recordMarker(
    producerId: bigint,
    producerEpoch: number,
    coordinatorEpoch: number,
    marker: TxnMarker,
    offset: bigint,
    nowMs: number,
  ): AbortedTxn | null {
    const entry = this.#entryAtEpoch(producerId, producerEpoch, nowMs);
    entry.coordinatorEpoch = coordinatorEpoch;
    entry.lastTimestampMs = nowMs;
    return this.txns.complete(producerId, marker, offset);
  }

  /** Drops producers idle for longer than producer.id.expiration.ms. */
  expire(nowMs: number, expirationMs: number): number {
    let removed = 0;
    for (const [id, entry] of this.producers) {
      // A producer in a transaction is kept until its transaction ends (Kafka's isProducerExpired).
      if (this.txns.ongoingFirstOffset(id) !== undefined) continue;
      if (nowMs - entry.lastTimestampMs >= expirationMs) {
        this.producers.delete(id);
        removed++;
      }
    }
    return removed;
  }

  /** Forgets batches at or beyond `offset` (log truncation); producers left empty are dropped. */
  truncateFrom(offset: bigint): void {
    for (const [id, entry] of this.producers) {
      entry.batches = entry.batches.filter((b) => b.lastOffset < offset);
      if (entry.batches.length === 0) this.producers.delete(id);
    }
  }

  clear(): void {
    this.producers.clear();
    this.txns.clear();
  }

  toSnapshot(): Buffer {
    const data = this.entries().map((e) => ({
      producerId: e.producerId.toString(),
      producerEpoch: e.producerEpoch,
      lastTimestampMs: e.lastTimestampMs,
      coordinatorEpoch: e.coordinatorEpoch,
      currentTxnFirstOffset: this.txns.ongoingFirstOffset(e.producerId)?.toString() ?? null,
      batches: e.batches.map((b) => [
        b.firstSeq,
        b.lastSeq,
        b.firstOffset.toString(),
        b.lastOffset.toString(),
        b.timestamp.toString(),
      ]),
    }));
    return Buffer.from(JSON.stringify({ version: 2, producers: data }));
  }

  static fromSnapshot(bytes: Buffer): ProducerStateManager {
    const parsed = JSON.parse(bytes.toString('utf8')) as {
      version: number;
      producers: {
        producerId: string;
        producerEpoch: number;
        lastTimestampMs: number;
        /** v2 */
        coordinatorEpoch?: number;
        currentTxnFirstOffset?: string | null;
        batches: [number, number, string, string, string][];
      }[];
    };
    // v1 (before transactions) has no transaction fields.
    if (parsed.version !== 1 && parsed.version !== 2)
      throw new Error(`unknown producer snapshot version ${parsed.version}`);
    const m = new ProducerStateManager();
    for (const p of parsed.producers) {
      m.producers.set(BigInt(p.producerId), {
        producerId: BigInt(p.producerId),
        producerEpoch: p.producerEpoch,
        lastTimestampMs: p.lastTimestampMs,
        coordinatorEpoch: p.coordinatorEpoch ?? -1,
        batches: p.batches.map(([firstSeq, lastSeq, firstOffset, lastOffset, timestamp]) => ({
          firstSeq,
          lastSeq,
          firstOffset: BigInt(firstOffset),
          lastOffset: BigInt(lastOffset),
          timestamp: BigInt(timestamp),
        })),
      });
      if (p.currentTxnFirstOffset != null) m.txns.begin(BigInt(p.producerId), BigInt(p.currentTxnFirstOffset));
    }
    return m;
  }
}
