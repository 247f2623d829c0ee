/**
 * Record batch v2 (magic 2) header: reading, validating and patching it in place without
 * touching the records. This is the broker's hot path (produce validation, offset assignment,
 * fetch), so nothing here decodes records or allocates beyond the header object.
 *
 * Layout (Kafka's DefaultRecordBatch), byte offsets from the batch start:
 *
 *   0  baseOffset           int64
 *   8  batchLength          int32   bytes after this field (total size = 12 + batchLength)
 *  12  partitionLeaderEpoch int32   not covered by the CRC: the leader rewrites it
 *  16  magic                int8    2; byte 16 is also the magic in legacy v0/v1 message sets
 *  17  crc                  uint32  CRC-32C of bytes 21..end
 *  21  attributes           int16   bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control,
 *                                   6 has delete horizon (KIP-534)
 *  23  lastOffsetDelta      int32
 *  27  baseTimestamp        int64   (the delete horizon when bit 6 is set)
 *  35  maxTimestamp         int64
 *  43  producerId           int64
 *  51  producerEpoch        int16
 *  53  baseSequence         int32
 *  57  recordCount          int32
 *  61  records...
 */
import { ProtocolError, ProtocolErrorCodes } from '../errors.ts';
import { crc32c } from './crc32c.ts';

export const LOG_OVERHEAD = 12;
export const RECORD_BATCH_HEADER_SIZE = 61;
export const CURRENT_MAGIC = 2;

/** Smallest legal batchLength: a header with no records. */
export const MIN_BATCH_LENGTH = RECORD_BATCH_HEADER_SIZE - LOG_OVERHEAD;

export const BASE_OFFSET_OFFSET = 0;
export const BATCH_LENGTH_OFFSET = 8;
export const PARTITION_LEADER_EPOCH_OFFSET = 12;
export const MAGIC_OFFSET = 16;
export const CRC_OFFSET = 17;
export const ATTRIBUTES_OFFSET = 21;
export const LAST_OFFSET_DELTA_OFFSET = 23;
export const BASE_TIMESTAMP_OFFSET = 27;
export const MAX_TIMESTAMP_OFFSET = 35;
export const PRODUCER_ID_OFFSET = 43;
export const PRODUCER_EPOCH_OFFSET = 51;
export const BASE_SEQUENCE_OFFSET = 53;
export const RECORDS_COUNT_OFFSET = 57;

export const COMPRESSION_CODEC_MASK = 0x07;
export const TIMESTAMP_TYPE_MASK = 0x08;
export const TRANSACTIONAL_FLAG_MASK = 0x10;
export const CONTROL_FLAG_MASK = 0x20;
export const DELETE_HORIZON_FLAG_MASK = 0x40;

export const NO_PRODUCER_ID = -1n;
export const NO_PRODUCER_EPOCH = -1;
export const NO_SEQUENCE = -1;
export const NO_PARTITION_LEADER_EPOCH = -1;
export const NO_TIMESTAMP = -1n;

export interface RecordBatchHeader {
  baseOffset: bigint;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type CompressionType = (typeof Compression)[keyof typeof Compression];

export const TimestampType = { createTime: 0, logAppendTime: 1 } as const;
export type TimestampTypeValue = (typeof TimestampType)[keyof typeof TimestampType];

/** The codec in the attributes; codec ids 5-7 are unassigned and rejected as Kafka does. */
export function compressionOf(attributes: number): CompressionType {
  const codec = attributes & COMPRESSION_CODEC_MASK;
  if (codec > Compression.zstd) {
    throw new ProtocolError(ProtocolErrorCodes.compression, `unknown compression codec id ${codec}`);
  }
  return codec as CompressionType;
}

export function isTransactional(attributes: number): boolean {
  return (attributes & TRANSACTIONAL_FLAG_MASK) !== 0;
}

export function isControl(attributes: number): boolean {
  return (attributes & CONTROL_FLAG_MASK) !== 0;
}

/** 0 CreateTime, 1 LogAppendTime. */
export function timestampTypeOf(attributes: number): 0 | 1 {
  return (attributes & TIMESTAMP_TYPE_MASK) === 0 ? 0 : 1;
}

export function hasDeleteHorizon(attributes: number): boolean {
  return (attributes & DELETE_HORIZON_FLAG_MASK) !== 0;
}

export function lastOffsetOf(h: RecordBatchHeader): bigint {
  return h.baseOffset + BigInt(h.lastOffsetDelta);
}

function legacyMagicError(magic: number, offset: number): ProtocolError {
  return new ProtocolError(
    ProtocolErrorCodes.unsupportedVersion,
    `record batch at ${offset} has magic ${magic}: legacy magic 0/1 message sets are not supported (magic 2 record batches only)`,
  );
}

function badMagicError(magic: number, offset: number): ProtocolError {
  if (magic === 0 || magic === 1) return legacyMagicError(magic, offset);
  return new ProtocolError(ProtocolErrorCodes.invalid, `record batch at ${offset} has unknown magic ${magic}`);
}

/** Throws the ProtocolError for a magic byte other than 2, naming legacy magic 0/1 message sets. */
export function checkMagic(magic: number, offset: number): void {
  if (magic !== CURRENT_MAGIC) throw badMagicError(magic, offset);
}

/**
 * Reads the 61-byte header at `offset`. Checks only what the header alone can tell (length,
 * magic, batchLength >= 49); whether the whole batch is present is the caller's business
 * (see iterateBatches).
 */
export function readBatchHeader(buf: Buffer, offset = 0): RecordBatchHeader {
  if (offset < 0 || buf.length - offset < RECORD_BATCH_HEADER_SIZE) {
    // A legacy message can be shorter than a v2 header; name its magic rather than "truncated".
    if (offset >= 0 && buf.length - offset > MAGIC_OFFSET) {
      const magic = buf[offset + MAGIC_OFFSET]!;
      if (magic !== CURRENT_MAGIC) throw badMagicError(magic, offset);
    }
    throw new ProtocolError(
      ProtocolErrorCodes.truncated,
      `record batch header needs ${RECORD_BATCH_HEADER_SIZE} bytes at ${offset}, ${Math.max(0, buf.length - offset)} remain`,
    );
  }
  const magic = buf.readInt8(offset + MAGIC_OFFSET);
  if (magic !== CURRENT_MAGIC) throw badMagicError(magic, offset);
  const batchLength = buf.readInt32BE(offset + BATCH_LENGTH_OFFSET);
  if (batchLength < MIN_BATCH_LENGTH) {
    throw new ProtocolError(
      ProtocolErrorCodes.invalid,
      `record batch at ${offset} has batchLength ${batchLength}, less than the minimum ${MIN_BATCH_LENGTH}`,
    );
  }
  return {
    baseOffset: buf.readBigInt64BE(offset + BASE_OFFSET_OFFSET),
    batchLength,
    partitionLeaderEpoch: buf.readInt32BE(offset + PARTITION_LEADER_EPOCH_OFFSET),
    magic,
    crc: buf.readUInt32BE(offset + CRC_OFFSET),
    attributes: buf.readInt16BE(offset + ATTRIBUTES_OFFSET),
    lastOffsetDelta: buf.readInt32BE(offset + LAST_OFFSET_DELTA_OFFSET),
    baseTimestamp: buf.readBigInt64BE(offset + BASE_TIMESTAMP_OFFSET),
    maxTimestamp: buf.readBigInt64BE(offset + MAX_TIMESTAMP_OFFSET),
    producerId: buf.readBigInt64BE(offset + PRODUCER_ID_OFFSET),
    producerEpoch: buf.readInt16BE(offset + PRODUCER_EPOCH_OFFSET),
    baseSequence: buf.readInt32BE(offset + BASE_SEQUENCE_OFFSET),
    recordCount: buf.readInt32BE(offset + RECORDS_COUNT_OFFSET),
  };
}

/**
 * Total size (12 + batchLength) of the batch starting at `offset`, or -1 when fewer than 12
 * bytes remain (a partial batch at the end of a fetch). The result may exceed what remains.
 */
export function batchSizeAt(buf: Buffer, offset: number): number {
  if (offset < 0 || buf.length - offset < LOG_OVERHEAD) return -1;
  const batchLength = buf.readInt32BE(offset + BATCH_LENGTH_OFFSET);
  if (batchLength < MIN_BATCH_LENGTH) {
    // Legacy messages are as small as 14 bytes; say so when the magic byte is visible.
    if (buf.length - offset > MAGIC_OFFSET) {
      const magic = buf[offset + MAGIC_OFFSET]!;
      if (magic === 0 || magic === 1) throw legacyMagicError(magic, offset);
    }
    throw new ProtocolError(
      ProtocolErrorCodes.invalid,
      `record batch at ${offset} has batchLength ${batchLength}, less than the minimum ${MIN_BATCH_LENGTH}`,
    );
  }
  return LOG_OVERHEAD + batchLength;
}

/** CRC-32C over attributes..end, i.e. bytes offset+21 .. offset+size. */
export function computeBatchCrc(buf: Buffer, offset: number, size: number): number {
  if (offset < 0 || size < RECORD_BATCH_HEADER_SIZE || offset + size > buf.length) {
    throw new ProtocolError(
      ProtocolErrorCodes.truncated,
      `cannot checksum a ${size}-byte batch at ${offset} in a ${buf.length}-byte buffer`,
    );
  }
  return crc32c(buf.subarray(offset + ATTRIBUTES_OFFSET, offset + size));
}

/** The declared size of the batch at `offset`, checked to lie within `buf`. */
function completeBatchSize(buf: Buffer, offset: number): number {
  const size = batchSizeAt(buf, offset);
  if (size < 0 || size > buf.length - offset) {
    throw new ProtocolError(
      ProtocolErrorCodes.truncated,
      `record batch at ${offset} declares ${size < 0 ? 'an unreadable' : size}-byte size, ${Math.max(0, buf.length - offset)} bytes remain`,
    );
  }
  return size;
}

/**
 * True when the stored CRC matches the batch contents. A batch that does not fit in `buf` is a
 * ProtocolError (truncated), not `false`: truncation and corruption call for different handling.
 */
export function verifyBatchCrc(buf: Buffer, offset = 0): boolean {
  const size = completeBatchSize(buf, offset);
  return computeBatchCrc(buf, offset, size) === buf.readUInt32BE(offset + CRC_OFFSET);
}

/**
 * Assigns the base offset in place. The CRC does not cover it, so it stays valid. Like the other
 * setters this is for batches already validated (iterateBatches): no bounds checks on the hot path.
 */
export function setBaseOffset(buf: Buffer, offset: number, baseOffset: bigint): void {
  buf.writeBigInt64BE(baseOffset, offset + BASE_OFFSET_OFFSET);
}

/** Stamps the leader epoch in place (KIP-101). Not covered by the CRC. */
export function setPartitionLeaderEpoch(buf: Buffer, offset: number, epoch: number): void {
  buf.writeInt32BE(epoch, offset + PARTITION_LEADER_EPOCH_OFFSET);
}

/**
 * For topics with message.timestamp.type=LogAppendTime: sets the timestamp-type bit and the
 * maxTimestamp, then recomputes the CRC, as Kafka's DefaultRecordBatch.setMaxTimestamp does.
 * Per-record timestamps are left alone; readers use maxTimestamp for every record of such a
 * batch. Skips the CRC work when nothing changes.
 */
export function setLogAppendTime(buf: Buffer, offset: number, timestamp: bigint): void {
  const size = completeBatchSize(buf, offset);
  const attributes = buf.readInt16BE(offset + ATTRIBUTES_OFFSET);
  const newAttributes = attributes | TIMESTAMP_TYPE_MASK;
  if (newAttributes === attributes && buf.readBigInt64BE(offset + MAX_TIMESTAMP_OFFSET) === timestamp) return;
  buf.writeInt16BE(newAttributes, offset + ATTRIBUTES_OFFSET);
  buf.writeBigInt64BE(timestamp, offset + MAX_TIMESTAMP_OFFSET);
  buf.writeUInt32BE(computeBatchCrc(buf, offset, size), offset + CRC_OFFSET);
}
