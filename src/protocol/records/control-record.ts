/**
 * Control records (KIP-98): the single record of a control batch. Transaction markers are the
 * ones a broker writes and reads; other types (KRaft's leader change, snapshot header/footer...)
 * are recognised by id only.
 *
 *   key   => version int16 (0), type int16 (0 abort, 1 commit, ...)
 *   value => version int16 (0), coordinatorEpoch int32          (EndTransactionMarker)
 */
import { ProtocolError, ProtocolErrorCodes } from '../errors.ts';
import { buildRecordBatchSync } from './builder.ts';

export const ControlRecordTypes = { abort: 0, commit: 1 } as const;
export type ControlRecordType = keyof typeof ControlRecordTypes;

const CONTROL_RECORD_KEY_SIZE = 4;
const END_TXN_MARKER_VALUE_SIZE = 6;
const CURRENT_CONTROL_RECORD_VERSION = 0;
const CURRENT_END_TXN_MARKER_VERSION = 0;

export interface ControlRecord {
  /** 'abort' or 'commit' for transaction markers; 'unknown' for other control types. */
  type: ControlRecordType | 'unknown';
  /** The raw type id from the key. */
  typeId: number;
  /** The key's version. */
  version: number;
  /** The marker's coordinator epoch; -1 for control types that are not transaction markers. */
  coordinatorEpoch: number;
}

export interface BuildControlBatchOptions {
  type: ControlRecordType;
  producerId: bigint;
  producerEpoch: number;
  coordinatorEpoch: number;
  timestamp: bigint;
  baseOffset?: bigint | undefined;
  partitionLeaderEpoch?: number | undefined;
}

/**
 * A transaction marker batch as Kafka's MemoryRecords.withEndTransactionMarker writes it:
 * transactional + control attributes, no sequence, uncompressed, one record.
 */
export function buildControlBatch(options: BuildControlBatchOptions): Buffer {
  const key = Buffer.allocUnsafe(CONTROL_RECORD_KEY_SIZE);
  key.writeInt16BE(CURRENT_CONTROL_RECORD_VERSION, 0);
  key.writeInt16BE(ControlRecordTypes[options.type], 2);
  const value = Buffer.allocUnsafe(END_TXN_MARKER_VALUE_SIZE);
  value.writeInt16BE(CURRENT_END_TXN_MARKER_VERSION, 0);
  value.writeInt32BE(options.coordinatorEpoch, 2);
  return buildRecordBatchSync({
    records: [{ key, value, timestamp: options.timestamp }],
    baseOffset: options.baseOffset,
    producerId: options.producerId,
    producerEpoch: options.producerEpoch,
    partitionLeaderEpoch: options.partitionLeaderEpoch,
    transactional: true,
    isControl: true,
  });
}

/**
 * Reads the control record of a control batch. Like Kafka, later versions are accepted and
 * their extra bytes ignored; a negative version or a short key/value is malformed.
 */
export function readControlRecord(record: { key: Buffer | null; value: Buffer | null }): ControlRecord {
  const key = record.key;
  if (key === null || key.length < CONTROL_RECORD_KEY_SIZE) {
    throw new ProtocolError(
      ProtocolErrorCodes.invalid,
      `control record key has ${key === null ? 'no' : key.length} bytes, needs ${CONTROL_RECORD_KEY_SIZE}`,
    );
  }
  const version = key.readInt16BE(0);
  if (version < 0) throw new ProtocolError(ProtocolErrorCodes.invalid, `control record key version ${version}`);
  const typeId = key.readInt16BE(2);
  const type =
    typeId === ControlRecordTypes.abort ? 'abort' : typeId === ControlRecordTypes.commit ? 'commit' : 'unknown';
  if (type === 'unknown') return { type, typeId, version, coordinatorEpoch: -1 };
  const value = record.value;
  if (value === null || value.length < END_TXN_MARKER_VALUE_SIZE) {
    throw new ProtocolError(
      ProtocolErrorCodes.invalid,
      `transaction marker value has ${value === null ? 'no' : value.length} bytes, needs ${END_TXN_MARKER_VALUE_SIZE}`,
    );
  }
  const valueVersion = value.readInt16BE(0);
  if (valueVersion < 0) {
    throw new ProtocolError(ProtocolErrorCodes.invalid, `transaction marker value version ${valueVersion}`);
  }
  return { type, typeId, version, coordinatorEpoch: value.readInt32BE(2) };
}
