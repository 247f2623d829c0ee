/**
 * Builds complete v2 record batches, as a producer (or the broker writing its own records:
 * transaction markers, group and transaction coordinator state) would. Records are sized first
 * and written into one exact allocation; uncompressed batches are built in place with no copy.
 */
import { ProtocolError, ProtocolErrorCodes } from '../errors.ts';
import {
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  BASE_SEQUENCE_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_LENGTH_OFFSET,
  CONTROL_FLAG_MASK,
  Compression,
  type CompressionType,
  CRC_OFFSET,
  CURRENT_MAGIC,
  computeBatchCrc,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  NO_PARTITION_LEADER_EPOCH,
  NO_PRODUCER_EPOCH,
  NO_PRODUCER_ID,
  NO_SEQUENCE,
  NO_TIMESTAMP,
  PARTITION_LEADER_EPOCH_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  RECORD_BATCH_HEADER_SIZE,
  RECORDS_COUNT_OFFSET,
  TIMESTAMP_TYPE_MASK,
  TRANSACTIONAL_FLAG_MASK,
} from './batch-header.ts';
import { compress, compressSync } from './compression.ts';
import { type RecordInput, sizeOfRecordBody, writeRecord } from './record.ts';
import { sizeOfVarint } from './varint.ts';

export interface BuildRecordBatchOptions {
  records: readonly RecordInput[];
  baseOffset?: bigint | undefined;
  compression?: CompressionType | undefined;
  producerId?: bigint | undefined;
  producerEpoch?: number | undefined;
  baseSequence?: number | undefined;
  transactional?: boolean | undefined;
  isControl?: boolean | undefined;
  partitionLeaderEpoch?: number | undefined;
  /** 0 CreateTime (default), 1 LogAppendTime. */
  timestampType?: 0 | 1 | undefined;
  /** Timestamp for records that carry none; defaults to the current time. */
  timestamp?: bigint | undefined;
  /** With LogAppendTime: the maxTimestamp to stamp (defaults to the largest record timestamp). */
  logAppendTime?: bigint | undefined;
  /**
   * Override for lastOffsetDelta, for batches whose offsets have gaps (compaction keeps the
   * original range, and an emptied batch still covers it). Must be >= records.length - 1.
   */
  lastOffsetDelta?: number | undefined;
}

function unencodable(message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCodes.unencodable, message);
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw unencodable(`${name} ${value} is outside ${min}..${max}`);
  }
}

function checkLong(name: string, value: bigint): void {
  if (BigInt.asIntN(64, value) !== value) throw unencodable(`${name} ${value} does not fit in an int64`);
}

interface Layout {
  attributes: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  lastOffsetDelta: number;
  /** Per record: timestamp delta and body size; the records section's total size. */
  timestampDeltas: bigint[];
  bodySizes: number[];
  recordsSize: number;
}

function layout(options: BuildRecordBatchOptions): Layout {
  const records = options.records;
  const count = records.length;
  const codec = options.compression ?? Compression.none;
  checkInt('compression', codec, Compression.none, Compression.zstd);
  checkInt('producerEpoch', options.producerEpoch ?? NO_PRODUCER_EPOCH, -0x8000, 0x7fff);
  checkInt('baseSequence', options.baseSequence ?? NO_SEQUENCE, -0x80000000, 0x7fffffff);
  checkInt('partitionLeaderEpoch', options.partitionLeaderEpoch ?? NO_PARTITION_LEADER_EPOCH, -0x80000000, 0x7fffffff);
  checkLong('baseOffset', options.baseOffset ?? 0n);
  checkLong('producerId', options.producerId ?? NO_PRODUCER_ID);
  const lastOffsetDelta = options.lastOffsetDelta ?? Math.max(0, count - 1);
  checkInt('lastOffsetDelta', lastOffsetDelta, Math.max(0, count - 1), 0x7fffffff);

  let attributes = codec;
  if (options.timestampType === 1) attributes |= TIMESTAMP_TYPE_MASK;
  if (options.transactional === true) attributes |= TRANSACTIONAL_FLAG_MASK;
  if (options.isControl === true) attributes |= CONTROL_FLAG_MASK;

  // Kafka's MemoryRecordsBuilder uses the first record's timestamp as the base; an empty batch
  // carries NO_TIMESTAMP (-1) in both fields.
  let defaultTimestamp = options.timestamp;
  let baseTimestamp = NO_TIMESTAMP;
  let maxTimestamp = NO_TIMESTAMP;
  const timestampDeltas: bigint[] = new Array(count);
  const bodySizes: number[] = new Array(count);
  let recordsSize = 0;
  for (let i = 0; i < count; i++) {
    const record = records[i]!;
    let timestamp = record.timestamp;
    if (timestamp === undefined) {
      defaultTimestamp ??= BigInt(Date.now());
      timestamp = defaultTimestamp;
    }
    if (i === 0) baseTimestamp = timestamp;
    if (timestamp > maxTimestamp || i === 0) maxTimestamp = timestamp;
    const delta = timestamp - baseTimestamp;
    checkLong('timestamp delta', delta);
    const bodySize = sizeOfRecordBody(record, i, delta);
    timestampDeltas[i] = delta;
    bodySizes[i] = bodySize;
    recordsSize += sizeOfVarint(bodySize) + bodySize;
  }
  checkLong('baseTimestamp', baseTimestamp);
  if (options.timestampType === 1 && options.logAppendTime !== undefined) maxTimestamp = options.logAppendTime;
  checkLong('maxTimestamp', maxTimestamp);
  if (recordsSize > 0x7fffffff - RECORD_BATCH_HEADER_SIZE) throw unencodable(`records of ${recordsSize} bytes`);
  return { attributes, baseTimestamp, maxTimestamp, lastOffsetDelta, timestampDeltas, bodySizes, recordsSize };
}

function writeRecords(options: BuildRecordBatchOptions, l: Layout, buf: Buffer, pos: number): void {
  const records = options.records;
  for (let i = 0; i < records.length; i++) {
    pos = writeRecord(buf, pos, records[i]!, i, l.timestampDeltas[i]!, l.bodySizes[i]!);
  }
}

/** Fills the header of `buf` (whose records section is already in place) and its CRC. */
function finish(options: BuildRecordBatchOptions, l: Layout, buf: Buffer): Buffer {
  buf.writeBigInt64BE(options.baseOffset ?? 0n, BASE_OFFSET_OFFSET);
  buf.writeInt32BE(buf.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  buf.writeInt32BE(options.partitionLeaderEpoch ?? NO_PARTITION_LEADER_EPOCH, PARTITION_LEADER_EPOCH_OFFSET);
  buf.writeInt8(CURRENT_MAGIC, MAGIC_OFFSET);
  buf.writeInt16BE(l.attributes, ATTRIBUTES_OFFSET);
  buf.writeInt32BE(l.lastOffsetDelta, LAST_OFFSET_DELTA_OFFSET);
  buf.writeBigInt64BE(l.baseTimestamp, BASE_TIMESTAMP_OFFSET);
  buf.writeBigInt64BE(l.maxTimestamp, MAX_TIMESTAMP_OFFSET);
  buf.writeBigInt64BE(options.producerId ?? NO_PRODUCER_ID, PRODUCER_ID_OFFSET);
  buf.writeInt16BE(options.producerEpoch ?? NO_PRODUCER_EPOCH, PRODUCER_EPOCH_OFFSET);
  buf.writeInt32BE(options.baseSequence ?? NO_SEQUENCE, BASE_SEQUENCE_OFFSET);
  buf.writeInt32BE(options.records.length, RECORDS_COUNT_OFFSET);
  buf.writeUInt32BE(computeBatchCrc(buf, 0, buf.length), CRC_OFFSET);
  return buf;
}

function withPayload(payload: Buffer): Buffer {
  if (payload.length > 0x7fffffff - RECORD_BATCH_HEADER_SIZE) throw unencodable(`payload of ${payload.length} bytes`);
  const buf = Buffer.allocUnsafe(RECORD_BATCH_HEADER_SIZE + payload.length);
  payload.copy(buf, RECORD_BATCH_HEADER_SIZE);
  return buf;
}

/** Builds a batch synchronously (every codec has a sync implementation; prefer the async form for large compressed batches). */
export function buildRecordBatchSync(options: BuildRecordBatchOptions): Buffer {
  const l = layout(options);
  const codec = options.compression ?? Compression.none;
  if (codec === Compression.none) {
    const buf = Buffer.allocUnsafe(RECORD_BATCH_HEADER_SIZE + l.recordsSize);
    writeRecords(options, l, buf, RECORD_BATCH_HEADER_SIZE);
    return finish(options, l, buf);
  }
  const plain = Buffer.allocUnsafe(l.recordsSize);
  writeRecords(options, l, plain, 0);
  return finish(options, l, withPayload(compressSync(codec, plain)));
}

/** Builds a batch, compressing on the thread pool. */
export async function buildRecordBatch(options: BuildRecordBatchOptions): Promise<Buffer> {
  const codec = options.compression ?? Compression.none;
  if (codec === Compression.none) return buildRecordBatchSync(options);
  const l = layout(options);
  const plain = Buffer.allocUnsafe(l.recordsSize);
  writeRecords(options, l, plain, 0);
  return finish(options, l, withPayload(await compress(codec, plain)));
}
