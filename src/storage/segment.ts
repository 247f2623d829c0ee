/**
 * One log segment (Kafka's LogSegment): a `.log` file of record batches plus its sparse `.index`
 * and `.timeindex`, all named by the 20-digit zero-padded base offset, e.g.
 *
 *   00000000000000368769.log        record batches exactly as appended (offsets assigned)
 *   00000000000000368769.index      relative offset -> position (OffsetIndex)
 *   00000000000000368769.timeindex  max timestamp -> relative offset (TimeIndex)
 *   00000000000000368769.txnindex   aborted transactions whose marker is here (TransactionIndex;
 *                                   usually absent: no file means no entry)
 *
 * Owns: its files, the in-memory indexes (loaded lazily for segments that were inactive at startup,
 * so a clean restart opens nothing), the running max timestamp and the index interval counter.
 *
 * Invariants: the .log holds whole batches from position 0 to `size`, offsets increasing, every
 * offset in [baseOffset, baseOffset + 2^31); index entries point at batch starts below `size`.
 * Bytes past `size` may exist on disk only during an append (a torn append is cut by recovery).
 *
 * Callers: only its PartitionLog. Appends, truncation and index updates happen under the log's
 * append queue; reads may run at any time and only look at bytes below the `size` they observed.
 * A segment removed from the log is deleted only when no reader holds it (`retain`/`release`).
 *
 * Crash behaviour: an append not yet fdatasynced may be lost or torn; index files are only trusted
 * below the recovery point (the log rebuilds them for segments after it, and for any index that
 * fails its sanity check).
 */
import { join } from 'node:path';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { ProtocolError } from '../protocol/errors.ts';
import {
  CRC_OFFSET,
  CURRENT_MAGIC,
  computeBatchCrc,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MIN_BATCH_LENGTH,
  RECORD_BATCH_HEADER_SIZE,
  type RecordBatchHeader,
  readBatchHeader,
} from '../protocol/records/batch-header.ts';
import { ZERO_COPY_THRESHOLD } from '../protocol/writer.ts';
import { sharedBufferPool } from '../util/buffer-pool.ts';
import { reservationChunk } from './block-reservation.ts';
import type { CachedFile, FileHandleCache } from './file-handle-cache.ts';
import type { FileLayer } from './file-layer.ts';
import { OffsetIndex, type OffsetPosition } from './offset-index.ts';
import { TimeIndex } from './time-index.ts';
import {
  type AbortedTxn,
  TransactionIndex,
  TransactionIndexCorruptError,
  type TxnIndexSearchResult,
} from './transaction-index.ts';

/**
 * Reads that may return this much use the shared buffer pool. A Fetch response gives a pooled
 * buffer back once written, but the response encoder copies byte fields smaller than this, so
 * a smaller result is copied out and its pooled buffer given back at once.
 */
const POOLED_READ_BYTES = ZERO_COPY_THRESHOLD;

export const LOG_FILE_SUFFIX = '.log';
export const INDEX_FILE_SUFFIX = '.index';
export const TIME_INDEX_FILE_SUFFIX = '.timeindex';
export const TXN_INDEX_FILE_SUFFIX = '.txnindex';
/** Suffix of segment files awaiting asynchronous deletion (Kafka's LogFileUtils.DELETED_FILE_SUFFIX). */
export const DELETED_FILE_SUFFIX = '.deleted';
/** Suffix of a compaction result being written. */
export const CLEANED_FILE_SUFFIX = '.cleaned';
/** Suffix of a compaction result ready to replace the segments it covers. */
export const SWAP_FILE_SUFFIX = '.swap';

/** `00000000000000000042` for 42n. */
export function filenamePrefixFromOffset(offset: bigint): string {
  return offset.toString().padStart(20, '0');
}

export function offsetFromFileName(name: string): bigint | null {
  const m = /^(\d{20})\./.exec(name);
  return m ? BigInt(m[1]!) : null;
}

/** What the log tells a segment about each batch it appends. */
export interface SegmentAppendBatch {
  /** The batch bytes, offsets already assigned. */
  data: Buffer;
  baseOffset: bigint;
  lastOffset: bigint;
  maxTimestamp: bigint;
}

/** Where a batch is in the segment. */
export interface BatchLocation {
  position: number;
  size: number;
  header: RecordBatchHeader;
}

export interface SegmentOptions {
  files: FileLayer;
  handles: FileHandleCache;
  /** segment.index.bytes */
  maxIndexSize: number;
  /** For segment.ms when the segment holds no timestamps. */
  createdMs: number;
  /**
   * Called when the `.txnindex` failed its checks on load (torn or corrupt): the segment then
   * uses an empty index (the file is cut at the next write) and the owner rebuilds its entries.
   */
  onTxnIndexCorrupt?: ((segment: LogSegment, reason: string) => void) | undefined;
}

const SCAN_CHUNK = 64 * 1024;
/** Allocated bytes past a file's end not worth an ftruncate (file-system metadata blocks). */
const RESERVED_PAST_END_SLACK = 64 * 1024;

/**
 * Segment bytes that are not what the log wrote: below the segment's end, a batch that does not
 * parse, overruns the end or goes back in offsets; or an index entry that does not name the batch
 * at its position. Reads must never take this for the end of the data (that silently skips
 * records), so it fails the read with KAFKA_STORAGE_ERROR; the log stays online, as Kafka
 * answers a read of corrupt data with an error rather than taking the directory offline.
 */
export class CorruptSegmentError extends KafkaError {
  readonly segment: LogSegment;
  readonly position: number;
  /** Found where an index entry pointed: the index may be what is wrong (rebuild it and retry). */
  readonly indexSuspect: boolean;

  constructor(segment: LogSegment, position: number, reason: string, indexSuspect: boolean) {
    super(ErrorCode.KAFKA_STORAGE_ERROR, `corrupt log segment ${segment.logPath} at position ${position}: ${reason}`);
    this.segment = segment;
    this.position = position;
    this.indexSuspect = indexSuspect;
  }
}

/** Indexes and running values built from a scan of the .log (recovery and index rebuilds). */
interface LogScan {
  /** End of the last valid batch. */
  end: number;
  next: bigint;
  offsetIndex: OffsetIndex;
  timeIndex: TimeIndex;
  maxTimestamp: bigint;
  offsetOfMaxTimestamp: bigint;
  rollingBasedTimestamp: bigint | null;
  bytesSinceLastIndexEntry: number;
  /** Why the scan stopped before the end it was given (null: it reached it). */
  stoppedBecause: string | null;
}

export class LogSegment {
  readonly baseOffset: bigint;
  readonly dir: string;
  readonly #files: FileLayer;
  readonly #log: CachedFile;
  #suffix: string;
  #offsetIndex: OffsetIndex | null = null;
  #timeIndex: TimeIndex | null = null;
  #indexLoad: Promise<void> | null = null;
  #txnIndex: TransactionIndex | null = null;
  #txnIndexLoad: Promise<TransactionIndex> | null = null;
  readonly #onTxnIndexCorrupt: SegmentOptions['onTxnIndexCorrupt'];
  #maxIndexSize: number;

  /** Committed bytes of the .log (whole batches). */
  size: number;
  /** One past the last offset in the segment; null until known (inactive segment never scanned). */
  #nextOffset: bigint | null = null;
  /** Largest batch max timestamp seen, and the last offset of that batch; -1n when unknown/none. */
  maxTimestampSoFar = -1n;
  offsetOfMaxTimestampSoFar = -1n;
  /** Set only during verifyTail: the last batch readNextOffset walks and the bytes read with it. */
  #tailProbe: { last: BatchLocation | null; chunk: Buffer; chunkStart: number } | null = null;
  /** Max timestamp of the first batch: segment.ms counts from it (Kafka's rollingBasedTimestamp). */
  rollingBasedTimestamp: bigint | null = null;
  createdMs: number;
  #bytesSinceLastIndexEntry = 0;
  /** Bytes appended since the last fdatasync of the .log. */
  unflushedBytes = 0;
  /** No write or truncation of the .log since its last fdatasync (false until the first one). */
  #logSynced = false;
  #refs = 0;
  #onUnused: (() => void) | null = null;
  #deleted = false;
  /** End of the disk blocks this process reserved for the .log (past `size`; see block-reservation.ts). */
  #reservedTo = 0;
  /** Bytes this process appended to the .log: what is reserved ahead grows with it. */
  #appended = 0;
  #reserving: Promise<void> | null = null;
  /** The give-back started at roll (runs in the background; see onBecomeInactiveSegment). */
  #releasing: Promise<void> = Promise.resolve();

  private constructor(dir: string, baseOffset: bigint, suffix: string, size: number, opts: SegmentOptions) {
    this.dir = dir;
    this.baseOffset = baseOffset;
    this.#suffix = suffix;
    this.#files = opts.files;
    this.#maxIndexSize = opts.maxIndexSize;
    this.#onTxnIndexCorrupt = opts.onTxnIndexCorrupt;
    this.size = size;
    this.createdMs = opts.createdMs;
    this.#log = opts.handles.file(this.logPath);
  }

  static pathFor(dir: string, baseOffset: bigint, fileSuffix: string, extra = ''): string {
    return join(dir, `${filenamePrefixFromOffset(baseOffset)}${fileSuffix}${extra}`);
  }

  get logPath(): string {
    return LogSegment.pathFor(this.dir, this.baseOffset, LOG_FILE_SUFFIX, this.#suffix);
  }

  get indexPath(): string {
    return LogSegment.pathFor(this.dir, this.baseOffset, INDEX_FILE_SUFFIX, this.#suffix);
  }

  get timeIndexPath(): string {
    return LogSegment.pathFor(this.dir, this.baseOffset, TIME_INDEX_FILE_SUFFIX, this.#suffix);
  }

  get txnIndexPath(): string {
    return LogSegment.pathFor(this.dir, this.baseOffset, TXN_INDEX_FILE_SUFFIX, this.#suffix);
  }

  /** Creates a new, empty segment (the .log file exists on return; indexes are written at flush). */
  static async create(dir: string, baseOffset: bigint, opts: SegmentOptions, suffix = ''): Promise<LogSegment> {
    const seg = new LogSegment(dir, baseOffset, suffix, 0, opts);
    const f = await opts.files.open(seg.logPath, 'w+');
    await f.close();
    seg.#offsetIndex = OffsetIndex.create(seg.indexPath, baseOffset, opts.maxIndexSize);
    seg.#timeIndex = TimeIndex.create(seg.timeIndexPath, baseOffset, opts.maxIndexSize);
    seg.#txnIndex = TransactionIndex.create(seg.txnIndexPath, baseOffset);
    seg.#nextOffset = baseOffset;
    return seg;
  }

  /** Opens an existing segment without reading anything but the log's size. */
  static async open(dir: string, baseOffset: bigint, opts: SegmentOptions, suffix = ''): Promise<LogSegment> {
    const seg = new LogSegment(dir, baseOffset, suffix, 0, opts);
    const stat = await opts.files.stat(seg.logPath);
    if (!stat) throw new Error(`segment file ${seg.logPath} does not exist`);
    seg.size = stat.size;
    seg.createdMs = Math.min(opts.createdMs, stat.mtimeMs);
    // Blocks reserved past the end by a run that was killed (or stopped before giving them back)
    // are given back now; nothing else would free them before the segment rolls.
    const pastEnd = (stat.allocatedBytes ?? 0) - Math.ceil(stat.size / 4096) * 4096;
    if (pastEnd > RESERVED_PAST_END_SLACK) await seg.#log.use((f) => f.truncate(seg.size));
    return seg;
  }

  get offsetIndex(): OffsetIndex | null {
    return this.#offsetIndex;
  }

  get timeIndex(): TimeIndex | null {
    return this.#timeIndex;
  }

  /**
   * The aborted-transaction index, loaded on first use. A missing file is an empty index; one
   * that fails its checks (torn, corrupt) is replaced by an empty one and reported through
   * `onTxnIndexCorrupt`: the owner rebuilds the entries (they come from replaying the log with
   * producer state, which a segment does not have).
   */
  async loadTxnIndex(): Promise<TransactionIndex> {
    if (this.#txnIndex) return this.#txnIndex;
    this.#txnIndexLoad ??= this.#loadTxnIndex().finally(() => {
      this.#txnIndexLoad = null;
    });
    return this.#txnIndexLoad;
  }

  async #loadTxnIndex(): Promise<TransactionIndex> {
    let index: TransactionIndex;
    try {
      index = await TransactionIndex.load(this.#files, this.txnIndexPath, this.baseOffset);
    } catch (err) {
      if (!(err instanceof TransactionIndexCorruptError)) throw err;
      index = TransactionIndex.replacingCorrupt(this.txnIndexPath, this.baseOffset);
      this.#txnIndex = index;
      this.#onTxnIndexCorrupt?.(this, err.message);
      return index;
    }
    this.#txnIndex ??= index;
    return this.#txnIndex;
  }

  /** The owner listed the directory and saw no `.txnindex` for this segment: an empty index, no I/O. */
  setNoTxnIndexFile(): void {
    this.#txnIndex ??= TransactionIndex.create(this.txnIndexPath, this.baseOffset);
  }

  /** The loaded transaction index, or null when not loaded yet. */
  get txnIndex(): TransactionIndex | null {
    return this.#txnIndex;
  }

  /**
   * Adds an aborted transaction whose marker is in this segment. With `writeThrough` the entry is
   * in the file (not fdatasynced: `flush` does that) when this resolves. Called under the log's
   * queue, or on a cleaned segment not yet in the log.
   */
  async appendAbortedTxn(txn: AbortedTxn, writeThrough: boolean): Promise<void> {
    const index = await this.loadTxnIndex();
    index.append(txn);
    if (!writeThrough || index.frozen) return;
    try {
      await index.write(this.#files);
    } catch (err) {
      // Not appended, so the caller may retry: the entry leaves memory again, and whatever part of
      // it reached the file is cut by the next write or flush.
      index.truncateTo(txn.lastOffset);
      throw err;
    }
  }

  /**
   * Removes the entries whose marker is at or after `offset`, cutting the file (no fdatasync).
   * With `rebuilt` (default: from the segment's base on) a damaged file is then replaced: every
   * entry that matters is gone and the owner re-adds what it rebuilds.
   */
  async truncateAbortedTxnsFrom(offset: bigint, rebuilt = offset <= this.baseOffset): Promise<void> {
    const index = await this.loadTxnIndex();
    index.truncateTo(offset);
    if (rebuilt) index.thaw();
    await index.write(this.#files);
  }

  /** Kafka's LogSegment.collectAbortedTxns. */
  async collectAbortedTxns(fetchOffset: bigint, upperBoundOffset: bigint): Promise<TxnIndexSearchResult> {
    const index = await this.loadTxnIndex();
    return index.collectAbortedTxns(fetchOffset, upperBoundOffset);
  }

  /** Whether the transaction index has entries written but not fdatasynced (or a pending write). */
  get txnIndexNeedsFlush(): boolean {
    return this.#txnIndex?.needsFlush ?? false;
  }

  /** Writes and fdatasyncs the transaction index (nothing when it has nothing new). */
  async flushTxnIndex(): Promise<void> {
    if (this.#txnIndex?.needsFlush) await this.#txnIndex.flush(this.#files);
  }

  /** Loads the indexes if not yet loaded; rebuilds them from the log when missing or corrupt. */
  async loadIndexes(): Promise<void> {
    if (!this.#txnIndex) await this.loadTxnIndex();
    if (this.#offsetIndex && this.#timeIndex) return;
    this.#indexLoad ??= this.#loadIndexes().finally(() => {
      this.#indexLoad = null;
    });
    await this.#indexLoad;
  }

  async #loadIndexes(): Promise<void> {
    const oi = await OffsetIndex.load(this.#files, this.indexPath, this.baseOffset, this.#maxIndexSize, this.size);
    const ti = await TimeIndex.load(this.#files, this.timeIndexPath, this.baseOffset, this.#maxIndexSize);
    if (!oi.ok || !ti.ok) {
      // Published only once rebuilt, so a concurrent reader never looks up the corrupt entries.
      await this.rebuildIndexes();
      return;
    }
    this.#offsetIndex = oi.index;
    this.#timeIndex = ti.index;
    const last = ti.index.lastEntry;
    if (last.timestamp > this.maxTimestampSoFar) {
      this.maxTimestampSoFar = last.timestamp;
      this.offsetOfMaxTimestampSoFar = last.offset;
    }
  }

  /** One past the last offset, scanning from the last index entry if not yet known. */
  async readNextOffset(): Promise<bigint> {
    if (this.#nextOffset !== null) return this.#nextOffset;
    await this.loadIndexes();
    let next = this.baseOffset;
    let maxTs = this.maxTimestampSoFar;
    let maxTsOffset = this.offsetOfMaxTimestampSoFar;
    let first = true;
    const entry = this.#offsetIndex!.lastEntry;
    const start = entry.position;
    const probe = this.#tailProbe;
    await this.scanBatches(
      start,
      this.size,
      (loc, chunk, chunkStart) => {
        if (probe !== null) {
          probe.last = loc;
          probe.chunk = chunk;
          probe.chunkStart = chunkStart;
        }
        next = loc.header.baseOffset + BigInt(loc.header.lastOffsetDelta) + 1n;
        if (loc.header.maxTimestamp > maxTs) {
          maxTs = loc.header.maxTimestamp;
          maxTsOffset = next - 1n;
        }
        if (first && start === 0) this.rollingBasedTimestamp = loc.header.maxTimestamp;
        first = false;
        return true;
      },
      entry,
    );
    this.#nextOffset = next;
    this.maxTimestampSoFar = maxTs;
    this.offsetOfMaxTimestampSoFar = maxTsOffset;
    if (this.rollingBasedTimestamp === null && this.size > 0) {
      let firstBatch: RecordBatchHeader | null = null;
      try {
        firstBatch = await this.#readHeaderAt(0);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        throw new CorruptSegmentError(this, 0, err.message, false);
      }
      this.rollingBasedTimestamp = firstBatch?.maxTimestamp ?? null;
    }
    return next;
  }

  /**
   * The cheap check of a clean start (Kafka trusts a cleanly shut down log; a torn tail after it
   * would have new appends land behind garbage): the batches after the last index entry must
   * parse and end exactly at the file's end, and the last one's CRC must hold. Throws
   * CorruptSegmentError otherwise (the log then recovers this segment).
   */
  async verifyTail(): Promise<void> {
    const probe: { last: BatchLocation | null; chunk: Buffer; chunkStart: number } = {
      last: null,
      chunk: Buffer.alloc(0),
      chunkStart: 0,
    };
    this.#nextOffset = null;
    this.#tailProbe = probe;
    try {
      await this.readNextOffset();
    } finally {
      this.#tailProbe = null;
    }
    const last = probe.last;
    if (last === null) return;
    // Usually the walk read the whole tail in one chunk; otherwise read the last batch again.
    let bytes = probe.chunk;
    let at = last.position - probe.chunkStart;
    if (at + last.size > bytes.length) {
      bytes = await this.readBytes(last.position, last.size);
      at = 0;
      if (bytes.length < last.size) {
        throw new CorruptSegmentError(this, last.position, 'the file ends inside its last batch', false);
      }
    }
    if (computeBatchCrc(bytes, at, last.size) !== bytes.readUInt32BE(at + CRC_OFFSET)) {
      throw new CorruptSegmentError(this, last.position, 'the last batch fails its CRC check', false);
    }
  }

  /** Known next offset (active segments and scanned ones). */
  get nextOffset(): bigint | null {
    return this.#nextOffset;
  }

  /** Whether appending `bytes` more would overflow 32-bit positions or relative offsets. */
  canConvertToRelativeOffset(offset: bigint): boolean {
    const rel = offset - this.baseOffset;
    return rel >= 0n && rel <= 2147483647n;
  }

  /**
   * Writes `batches` at the end of the .log in one positional writev, then updates the indexes
   * (entries are added only once the bytes are written, so a concurrent reader never follows an
   * index entry to unwritten bytes). Called under the log's append queue.
   */
  async append(batches: readonly SegmentAppendBatch[], indexIntervalBytes: number): Promise<void> {
    if (batches.length === 0) return;
    await this.loadIndexes();
    const start = this.size;
    await this.#log.use((f) =>
      batches.length === 1
        ? f.write(batches[0]!.data, start)
        : f.writev(
            batches.map((b) => b.data),
            start,
          ),
    );
    let position = start;
    for (const b of batches) {
      this.#indexBatch(b.lastOffset, b.maxTimestamp, position, b.data.length, indexIntervalBytes);
      position += b.data.length;
    }
    this.unflushedBytes += position - start;
    this.#logSynced = false;
    this.#appended += position - start;
    this.size = position;
    this.#nextOffset = batches.at(-1)!.lastOffset + 1n;
    this.#maybeReserve();
  }

  /** Keeps disk blocks reserved ahead of the end of a live segment, in the background. */
  #maybeReserve(): void {
    const reservation = this.#files.reservation;
    if (reservation === undefined || this.#suffix !== '' || this.#reserving !== null || this.#deleted) return;
    const chunk = reservationChunk(this.#appended, reservation.maxAheadBytes);
    if (chunk === 0 || this.#reservedTo - this.size >= chunk / 2) return;
    const from = Math.max(this.#reservedTo, this.size);
    this.#reserving = reservation
      .reserve(this.logPath, from, chunk)
      .then((ok) => {
        if (ok) this.#reservedTo = from + chunk;
      })
      .finally(() => {
        this.#reserving = null;
      });
  }

  /**
   * Gives back the blocks reserved past `size` (ftruncate to the same size frees them). `always`
   * also covers blocks a previous run reserved before a crash.
   */
  async #releaseReservation(always: boolean): Promise<void> {
    if (this.#reserving !== null) await this.#reserving;
    if (this.#reservedTo <= this.size && !(always && this.#files.reservation !== undefined)) return;
    await this.#log.use((f) => f.truncate(this.size));
    this.#reservedTo = 0;
  }

  /** Cuts the bytes past `size` that a failed append left in the file (and blocks reserved there). */
  async cutTornBytes(): Promise<void> {
    if (this.#reserving !== null) await this.#reserving;
    await this.#releasing;
    await this.#log.use((f) => f.truncate(this.size));
    this.#logSynced = false;
    this.#reservedTo = 0;
  }

  #indexBatch(lastOffset: bigint, maxTimestamp: bigint, position: number, size: number, interval: number): void {
    if (this.rollingBasedTimestamp === null) this.rollingBasedTimestamp = maxTimestamp;
    if (maxTimestamp > this.maxTimestampSoFar) {
      this.maxTimestampSoFar = maxTimestamp;
      this.offsetOfMaxTimestampSoFar = lastOffset;
    }
    // Kafka indexes the batch that starts after index.interval.bytes have accumulated.
    if (this.#bytesSinceLastIndexEntry > interval) {
      this.#offsetIndex!.append(lastOffset, position);
      if (this.maxTimestampSoFar >= 0n) {
        this.#timeIndex!.maybeAppend(this.maxTimestampSoFar, this.offsetOfMaxTimestampSoFar);
      }
      this.#bytesSinceLastIndexEntry = 0;
    }
    this.#bytesSinceLastIndexEntry += size;
  }

  /** True when the indexes cannot take another entry (a roll trigger). */
  indexesFull(): boolean {
    return (this.#offsetIndex?.isFull() ?? false) || (this.#timeIndex?.isFull() ?? false);
  }

  /** Reads the batch header at `position` (null past the end). */
  async #readHeaderAt(position: number): Promise<RecordBatchHeader | null> {
    if (position + RECORD_BATCH_HEADER_SIZE > this.size) return null;
    const b = Buffer.allocUnsafe(RECORD_BATCH_HEADER_SIZE);
    const n = await this.#log.use((f) => f.read(b, 0, RECORD_BATCH_HEADER_SIZE, position));
    if (n < RECORD_BATCH_HEADER_SIZE) return null;
    return readBatchHeader(b, 0);
  }

  /**
   * Walks the batch headers in [from, end), reading in chunks; `end` is a batch boundary (the
   * segment's size or a position captured from it). `visit` returns false to stop. Bytes below
   * `end` that are not whole batches with increasing offsets throw CorruptSegmentError: taking
   * them for the end of the data would make reads skip records. `entry`, when `from` came from
   * the offset index, is checked against the batch found there (it must end at entry.offset).
   * A segment truncated meanwhile (its size dropped below `end`) just ends the walk.
   */
  async scanBatches(
    from: number,
    end: number,
    visit: (loc: BatchLocation, chunk: Buffer, chunkStart: number) => boolean,
    entry?: OffsetPosition,
  ): Promise<void> {
    let chunk = Buffer.allocUnsafe(0);
    let chunkStart = from;
    let position = from;
    let nextOffset = this.baseOffset;
    const corrupt = (reason: string): boolean => {
      if (this.size < end) return true;
      throw new CorruptSegmentError(this, position, reason, position === from && from > 0);
    };
    while (position < end) {
      if (end - position < RECORD_BATCH_HEADER_SIZE) {
        if (corrupt(`${end - position} bytes before the segment's end are too few for a batch`)) return;
      }
      if (position + RECORD_BATCH_HEADER_SIZE > chunkStart + chunk.length) {
        const len = Math.min(SCAN_CHUNK, end - position);
        const buf = Buffer.allocUnsafe(len);
        const n = await this.#log.use((f) => f.read(buf, 0, len, position));
        chunk = buf.subarray(0, n);
        chunkStart = position;
        if (n < RECORD_BATCH_HEADER_SIZE && corrupt(`the file ends ${n} bytes after this position`)) return;
      }
      let header: RecordBatchHeader;
      try {
        header = readBatchHeader(chunk, position - chunkStart);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        // The parser's position is relative to the chunk; the error names the file position.
        if (corrupt(err.message.replace(/ at \d+/, ''))) return;
        throw err;
      }
      const size = LOG_OVERHEAD + header.batchLength;
      const last = header.baseOffset + BigInt(header.lastOffsetDelta);
      if (position + size > end && corrupt(`a batch of ${size} bytes runs past the segment's end ${end}`)) return;
      if (
        (header.lastOffsetDelta < 0 || header.baseOffset < nextOffset) &&
        corrupt(`batch offsets ${header.baseOffset}..${last} go backwards`)
      )
        return;
      if (entry !== undefined && position === from && from > 0 && last !== entry.offset) {
        if (
          corrupt(`the offset index names offset ${entry.offset} here, the batch holds ${header.baseOffset}..${last}`)
        )
          return;
      }
      if (!visit({ position, size, header }, chunk, chunkStart)) return;
      nextOffset = last + 1n;
      position += size;
    }
  }

  /**
   * The first batch whose last offset is >= `offset`, searching from the index entry at or below
   * it (Kafka's translateOffset). null when no such batch is below `maxPosition`.
   */
  async translateOffset(offset: bigint, maxPosition = this.size): Promise<BatchLocation | null> {
    await this.loadIndexes();
    const entry = this.#offsetIndex!.lookup(offset);
    let found: BatchLocation | null = null;
    await this.scanBatches(
      entry.position,
      Math.min(maxPosition, this.size),
      (loc) => {
        if (loc.header.baseOffset + BigInt(loc.header.lastOffsetDelta) >= offset) {
          found = loc;
          return false;
        }
        return true;
      },
      entry,
    );
    return found;
  }

  /**
   * Reads whole batches starting with the one containing `startOffset`: at most `maxSize` bytes,
   * but at least that one batch when `minOneMessage` (Kafka's KIP-74 rule), never past
   * `maxPosition`. Returns null when the segment has no batch at or after `startOffset` below
   * `maxPosition`.
   */
  async read(
    startOffset: bigint,
    maxSize: number,
    maxPosition: number,
    minOneMessage: boolean,
  ): Promise<{ records: Buffer; firstBatch: BatchLocation } | null> {
    const limit = Math.min(maxPosition, this.size);
    const first = await this.translateOffset(startOffset, limit);
    if (!first) return null;
    const wanted = Math.min(limit - first.position, Math.max(maxSize, minOneMessage ? first.size : 0));
    if (wanted < first.size && !minOneMessage) return { records: Buffer.alloc(0), firstBatch: first };
    // Pooled (POOLED_READ_BYTES): reads of a few hundred MB/s into fresh buffers made V8 run a
    // full GC every few hundred ms.
    const pooled = wanted >= POOLED_READ_BYTES;
    const buf = pooled ? sharedBufferPool.acquire(wanted) : Buffer.allocUnsafe(wanted);
    const n = await this.#log.use((f) => f.read(buf, 0, wanted, first.position));
    // Return whole batches only: cut a batch that the size limit split.
    let end = 0;
    while (end + LOG_OVERHEAD <= n) {
      const size = LOG_OVERHEAD + buf.readInt32BE(end + 8);
      if (size < LOG_OVERHEAD + MIN_BATCH_LENGTH || end + size > n) break;
      end += size;
    }
    if (pooled && end < POOLED_READ_BYTES) {
      const records = Buffer.from(buf.subarray(0, end));
      sharedBufferPool.release(buf);
      return { records, firstBatch: first };
    }
    return { records: buf.subarray(0, end), firstBatch: first };
  }

  /** Reads raw bytes [position, position + length). */
  async readBytes(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    const n = await this.#log.use((f) => f.read(buf, 0, length, position));
    return buf.subarray(0, n);
  }

  /**
   * The first batch whose max timestamp is >= `timestamp` and whose last offset is >=
   * `startingOffset`, located through the time index (Kafka's findOffsetByTimestamp).
   */
  async findBatchByTimestamp(timestamp: bigint, startingOffset: bigint): Promise<BatchLocation | null> {
    await this.loadIndexes();
    const ts = this.#timeIndex!.lookup(timestamp);
    const from = ts.offset > startingOffset ? ts.offset : startingOffset;
    const entry = this.#offsetIndex!.lookup(from);
    // A time-index entry (T, X) was written when the batch ending at X raised the segment's
    // largest timestamp to T: the scan passes that batch and checks it, so a wrong entry cannot
    // make the lookup start past the first batch reaching the timestamp.
    let unchecked = ts.timestamp >= 0n && from === ts.offset;
    let found: BatchLocation | null = null;
    await this.scanBatches(
      entry.position,
      this.size,
      (loc) => {
        const last = loc.header.baseOffset + BigInt(loc.header.lastOffsetDelta);
        if (unchecked && last >= ts.offset) {
          if (loc.header.baseOffset > ts.offset || loc.header.maxTimestamp !== ts.timestamp) {
            throw new CorruptSegmentError(
              this,
              loc.position,
              `the time index names (${ts.timestamp}, ${ts.offset}), the batch holds ${loc.header.baseOffset}..${last} with max timestamp ${loc.header.maxTimestamp}`,
              true,
            );
          }
          unchecked = false;
        }
        if (last >= startingOffset && loc.header.maxTimestamp >= timestamp) {
          found = loc;
          return false;
        }
        return true;
      },
      entry,
    );
    if (unchecked) {
      throw new CorruptSegmentError(
        this,
        entry.position,
        `the time index names offset ${ts.offset} past the segment's last batch`,
        true,
      );
    }
    return found;
  }

  /**
   * Validates every batch from the start (length, magic, CRC, increasing offsets that fit the
   * segment), rebuilding both indexes, and truncates the .log at the first invalid byte. Returns the
   * number of bytes truncated. Kafka's LogSegment.recover.
   */
  async recover(indexIntervalBytes: number, maxBatchSize = 2147483647): Promise<number> {
    const fileSize = await this.#log.use((f) => f.size());
    const txnIndex = await this.loadTxnIndex();
    const scan = await this.#scanLog(fileSize, indexIntervalBytes, maxBatchSize);
    this.#installScan(scan);
    const truncated = fileSize - scan.end;
    if (truncated > 0) await this.#log.use((f) => f.truncate(scan.end));
    // Entries for markers that did not survive go (the owner re-adds entries it rebuilds).
    txnIndex.truncateTo(scan.next);
    this.#logSynced = false;
    this.size = scan.end;
    this.#nextOffset = scan.next;
    this.unflushedBytes = scan.end;
    return truncated;
  }

  /**
   * Rebuilds both indexes from the .log without changing the .log (an index file was missing or
   * failed its sanity check, or an entry did not name the batch at its position), and writes the
   * index files. Batches below the segment's end are trusted here: if the scan meets invalid
   * bytes, the indexes cover what precedes them and a read reaching them fails with
   * CorruptSegmentError instead of this cutting acknowledged data. Returns why the scan stopped
   * early, or null. Callers keep appends out meanwhile (the log's queue, or a segment that is
   * not active).
   */
  async rebuildIndexes(indexIntervalBytes = 4096): Promise<string | null> {
    const scan = await this.#scanLog(this.size, indexIntervalBytes, 2147483647);
    this.#installScan(scan);
    if (scan.stoppedBecause === null) this.#nextOffset = scan.next;
    if (this.maxTimestampSoFar >= 0n) {
      this.#timeIndex!.maybeAppend(this.maxTimestampSoFar, this.offsetOfMaxTimestampSoFar, true);
    }
    // Best effort: the indexes in memory are right; a file that cannot be written now is
    // rebuilt again at its next load.
    await this.#offsetIndex!.trim(this.#files).catch(() => undefined);
    await this.#timeIndex!.trim(this.#files).catch(() => undefined);
    return scan.stoppedBecause;
  }

  #installScan(scan: LogScan): void {
    // Fresh objects swapped in at once: a concurrent reader sees the old or the new index.
    this.#offsetIndex = scan.offsetIndex;
    this.#timeIndex = scan.timeIndex;
    this.maxTimestampSoFar = scan.maxTimestamp;
    this.offsetOfMaxTimestampSoFar = scan.offsetOfMaxTimestamp;
    this.rollingBasedTimestamp = scan.rollingBasedTimestamp;
    this.#bytesSinceLastIndexEntry = Math.max(0, scan.bytesSinceLastIndexEntry);
  }

  /**
   * Validates the batches in [0, end) (length, magic, CRC, increasing offsets that fit the
   * segment) and builds the indexes of the valid prefix, by the same rule as appends.
   */
  async #scanLog(end: number, indexIntervalBytes: number, maxBatchSize: number): Promise<LogScan> {
    const scan: LogScan = {
      end: 0,
      next: this.baseOffset,
      offsetIndex: OffsetIndex.create(this.indexPath, this.baseOffset, this.#maxIndexSize),
      timeIndex: TimeIndex.create(this.timeIndexPath, this.baseOffset, this.#maxIndexSize),
      maxTimestamp: -1n,
      offsetOfMaxTimestamp: -1n,
      rollingBasedTimestamp: null,
      bytesSinceLastIndexEntry: 0,
      stoppedBecause: null,
    };
    let position = 0;
    let chunk = Buffer.allocUnsafe(0);
    let chunkStart = 0;
    // Make sure [position, position + len) is in the chunk.
    const ensure = async (len: number): Promise<boolean> => {
      if (position >= chunkStart && position + len <= chunkStart + chunk.length) return true;
      const want = Math.min(Math.max(len, SCAN_CHUNK * 16), end - position);
      if (want < len) return false;
      const buf = Buffer.allocUnsafe(want);
      const n = await this.#log.use((f) => f.read(buf, 0, want, position));
      chunk = buf.subarray(0, n);
      chunkStart = position;
      return n >= len;
    };
    const stop = (reason: string): void => {
      scan.stoppedBecause = reason;
    };
    while (position < end) {
      if (end - position < RECORD_BATCH_HEADER_SIZE || !(await ensure(RECORD_BATCH_HEADER_SIZE))) {
        stop('a partial batch header');
        break;
      }
      const at = position - chunkStart;
      const batchLength = chunk.readInt32BE(at + 8);
      const size = LOG_OVERHEAD + batchLength;
      if (batchLength < MIN_BATCH_LENGTH || size > maxBatchSize || chunk[at + MAGIC_OFFSET] !== CURRENT_MAGIC) {
        stop(`an invalid batch header (batchLength ${batchLength}, magic ${chunk[at + MAGIC_OFFSET]})`);
        break;
      }
      if (position + size > end || !(await ensure(size))) {
        stop(`a batch of ${size} bytes running past the end`);
        break;
      }
      const bat = position - chunkStart;
      if (computeBatchCrc(chunk, bat, size) !== chunk.readUInt32BE(bat + CRC_OFFSET)) {
        stop('a batch failing its CRC check');
        break;
      }
      const header = readBatchHeader(chunk, bat);
      const last = header.baseOffset + BigInt(header.lastOffsetDelta);
      if (header.lastOffsetDelta < 0 || header.baseOffset < scan.next || !this.canConvertToRelativeOffset(last)) {
        stop(`batch offsets ${header.baseOffset}..${last} out of order`);
        break;
      }
      if (scan.offsetIndex.isFull() || scan.timeIndex.isFull()) {
        // An index can only fill if segment.index.bytes shrank; keep the data, stop indexing densely.
        scan.bytesSinceLastIndexEntry = Number.NEGATIVE_INFINITY;
      }
      // The indexing rule of #indexBatch, applied to the new indexes.
      scan.rollingBasedTimestamp ??= header.maxTimestamp;
      if (header.maxTimestamp > scan.maxTimestamp) {
        scan.maxTimestamp = header.maxTimestamp;
        scan.offsetOfMaxTimestamp = last;
      }
      if (scan.bytesSinceLastIndexEntry > indexIntervalBytes) {
        scan.offsetIndex.append(last, position);
        if (scan.maxTimestamp >= 0n) scan.timeIndex.maybeAppend(scan.maxTimestamp, scan.offsetOfMaxTimestamp);
        scan.bytesSinceLastIndexEntry = 0;
      }
      scan.bytesSinceLastIndexEntry += size;
      scan.next = last + 1n;
      position += size;
    }
    scan.end = position;
    return scan;
  }

  /**
   * Removes every batch whose last offset is >= `offset` (the batch containing `offset` goes
   * too). Returns the bytes removed. Kafka's LogSegment.truncateTo.
   */
  async truncateTo(offset: bigint): Promise<number> {
    await this.loadIndexes();
    const loc = await this.translateOffset(offset);
    if (!loc) return 0;
    this.#offsetIndex!.truncateTo(offset);
    this.#timeIndex!.truncateTo(offset);
    // The whole batch holding `offset` goes, so every marker from its base offset on.
    await this.truncateAbortedTxnsFrom(loc.header.baseOffset);
    const removed = this.size - loc.position;
    if (this.#reserving !== null) await this.#reserving;
    await this.#releasing;
    await this.#log.use((f) => f.truncate(loc.position));
    this.#logSynced = false;
    this.#reservedTo = 0; // truncation freed every block past the new end
    this.size = loc.position;
    this.#offsetIndex!.truncateToPosition(loc.position);
    // Recompute what depends on the remaining batches.
    this.#nextOffset = null;
    this.maxTimestampSoFar = this.#timeIndex!.lastEntry.timestamp;
    this.offsetOfMaxTimestampSoFar = this.#timeIndex!.lastEntry.offset;
    this.rollingBasedTimestamp = null;
    this.#bytesSinceLastIndexEntry = 0;
    await this.readNextOffset();
    return removed;
  }

  /** fdatasync the .log only (the group-commit path: acked data is durable, indexes can be rebuilt). */
  async flushLog(): Promise<void> {
    // A log flush syncs the data (group commit) and then each segment again: once is enough.
    if (this.#logSynced) return;
    this.#logSynced = true;
    const pending = this.unflushedBytes;
    try {
      await this.#log.use((f) => f.datasync());
    } catch (err) {
      this.#logSynced = false;
      throw err;
    }
    this.unflushedBytes = Math.max(0, this.unflushedBytes - pending);
  }

  /** fdatasync the .log and write + fdatasync the indexes. */
  async flush(): Promise<void> {
    await this.flushLog();
    if (this.#offsetIndex) await this.#offsetIndex.flush(this.#files);
    if (this.#timeIndex) await this.#timeIndex.flush(this.#files);
    await this.flushTxnIndex();
  }

  /**
   * The segment stops being active (a roll): the time index gets its final entry holding the
   * segment's largest timestamp and both index files are cut to their entries.
   */
  async onBecomeInactiveSegment(): Promise<void> {
    await this.loadIndexes();
    if (this.maxTimestampSoFar >= 0n) {
      this.#timeIndex!.maybeAppend(this.maxTimestampSoFar, this.offsetOfMaxTimestampSoFar, true);
    }
    // No fdatasync here: as in Kafka, the rolled segment is flushed in the background (the log's
    // flush after a roll moves the recovery point), so a roll never stalls appends for the time
    // it takes to sync a whole segment (~1 s for 1 GiB of dirty pages).
    await this.#offsetIndex!.trim(this.#files);
    await this.#timeIndex!.trim(this.#files);
    // In the background: freeing blocks can take the file system a while (a synchronous discard
    // with `-o discard`), and the roll runs under the log's append queue.
    this.#releasing = this.#releaseReservation(true).catch(() => undefined);
  }

  /** Resolves once the blocks reserved past the end are given back after a roll. */
  reservationReleased(): Promise<void> {
    return this.#releasing;
  }

  /** Largest timestamp in the segment, for time-based retention; falls back to the file's mtime. */
  async largestTimestamp(): Promise<number> {
    if (this.maxTimestampSoFar < 0n && !this.#timeIndex) {
      const last = await TimeIndex.readLastEntry(this.#files, this.timeIndexPath, this.baseOffset);
      if (last) {
        this.maxTimestampSoFar = last.timestamp;
        this.offsetOfMaxTimestampSoFar = last.offset;
      } else {
        await this.loadIndexes();
      }
    }
    if (this.maxTimestampSoFar >= 0n) return Number(this.maxTimestampSoFar);
    return (await this.#files.stat(this.logPath))?.mtimeMs ?? 0;
  }

  /**
   * Cuts the offset and time index files to their entries and syncs them, and syncs the
   * transaction index (nothing when they already are).
   */
  async trimIndexes(): Promise<void> {
    if (this.#offsetIndex) await this.#offsetIndex.trim(this.#files);
    if (this.#timeIndex) await this.#timeIndex.trim(this.#files);
    await this.flushTxnIndex();
  }

  /** Flushes, trims the index files and closes the .log handle (clean shutdown). */
  async close(): Promise<void> {
    await this.trimIndexes();
    await this.#releasing;
    await this.#releaseReservation(false);
    await this.#log.close();
  }

  /** Closes the handle without flushing anything (the log directory went offline, or a crash test). */
  async closeHandlesOnly(): Promise<void> {
    await this.#log.close().catch(() => undefined);
  }

  /** Renames the segment's files by changing the suffix ('' for live, '.deleted', '.swap', '.cleaned'). */
  async changeSuffix(suffix: string): Promise<void> {
    const moves: Array<[string, string]> = [];
    const oldLog = this.logPath;
    const oldIndex = this.indexPath;
    const oldTime = this.timeIndexPath;
    const oldTxn = this.txnIndexPath;
    // A write-through of the transaction index may be loading it: wait, so it follows the rename.
    if (this.#txnIndexLoad) await this.#txnIndexLoad.catch(() => undefined);
    this.#suffix = suffix;
    moves.push(
      [oldLog, this.logPath],
      [oldIndex, this.indexPath],
      [oldTime, this.timeIndexPath],
      [oldTxn, this.txnIndexPath],
    );
    // A loaded transaction index knows whether it has a file (most segments have none).
    if (this.#txnIndex !== null && !this.#txnIndex.hasFile) moves.pop();
    for (const [from, to] of moves) {
      if (await this.#files.stat(from)) await this.#files.rename(from, to);
    }
    this.#log.path = this.logPath;
    if (this.#offsetIndex) this.#offsetIndex.path = this.indexPath;
    if (this.#timeIndex) this.#timeIndex.path = this.timeIndexPath;
    if (this.#txnIndex) this.#txnIndex.path = this.txnIndexPath;
  }

  get suffix(): string {
    return this.#suffix;
  }

  /** Pins the segment for a reader: it will not be deleted until released. */
  retain(): void {
    this.#refs++;
  }

  release(): void {
    this.#refs--;
    if (this.#refs === 0 && this.#onUnused) {
      const cb = this.#onUnused;
      this.#onUnused = null;
      cb();
    }
  }

  get inUse(): boolean {
    return this.#refs > 0;
  }

  /** Resolves when no reader holds the segment. */
  whenUnused(): Promise<void> {
    if (this.#refs === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const prev = this.#onUnused;
      this.#onUnused = () => {
        prev?.();
        resolve();
      };
    });
  }

  /** Deletes the files (the segment must already be out of the log and unused). */
  async deleteFiles(): Promise<void> {
    if (this.#deleted) return;
    this.#deleted = true;
    await this.#log.close();
    const paths = [this.logPath, this.indexPath, this.timeIndexPath];
    if (this.#txnIndex === null || this.#txnIndex.hasFile) paths.push(this.txnIndexPath);
    for (const p of paths) {
      try {
        await this.#files.unlink(p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    this.#offsetIndex?.markFileMissing();
    this.#timeIndex?.markFileMissing();
    this.#txnIndex?.markFileMissing();
  }

  get deleted(): boolean {
    return this.#deleted;
  }

  /** Sets maxIndexSize for a segment.index.bytes change (active segment only). */
  resizeIndexes(maxIndexSize: number): void {
    this.#maxIndexSize = maxIndexSize;
    this.#offsetIndex?.resize(maxIndexSize);
    this.#timeIndex?.resize(maxIndexSize);
  }
}
