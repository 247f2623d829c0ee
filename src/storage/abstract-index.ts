/**
 * What the offset index and the time index share: a sorted array of fixed-size entries, held in
 * memory and written to its file on flush (Kafka memory-maps the file; Node has no mmap, so the
 * in-memory copy is the authority and the file is its durable image).
 *
 * File life cycle, following Kafka's AbstractIndex:
 * - the file of the active segment is preallocated (sparse, by ftruncate) to segment.index.bytes
 *   rounded down to whole entries, so a crash leaves valid entries followed by zeros;
 * - flush() writes the entries added since the last flush and fdatasyncs;
 * - close()/trim when the segment becomes inactive or the broker shuts down cleanly: the file is cut
 *   to exactly `entries * entrySize` bytes, so a clean restart knows the entry count from the size.
 * - after a truncation the stale tail of the file is zeroed (truncate down, then re-extend) at the
 *   next flush, so a later load cannot mistake old entries for live ones.
 *
 * Loading is lenient and self-checking: entries are accepted while they keep increasing; any
 * non-zero byte after the accepted entries, or an entry pointing past the log, marks the file
 * corrupt and the segment rebuilds it from the log (Kafka's sanityCheck + rebuild).
 */
import type { FileLayer } from './file-layer.ts';

const NO_ENTRIES = Buffer.alloc(0);

export abstract class AbstractIndex {
  readonly baseOffset: bigint;
  readonly entrySize: number;
  path: string;
  #maxIndexSize: number;
  protected buf: Buffer;
  #entries = 0;
  /** Entries already written to the file (a prefix of the in-memory ones). */
  #flushedEntries = 0;
  /** Set after a truncation: the file may hold stale entries past `entries` until rewritten. */
  #staleTail = false;
  /** Whether the file has been cut to its entries (inactive segment) rather than preallocated. */
  #trimmed = false;
  #fileExists: boolean;

  protected constructor(
    path: string,
    baseOffset: bigint,
    maxIndexSize: number,
    entrySize: number,
    fileExists: boolean,
  ) {
    this.path = path;
    this.baseOffset = baseOffset;
    this.entrySize = entrySize;
    this.#maxIndexSize = maxIndexSize;
    // Allocated with the first entry: 10,000 partitions' empty indexes made V8 collect garbage
    // for a tenth of a second at start.
    this.buf = NO_ENTRIES;
    this.#fileExists = fileExists;
  }

  get entries(): number {
    return this.#entries;
  }

  get maxEntries(): number {
    return Math.floor(this.#maxIndexSize / this.entrySize);
  }

  get maxIndexSize(): number {
    return this.#maxIndexSize;
  }

  isFull(): boolean {
    return this.#entries >= this.maxEntries;
  }

  /** Bytes the entries take (the size of a trimmed file). */
  get sizeInBytes(): number {
    return this.#entries * this.entrySize;
  }

  /** Changes the cap (segment.index.bytes changed at runtime; applies to the active segment). */
  resize(maxIndexSize: number): void {
    this.#maxIndexSize = Math.max(maxIndexSize, this.#entries * this.entrySize);
  }

  protected reserveEntry(): number {
    const at = this.#entries * this.entrySize;
    if (at + this.entrySize > this.buf.length) {
      const grown = Buffer.alloc(Math.max(this.buf.length * 2, at + this.entrySize, this.entrySize * 64));
      this.buf.copy(grown, 0, 0, at);
      this.buf = grown;
    }
    this.#entries++;
    this.#trimmed = false;
    return at;
  }

  /** Keeps the first `n` entries. */
  protected truncateToEntries(n: number): void {
    if (n >= this.#entries) return;
    this.#entries = n;
    if (this.#flushedEntries > n) {
      this.#flushedEntries = n;
      this.#staleTail = true;
    }
  }

  /** Index of the last entry whose key is <= target, or -1; `keyAt` must be non-decreasing. */
  protected largestLowerBound(compare: (entry: number) => number): number {
    let lo = 0;
    let hi = this.#entries - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(mid) <= 0) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** Parses file contents; returns false when the file is corrupt (caller rebuilds). */
  protected loadFrom(data: Buffer, isValidNext: (entry: number) => boolean): boolean {
    const whole = Math.floor(data.length / this.entrySize);
    this.buf = whole === 0 ? NO_ENTRIES : Buffer.alloc(whole * this.entrySize);
    data.copy(this.buf, 0, 0, whole * this.entrySize);
    let n = 0;
    this.#entries = 0;
    while (n < whole) {
      this.#entries = n + 1;
      if (!isValidNext(n)) {
        this.#entries = n;
        break;
      }
      n++;
    }
    this.#entries = n;
    this.#flushedEntries = n;
    // Anything but zeros after the accepted entries means the file is not what we wrote.
    for (let i = n * this.entrySize; i < data.length; i++) {
      if (data[i] !== 0) return false;
    }
    this.#trimmed = data.length === n * this.entrySize;
    return true;
  }

  /** Drops every entry (before a rebuild). */
  protected clear(): void {
    if (this.#flushedEntries > 0 || this.#fileExists) this.#staleTail = true;
    this.#entries = 0;
    this.#flushedEntries = 0;
  }

  get dirty(): boolean {
    return this.#flushedEntries !== this.#entries || this.#staleTail || !this.#fileExists;
  }

  /** Writes unflushed entries to the file and fdatasyncs it. */
  async flush(files: FileLayer): Promise<void> {
    if (!this.dirty) return;
    const created = !this.#fileExists;
    const f = await files.open(this.path, this.#fileExists ? 'r+' : 'w+');
    try {
      const fullSize = this.maxEntries * this.entrySize;
      if (this.#staleTail || !this.#fileExists) {
        await f.truncate(this.#flushedEntries * this.entrySize);
        if (!this.#trimmed) await f.truncate(Math.max(fullSize, this.#entries * this.entrySize));
      } else if (!this.#trimmed && (await f.size()) < fullSize) {
        await f.truncate(fullSize);
      }
      this.#fileExists = true;
      this.#staleTail = false;
      // Capture what is written: entries may be added while the write and fsync are in flight.
      const flushing = this.#entries;
      const from = this.#flushedEntries * this.entrySize;
      const to = flushing * this.entrySize;
      if (to > from) await f.write(Buffer.from(this.buf.subarray(from, to)), from);
      // A new file without entries has nothing to make durable (its directory entry is not what
      // fdatasync persists); 10,000 new partitions paid 20,000 fdatasyncs for them at shutdown.
      if (to > from || !created) await f.datasync();
      if (this.#entries >= flushing && !this.#staleTail) this.#flushedEntries = flushing;
    } finally {
      await f.close();
    }
  }

  /** Flushes and cuts the file to its entries (Kafka's trimToValidSize on close/roll). */
  async trim(files: FileLayer): Promise<void> {
    // Already cut to its entries, all written (a clean start's index, untouched since): a clean
    // stop of 10,000 such partitions rewrote and fsynced 20,000 unchanged files.
    if (this.#trimmed && !this.dirty) return;
    this.#trimmed = true;
    this.#staleTail = this.#staleTail || this.#fileExists;
    await this.flush(files);
  }

  /** Forgets about the file: it was deleted or renamed away by the owner. */
  markFileMissing(): void {
    this.#fileExists = false;
    this.#flushedEntries = 0;
  }
}
