/**
 * Walks a `records` field (the concatenated batches of a Produce request, a Fetch response or a
 * log segment) batch by batch, reading headers only. Records are never decoded here.
 */
import { ProtocolError, ProtocolErrorCodes } from '../errors.ts';
import {
  batchSizeAt,
  Compression,
  checkMagic,
  compressionOf,
  computeBatchCrc,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  RECORD_BATCH_HEADER_SIZE,
  type RecordBatchHeader,
  readBatchHeader,
} from './batch-header.ts';

/** Smallest possible encoded record: length, attributes, timestamp/offset deltas, key, value, header count. */
export const MIN_RECORD_SIZE = 7;

export interface BatchEntry {
  /** Where the batch starts in the walked buffer. */
  offset: number;
  /** Total bytes of the batch, 12 + batchLength. */
  size: number;
  header: RecordBatchHeader;
}

export interface IterateBatchesOptions {
  /**
   * What to do with an incomplete last batch. 'error' (default) suits Produce requests, where a
   * partial batch is malformed; 'stop' suits Fetch responses, where Kafka may cut the last batch
   * at max.bytes and clients ignore the tail.
   */
  partialTail?: 'error' | 'stop' | undefined;
  /** Check each batch's CRC-32C (default true). Turn off only for bytes already verified, e.g. read back from our own log. */
  verifyCrc?: boolean | undefined;
}

function invalid(message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCodes.invalid, message);
}

/**
 * Validates and yields each batch of `buf`. Everything checkable from the header is checked:
 * magic (legacy magic 0/1 message sets are named and refused), batchLength against the minimum
 * and the bytes present, codec id, record count against lastOffsetDelta and (for uncompressed
 * batches) against the bytes available, and optionally the CRC. Only ProtocolError is thrown.
 */
export function* iterateBatches(buf: Buffer, options: IterateBatchesOptions = {}): Generator<BatchEntry, void, void> {
  const stopAtPartial = options.partialTail === 'stop';
  const verifyCrc = options.verifyCrc ?? true;
  let offset = 0;
  while (offset < buf.length) {
    const remaining = buf.length - offset;
    // The magic byte sits at offset 16 in every message format, so a legacy message set is
    // recognised before its (differently laid out) length is trusted.
    if (remaining > MAGIC_OFFSET) checkMagic(buf[offset + MAGIC_OFFSET]!, offset);
    if (remaining < LOG_OVERHEAD) {
      if (stopAtPartial) return;
      throw new ProtocolError(
        ProtocolErrorCodes.truncated,
        `${remaining} trailing bytes at ${offset} are too few for a record batch`,
      );
    }
    const size = batchSizeAt(buf, offset);
    if (size > remaining) {
      if (stopAtPartial) return;
      throw new ProtocolError(
        ProtocolErrorCodes.truncated,
        `record batch at ${offset} declares ${size} bytes but only ${remaining} remain`,
      );
    }
    const header = readBatchHeader(buf, offset);
    validateHeader(header, offset, size);
    if (verifyCrc) {
      const actual = computeBatchCrc(buf, offset, size);
      if (actual !== header.crc) {
        throw new ProtocolError(
          ProtocolErrorCodes.corruptRecord,
          `record batch at ${offset} has CRC ${header.crc.toString(16)}, computed ${actual.toString(16)}`,
        );
      }
    }
    yield { offset, size, header };
    offset += size;
  }
}

/**
 * Header consistency checks shared by the walker and the record decoder. A compacted batch may
 * hold fewer records than lastOffsetDelta + 1 (or none at all: Kafka keeps empty batches to
 * preserve producer state), never more.
 */
export function validateHeader(header: RecordBatchHeader, offset: number, size: number): void {
  const codec = compressionOf(header.attributes);
  if (header.recordCount < 0) invalidCount(header, offset);
  if (header.lastOffsetDelta < 0)
    throw invalid(`record batch at ${offset} has lastOffsetDelta ${header.lastOffsetDelta}`);
  if (header.recordCount > header.lastOffsetDelta + 1) {
    throw invalid(
      `record batch at ${offset} holds ${header.recordCount} records but lastOffsetDelta ${header.lastOffsetDelta} leaves room for ${header.lastOffsetDelta + 1}`,
    );
  }
  if (codec === Compression.none && header.recordCount > (size - RECORD_BATCH_HEADER_SIZE) / MIN_RECORD_SIZE) {
    invalidCount(header, offset);
  }
}

function invalidCount(header: RecordBatchHeader, offset: number): never {
  throw invalid(`record batch at ${offset} has impossible record count ${header.recordCount}`);
}
