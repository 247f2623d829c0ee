// A transaction abandoned by its producer (issue 15) is aborted by the broker once its timeout
// has passed: with transaction.abort.timed.out.transaction.cleanup.interval.ms = 500 and a kafkajs
// producer asking for a 3 s transaction timeout, a transaction that wrote three records and was
// then left alone (neither committed nor aborted, its producer still connected) holds the last
// stable offset at its first record until the timeout, and is then aborted as Kafka does: an abort
// marker (the high watermark moves one past it), the last stable offset up to the high watermark,
// the state CompleteAbort at a bumped epoch, a read_committed consumer never sees its records,
// and the abandoned producer's late commit is refused as fenced.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  consumeKafkajs,
  describeTransaction,
  errorName,
  kafkaErrorCode,
  kafkajsClient,
  latestOffset,
  partitionView,
  RawConnection,
  READ_COMMITTED,
  READ_UNCOMMITTED,
  randomTopic,
  seenAll,
  sleep,
  startTxnBroker,
  values,
  waitFor,
  within,
} from './helpers.ts';

const TRANSACTION_TIMEOUT_MS = 3000;

test('an abandoned transaction is aborted by the broker after its timeout', async (t) => {
  const { broker, defer } = await startTxnBroker(t, {
    'transaction.abort.timed.out.transaction.cleanup.interval.ms': '500',
  });
  const kafka = kafkajsClient(broker.bootstrap, 'timeout-txn-it');
  const admin = kafka.admin();
  await admin.connect();
  defer(() => admin.disconnect());
  const topic = randomTopic('timeout-txn');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const conn = await RawConnection.connect(broker.bootstrap);
  defer(() => conn.close());

  const plain = kafka.producer();
  await plain.connect();
  defer(() => plain.disconnect());
  await plain.send({ topic, messages: [{ value: 'plain-0' }, { value: 'plain-1' }] }); // 0, 1

  const transactionalId = randomTopic('timeout-txn-id');
  const abandoned = kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: TRANSACTION_TIMEOUT_MS,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  await abandoned.connect();
  defer(() => abandoned.disconnect());
  const txn = await within(abandoned.transaction(), 30_000, 'the transaction');
  await txn.send({
    topic,
    messages: [{ value: 'abandoned-0' }, { value: 'abandoned-1' }, { value: 'abandoned-2' }].map((m) => ({
      ...m,
      partition: 0,
    })),
  }); // 2, 3, 4
  const sentAt = Date.now();

  const open = await describeTransaction(conn, transactionalId);
  assert.equal(open.transactionState, 'Ongoing');
  assert.equal(open.transactionTimeoutMs, TRANSACTION_TIMEOUT_MS);
  assert.deepEqual(
    open.topics.map((x) => [x.topic, x.partitions]),
    [[topic, [0]]],
  );
  assert.equal(await latestOffset(conn, topic, 0, READ_COMMITTED), 2n, 'the open transaction holds the LSO');
  assert.equal(await latestOffset(conn, topic, 0, READ_UNCOMMITTED), 5n);

  // Still open a while before its timeout.
  await sleep(Math.max(0, sentAt + TRANSACTION_TIMEOUT_MS / 2 - Date.now()));
  assert.equal((await describeTransaction(conn, transactionalId)).transactionState, 'Ongoing');
  assert.equal(await latestOffset(conn, topic, 0, READ_COMMITTED), 2n, 'the LSO before the timeout');

  // Aborted within the timeout plus a few cleanup intervals: the marker at 5, the LSO at 6.
  await waitFor(
    async () => (await latestOffset(conn, topic, 0, READ_COMMITTED)) === 6n,
    TRANSACTION_TIMEOUT_MS + 15_000,
    'the last stable offset to move past the abandoned transaction',
  );
  const abortedAfterMs = Date.now() - sentAt;
  t.diagnostic(`aborted ${abortedAfterMs} ms after the last send`);
  assert.equal(await latestOffset(conn, topic, 0, READ_UNCOMMITTED), 6n, 'one abort marker');
  await waitFor(
    async () => (await describeTransaction(conn, transactionalId)).transactionState === 'CompleteAbort',
    10_000,
    'the transaction state CompleteAbort',
  );
  const aborted = await describeTransaction(conn, transactionalId);
  assert.equal(aborted.producerId, open.producerId);
  assert.ok(aborted.producerEpoch > open.producerEpoch, 'the timeout abort bumps the epoch (fences the producer)');
  assert.deepEqual(aborted.topics, []);

  await plain.send({ topic, messages: [{ value: 'plain-2' }] }); // 6
  const seen = await consumeKafkajs(kafka, topic, {
    readUncommitted: false,
    until: seenAll(['plain-0', 'plain-1', 'plain-2']),
    what: 'the plain records (read_committed)',
  });
  assert.deepEqual(partitionView(seen, 0), [
    [0, 'plain-0'],
    [1, 'plain-1'],
    [6, 'plain-2'],
  ]);
  assert.ok(!values(seen).some((v) => v?.startsWith('abandoned')), 'an aborted record reached read_committed');

  // The producer comes back too late: its commit is refused.
  // (EndTxn v1: Kafka's PRODUCER_FENCED turned into INVALID_PRODUCER_EPOCH for versions below 2.)
  assert.equal(
    errorName(await kafkaErrorCode(within(txn.commit(), 30_000, 'late commit'))),
    'INVALID_PRODUCER_EPOCH',
    "the abandoned producer's late EndTxn",
  );
  assert.equal(await latestOffset(conn, topic, 0, READ_UNCOMMITTED), 7n, 'the late commit wrote no marker');
});
