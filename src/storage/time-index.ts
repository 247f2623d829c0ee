/**
 * The sparse time index of one segment (`<baseOffset>.timeindex`), Kafka's TimeIndex: maps a
 * timestamp to the offset from which to search for the first batch whose max timestamp reaches it.
 *
 * On-disk layout: a sequence of 12-byte entries, big-endian
 *
 *   timestamp      int64   the largest batch max timestamp seen up to the indexed offset
 *   relativeOffset int32   offset - segment baseOffset
 *
 * Timestamps strictly increase and offsets never decrease. An entry is added next to an offset-index
 * entry whenever the running max timestamp grew, and once more when the segment becomes inactive,
 * so its last entry holds the segment's largest timestamp (retention by time reads it).
 * A lookup returns the greatest entry whose timestamp is <= the target, or (-1, baseOffset).
 */
import { AbstractIndex } from './abstract-index.ts';
import type { FileLayer } from './file-layer.ts';

export const TIME_INDEX_ENTRY_SIZE = 12;

export interface TimestampOffset {
  timestamp: bigint;
  offset: bigint;
}

export class TimeIndex extends AbstractIndex {
  private constructor(path: string, baseOffset: bigint, maxIndexSize: number, fileExists: boolean) {
    super(path, baseOffset, maxIndexSize, TIME_INDEX_ENTRY_SIZE, fileExists);
  }

  static create(path: string, baseOffset: bigint, maxIndexSize: number): TimeIndex {
    return new TimeIndex(path, baseOffset, maxIndexSize, false);
  }

  /** Loads the file; `ok` false means missing or failing the sanity checks (caller rebuilds). */
  static async load(
    files: FileLayer,
    path: string,
    baseOffset: bigint,
    maxIndexSize: number,
    maxOffset?: bigint,
  ): Promise<{ index: TimeIndex; ok: boolean }> {
    const stat = await files.stat(path);
    if (!stat) return { index: new TimeIndex(path, baseOffset, maxIndexSize, false), ok: false };
    const index = new TimeIndex(path, baseOffset, maxIndexSize, true);
    const data = stat.size === 0 ? Buffer.alloc(0) : await files.readFile(path);
    const ok = index.loadFrom(data, (i) => {
      const rel = index.relativeOffsetAt(i);
      if (rel < 0) return false;
      if (maxOffset !== undefined && baseOffset + BigInt(rel) > maxOffset) return false;
      if (i === 0) return index.timestampAt(i) !== 0n || rel !== 0 || data.length === TIME_INDEX_ENTRY_SIZE;
      return index.timestampAt(i) > index.timestampAt(i - 1) && rel >= index.relativeOffsetAt(i - 1);
    });
    return { index, ok };
  }

  private timestampAt(i: number): bigint {
    return this.buf.readBigInt64BE(i * TIME_INDEX_ENTRY_SIZE);
  }

  private relativeOffsetAt(i: number): number {
    return this.buf.readInt32BE(i * TIME_INDEX_ENTRY_SIZE + 8);
  }

  entryAt(i: number): TimestampOffset {
    return { timestamp: this.timestampAt(i), offset: this.baseOffset + BigInt(this.relativeOffsetAt(i)) };
  }

  /** The last entry, or (-1, baseOffset) when empty. */
  get lastEntry(): TimestampOffset {
    return this.entries === 0 ? { timestamp: -1n, offset: this.baseOffset } : this.entryAt(this.entries - 1);
  }

  /** Greatest entry with timestamp <= target, or (-1, baseOffset). */
  lookup(targetTimestamp: bigint): TimestampOffset {
    const i = this.largestLowerBound((e) => {
      const ts = this.timestampAt(e);
      return ts < targetTimestamp ? -1 : ts === targetTimestamp ? 0 : 1;
    });
    return i < 0 ? { timestamp: -1n, offset: this.baseOffset } : this.entryAt(i);
  }

  /**
   * Adds (timestamp, offset) when the timestamp is larger than the last entry's. `skipFullCheck`
   * lets the final entry of a segment becoming inactive go in even when the index is full, as Kafka
   * does (there is always room: the cap is checked before each append).
   */
  maybeAppend(timestamp: bigint, offset: bigint, skipFullCheck = false): void {
    if (!skipFullCheck && this.isFull()) throw new RangeError(`time index ${this.path} is full`);
    const rel = offset - this.baseOffset;
    if (rel < 0n || rel > 2147483647n)
      throw new RangeError(`offset ${offset} does not fit index at ${this.baseOffset}`);
    if (this.entries > 0) {
      const last = this.entryAt(this.entries - 1);
      if (timestamp <= last.timestamp) return;
      if (offset < last.offset) {
        throw new RangeError(`time index entry offset ${offset} is below the last entry's ${last.offset}`);
      }
    }
    const at = this.reserveEntry();
    this.buf.writeBigInt64BE(timestamp, at);
    this.buf.writeInt32BE(Number(rel), at + 8);
  }

  /** Removes entries whose offset is >= `offset`. */
  truncateTo(offset: bigint): void {
    let n = this.entries;
    while (n > 0 && this.entryAt(n - 1).offset >= offset) n--;
    this.truncateToEntries(n);
  }

  reset(): void {
    this.clear();
  }

  /** Reads only the last entry of a trimmed file (retention asks for it on segments never read). */
  static async readLastEntry(files: FileLayer, path: string, baseOffset: bigint): Promise<TimestampOffset | null> {
    const stat = await files.stat(path);
    if (!stat || stat.size < TIME_INDEX_ENTRY_SIZE || stat.size % TIME_INDEX_ENTRY_SIZE !== 0) return null;
    const f = await files.open(path, 'r');
    try {
      const b = Buffer.alloc(TIME_INDEX_ENTRY_SIZE);
      await f.read(b, 0, TIME_INDEX_ENTRY_SIZE, stat.size - TIME_INDEX_ENTRY_SIZE);
      const ts = b.readBigInt64BE(0);
      if (ts === 0n) return null;
      return { timestamp: ts, offset: baseOffset + BigInt(b.readInt32BE(8)) };
    } finally {
      await f.close();
    }
  }
}
