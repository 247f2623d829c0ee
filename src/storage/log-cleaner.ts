/**
 * Log compaction for `cleanup.policy=compact` (Kafka's LogCleaner / Cleaner). One pass over a log:
 *
 * 1. Which range: [firstDirtyOffset, firstUncleanableOffset). firstDirtyOffset comes from the
 *    data dir's `cleaner-offset-checkpoint` (else the log start); firstUncleanableOffset is the
 *    smallest of the active segment's base, the last stable offset, and the base of the first
 *    segment holding records newer than min.compaction.lag.ms. A log is cleaned when
 *    dirty / (clean + dirty) bytes >= min.cleanable.dirty.ratio, or when a dirty segment is older
 *    than max.compaction.lag.ms.
 * 2. Offset map: key -> latest offset over the dirty range (bounded by log.cleaner.dedupe.buffer.size;
 *    when full, only the range mapped so far is cleaned).
 * 3. Rewrite: inactive segments from the log start up to the mapped end are grouped (each group fits
 *    segment.bytes) and copied into a `.cleaned` segment keeping a record only if it is the latest
 *    for its key; keyless records are dropped; a tombstone (null value) is dropped once it is in the
 *    already-cleaned part of the log and its batch timestamp is older than delete.retention.ms.
 *    Offsets never change: a batch that keeps all its records is copied byte for byte; one that
 *    keeps some is rebuilt with the same base offset, lastOffsetDelta, producer fields, attributes
 *    and compression codec. Transactions follow below.
 * 4. Swap: PartitionLog.replaceSegments installs the cleaned segment atomically for readers (they
 *    keep reading the old files, which are deleted once released); crash-safe via `.swap` files.
 *
 * Tombstone expiry is an approximation of KIP-534: Kafka stamps a delete horizon into the batch
 * the first time it is cleaned; Samsa uses the batch's max timestamp + delete.retention.ms and the
 * rule that the tombstone was already below the cleaned offset in an earlier pass.
 *
 * Transactions (KIP-98; Kafka's Cleaner.cleanSegments / cleanInto and CleanedTransactionMetadata):
 * - Nothing at or past the last stable offset is cleaned (step 1), so no batch of an ongoing
 *   transaction is ever read, let alone removed.
 * - Aborted transactions are known from the transaction indexes (`PartitionLog.collectAbortedTxns`
 *   over each segment's range, which also finds markers in later segments). Batches of an aborted
 *   transaction are removed whole and add no key to the offset map (an aborted write must not
 *   shadow a committed value).
 * - An abort marker is kept while this pass still met data of its transaction, and its index
 *   entry is copied into the cleaned segment's `.txnindex`; a commit marker is kept while this pass
 *   met data of its transaction. Once no data is left, the marker is stamped with a delete horizon
 *   (now + delete.retention.ms: the batch's base timestamp, with the delete-horizon attribute bit,
 *   as Kafka's MemoryRecords.filterTo does) and removed by the first pass after that horizon, so a
 *   consumer that read the transaction's data sees its marker too.
 * - Not done: Kafka keeps an emptied batch when it holds the last sequence of a producer that is
 *   still active (producer state is not kept in storage here).
 */
import {
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  BASE_SEQUENCE_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_LENGTH_OFFSET,
  Compression,
  CRC_OFFSET,
  CURRENT_MAGIC,
  compressionOf,
  computeBatchCrc,
  DELETE_HORIZON_FLAG_MASK,
  hasDeleteHorizon,
  isControl,
  isTransactional,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  PARTITION_LEADER_EPOCH_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  RECORD_BATCH_HEADER_SIZE,
  RECORDS_COUNT_OFFSET,
  type RecordBatchHeader,
  timestampTypeOf,
} from '../protocol/records/batch-header.ts';
import { compress } from '../protocol/records/compression.ts';
import { readControlRecord } from '../protocol/records/control-record.ts';
import {
  decodeRecords,
  type Record as KafkaRecord,
  sizeOfRecordBody,
  writeRecord,
} from '../protocol/records/record.ts';
import { sizeOfVarint } from '../protocol/records/varint.ts';
import type { Clock } from '../util/clock.ts';
import type { PartitionLog } from './partition-log.ts';
import type { LogSegment, SegmentAppendBatch } from './segment.ts';
import type { AbortedTxn } from './transaction-index.ts';

export interface CleanableRange {
  firstDirtyOffset: bigint;
  firstUncleanableOffset: bigint;
  cleanBytes: number;
  dirtyBytes: number;
  dirtyRatio: number;
  /** A dirty segment is older than max.compaction.lag.ms: clean regardless of the ratio. */
  mustClean: boolean;
}

export interface CleanResult {
  /** New first dirty offset (to checkpoint). */
  cleanedUpTo: bigint;
  segmentsCleaned: number;
  bytesRead: number;
  bytesWritten: number;
  recordsRead: number;
  recordsRetained: number;
  tombstonesRemoved: number;
  /** Batches of aborted transactions removed. */
  abortedBatchesRemoved: number;
  /** Transaction markers removed after their delete horizon. */
  markersRemoved: number;
}

/**
 * Rebuilds a batch with only `records`, keeping base offset, lastOffsetDelta, producer fields,
 * partition leader epoch, attributes and codec (Kafka's MemoryRecords.filterTo for v2). With
 * `deleteHorizonMs` (or when the batch already carries one) the base timestamp is the delete
 * horizon and the attributes say so (KIP-534); records keep their timestamps through the deltas.
 */
export async function buildRetainedBatch(
  header: RecordBatchHeader,
  records: readonly KafkaRecord[],
  deleteHorizonMs?: bigint,
): Promise<Buffer> {
  const codec = compressionOf(header.attributes);
  const logAppendTime = timestampTypeOf(header.attributes) === 1;
  let attributes = header.attributes;
  let baseTimestamp = records.length > 0 ? records[0]!.timestamp : -1n;
  if (deleteHorizonMs !== undefined) {
    attributes |= DELETE_HORIZON_FLAG_MASK;
    baseTimestamp = deleteHorizonMs;
  } else if (hasDeleteHorizon(header.attributes)) {
    baseTimestamp = header.baseTimestamp;
  }
  let maxTimestamp = -1n;
  const sizes: number[] = [];
  let recordsSize = 0;
  for (const r of records) {
    if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp;
    const input = { key: r.key, value: r.value, headers: r.headers };
    const size = sizeOfRecordBody(input, Number(r.offset - header.baseOffset), r.timestamp - baseTimestamp);
    sizes.push(size);
    recordsSize += sizeOfVarint(size) + size;
  }
  if (logAppendTime) maxTimestamp = header.maxTimestamp;
  let payload: Buffer = Buffer.allocUnsafe(recordsSize);
  let pos = 0;
  records.forEach((r, i) => {
    pos = writeRecord(
      payload,
      pos,
      { key: r.key, value: r.value, headers: r.headers },
      Number(r.offset - header.baseOffset),
      r.timestamp - baseTimestamp,
      sizes[i]!,
    );
  });
  if (codec !== Compression.none) payload = await compress(codec, payload);
  const buf = Buffer.allocUnsafe(RECORD_BATCH_HEADER_SIZE + payload.length);
  payload.copy(buf, RECORD_BATCH_HEADER_SIZE);
  buf.writeBigInt64BE(header.baseOffset, BASE_OFFSET_OFFSET);
  buf.writeInt32BE(buf.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  buf.writeInt32BE(header.partitionLeaderEpoch, PARTITION_LEADER_EPOCH_OFFSET);
  buf.writeInt8(CURRENT_MAGIC, MAGIC_OFFSET);
  buf.writeInt16BE(attributes, ATTRIBUTES_OFFSET);
  buf.writeInt32BE(header.lastOffsetDelta, LAST_OFFSET_DELTA_OFFSET);
  buf.writeBigInt64BE(baseTimestamp, BASE_TIMESTAMP_OFFSET);
  buf.writeBigInt64BE(maxTimestamp, MAX_TIMESTAMP_OFFSET);
  buf.writeBigInt64BE(header.producerId, PRODUCER_ID_OFFSET);
  buf.writeInt16BE(header.producerEpoch, PRODUCER_EPOCH_OFFSET);
  buf.writeInt32BE(header.baseSequence, BASE_SEQUENCE_OFFSET);
  buf.writeInt32BE(records.length, RECORDS_COUNT_OFFSET);
  buf.writeUInt32BE(computeBatchCrc(buf, 0, buf.length), CRC_OFFSET);
  return buf;
}

interface BatchBytes {
  header: RecordBatchHeader;
  bytes: Buffer;
}

/** Reads every batch of a segment below `endOffset`, a chunk of batches at a time. */
async function* segmentBatches(seg: LogSegment, endOffset: bigint): AsyncGenerator<BatchBytes> {
  const locations: Array<{ position: number; size: number; header: RecordBatchHeader }> = [];
  await seg.scanBatches(0, seg.size, (loc) => {
    if (loc.header.baseOffset >= endOffset) return false;
    locations.push(loc);
    return true;
  });
  const CHUNK = 4 * 1024 * 1024;
  let i = 0;
  while (i < locations.length) {
    const start = locations[i]!.position;
    let j = i;
    let end = start;
    while (j < locations.length && (j === i || end + locations[j]!.size - start <= CHUNK)) {
      end = locations[j]!.position + locations[j]!.size;
      j++;
    }
    const bytes = await seg.readBytes(start, end - start);
    for (let k = i; k < j; k++) {
      const loc = locations[k]!;
      yield { header: loc.header, bytes: bytes.subarray(loc.position - start, loc.position - start + loc.size) };
    }
    i = j;
  }
}

const keyOf = (key: Buffer): string => key.toString('latin1');

/** What a control batch says: a transaction marker's type, or 'empty' (no record left). */
type ControlKind = 'abort' | 'commit' | 'unknown' | 'empty';

async function controlKindOf(b: BatchBytes): Promise<ControlKind> {
  const records = await decodeRecords(b.bytes, { verifyCrc: false });
  const first = records[0];
  if (first === undefined) return 'empty';
  try {
    return readControlRecord(first).type;
  } catch {
    return 'unknown';
  }
}

/**
 * Kafka's CleanedTransactionMetadata: the transaction state of one pass over consecutive batches.
 * Aborted transactions (from the transaction indexes) become "ongoing aborted" once the pass
 * reaches their first offset, until their abort marker; transactional batches of a producer with
 * no such entry belong to a transaction that commits (it is below the last stable offset).
 */
export class CleanedTransactionMetadata {
  readonly #ongoingCommitted = new Set<bigint>();
  readonly #ongoingAborted = new Map<bigint, { txn: AbortedTxn; dataSeen: boolean }>();
  /** Not yet reached, by first offset. */
  #aborted: AbortedTxn[] = [];
  /** Marker offsets of the entries added (segments' searches overlap). */
  readonly #added = new Set<bigint>();
  /** Entries of abort markers kept with data of their transaction: the cleaned segment's index. */
  #cleanedIndex: AbortedTxn[] = [];

  /** The entries for the cleaned segment being written since the last call (one per group). */
  takeCleanedIndex(): AbortedTxn[] {
    const out = this.#cleanedIndex;
    this.#cleanedIndex = [];
    return out;
  }

  addAbortedTransactions(txns: readonly AbortedTxn[]): void {
    let added = false;
    for (const t of txns) {
      if (this.#added.has(t.lastOffset)) continue;
      this.#added.add(t.lastOffset);
      this.#aborted.push(t);
      added = true;
    }
    if (added)
      this.#aborted.sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  }

  #consumeAbortedUpTo(offset: bigint): void {
    let n = 0;
    while (n < this.#aborted.length && this.#aborted[n]!.firstOffset <= offset) {
      const txn = this.#aborted[n]!;
      if (!this.#ongoingAborted.has(txn.producerId)) this.#ongoingAborted.set(txn.producerId, { txn, dataSeen: false });
      n++;
    }
    if (n > 0) this.#aborted = this.#aborted.slice(n);
  }

  /** A control batch was reached; true when it may be discarded (no data of its transaction met). */
  onControlBatchRead(header: RecordBatchHeader, kind: ControlKind): boolean {
    this.#consumeAbortedUpTo(header.baseOffset + BigInt(header.lastOffsetDelta));
    switch (kind) {
      case 'abort': {
        const ongoing = this.#ongoingAborted.get(header.producerId);
        this.#ongoingAborted.delete(header.producerId);
        // Kept until all batches of the transaction are gone; its index entry goes with it.
        if (ongoing?.dataSeen) {
          this.#cleanedIndex.push(ongoing.txn);
          return false;
        }
        return true;
      }
      case 'commit':
        return !this.#ongoingCommitted.delete(header.producerId);
      case 'empty':
        return true;
      default:
        return false;
    }
  }

  /** A data batch was reached; true when it belongs to an aborted transaction (discard it). */
  onBatchRead(header: RecordBatchHeader): boolean {
    this.#consumeAbortedUpTo(header.baseOffset + BigInt(header.lastOffsetDelta));
    if (!isTransactional(header.attributes)) return false;
    const aborted = this.#ongoingAborted.get(header.producerId);
    if (aborted !== undefined) {
      aborted.dataSeen = true;
      return true;
    }
    this.#ongoingCommitted.add(header.producerId);
    return false;
  }
}

export class LogCleaner {
  readonly #clock: Clock;
  readonly #dedupeBufferSize: number;

  constructor(options: { clock: Clock; dedupeBufferSize?: number }) {
    this.#clock = options.clock;
    this.#dedupeBufferSize = options.dedupeBufferSize ?? 128 * 1024 * 1024;
  }

  /** The cleanable range of `log` given its checkpointed first dirty offset. */
  async cleanableRange(log: PartitionLog, checkpointedFirstDirty: bigint | undefined): Promise<CleanableRange> {
    const config = log.config;
    const now = this.#clock.now();
    const segments = log.segments;
    let firstDirty = checkpointedFirstDirty ?? log.logStartOffset;
    if (firstDirty < log.logStartOffset || firstDirty > log.logEndOffset) firstDirty = log.logStartOffset;
    let firstUncleanable = log.activeSegment.baseOffset;
    if (log.lastStableOffset < firstUncleanable) firstUncleanable = log.lastStableOffset;
    let mustClean = false;
    for (const seg of segments) {
      if (seg === log.activeSegment || seg.baseOffset >= firstUncleanable) break;
      const largest = await seg.largestTimestamp();
      if (config.minCompactionLagMs > 0 && largest > now - config.minCompactionLagMs) {
        if (seg.baseOffset < firstUncleanable) firstUncleanable = seg.baseOffset;
        break;
      }
    }
    let cleanBytes = 0;
    let dirtyBytes = 0;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const next = segments[i + 1];
      if (seg.baseOffset >= firstUncleanable) break;
      const segEnd = next ? next.baseOffset : log.logEndOffset;
      if (segEnd <= firstDirty) {
        cleanBytes += seg.size;
      } else {
        dirtyBytes += seg.size;
        const largest = await seg.largestTimestamp();
        if (config.maxCompactionLagMs < Number.MAX_SAFE_INTEGER && now - largest > config.maxCompactionLagMs) {
          mustClean = true;
        }
      }
    }
    const total = cleanBytes + dirtyBytes;
    return {
      firstDirtyOffset: firstDirty,
      firstUncleanableOffset: firstUncleanable,
      cleanBytes,
      dirtyBytes,
      dirtyRatio: total === 0 ? 0 : dirtyBytes / total,
      mustClean,
    };
  }

  /** Whether `range` is worth cleaning under the log's min.cleanable.dirty.ratio. */
  shouldClean(log: PartitionLog, range: CleanableRange): boolean {
    if (!log.config.compact || range.dirtyBytes === 0) return false;
    // Until a damaged transaction index is rebuilt, aborted data would pass for committed.
    if (log.corruptTxnIndexFrom !== null) return false;
    return range.mustClean || range.dirtyRatio >= log.config.minCleanableDirtyRatio;
  }

  /**
   * Cleans `log` once (steps 2-4 above). Returns null when there was nothing to clean. Safe to run
   * while the log is appended to and read: it only touches inactive segments and swaps them under
   * the log's queue.
   */
  async clean(log: PartitionLog, range: CleanableRange): Promise<CleanResult | null> {
    if (range.firstUncleanableOffset <= range.firstDirtyOffset) return null;
    if (log.corruptTxnIndexFrom !== null) return null;
    const segments = log.segments.filter((s) => s !== log.activeSegment);
    for (const s of segments) s.retain();
    try {
      return await this.#clean(log, range, segments);
    } finally {
      for (const s of segments) s.release();
    }
  }

  async #clean(log: PartitionLog, range: CleanableRange, segments: readonly LogSegment[]): Promise<CleanResult | null> {
    const result: CleanResult = {
      cleanedUpTo: range.firstDirtyOffset,
      segmentsCleaned: 0,
      bytesRead: 0,
      bytesWritten: 0,
      recordsRead: 0,
      recordsRetained: 0,
      tombstonesRemoved: 0,
      abortedBatchesRemoved: 0,
      markersRemoved: 0,
    };
    // 2. Offset map over the dirty range.
    const map = new Map<string, bigint>();
    let mapBytes = 0;
    let mappedEnd = range.firstDirtyOffset;
    let full = false;
    // Batches of aborted transactions add no key (Kafka's buildOffsetMap).
    const txnGeneration = log.txnIndexGeneration;
    const mapTxns = new CleanedTransactionMetadata();
    mapTxns.addAbortedTransactions(await log.collectAbortedTxns(range.firstDirtyOffset, range.firstUncleanableOffset));
    for (const seg of segments) {
      if (full || seg.baseOffset >= range.firstUncleanableOffset) break;
      const segNext = await seg.readNextOffset();
      if (segNext <= range.firstDirtyOffset) continue;
      for await (const b of segmentBatches(seg, range.firstUncleanableOffset)) {
        const batchEnd = b.header.baseOffset + BigInt(b.header.lastOffsetDelta) + 1n;
        if (batchEnd <= range.firstDirtyOffset) continue;
        if (isControl(b.header.attributes)) {
          mapTxns.onControlBatchRead(b.header, await controlKindOf(b));
          mappedEnd = batchEnd;
          continue;
        }
        if (mapTxns.onBatchRead(b.header)) {
          mappedEnd = batchEnd;
          continue;
        }
        const records = await decodeRecords(b.bytes, { verifyCrc: false });
        let added = 0;
        for (const r of records) {
          if (r.key === null) continue;
          const k = keyOf(r.key);
          if (!map.has(k)) added += k.length + 64;
          map.set(k, r.offset);
        }
        mapBytes += added;
        mappedEnd = batchEnd;
        if (mapBytes >= this.#dedupeBufferSize) {
          full = true;
          break;
        }
      }
    }
    if (mappedEnd <= range.firstDirtyOffset) return null;

    // 3. Group the inactive segments wholly below the mapped end and rewrite each group.
    const config = log.config;
    const now = this.#clock.now();
    const candidates: LogSegment[] = [];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const next = segments[i + 1] ?? log.activeSegment;
      if (next.baseOffset > mappedEnd) break;
      candidates.push(seg);
    }
    if (candidates.length === 0) return null;
    const groups: LogSegment[][] = [];
    let group: LogSegment[] = [];
    let groupSize = 0;
    for (const seg of candidates) {
      const spansTooFar = group.length > 0 && (await seg.readNextOffset()) - group[0]!.baseOffset > 2147483647n;
      if (group.length > 0 && (groupSize + seg.size > config.segmentBytes || spansTooFar)) {
        groups.push(group);
        group = [];
        groupSize = 0;
      }
      group.push(seg);
      groupSize += seg.size;
    }
    if (group.length > 0) groups.push(group);

    // One transaction state for the whole pass, carried from group to group (as Kafka does since
    // KAFKA-8351: a transaction may span groups).
    const txns = new CleanedTransactionMetadata();
    for (const g of groups) {
      txns.takeCleanedIndex();
      const cleaned = await log.createCleanedSegment(g[0]!.baseOffset);
      let pending: SegmentAppendBatch[] = [];
      let pendingBytes = 0;
      const flushPending = async (): Promise<void> => {
        if (pending.length === 0) return;
        await cleaned.append(pending, config.indexIntervalBytes);
        pending = [];
        pendingBytes = 0;
      };
      try {
        for (let i = 0; i < g.length; i++) {
          const seg = g[i]!;
          // The whole segment's range: the cleaned segment's index is rebuilt from what is met.
          const upper = g[i + 1]?.baseOffset ?? (await seg.readNextOffset());
          txns.addAbortedTransactions(await log.collectAbortedTxns(seg.baseOffset, upper));
          for await (const b of segmentBatches(seg, mappedEnd)) {
            result.bytesRead += b.bytes.length;
            const retained = await this.#retain(
              b,
              map,
              txns,
              range.firstDirtyOffset,
              now,
              config.deleteRetentionMs,
              result,
            );
            if (retained === null) continue;
            pending.push({
              data: retained,
              baseOffset: b.header.baseOffset,
              lastOffset: b.header.baseOffset + BigInt(b.header.lastOffsetDelta),
              maxTimestamp: retained.readBigInt64BE(MAX_TIMESTAMP_OFFSET),
            });
            pendingBytes += retained.length;
            result.bytesWritten += retained.length;
            if (pendingBytes >= 1 << 20) await flushPending();
          }
        }
        await flushPending();
        for (const txn of txns.takeCleanedIndex()) await cleaned.appendAbortedTxn(txn, false);
        await cleaned.onBecomeInactiveSegment();
        await cleaned.flush();
      } catch (err) {
        await cleaned.deleteFiles().catch(() => undefined);
        throw err;
      }
      // 4. Swap.
      const swapped = await log.replaceSegments(cleaned, g, txnGeneration);
      if (!swapped) return result.segmentsCleaned > 0 ? result : null;
      result.segmentsCleaned += g.length;
    }
    result.cleanedUpTo = mappedEnd;
    return result;
  }

  /** The bytes to keep for one batch: itself, a rebuilt batch, or null (nothing retained). */
  async #retain(
    b: BatchBytes,
    map: Map<string, bigint>,
    txns: CleanedTransactionMetadata,
    firstDirty: bigint,
    now: number,
    deleteRetentionMs: number,
    stats: CleanResult,
  ): Promise<Buffer | null> {
    if (isControl(b.header.attributes)) {
      // Kafka piggy-backs on tombstone retention: a marker whose transaction has no data left is
      // stamped with a delete horizon, and removed by a pass after it.
      const canDiscard = txns.onControlBatchRead(b.header, await controlKindOf(b));
      if (!canDiscard) return b.bytes;
      if (hasDeleteHorizon(b.header.attributes)) {
        if (b.header.baseTimestamp <= BigInt(now)) {
          stats.markersRemoved++;
          return null;
        }
        return b.bytes;
      }
      const records = await decodeRecords(b.bytes, { verifyCrc: false });
      if (records.length === 0) return null;
      return buildRetainedBatch(b.header, records, BigInt(now) + BigInt(deleteRetentionMs));
    }
    if (txns.onBatchRead(b.header)) {
      stats.abortedBatchesRemoved++;
      stats.recordsRead += b.header.recordCount;
      return null;
    }
    const records = await decodeRecords(b.bytes, { verifyCrc: false });
    stats.recordsRead += records.length;
    const tombstoneExpired =
      b.header.baseOffset + BigInt(b.header.lastOffsetDelta) < firstDirty &&
      Number(b.header.maxTimestamp) + deleteRetentionMs < now;
    const kept = records.filter((r) => {
      if (r.key === null) return false;
      const latest = map.get(keyOf(r.key));
      if (latest !== undefined && r.offset < latest) return false;
      if (r.value === null && tombstoneExpired) {
        stats.tombstonesRemoved++;
        return false;
      }
      return true;
    });
    stats.recordsRetained += kept.length;
    if (kept.length === 0) return null;
    if (kept.length === records.length) return b.bytes;
    return buildRetainedBatch(b.header, kept);
  }
}
