/**
 * The transaction coordinator's records in `__transaction_state`, laid out as Kafka's
 * TransactionLog writes them (so Kafka's tooling reads Samsa's topic and the other way round):
 *
 *   key   = int16 key version 0 + TransactionLogKey (transactional id)
 *   value = int16 value version + TransactionLogValue, or null (a tombstone: the id expired)
 *
 * Kafka 3.9 writes value version 0 (version 1, flexible with tagged previous/next producer ids
 * and client transaction version, only once `transaction.version` >= 1 is enabled); both are read.
 * The last producer epoch is not in the schema: like Kafka, a loaded id has none (-1).
 */
import {
  readTransactionLogKey,
  writeTransactionLogKey,
} from '../../protocol/messages/coordinator/transaction-log-key.ts';
import {
  readTransactionLogValue,
  type TransactionLogValuePartitionsSchemaInput,
  writeTransactionLogValue,
} from '../../protocol/messages/coordinator/transaction-log-value.ts';
import { Reader } from '../../protocol/reader.ts';
import { Writer } from '../../protocol/writer.ts';
import { javaStringHashCode } from '../group/coordinator-records.ts';
import {
  NO_PRODUCER_ID,
  type TopicPartition,
  TransactionState,
  transactionStateFromId,
} from './transaction-metadata.ts';

export const TXN_LOG_KEY_VERSION = 0;
/** What Kafka 3.9 writes by default (transaction.version 0). */
export const TXN_LOG_VALUE_VERSION = 0;

export interface TxnLogValue {
  producerId: bigint;
  /** Only carried by value version 1+ (-1 otherwise). */
  previousProducerId: bigint;
  /** Only carried by value version 1+ (-1 otherwise). */
  nextProducerId: bigint;
  producerEpoch: number;
  txnTimeoutMs: number;
  state: TransactionState;
  topicPartitions: TopicPartition[];
  txnStartTimestamp: bigint;
  txnLastUpdateTimestamp: bigint;
  /** Only carried by value version 1+ (0 otherwise). */
  clientTransactionVersion: number;
}

export interface TxnLogRecord {
  transactionalId: string;
  value: TxnLogValue | null;
}

export interface EncodedTxnRecord {
  key: Buffer;
  value: Buffer | null;
}

export function encodeTxnRecord(record: TxnLogRecord, valueVersion: number = TXN_LOG_VALUE_VERSION): EncodedTxnRecord {
  const k = new Writer(64);
  k.int16(TXN_LOG_KEY_VERSION);
  writeTransactionLogKey(k, TXN_LOG_KEY_VERSION, { transactionalId: record.transactionalId });
  const v = record.value;
  if (v === null) return { key: k.toBuffer(), value: null };
  if (v.state === TransactionState.Empty && v.topicPartitions.length > 0)
    throw new Error(`${record.transactionalId}: an Empty transaction cannot have partitions`);
  // Kafka writes null partitions for Empty, and one entry per topic otherwise.
  let partitions: TransactionLogValuePartitionsSchemaInput[] | null = null;
  if (v.state !== TransactionState.Empty) {
    const byTopic = new Map<string, number[]>();
    for (const tp of v.topicPartitions) {
      const ids = byTopic.get(tp.topic);
      if (ids === undefined) byTopic.set(tp.topic, [tp.partition]);
      else ids.push(tp.partition);
    }
    partitions = [...byTopic].map(([topic, partitionIds]) => ({ topic, partitionIds }));
  }
  // The tagged fields (version 1+) are written by the codec, ascending, defaults omitted.
  if (
    valueVersion < 1 &&
    (v.previousProducerId !== NO_PRODUCER_ID || v.nextProducerId !== NO_PRODUCER_ID || v.clientTransactionVersion !== 0)
  ) {
    throw new Error(
      `${record.transactionalId}: value version 0 cannot carry previous/next producer ids or a client transaction version`,
    );
  }
  const w = new Writer(128);
  w.int16(valueVersion);
  writeTransactionLogValue(w, valueVersion, {
    producerId: v.producerId,
    producerEpoch: v.producerEpoch,
    transactionTimeoutMs: v.txnTimeoutMs,
    transactionStatus: v.state,
    transactionPartitions: partitions,
    transactionLastUpdateTimestampMs: v.txnLastUpdateTimestamp,
    transactionStartTimestampMs: v.txnStartTimestamp,
    previousProducerId: v.previousProducerId,
    nextProducerId: v.nextProducerId,
    clientTransactionVersion: v.clientTransactionVersion,
  });
  return { key: k.toBuffer(), value: w.toBuffer() };
}

/**
 * Decodes one `__transaction_state` record; null when the key version is not 0 (not a
 * transaction record, which loading skips, as Kafka's readTxnRecordKey does).
 */
export function decodeTxnRecord(key: Buffer, value: Buffer | null): TxnLogRecord | null {
  const r = new Reader(key);
  if (r.int16() !== TXN_LOG_KEY_VERSION) return null;
  const { transactionalId } = readTransactionLogKey(r, TXN_LOG_KEY_VERSION);
  if (value === null) return { transactionalId, value: null };
  const vr = new Reader(value);
  const version = vr.int16();
  const m = readTransactionLogValue(vr, version);
  const { previousProducerId, nextProducerId, clientTransactionVersion } = m;
  const state = transactionStateFromId(m.transactionStatus);
  const topicPartitions: TopicPartition[] = [];
  // Like Kafka, partitions of an Empty transaction are ignored (they are written as null).
  if (state !== TransactionState.Empty)
    for (const p of m.transactionPartitions ?? [])
      for (const partition of p.partitionIds) topicPartitions.push({ topic: p.topic, partition });
  return {
    transactionalId,
    value: {
      producerId: m.producerId,
      previousProducerId,
      nextProducerId,
      producerEpoch: m.producerEpoch,
      txnTimeoutMs: m.transactionTimeoutMs,
      state,
      topicPartitions,
      txnStartTimestamp: m.transactionStartTimestampMs,
      txnLastUpdateTimestamp: m.transactionLastUpdateTimestampMs,
      clientTransactionVersion,
    },
  };
}

/**
 * The `__transaction_state` partition that owns a transactional id: Kafka's
 * Utils.abs(transactionalId.hashCode) % partitions. Utils.abs is Math.abs except that
 * Integer.MIN_VALUE maps to 0 (Math.abs would leave it negative); it is not a sign-bit mask,
 * which would send a negative hash to another partition than Kafka's.
 */
export function partitionForTransactionalId(transactionalId: string, partitions: number): number {
  const h = javaStringHashCode(transactionalId);
  return (h === -2147483648 ? 0 : Math.abs(h)) % partitions;
}
