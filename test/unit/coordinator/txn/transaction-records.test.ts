// __transaction_state records: round trips through the generated codecs, the exact bytes of
// Kafka's TransactionLog layout, and the partition of a transactional id.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TransactionState } from '../../../../src/coordinator/txn/transaction-metadata.ts';
import {
  decodeTxnRecord,
  encodeTxnRecord,
  partitionForTransactionalId,
  type TxnLogValue,
} from '../../../../src/coordinator/txn/transaction-records.ts';

function value(overrides: Partial<TxnLogValue> = {}): TxnLogValue {
  return {
    producerId: 4242n,
    previousProducerId: -1n,
    nextProducerId: -1n,
    producerEpoch: 7,
    txnTimeoutMs: 60000,
    state: TransactionState.Ongoing,
    topicPartitions: [
      { topic: 'a', partition: 0 },
      { topic: 'b', partition: 3 },
      { topic: 'a', partition: 2 },
    ],
    txnStartTimestamp: 1700000000000n,
    txnLastUpdateTimestamp: 1700000000500n,
    clientTransactionVersion: 0,
    ...overrides,
  };
}

const sortTps = (v: TxnLogValue | null | undefined) =>
  v?.topicPartitions.map((tp) => `${tp.topic}:${tp.partition}`).sort();

test('every state round-trips through value version 0', () => {
  for (const state of Object.values(TransactionState)) {
    const v = value({ state, topicPartitions: state === TransactionState.Empty ? [] : value().topicPartitions });
    const enc = encodeTxnRecord({ transactionalId: 'txn-1', value: v });
    const dec = decodeTxnRecord(enc.key, enc.value);
    assert.equal(dec?.transactionalId, 'txn-1');
    assert.deepEqual({ ...dec?.value, topicPartitions: sortTps(dec?.value) }, { ...v, topicPartitions: sortTps(v) });
  }
});

test('value version 1 carries previous/next producer ids and the client transaction version', () => {
  const v = value({ previousProducerId: 4241n, nextProducerId: 4243n, clientTransactionVersion: 2 });
  const enc = encodeTxnRecord({ transactionalId: 'x', value: v }, 1);
  assert.equal(enc.value?.readInt16BE(0), 1);
  assert.deepEqual(decodeTxnRecord(enc.key, enc.value)?.value?.nextProducerId, 4243n);
  const dec = decodeTxnRecord(enc.key, enc.value)?.value;
  assert.equal(dec?.previousProducerId, 4241n);
  assert.equal(dec?.clientTransactionVersion, 2);
  // Defaults are left out, so version 1 with defaults decodes back to defaults.
  const plain = encodeTxnRecord({ transactionalId: 'x', value: value() }, 1);
  assert.deepEqual(decodeTxnRecord(plain.key, plain.value)?.value?.previousProducerId, -1n);
});

test('version 0 refuses fields it cannot carry, and Empty refuses partitions', () => {
  assert.throws(() => encodeTxnRecord({ transactionalId: 'x', value: value({ previousProducerId: 1n }) }));
  assert.throws(() => encodeTxnRecord({ transactionalId: 'x', value: value({ state: TransactionState.Empty }) }));
});

test('a tombstone has a null value and decodes to one', () => {
  const enc = encodeTxnRecord({ transactionalId: 'gone', value: null });
  assert.equal(enc.value, null);
  assert.deepEqual(decodeTxnRecord(enc.key, null), { transactionalId: 'gone', value: null });
});

test('keys of other versions are not transaction records', () => {
  const key = Buffer.from([0x00, 0x02, 0x00, 0x01, 0x67]);
  assert.equal(decodeTxnRecord(key, null), null);
});

test('key and value bytes match Kafka TransactionLog layout (key v0, value v0)', () => {
  const enc = encodeTxnRecord({
    transactionalId: 'txn-1',
    value: value({ topicPartitions: [{ topic: 't', partition: 1 }] }),
  });
  // int16 version 0, string: int16 length 5 + 'txn-1'
  assert.deepEqual(enc.key, Buffer.from([0x00, 0x00, 0x00, 0x05, 0x74, 0x78, 0x6e, 0x2d, 0x31]));
  const expected = Buffer.concat([
    Buffer.from([0x00, 0x00]), // value version 0
    Buffer.from([0, 0, 0, 0, 0, 0, 0x10, 0x92]), // ProducerId 4242
    Buffer.from([0x00, 0x07]), // ProducerEpoch 7
    Buffer.from([0x00, 0x00, 0xea, 0x60]), // TransactionTimeoutMs 60000
    Buffer.from([0x01]), // TransactionStatus Ongoing
    Buffer.from([0, 0, 0, 1]), // TransactionPartitions: 1 entry
    Buffer.from([0x00, 0x01, 0x74]), // Topic 't'
    Buffer.from([0, 0, 0, 1, 0, 0, 0, 1]), // PartitionIds [1]
    Buffer.from([0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x69, 0xf4]), // LastUpdateTimestampMs 1700000000500
    Buffer.from([0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00]), // StartTimestampMs 1700000000000
  ]);
  assert.deepEqual(enc.value, expected);
});

test('an Empty value writes null partitions (-1)', () => {
  const enc = encodeTxnRecord({
    transactionalId: 'e',
    value: value({ state: TransactionState.Empty, topicPartitions: [], txnStartTimestamp: -1n }),
  });
  // version(2) + producerId(8) + epoch(2) + timeout(4) + status(1) = offset 17
  assert.equal(enc.value?.readInt32BE(17), -1);
});

test('value v1 bytes: compact fields and tagged previous/next producer ids', () => {
  const enc = encodeTxnRecord(
    {
      transactionalId: 'txn-1',
      value: value({ topicPartitions: [{ topic: 't', partition: 1 }], previousProducerId: 1n, nextProducerId: 2n }),
    },
    1,
  );
  const expected = Buffer.concat([
    Buffer.from([0x00, 0x01]),
    Buffer.from([0, 0, 0, 0, 0, 0, 0x10, 0x92]),
    Buffer.from([0x00, 0x07]),
    Buffer.from([0x00, 0x00, 0xea, 0x60]),
    Buffer.from([0x01]),
    Buffer.from([0x02]), // compact array: 1 entry
    Buffer.from([0x02, 0x74]), // compact string 't'
    Buffer.from([0x02, 0, 0, 0, 1]), // compact [1]
    Buffer.from([0x00]), // entry tagged fields
    Buffer.from([0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x69, 0xf4]),
    Buffer.from([0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00]),
    Buffer.from([0x02]), // 2 tagged fields
    Buffer.from([0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 1]), // tag 0 PreviousProducerId 1
    Buffer.from([0x01, 0x08, 0, 0, 0, 0, 0, 0, 0, 2]), // tag 1 NextProducerId 2
  ]);
  assert.deepEqual(enc.value, expected);
});

test('partitionForTransactionalId follows Java String.hashCode', () => {
  // "txn-1": ((((116*31+120)*31+110)*31+45)*31+49) = 110810510, % 50 = 10
  assert.equal(partitionForTransactionalId('txn-1', 50), 110810510 % 50);
  assert.equal(partitionForTransactionalId('txn-1', 50), 10);
  // "hello".hashCode() == 99162322 in Java
  assert.equal(partitionForTransactionalId('hello', 50), 99162322 % 50);
  // "polygenelubricants".hashCode() == Integer.MIN_VALUE; Utils.abs maps it to 0
  assert.equal(partitionForTransactionalId('polygenelubricants', 50), 0);
  // A negative hash: "my-txn".hashCode() == -1061187895; Math.abs gives 1061187895, % 50 = 45
  // (masking the sign bit instead would give 3).
  assert.equal(partitionForTransactionalId('my-txn', 50), 45);
  // "Aa" and "BB" collide in Java (2112)
  assert.equal(partitionForTransactionalId('Aa', 7), partitionForTransactionalId('BB', 7));
  assert.equal(partitionForTransactionalId('Aa', 7), 2112 % 7);
});
