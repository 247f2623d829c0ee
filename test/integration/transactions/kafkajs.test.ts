// kafkajs 2.2.4 transactions (issue 15) against an in-process broker: a transactional producer
// (InitProducerId with a transactional id, AddPartitionsToTxn, transactional Produce, EndTxn)
// commits records on two partitions, aborts a second transaction, and commits a third with
// sendOffsets (AddOffsetsToTxn, TxnOffsetCommit) for a consumer group. As in Kafka: every marker
// takes an offset; the group's offset is invisible to OffsetFetch until the commit and then is
// the one sent; a read_committed consumer (kafkajs's default) sees exactly the committed records,
// at their offsets, and a read_uncommitted one sees the aborted records too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  consumeKafkajs,
  kafkajsClient,
  partitionView,
  randomTopic,
  seenAll,
  startTxnBroker,
  values,
  waitFor,
  within,
} from './helpers.ts';

test('kafkajs: commit, abort and sendOffsets; read_committed sees committed records only', async (t) => {
  const { broker, defer } = await startTxnBroker(t);
  const kafka = kafkajsClient(broker.bootstrap, 'kafkajs-txn-it');
  const admin = kafka.admin();
  await admin.connect();
  defer(() => admin.disconnect());
  const topic = randomTopic('kjs-txn');
  const input = randomTopic('kjs-txn-in');
  const group = randomTopic('kjs-txn-g');
  await admin.createTopics({
    topics: [
      { topic, numPartitions: 2 },
      { topic: input, numPartitions: 1 },
    ],
  });

  // Input records for the group whose offset the third transaction commits.
  const plain = kafka.producer();
  await plain.connect();
  defer(() => plain.disconnect());
  await plain.send({ topic: input, messages: Array.from({ length: 5 }, (_, i) => ({ value: `in-${i}` })) });

  const producer = kafka.producer({
    transactionalId: randomTopic('kjs-txn-id'),
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  defer(() => producer.disconnect());

  // 1. Committed: p0 offsets 0, 1 (marker 2); p1 offset 0 (marker 1).
  const txn1 = await within(producer.transaction(), 30_000, 'first transaction');
  await txn1.send({
    topic,
    messages: [
      { partition: 0, value: 'c1-p0-0' },
      { partition: 0, value: 'c1-p0-1' },
      { partition: 1, value: 'c1-p1-0' },
    ],
  });
  await within(txn1.commit(), 30_000, 'first commit');

  // 2. Aborted: p0 offset 3 (marker 4); p1 offsets 2, 3 (marker 4).
  const txn2 = await within(producer.transaction(), 30_000, 'second transaction');
  await txn2.send({
    topic,
    messages: [
      { partition: 0, value: 'a2-p0-0' },
      { partition: 1, value: 'a2-p1-0' },
      { partition: 1, value: 'a2-p1-1' },
    ],
  });
  await within(txn2.abort(), 30_000, 'abort');

  // 3. Committed with the group's offset: p0 offset 5, p1 offset 5 (markers 6).
  const txn3 = await within(producer.transaction(), 30_000, 'third transaction');
  await txn3.send({
    topic,
    messages: [
      { partition: 0, value: 'c3-p0-0' },
      { partition: 1, value: 'c3-p1-0' },
    ],
  });
  await within(
    txn3.sendOffsets({
      consumerGroupId: group,
      topics: [{ topic: input, partitions: [{ partition: 0, offset: '5' }] }],
    }),
    30_000,
    'sendOffsets',
  );
  const groupOffset = async (): Promise<string | undefined> => {
    const res = await admin.fetchOffsets({ groupId: group, topics: [input] });
    return res.find((x) => x.topic === input)?.partitions.find((p) => p.partition === 0)?.offset;
  };
  assert.equal(await groupOffset(), '-1', 'a transactional offset is not visible before the commit');
  await within(txn3.commit(), 30_000, 'third commit');
  await waitFor(async () => (await groupOffset()) === '5', 15_000, "the group's offset to be committed");

  // Markers take offsets: each partition ends at 7.
  await waitFor(
    async () => {
      const offsets = await admin.fetchTopicOffsets(topic);
      return offsets.length === 2 && offsets.every((o) => o.high === '7');
    },
    15_000,
    'both partitions to end at offset 7 (records and markers)',
  );

  await t.test('a read_committed consumer sees the committed records only, at their offsets', async () => {
    const committed = ['c1-p0-0', 'c1-p0-1', 'c1-p1-0', 'c3-p0-0', 'c3-p1-0'];
    const seen = await consumeKafkajs(kafka, topic, {
      readUncommitted: false,
      until: seenAll(committed),
      what: 'the committed records (read_committed)',
    });
    assert.deepEqual(partitionView(seen, 0), [
      [0, 'c1-p0-0'],
      [1, 'c1-p0-1'],
      [5, 'c3-p0-0'],
    ]);
    assert.deepEqual(partitionView(seen, 1), [
      [0, 'c1-p1-0'],
      [5, 'c3-p1-0'],
    ]);
    assert.ok(!values(seen).some((v) => v?.startsWith('a2-')), 'an aborted record reached a read_committed consumer');
  });

  await t.test('a read_uncommitted consumer sees the aborted records too, never a marker', async () => {
    const all = ['c1-p0-0', 'c1-p0-1', 'c1-p1-0', 'a2-p0-0', 'a2-p1-0', 'a2-p1-1', 'c3-p0-0', 'c3-p1-0'];
    const seen = await consumeKafkajs(kafka, topic, {
      readUncommitted: true,
      until: seenAll(all),
      what: 'every record (read_uncommitted)',
    });
    assert.deepEqual(partitionView(seen, 0), [
      [0, 'c1-p0-0'],
      [1, 'c1-p0-1'],
      [3, 'a2-p0-0'],
      [5, 'c3-p0-0'],
    ]);
    assert.deepEqual(partitionView(seen, 1), [
      [0, 'c1-p1-0'],
      [2, 'a2-p1-0'],
      [3, 'a2-p1-1'],
      [5, 'c3-p1-0'],
    ]);
  });
});
