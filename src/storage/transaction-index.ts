/**
 * The aborted-transaction index of one segment (`<baseOffset>.txnindex`), Kafka's TransactionIndex:
 * one entry per transaction aborted in the segment, so a read_committed Fetch can tell the consumer
 * which producers' records to drop without scanning the log for abort markers.
 *
 * On-disk layout: a sequence of 34-byte entries, big-endian, no header
 *
 *   version          int16   0
 *   producerId       int64
 *   firstOffset      int64   first offset of the aborted transaction (may be in an older segment)
 *   lastOffset       int64   offset of the abort marker
 *   lastStableOffset int64   the LSO once this marker was appended
 *
 * Entries are appended in lastOffset (marker) order. Unlike the offset and time indexes the file is
 * not preallocated: it only grows, so its size is always a whole number of entries and anything
 * else means corruption (Kafka's sanityCheck). The file is created by the first flush that has an
 * entry to write; most segments never abort a transaction and have none.
 *
 * The in-memory copy is the authority and the file its durable image, as in AbstractIndex.
 */
import type { FileLayer } from './file-layer.ts';
import { isMissingFileError } from './file-layer.ts';

export const TXN_INDEX_ENTRY_SIZE = 34;
const ENTRY_VERSION = 0;

export interface AbortedTxn {
  producerId: bigint;
  firstOffset: bigint;
  lastOffset: bigint;
  lastStableOffset: bigint;
}

/** Kafka's TxnIndexSearchResult. */
export interface TxnIndexSearchResult {
  abortedTxns: AbortedTxn[];
  /**
   * True when an entry's lastStableOffset reached the upper bound: no later segment can hold an
   * aborted transaction overlapping the range, so the caller stops searching further segments.
   */
  isComplete: boolean;
}

export class TransactionIndexCorruptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransactionIndexCorruptError';
  }
}

/** Encodes one entry in the file layout. */
export function encodeAbortedTxn(txn: AbortedTxn): Buffer {
  const b = Buffer.alloc(TXN_INDEX_ENTRY_SIZE);
  writeEntry(b, 0, txn);
  return b;
}

function writeEntry(b: Buffer, at: number, txn: AbortedTxn): void {
  b.writeInt16BE(ENTRY_VERSION, at);
  b.writeBigInt64BE(txn.producerId, at + 2);
  b.writeBigInt64BE(txn.firstOffset, at + 10);
  b.writeBigInt64BE(txn.lastOffset, at + 18);
  b.writeBigInt64BE(txn.lastStableOffset, at + 26);
}

export class TransactionIndex {
  readonly baseOffset: bigint;
  path: string;
  /** Entries in marker order; small (one per aborted transaction), so an array of objects. */
  #entries: AbortedTxn[] = [];
  /** Entries known to be in the file as they are in memory (a prefix of #entries). */
  #flushed = 0;
  /** Entries the file may hold; more than #flushed after a truncation: the tail must be cut first. */
  #fileEntries = 0;
  /** Counts truncations, so a flush knows whether the entries it wrote are still the live ones. */
  #truncations = 0;
  #fileExists: boolean;
  /** Entries written to the file (write-through) but not yet fdatasynced. */
  #unsynced = false;
  /**
   * Replaces a damaged file that is not rebuilt yet: nothing is written, so the damage is found
   * again after a restart until `thaw` (the owner rebuilt the entries).
   */
  #frozen = false;

  private constructor(path: string, baseOffset: bigint, fileExists: boolean) {
    this.path = path;
    this.baseOffset = baseOffset;
    this.#fileExists = fileExists;
  }

  /** A new, empty index; its file is created by the first flush with an entry. */
  static create(path: string, baseOffset: bigint): TransactionIndex {
    return new TransactionIndex(path, baseOffset, false);
  }

  /**
   * An empty index replacing a file that failed its checks. The file is left as it is (so a restart
   * still finds it damaged) until `thaw`; then the next write or flush cuts it to the entries.
   */
  static replacingCorrupt(path: string, baseOffset: bigint): TransactionIndex {
    const index = new TransactionIndex(path, baseOffset, true);
    index.#fileEntries = Number.MAX_SAFE_INTEGER;
    index.#frozen = true;
    return index;
  }

  /** Whether this replaces a damaged file whose entries are not rebuilt yet (see replacingCorrupt). */
  get frozen(): boolean {
    return this.#frozen;
  }

  /** The entries are rebuilt: writes and flushes replace the damaged file from now on. */
  thaw(): void {
    this.#frozen = false;
  }

  /**
   * Loads the file (a missing one loads as empty). Throws TransactionIndexCorruptError when the
   * size is not a multiple of the entry size, an entry has an unknown version, or the entries are
   * out of order: the owner then rebuilds it from the log, as Kafka does after CorruptIndexException.
   */
  static async load(files: FileLayer, path: string, baseOffset: bigint): Promise<TransactionIndex> {
    const stat = await files.stat(path);
    const index = new TransactionIndex(path, baseOffset, stat !== null);
    if (!stat || stat.size === 0) return index;
    if (stat.size % TXN_INDEX_ENTRY_SIZE !== 0) {
      throw new TransactionIndexCorruptError(
        `transaction index ${path} has size ${stat.size}, not a multiple of the entry size ${TXN_INDEX_ENTRY_SIZE}`,
      );
    }
    const data = await files.readFile(path);
    // Re-checked on the data read: the file may have changed between stat and read.
    if (data.length % TXN_INDEX_ENTRY_SIZE !== 0) {
      throw new TransactionIndexCorruptError(
        `transaction index ${path} has size ${data.length}, not a multiple of the entry size ${TXN_INDEX_ENTRY_SIZE}`,
      );
    }
    for (let at = 0; at < data.length; at += TXN_INDEX_ENTRY_SIZE) {
      const version = data.readInt16BE(at);
      if (version !== ENTRY_VERSION) {
        throw new TransactionIndexCorruptError(
          `transaction index ${path}: entry ${at / TXN_INDEX_ENTRY_SIZE} has unknown version ${version}`,
        );
      }
      const txn: AbortedTxn = {
        producerId: data.readBigInt64BE(at + 2),
        firstOffset: data.readBigInt64BE(at + 10),
        lastOffset: data.readBigInt64BE(at + 18),
        lastStableOffset: data.readBigInt64BE(at + 26),
      };
      if (txn.lastOffset < baseOffset || txn.firstOffset > txn.lastOffset) {
        throw new TransactionIndexCorruptError(
          `transaction index ${path}: entry ${at / TXN_INDEX_ENTRY_SIZE} (offsets ${txn.firstOffset}..${txn.lastOffset}) does not end in the segment starting at ${baseOffset}`,
        );
      }
      const last = index.#entries.at(-1);
      if (last !== undefined && txn.lastOffset <= last.lastOffset) {
        throw new TransactionIndexCorruptError(
          `transaction index ${path}: entry ${at / TXN_INDEX_ENTRY_SIZE} (last offset ${txn.lastOffset}) is not after ${last.lastOffset}`,
        );
      }
      index.#entries.push(txn);
    }
    index.#flushed = index.#entries.length;
    index.#fileEntries = index.#entries.length;
    return index;
  }

  get entries(): number {
    return this.#entries.length;
  }

  /** A copy of every entry, in marker order. */
  allAbortedTxns(): AbortedTxn[] {
    return this.#entries.map((e) => ({ ...e }));
  }

  get sizeInBytes(): number {
    return this.#entries.length * TXN_INDEX_ENTRY_SIZE;
  }

  get dirty(): boolean {
    return this.#flushed !== this.#entries.length || this.#fileEntries !== this.#flushed;
  }

  /** Whether the file exists (as far as this index knows: it created, loaded or was told so). */
  get hasFile(): boolean {
    return this.#fileExists;
  }

  /** Whether a flush has anything to do: entries or a cut to write, or written bytes to sync. */
  get needsFlush(): boolean {
    return this.dirty || this.#unsynced;
  }

  /**
   * Adds an entry. Markers are appended in offset order, so a lastOffset not above the previous
   * entry's means the caller indexed a marker twice or out of order (Kafka throws too).
   */
  append(txn: AbortedTxn): void {
    const last = this.#entries.at(-1);
    if (last !== undefined && txn.lastOffset <= last.lastOffset) {
      throw new RangeError(
        `the last offset of appended transactions must increase: ${txn.lastOffset} is not after ${last.lastOffset} in ${this.path}`,
      );
    }
    if (txn.firstOffset > txn.lastOffset) {
      throw new RangeError(`aborted transaction first offset ${txn.firstOffset} is after its marker ${txn.lastOffset}`);
    }
    this.#entries.push({ ...txn });
  }

  /**
   * Entries overlapping [fetchOffset, upperBoundOffset): lastOffset >= fetchOffset and
   * firstOffset < upperBoundOffset (Kafka's collectAbortedTxns). Complete once an entry's
   * lastStableOffset reaches the upper bound: every transaction that could still overlap the range
   * was decided before that marker, so it is indexed in this or an earlier segment.
   */
  collectAbortedTxns(fetchOffset: bigint, upperBoundOffset: bigint): TxnIndexSearchResult {
    const abortedTxns: AbortedTxn[] = [];
    for (const e of this.#entries) {
      if (e.lastOffset >= fetchOffset && e.firstOffset < upperBoundOffset) abortedTxns.push({ ...e });
      if (e.lastStableOffset >= upperBoundOffset) return { abortedTxns, isComplete: true };
    }
    return { abortedTxns, isComplete: false };
  }

  /** Removes every entry whose marker is at or after `offset` (the log was truncated there). */
  truncateTo(offset: bigint): void {
    const keep = this.#entries.findIndex((e) => e.lastOffset >= offset);
    if (keep < 0) return;
    this.#entries.length = keep;
    this.#flushed = Math.min(this.#flushed, keep);
    this.#truncations++;
  }

  /** Drops every entry (before a rebuild from the log); the file is emptied at the next flush. */
  reset(): void {
    this.#entries = [];
    this.#flushed = 0;
    this.#truncations++;
  }

  /** Writes the entries added since the last flush and fdatasyncs; cuts a stale tail first. */
  async flush(files: FileLayer): Promise<void> {
    await this.#write(files, true);
  }

  /**
   * Writes the entries added since the last write and cuts a stale tail, without fdatasync
   * (write-through: a process crash right after loses nothing; `flush` syncs later).
   */
  async write(files: FileLayer): Promise<void> {
    await this.#write(files, false);
  }

  async #write(files: FileLayer, sync: boolean): Promise<void> {
    if (this.#frozen) return;
    if (!this.dirty && !(sync && this.#unsynced)) return;
    // Nothing to write and no file to cut: keep the segment without a .txnindex, as Kafka does.
    if (!this.#fileExists && this.#entries.length === 0) {
      this.#fileEntries = 0;
      this.#unsynced = false;
      return;
    }
    const f = await files.open(this.path, this.#fileExists ? 'r+' : 'w+');
    try {
      this.#fileExists = true;
      if (this.#fileEntries > this.#flushed) {
        const cutTo = this.#flushed;
        this.#unsynced = true;
        await f.truncate(cutTo * TXN_INDEX_ENTRY_SIZE);
        // Another truncation meanwhile may have lowered #flushed again; the next flush cuts again.
        this.#fileEntries = cutTo;
      }
      // Capture what is written: entries may be appended or truncated while the write is in flight.
      const generation = this.#truncations;
      const from = this.#flushed;
      const to = this.#entries.length;
      if (to > from) {
        const b = Buffer.alloc((to - from) * TXN_INDEX_ENTRY_SIZE);
        for (let i = from; i < to; i++)
          writeEntry(b, (i - from) * TXN_INDEX_ENTRY_SIZE, this.#entries[i] as AbortedTxn);
        // Counted before the write: if it fails half way the file may hold them anyway.
        this.#fileEntries = Math.max(this.#fileEntries, to);
        this.#unsynced = true;
        await f.write(b, from * TXN_INDEX_ENTRY_SIZE);
      }
      if (sync) {
        this.#unsynced = false;
        try {
          await f.datasync();
        } catch (err) {
          this.#unsynced = true;
          throw err;
        }
      }
      if (this.#truncations === generation) this.#flushed = to;
    } finally {
      await f.close();
    }
  }

  /** Flushes; the file is already exactly its entries, so there is nothing to trim. */
  async close(files: FileLayer): Promise<void> {
    await this.flush(files);
  }

  /** Deletes the file (a missing one is fine) and forgets the entries. */
  async delete(files: FileLayer): Promise<void> {
    try {
      await files.unlink(this.path);
    } catch (err) {
      if (!isMissingFileError(err)) throw err;
    }
    this.#entries = [];
    this.#flushed = 0;
    this.#fileEntries = 0;
    this.#truncations++;
    this.#fileExists = false;
    this.#unsynced = false;
  }

  /** Forgets about the file: it was deleted or renamed away by the owner (as AbstractIndex). */
  markFileMissing(): void {
    this.#fileExists = false;
    this.#unsynced = false;
    this.#flushed = 0;
    this.#fileEntries = 0;
    this.#truncations++;
  }
}
