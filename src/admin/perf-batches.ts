/**
 * Record batches for `samsa perf produce`, made cheaply enough that the load generator, not its
 * batch building, is what a broker benchmark measures.
 *
 * Every record carries the same payload (as in Kafka's kafka-producer-perf-test) and, within a
 * batch, the same timestamp, so record i of any batch encodes to the same bytes: the records
 * section of the largest batch is encoded once, and a batch of n records is its first n records
 * behind a fresh header (count, timestamps, CRC-32C computed over the whole batch, as a producer
 * does). Uncompressed batches are written into recycled buffers of the largest batch's size
 * (a batch is a view of one): fresh multi-hundred-KiB buffers cost a page fault per 4 KiB on
 * first touch, which on this kind of VM is most of the copy's price, and each is V8 external
 * memory, whose churn forces full GCs that pause the generator. Compressed batches are built and
 * compressed per batch by the regular builder.
 */
import {
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  BASE_SEQUENCE_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_LENGTH_OFFSET,
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
  PARTITION_LEADER_EPOCH_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  RECORD_BATCH_HEADER_SIZE,
  RECORDS_COUNT_OFFSET,
} from '../protocol/records/batch-header.ts';
import { buildRecordBatch, buildRecordBatchSync } from '../protocol/records/builder.ts';
import type { RecordInput } from '../protocol/records/record.ts';
import { VarintCursor } from '../protocol/records/varint.ts';

/** Recycled batch buffers kept at most (beyond it, a returned buffer is left to the GC). */
const MAX_FREE_BYTES = 64 * 1024 * 1024;

export class PerfBatchFactory {
  private readonly payload: Buffer;
  private readonly compression: CompressionType;
  private readonly maxRecords: number;
  /** Encoded records 0..maxRecords-1 (uncompressed), and where record i ends in it. */
  private readonly section: Buffer;
  private readonly recordEnds: Int32Array;
  /** Free buffers, each the size of the largest batch. */
  private readonly free: Buffer[] = [];
  private readonly owned = new WeakSet<ArrayBufferLike>();
  private readonly template: RecordInput;

  constructor(payload: Buffer, maxRecordsPerBatch: number, compression: CompressionType) {
    this.payload = payload;
    this.compression = compression;
    this.maxRecords = maxRecordsPerBatch;
    this.template = { key: null, value: payload, timestamp: 0n };
    const whole = buildRecordBatchSync({
      records: new Array<RecordInput>(maxRecordsPerBatch).fill(this.template),
      timestamp: 0n,
    });
    this.section = whole.subarray(RECORD_BATCH_HEADER_SIZE);
    this.recordEnds = new Int32Array(maxRecordsPerBatch);
    const cursor = new VarintCursor(this.section, 0, this.section.length);
    for (let i = 0; i < maxRecordsPerBatch; i++) {
      const length = cursor.varint();
      cursor.pos += length;
      this.recordEnds[i] = cursor.pos;
    }
  }

  /** A batch of `count` records stamped `timestamp`; give it back with release() once sent. */
  async build(count: number, timestamp: bigint): Promise<Buffer> {
    if (count < 1 || count > this.maxRecords) throw new RangeError(`batch of ${count} records`);
    if (this.compression !== Compression.none) {
      return buildRecordBatch({
        records: new Array<RecordInput>(count).fill({ key: null, value: this.payload }),
        compression: this.compression,
        timestamp,
      });
    }
    const recordsSize = this.recordEnds[count - 1]!;
    const buf = this.takeBuffer().subarray(0, RECORD_BATCH_HEADER_SIZE + recordsSize);
    this.section.copy(buf, RECORD_BATCH_HEADER_SIZE, 0, recordsSize);
    buf.writeBigInt64BE(0n, BASE_OFFSET_OFFSET);
    buf.writeInt32BE(buf.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
    buf.writeInt32BE(NO_PARTITION_LEADER_EPOCH, PARTITION_LEADER_EPOCH_OFFSET);
    buf.writeInt8(CURRENT_MAGIC, MAGIC_OFFSET);
    buf.writeInt16BE(0, ATTRIBUTES_OFFSET);
    buf.writeInt32BE(count - 1, LAST_OFFSET_DELTA_OFFSET);
    buf.writeBigInt64BE(timestamp, BASE_TIMESTAMP_OFFSET);
    buf.writeBigInt64BE(timestamp, MAX_TIMESTAMP_OFFSET);
    buf.writeBigInt64BE(NO_PRODUCER_ID, PRODUCER_ID_OFFSET);
    buf.writeInt16BE(NO_PRODUCER_EPOCH, PRODUCER_EPOCH_OFFSET);
    buf.writeInt32BE(NO_SEQUENCE, BASE_SEQUENCE_OFFSET);
    buf.writeInt32BE(count, RECORDS_COUNT_OFFSET);
    buf.writeUInt32BE(computeBatchCrc(buf, 0, buf.length), CRC_OFFSET);
    return buf;
  }

  /** Returns a batch from build() whose request has completed (its bytes are no longer referenced). */
  release(batch: Buffer): void {
    if (this.compression !== Compression.none || !this.owned.has(batch.buffer)) return;
    if (this.free.length * this.wholeBatchBytes >= MAX_FREE_BYTES) return;
    this.free.push(Buffer.from(batch.buffer, batch.byteOffset, this.wholeBatchBytes));
  }

  private get wholeBatchBytes(): number {
    return RECORD_BATCH_HEADER_SIZE + this.recordEnds[this.maxRecords - 1]!;
  }

  private takeBuffer(): Buffer {
    const free = this.free.pop();
    if (free !== undefined) return free;
    const buf = Buffer.allocUnsafeSlow(this.wholeBatchBytes);
    this.owned.add(buf.buffer);
    return buf;
  }
}
