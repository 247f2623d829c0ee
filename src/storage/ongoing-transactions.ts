/**
 * The transactions of one partition, as Kafka's ProducerStateManager tracks them (ongoingTxns and
 * unreplicatedTxns), for the last stable offset (LSO) and the aborted-transaction index.
 *
 * Rules (KIP-98):
 * - A producer's first transactional batch begins its transaction at that batch's base offset;
 *   later batches of the same transaction change nothing. A producer has at most one ongoing
 *   transaction per partition.
 * - A commit or abort marker completes it. An abort yields the AbortedTxn entry for the segment's
 *   .txnindex. A marker with no ongoing transaction (the coordinator may write markers to partitions
 *   that got no data, or again after a retry) completes an empty transaction that starts and ends
 *   at the marker, as in Kafka.
 * - A completed transaction stays "unreplicated" until the high watermark passes its marker: until
 *   then a new leader may lose the marker and find the transaction ongoing again, so readers must
 *   not yet treat its records as decided.
 * - firstUnstableOffset = the smallest first offset of ongoing or unreplicated transactions;
 *   LSO = min(firstUnstableOffset, high watermark), or the high watermark when there is none.
 *
 * Pure logic, no I/O, mutated under the partition's append queue like ProducerStateManager. Not yet
 * part of the producer snapshot; after a truncation the owner rebuilds it by replaying the log.
 */
import type { AbortedTxn } from './transaction-index.ts';

export type TxnMarker = 'commit' | 'abort';

export interface OngoingTxn {
  producerId: bigint;
  firstOffset: bigint;
}

/** A transaction whose marker is written (Kafka's CompletedTxn). */
export interface CompletedTxn {
  producerId: bigint;
  firstOffset: bigint;
  /** The marker's offset. */
  lastOffset: bigint;
  isAborted: boolean;
}

export class OngoingTransactions {
  /** producerId -> first offset. Few per partition, so scans are cheaper than a sorted structure. */
  readonly #ongoing = new Map<bigint, bigint>();
  /** Completed, marker not yet below the high watermark; in marker order. */
  #unreplicated: CompletedTxn[] = [];

  /** Ongoing transactions, earliest first (for DescribeProducers and snapshots). */
  ongoing(): OngoingTxn[] {
    return [...this.#ongoing]
      .map(([producerId, firstOffset]) => ({ producerId, firstOffset }))
      .sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  }

  /** Completed transactions whose markers the high watermark has not yet passed, in marker order. */
  unreplicated(): CompletedTxn[] {
    return this.#unreplicated.map((t) => ({ ...t }));
  }

  /** Completed transactions whose markers the high watermark has not passed yet exist. */
  get hasUnreplicated(): boolean {
    return this.#unreplicated.length > 0;
  }

  /** The first offset of the producer's ongoing transaction, if any. */
  ongoingFirstOffset(producerId: bigint): bigint | undefined {
    return this.#ongoing.get(producerId);
  }

  /**
   * Records a transactional data batch at `firstOffset`. Returns true when it begins a transaction,
   * false when the producer's transaction was already ongoing (a later batch of it).
   */
  begin(producerId: bigint, firstOffset: bigint): boolean {
    const current = this.#ongoing.get(producerId);
    if (current !== undefined) {
      // Batches arrive in log order, so a later batch cannot start before its transaction.
      if (firstOffset < current) {
        throw new RangeError(
          `batch at ${firstOffset} of producer ${producerId} is before its transaction at ${current}`,
        );
      }
      return false;
    }
    this.#ongoing.set(producerId, firstOffset);
    return true;
  }

  /**
   * Completes the producer's transaction with the marker appended at `markerOffset`. Returns the
   * entry to append to the segment's transaction index when aborted, else null.
   *
   * The entry's lastStableOffset is computed here rather than by the caller (Kafka's
   * ProducerStateManager.lastStableOffset(completedTxn)): the first offset of the earliest other
   * ongoing transaction, or the offset after the marker. It ignores the high watermark on purpose:
   * it tells a reader of the index that every transaction overlapping offsets below it is decided
   * and indexed by now, which is what lets collectAbortedTxns stop.
   */
  complete(producerId: bigint, marker: TxnMarker, markerOffset: bigint): AbortedTxn | null {
    const firstOffset = this.#ongoing.get(producerId) ?? markerOffset;
    if (markerOffset < firstOffset) {
      throw new RangeError(
        `marker at ${markerOffset} of producer ${producerId} is before its transaction at ${firstOffset}`,
      );
    }
    const lastStableOffset = this.#lastStableOffsetAfter(producerId, markerOffset);
    this.#ongoing.delete(producerId);
    this.#unreplicated.push({ producerId, firstOffset, lastOffset: markerOffset, isAborted: marker === 'abort' });
    if (marker === 'commit') return null;
    return { producerId, firstOffset, lastOffset: markerOffset, lastStableOffset };
  }

  #lastStableOffsetAfter(producerId: bigint, markerOffset: bigint): bigint {
    let min: bigint | null = null;
    for (const [pid, first] of this.#ongoing) {
      if (pid !== producerId && (min === null || first < min)) min = first;
    }
    return min ?? markerOffset + 1n;
  }

  /**
   * The high watermark moved to `highWatermark`: transactions whose marker is below it are
   * replicated and no longer hold the LSO back (Kafka's onHighWatermarkUpdated).
   */
  onHighWatermarkUpdated(highWatermark: bigint): void {
    if (this.#unreplicated.length === 0) return;
    this.#unreplicated = this.#unreplicated.filter((t) => t.lastOffset >= highWatermark);
  }

  /** The smallest first offset of ongoing transactions (Kafka's firstUndecidedOffset), or null. */
  firstUndecidedOffset(): bigint | null {
    let min: bigint | null = null;
    for (const first of this.#ongoing.values()) if (min === null || first < min) min = first;
    return min;
  }

  /**
   * The smallest first offset of transactions that are ongoing or completed with a marker the high
   * watermark has not passed, or null: readers of committed data must stop before it.
   */
  firstUnstableOffset(): bigint | null {
    let min = this.firstUndecidedOffset();
    for (const t of this.#unreplicated) if (min === null || t.firstOffset < min) min = t.firstOffset;
    return min;
  }

  /** The last stable offset: min(first unstable offset, high watermark). */
  lastStableOffset(highWatermark: bigint): bigint {
    const unstable = this.firstUnstableOffset();
    return unstable !== null && unstable < highWatermark ? unstable : highWatermark;
  }

  /** Forgets everything (before the owner replays the log after a truncation or a reload). */
  clear(): void {
    this.#ongoing.clear();
    this.#unreplicated = [];
  }
}
