// Zombie fencing (issue 15) with two kafkajs producers sharing one transactional id: the first
// opens a transaction and writes to partition 0; the second's InitProducerId fences it. As in
// Kafka: the coordinator aborts the first's open transaction (a marker at the bumped epoch) and
// the second gets a newer epoch; the first's next Produce, AddPartitionsToTxn and EndTxn all fail
// with INVALID_PRODUCER_EPOCH (PRODUCER_FENCED on newer request versions) and append nothing; a
// read_committed consumer sees only the second's committed records, a read_uncommitted one also
// the first's aborted ones.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  consumeKafkajs,
  describeTransaction,
  errorName,
  kafkaErrorCode,
  kafkajsClient,
  partitionView,
  RawConnection,
  randomTopic,
  seenAll,
  startTxnBroker,
  values,
  waitFor,
  within,
} from './helpers.ts';

test('kafkajs: a second producer with the same transactional id fences the first and aborts its transaction', async (t) => {
  const { broker, defer } = await startTxnBroker(t);
  const kafka = kafkajsClient(broker.bootstrap, 'fencing-txn-it');
  const admin = kafka.admin();
  await admin.connect();
  defer(() => admin.disconnect());
  const topic = randomTopic('fence-txn');
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  const conn = await RawConnection.connect(broker.bootstrap);
  defer(() => conn.close());

  const transactionalId = randomTopic('fence-txn-id');
  const newProducer = () =>
    kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  const zombie = newProducer();
  await zombie.connect();
  defer(() => zombie.disconnect());

  // The zombie's open transaction: offsets 0, 1 of partition 0.
  const zombieTxn = await within(zombie.transaction(), 30_000, "the first producer's transaction");
  await zombieTxn.send({
    topic,
    messages: [
      { partition: 0, value: 'zombie-0' },
      { partition: 0, value: 'zombie-1' },
    ],
  });
  const before = await describeTransaction(conn, transactionalId);
  assert.equal(before.transactionState, 'Ongoing');

  // The second producer's InitProducerId fences the first and aborts its transaction (marker 2).
  const successor = newProducer();
  await successor.connect();
  defer(() => successor.disconnect());
  const txn = await within(successor.transaction(), 30_000, "the second producer's InitProducerId");
  const fenced = await describeTransaction(conn, transactionalId);
  assert.equal(fenced.producerId, before.producerId, 'the same producer id, a newer epoch');
  assert.ok(
    fenced.producerEpoch > before.producerEpoch,
    `epoch ${fenced.producerEpoch} after fencing, ${before.producerEpoch} before`,
  );

  // The zombie's Produce to a partition already in its transaction, AddPartitionsToTxn for a new
  // one, and EndTxn all fail as fenced. kafkajs speaks Produce v7, AddPartitionsToTxn v1 and EndTxn
  // v1: Kafka answers a stale epoch in Produce with INVALID_PRODUCER_EPOCH (since 2.7, never
  // PRODUCER_FENCED), and turns the coordinator's PRODUCER_FENCED into INVALID_PRODUCER_EPOCH for
  // AddPartitionsToTxn and EndTxn below v2, which do not know it.
  const answers = {
    Produce: errorName(
      await kafkaErrorCode(
        within(zombieTxn.send({ topic, messages: [{ partition: 0, value: 'zombie-late-0' }] }), 30_000, 'send'),
      ),
    ),
    AddPartitionsToTxn: errorName(
      await kafkaErrorCode(
        within(zombieTxn.send({ topic, messages: [{ partition: 1, value: 'zombie-late-1' }] }), 30_000, 'send'),
      ),
    ),
    EndTxn: errorName(await kafkaErrorCode(within(zombieTxn.commit(), 30_000, 'commit'))),
  };
  assert.deepEqual(answers, {
    Produce: 'INVALID_PRODUCER_EPOCH',
    AddPartitionsToTxn: 'INVALID_PRODUCER_EPOCH',
    EndTxn: 'INVALID_PRODUCER_EPOCH',
  });

  // The successor commits: offset 3 of partition 0 (marker 4).
  await txn.send({ topic, messages: [{ partition: 0, value: 'successor-0' }] });
  await within(txn.commit(), 30_000, "the second producer's commit");
  await waitFor(
    async () => (await describeTransaction(conn, transactionalId)).transactionState === 'CompleteCommit',
    15_000,
    'the transaction state CompleteCommit',
  );

  await t.test('read_committed sees only the successor', async () => {
    const seen = await consumeKafkajs(kafka, topic, {
      readUncommitted: false,
      until: seenAll(['successor-0']),
      what: "the successor's record (read_committed)",
    });
    assert.deepEqual(partitionView(seen, 0), [[3, 'successor-0']]);
    assert.ok(!values(seen).some((v) => v?.startsWith('zombie')), "a zombie's record reached read_committed");
  });

  await t.test("read_uncommitted sees the zombie's aborted records, never its rejected ones", async () => {
    const seen = await consumeKafkajs(kafka, topic, {
      readUncommitted: true,
      until: seenAll(['zombie-0', 'zombie-1', 'successor-0']),
      what: 'every stored record (read_uncommitted)',
    });
    assert.deepEqual(partitionView(seen, 0), [
      [0, 'zombie-0'],
      [1, 'zombie-1'],
      [3, 'successor-0'],
    ]);
    assert.deepEqual(partitionView(seen, 1), []);
  });
  const ends = await admin.fetchTopicOffsets(topic);
  assert.deepEqual(
    ends.sort((a, b) => a.partition - b.partition).map((o) => o.high),
    ['5', '0'],
  );
});
