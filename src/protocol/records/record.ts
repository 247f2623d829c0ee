/**
 * Records inside a v2 batch (Kafka's DefaultRecord), and decoding a whole batch into them.
 *
 *   Record =>
 *     length          varint   bytes after this field
 *     attributes      int8     unused, 0
 *     timestampDelta  varlong  relative to the batch's baseTimestamp
 *     offsetDelta     varint   relative to the batch's baseOffset
 *     keyLength       varint   -1 for a null key
 *     key             bytes
 *     valueLength     varint   -1 for a null value
 *     value           bytes
 *     headersCount    varint
 *     Header => headerKeyLength varint, headerKey utf8, headerValueLength varint (-1 null), headerValue bytes
 *
 * Decoding is for consumers of record contents (compaction, control markers, tests, tools); the
 * produce and fetch paths move batches as raw bytes and never call it.
 */
import { ProtocolError, ProtocolErrorCodes } from '../errors.ts';
import {
  batchSizeAt,
  Compression,
  compressionOf,
  computeBatchCrc,
  RECORD_BATCH_HEADER_SIZE,
  type RecordBatchHeader,
  readBatchHeader,
  timestampTypeOf,
} from './batch-header.ts';
import { DEFAULT_MAX_DECOMPRESSED_SIZE, decompress, decompressSync } from './compression.ts';
import { MIN_RECORD_SIZE, validateHeader } from './iterate-batches.ts';
import { sizeOfVarint, sizeOfVarlong, VarintCursor, writeVarint, writeVarlong } from './varint.ts';

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/**
 * A decoded record. `key`, `value` and header values are views into the batch (or into its
 * decompressed payload): copy them to keep them beyond the buffer's lifetime.
 */
export interface Record {
  /** Absolute offset: baseOffset + offsetDelta. */
  offset: bigint;
  /** Absolute timestamp, or the batch's maxTimestamp when the batch uses LogAppendTime. */
  timestamp: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  attributes: number;
}

/** Alias for code that also uses TypeScript's global `Record<K, V>` utility type. */
export type DecodedRecord = Record;

export interface DecodedBatch {
  header: RecordBatchHeader;
  records: Record[];
}

export interface DecodeRecordsOptions {
  /** Check the CRC before decoding (default true, as Java's consumer check.crcs). */
  verifyCrc?: boolean | undefined;
  /** Bound on a compressed batch's decompressed size (default 64 MiB). */
  maxDecompressedSize?: number | undefined;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** What the builder needs to encode one record. */
export interface RecordInput {
  key: Buffer | null;
  value: Buffer | null;
  headers?: readonly RecordHeader[] | undefined;
  /** Absolute CreateTime timestamp; the builder's default timestamp when absent. */
  timestamp?: bigint | undefined;
}

/** Size of the record body (everything after the length varint). */
export function sizeOfRecordBody(record: RecordInput, offsetDelta: number, timestampDelta: bigint): number {
  let size = 1 + sizeOfVarlong(timestampDelta) + sizeOfVarint(offsetDelta);
  const key = record.key;
  size += key === null ? 1 : sizeOfVarint(key.length) + key.length;
  const value = record.value;
  size += value === null ? 1 : sizeOfVarint(value.length) + value.length;
  const headers = record.headers;
  if (headers === undefined) return size + 1;
  size += sizeOfVarint(headers.length);
  for (const h of headers) {
    const keyLength = Buffer.byteLength(h.key);
    size += sizeOfVarint(keyLength) + keyLength;
    size += h.value === null ? 1 : sizeOfVarint(h.value.length) + h.value.length;
  }
  return size;
}

/** Writes one record (length prefix included) at `pos`; returns the position after it. */
export function writeRecord(
  buf: Buffer,
  pos: number,
  record: RecordInput,
  offsetDelta: number,
  timestampDelta: bigint,
  bodySize: number,
): number {
  pos = writeVarint(buf, pos, bodySize);
  buf[pos++] = 0; // attributes: unused in v2
  pos = writeVarlong(buf, pos, timestampDelta);
  pos = writeVarint(buf, pos, offsetDelta);
  pos = writeNullableBytes(buf, pos, record.key);
  pos = writeNullableBytes(buf, pos, record.value);
  const headers = record.headers;
  if (headers === undefined) return writeVarint(buf, pos, 0);
  pos = writeVarint(buf, pos, headers.length);
  for (const h of headers) {
    pos = writeVarint(buf, pos, Buffer.byteLength(h.key));
    pos += buf.write(h.key, pos, 'utf8');
    pos = writeNullableBytes(buf, pos, h.value);
  }
  return pos;
}

function writeNullableBytes(buf: Buffer, pos: number, bytes: Buffer | null): number {
  if (bytes === null) return writeVarint(buf, pos, -1);
  pos = writeVarint(buf, pos, bytes.length);
  return pos + bytes.copy(buf, pos);
}

// ---------------------------------------------------------------------------------------------
// Decoding

function invalid(message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCodes.invalid, message);
}

function readNullableBytes(c: VarintCursor, what: string): Buffer | null {
  const n = c.varint();
  if (n === -1) return null;
  if (n < 0) throw invalid(`record ${what} has length ${n}`);
  return c.bytes(n, what);
}

/**
 * Decodes the (already decompressed) records section of a batch. Each record must end exactly
 * where its length says, the count must match the header, and nothing may follow the last
 * record, as Kafka's DefaultRecordBatch iterators insist.
 */
export function decodeRecordsPayload(payload: Buffer, header: RecordBatchHeader): Record[] {
  const count = header.recordCount;
  if (count > payload.length / MIN_RECORD_SIZE) {
    throw invalid(`record count ${count} is impossible in ${payload.length} bytes of records`);
  }
  const logAppendTime = timestampTypeOf(header.attributes) === 1;
  const records: Record[] = [];
  const c = new VarintCursor(payload, 0, payload.length);
  for (let i = 0; i < count; i++) {
    c.end = payload.length;
    const bodySize = c.varint();
    if (bodySize < 0) throw invalid(`record ${i} has length ${bodySize}`);
    if (bodySize > payload.length - c.pos) {
      throw new ProtocolError(
        ProtocolErrorCodes.truncated,
        `record ${i} of ${bodySize} bytes exceeds the ${payload.length - c.pos} bytes remaining`,
      );
    }
    const recordEnd = c.pos + bodySize;
    c.end = recordEnd;
    const attributes = c.int8();
    const timestampDelta = c.varlong();
    const offsetDelta = c.varint();
    if (offsetDelta < 0 || offsetDelta > header.lastOffsetDelta) {
      throw invalid(`record ${i} has offsetDelta ${offsetDelta} outside 0..${header.lastOffsetDelta}`);
    }
    const key = readNullableBytes(c, 'key');
    const value = readNullableBytes(c, 'value');
    const headerCount = c.varint();
    // Each header takes at least 2 bytes, which bounds the loop by the record's size.
    if (headerCount < 0 || headerCount > (recordEnd - c.pos) / 2) {
      throw invalid(`record ${i} has impossible header count ${headerCount}`);
    }
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h++) {
      const keyLength = c.varint();
      if (keyLength < 0) throw invalid(`record ${i} header ${h} has key length ${keyLength}`);
      const headerKey = c.bytes(keyLength, 'header key').toString('utf8');
      headers.push({ key: headerKey, value: readNullableBytes(c, 'header value') });
    }
    if (c.pos !== recordEnd) {
      throw invalid(`record ${i} declares ${bodySize} bytes but its fields take ${bodySize - (recordEnd - c.pos)}`);
    }
    records.push({
      offset: header.baseOffset + BigInt(offsetDelta),
      timestamp: logAppendTime ? header.maxTimestamp : header.baseTimestamp + timestampDelta,
      key,
      value,
      headers,
      attributes,
    });
  }
  if (c.pos !== payload.length) {
    throw invalid(`${payload.length - c.pos} bytes follow the ${count} records the batch declares`);
  }
  return records;
}

/** Header of the single batch that must make up `batch`, validated; the payload is not decompressed. */
function prepare(batch: Buffer, options: DecodeRecordsOptions): RecordBatchHeader {
  const header = readBatchHeader(batch, 0);
  const size = batchSizeAt(batch, 0);
  if (size > batch.length) {
    throw new ProtocolError(
      ProtocolErrorCodes.truncated,
      `record batch declares ${size} bytes but the buffer holds ${batch.length}`,
    );
  }
  if (size < batch.length) {
    throw invalid(
      `buffer holds ${batch.length - size} bytes after the ${size}-byte record batch (use iterateBatches for several)`,
    );
  }
  validateHeader(header, 0, size);
  if (options.verifyCrc ?? true) {
    const actual = computeBatchCrc(batch, 0, size);
    if (actual !== header.crc) {
      throw new ProtocolError(
        ProtocolErrorCodes.corruptRecord,
        `record batch CRC is ${header.crc.toString(16)}, computed ${actual.toString(16)}`,
      );
    }
  }
  return header;
}

/** Decodes one complete batch (exactly the bytes of one batch), decompressing synchronously. */
export function decodeBatchSync(batch: Buffer, options: DecodeRecordsOptions = {}): DecodedBatch {
  const header = prepare(batch, options);
  const codec = compressionOf(header.attributes);
  let payload = batch.subarray(RECORD_BATCH_HEADER_SIZE);
  if (codec !== Compression.none) {
    payload = decompressSync(codec, payload, options.maxDecompressedSize ?? DEFAULT_MAX_DECOMPRESSED_SIZE);
  }
  return { header, records: decodeRecordsPayload(payload, header) };
}

/** Decodes one complete batch, decompressing on the thread pool. */
export async function decodeBatch(batch: Buffer, options: DecodeRecordsOptions = {}): Promise<DecodedBatch> {
  const header = prepare(batch, options);
  const codec = compressionOf(header.attributes);
  let payload = batch.subarray(RECORD_BATCH_HEADER_SIZE);
  if (codec !== Compression.none) {
    payload = await decompress(codec, payload, options.maxDecompressedSize ?? DEFAULT_MAX_DECOMPRESSED_SIZE);
  }
  return { header, records: decodeRecordsPayload(payload, header) };
}

export function decodeRecordsSync(batch: Buffer, options: DecodeRecordsOptions = {}): Record[] {
  return decodeBatchSync(batch, options).records;
}

export async function decodeRecords(batch: Buffer, options: DecodeRecordsOptions = {}): Promise<Record[]> {
  return (await decodeBatch(batch, options)).records;
}
