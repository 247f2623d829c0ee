/**
 * The leader epoch cache of one partition (Kafka's LeaderEpochFileCache, KIP-101/KIP-279): the
 * sequence of (leaderEpoch, startOffset) pairs, meaning "epoch E's first offset is S". It answers
 * OffsetForLeaderEpoch (`endOffsetFor`) and lets a follower truncate to the point where its log
 * diverged from the leader's.
 *
 * Invariants: epochs and start offsets strictly increase along the list. Every change is persisted
 * to `leader-epoch-checkpoint` in the partition directory before the mutating call resolves. The
 * owning PartitionLog calls it under its append queue. After a crash the file may be ahead of the
 * log (an epoch assigned for an append that was lost): the log truncates the cache to its end
 * offset on load (`truncateFromEnd`).
 */
import type { EpochEntry, LeaderEpochCheckpointFile } from './checkpoint-file.ts';

export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1n;

export class LeaderEpochCache {
  #entries: EpochEntry[];
  readonly #checkpoint: LeaderEpochCheckpointFile | null;

  constructor(checkpoint: LeaderEpochCheckpointFile | null, entries: readonly EpochEntry[] = []) {
    this.#checkpoint = checkpoint;
    this.#entries = [...entries].sort((a, b) => a.epoch - b.epoch);
  }

  static async load(checkpoint: LeaderEpochCheckpointFile): Promise<LeaderEpochCache> {
    return new LeaderEpochCache(checkpoint, await checkpoint.read());
  }

  get entries(): readonly EpochEntry[] {
    return this.#entries;
  }

  get latestEpoch(): number {
    return this.#entries.at(-1)?.epoch ?? UNDEFINED_EPOCH;
  }

  /**
   * Records that `epoch` starts at `startOffset`. Ignored when the epoch is not newer than the
   * latest; an entry whose start offset is >= `startOffset` is removed first (it belonged to a
   * leader whose appends were truncated), as Kafka's assign does. Returns true when it changed.
   */
  async assign(epoch: number, startOffset: bigint): Promise<boolean> {
    if (epoch < 0) return false;
    const latest = this.#entries.at(-1);
    if (latest && (epoch < latest.epoch || (epoch === latest.epoch && startOffset >= latest.startOffset))) {
      return false;
    }
    this.#entries = this.#entries.filter((e) => e.epoch < epoch && e.startOffset < startOffset);
    this.#entries.push({ epoch, startOffset });
    await this.#persist();
    return true;
  }

  /**
   * OffsetForLeaderEpoch: the end offset of `requestedEpoch` (the start offset of the next higher
   * epoch, or the log end offset for the latest epoch) and the largest epoch <= the requested one.
   * Mirrors LeaderEpochFileCache.endOffsetFor.
   */
  endOffsetFor(requestedEpoch: number, logEndOffset: bigint): { epoch: number; endOffset: bigint } {
    if (requestedEpoch === UNDEFINED_EPOCH || this.#entries.length === 0) {
      return { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    }
    if (requestedEpoch === this.latestEpoch) return { epoch: requestedEpoch, endOffset: logEndOffset };
    const higher = this.#entries.find((e) => e.epoch > requestedEpoch);
    if (!higher) return { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    let floor: EpochEntry | undefined;
    for (const e of this.#entries) if (e.epoch <= requestedEpoch) floor = e;
    return floor
      ? { epoch: floor.epoch, endOffset: higher.startOffset }
      : { epoch: requestedEpoch, endOffset: higher.startOffset };
  }

  /** The epoch of the batch at `offset` (largest entry starting at or before it), or UNDEFINED_EPOCH. */
  epochForOffset(offset: bigint): number {
    let epoch = UNDEFINED_EPOCH;
    for (const e of this.#entries) {
      if (e.startOffset <= offset) epoch = e.epoch;
      else break;
    }
    return epoch;
  }

  /** Removes entries starting at or after `endOffset` (the log was truncated to it). */
  async truncateFromEnd(endOffset: bigint): Promise<void> {
    const kept = this.#entries.filter((e) => e.startOffset < endOffset);
    if (kept.length === this.#entries.length) return;
    this.#entries = kept;
    await this.#persist();
  }

  /**
   * The log start moved to `startOffset`: entries wholly before it go, and the last of them is kept
   * with its start moved up, so the epoch of the first remaining offset stays known.
   */
  async truncateFromStart(startOffset: bigint): Promise<void> {
    let lastBefore = -1;
    for (let i = 0; i < this.#entries.length; i++) if (this.#entries[i]!.startOffset <= startOffset) lastBefore = i;
    if (lastBefore < 0) return;
    const first = this.#entries[lastBefore]!;
    if (lastBefore === 0 && first.startOffset === startOffset) return;
    this.#entries = [{ epoch: first.epoch, startOffset }, ...this.#entries.slice(lastBefore + 1)];
    await this.#persist();
  }

  async clear(): Promise<void> {
    this.#entries = [];
    await this.#persist();
  }

  async #persist(): Promise<void> {
    await this.#checkpoint?.write(this.#entries);
  }
}
