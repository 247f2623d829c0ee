/**
 * The sparse offset index of one segment (`<baseOffset>.index`), Kafka's OffsetIndex: maps an offset
 * to the file position of the batch from which a scan must start to find it.
 *
 * On-disk layout: a sequence of 8-byte entries, big-endian
 *
 *   relativeOffset int32   offset - segment baseOffset (of the last offset of an indexed batch)
 *   position       int32   byte position of that batch in the .log file
 *
 * Entries are strictly increasing in both fields. One entry is added after every
 * index.interval.bytes of appended data, so a lookup costs one binary search plus a short scan.
 * A lookup returns the greatest entry whose offset is <= the target, or (baseOffset, 0).
 *
 * Owned by its LogSegment; mutated only under the partition's append queue. See AbstractIndex for
 * the file life cycle and what a crash leaves behind (a prefix of the entries, then zeros; the
 * index is rebuilt from the log when it is past the recovery point or fails its sanity check).
 */
import { AbstractIndex } from './abstract-index.ts';
import type { FileLayer } from './file-layer.ts';

export const OFFSET_INDEX_ENTRY_SIZE = 8;

export interface OffsetPosition {
  offset: bigint;
  position: number;
}

export class OffsetIndex extends AbstractIndex {
  private constructor(path: string, baseOffset: bigint, maxIndexSize: number, fileExists: boolean) {
    super(path, baseOffset, maxIndexSize, OFFSET_INDEX_ENTRY_SIZE, fileExists);
  }

  /** A new, empty index whose file is created at the first flush. */
  static create(path: string, baseOffset: bigint, maxIndexSize: number): OffsetIndex {
    return new OffsetIndex(path, baseOffset, maxIndexSize, false);
  }

  /**
   * Loads the index file. Returns the index and whether it passed its sanity checks; a missing
   * file loads as empty-and-corrupt so the caller rebuilds it.
   */
  static async load(
    files: FileLayer,
    path: string,
    baseOffset: bigint,
    maxIndexSize: number,
    logSize: number,
  ): Promise<{ index: OffsetIndex; ok: boolean }> {
    const stat = await files.stat(path);
    if (!stat) return { index: new OffsetIndex(path, baseOffset, maxIndexSize, false), ok: false };
    const index = new OffsetIndex(path, baseOffset, maxIndexSize, true);
    // An empty file (an active segment with no entry yet, the common case) needs no read.
    const data = stat.size === 0 ? Buffer.alloc(0) : await files.readFile(path);
    let ok = index.loadFrom(data, (i) => {
      const rel = index.relativeOffsetAt(i);
      const pos = index.positionAt(i);
      if (rel < 0 || pos < 0 || pos >= logSize) return false;
      if (i === 0) return true;
      return rel > index.relativeOffsetAt(i - 1) && pos > index.positionAt(i - 1);
    });
    // A (0, 0) first entry followed by zero padding is legal; anything that points outside the log is not.
    if (ok && index.entries > 0 && index.positionAt(index.entries - 1) >= logSize) ok = false;
    return { index, ok };
  }

  private relativeOffsetAt(i: number): number {
    return this.buf.readInt32BE(i * OFFSET_INDEX_ENTRY_SIZE);
  }

  private positionAt(i: number): number {
    return this.buf.readInt32BE(i * OFFSET_INDEX_ENTRY_SIZE + 4);
  }

  entryAt(i: number): OffsetPosition {
    return { offset: this.baseOffset + BigInt(this.relativeOffsetAt(i)), position: this.positionAt(i) };
  }

  /** Offset of the last entry, or the base offset when empty. */
  get lastOffset(): bigint {
    return this.entries === 0 ? this.baseOffset : this.entryAt(this.entries - 1).offset;
  }

  get lastEntry(): OffsetPosition {
    return this.entries === 0 ? { offset: this.baseOffset, position: 0 } : this.entryAt(this.entries - 1);
  }

  /** Greatest entry with offset <= target, or (baseOffset, 0). */
  lookup(targetOffset: bigint): OffsetPosition {
    const rel = targetOffset - this.baseOffset;
    if (rel < 0n) return { offset: this.baseOffset, position: 0 };
    const relNum = rel > 2147483647n ? 2147483647 : Number(rel);
    const i = this.largestLowerBound((e) => this.relativeOffsetAt(e) - relNum);
    return i < 0 ? { offset: this.baseOffset, position: 0 } : this.entryAt(i);
  }

  /** Adds an entry; offsets and positions must increase, and the index must not be full. */
  append(offset: bigint, position: number): void {
    const rel = offset - this.baseOffset;
    if (rel < 0n || rel > 2147483647n)
      throw new RangeError(`offset ${offset} does not fit index at ${this.baseOffset}`);
    if (this.isFull()) throw new RangeError(`offset index ${this.path} is full (${this.entries} entries)`);
    if (this.entries > 0) {
      const last = this.entryAt(this.entries - 1);
      if (offset <= last.offset || position <= last.position) {
        // Kafka throws InvalidOffsetException here; equal offsets happen only if the caller indexes twice.
        if (offset === last.offset) return;
        throw new RangeError(`index entry (${offset}, ${position}) not after (${last.offset}, ${last.position})`);
      }
    }
    const at = this.reserveEntry();
    this.buf.writeInt32BE(Number(rel), at);
    this.buf.writeInt32BE(position, at + 4);
  }

  /** Removes every entry whose offset is >= `offset` (Kafka's OffsetIndex.truncateTo). */
  truncateTo(offset: bigint): void {
    const rel = offset - this.baseOffset;
    if (rel <= 0n) {
      this.truncateToEntries(0);
      return;
    }
    const relNum = rel > 2147483647n ? 2147483647 : Number(rel);
    // Keep entries with relative offset < rel.
    const i = this.largestLowerBound((e) => this.relativeOffsetAt(e) - (relNum - 1));
    this.truncateToEntries(i + 1);
  }

  /** Removes entries pointing at or past `position` (after the log was cut there). */
  truncateToPosition(position: number): void {
    const i = this.largestLowerBound((e) => this.positionAt(e) - (position - 1));
    this.truncateToEntries(i + 1);
  }

  reset(): void {
    this.clear();
  }
}
