// ListTransactions (API 66) and DescribeTransactions (API 65), raw requests through the generated
// codecs (kafkajs has no admin call for them), about a kafkajs transactional producer (issue 15).
// As in Kafka: while the transaction is open its id is listed and described as Ongoing, with its
// producer id and epoch, its timeout, its start time and its partitions; after the commit it is
// CompleteCommit with no partitions, after an abort CompleteAbort; state and producer-id filters
// select; an unknown state filter is echoed in unknownStateFilters; an unknown transactional id is
// TRANSACTIONAL_ID_NOT_FOUND.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import {
  describeTransaction,
  describeTransactions,
  kafkajsClient,
  listTransactions,
  maxVersion,
  RawConnection,
  randomTopic,
  sleep,
  startTxnBroker,
  waitFor,
  within,
} from './helpers.ts';

test('ListTransactions and DescribeTransactions: Ongoing, CompleteCommit, CompleteAbort', async (t) => {
  const { broker, defer } = await startTxnBroker(t);
  const kafka = kafkajsClient(broker.bootstrap, 'list-describe-txn-it');
  const admin = kafka.admin();
  await admin.connect();
  defer(() => admin.disconnect());
  const topic = randomTopic('ld-txn');
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  const conn = await RawConnection.connect(broker.bootstrap);
  defer(() => conn.close());

  const transactionalId = randomTopic('ld-txn-id');
  const producer = kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: 45_000,
  });
  await producer.connect();
  defer(() => producer.disconnect());

  const listed = async (filters: Parameters<typeof listTransactions>[1] = {}, version = 0) => {
    const res = await listTransactions(conn, filters, version);
    assert.equal(res.errorCode, ErrorCode.NONE, `ListTransactions: error ${res.errorCode}`);
    return res.transactionStates.filter((s) => s.transactionalId === transactionalId);
  };

  const startedBefore = Date.now();
  const txn = await within(producer.transaction(), 30_000, 'the transaction');
  await txn.send({
    topic,
    messages: [
      { partition: 2, value: 'x' },
      { partition: 0, value: 'y' },
    ],
  });

  // Open.
  const ongoing = await describeTransaction(conn, transactionalId);
  assert.equal(ongoing.transactionState, 'Ongoing');
  assert.equal(ongoing.transactionTimeoutMs, 45_000);
  assert.ok(ongoing.producerId >= 0n);
  assert.ok(ongoing.producerEpoch >= 0);
  assert.ok(
    ongoing.transactionStartTimeMs >= BigInt(startedBefore - 1000) &&
      ongoing.transactionStartTimeMs <= BigInt(Date.now() + 1000),
    `start time ${ongoing.transactionStartTimeMs}, began at about ${startedBefore}`,
  );
  assert.deepEqual(
    ongoing.topics.map((x) => [x.topic, [...x.partitions].sort()]),
    [[topic, [0, 2]]],
  );

  assert.deepEqual(
    (await listed()).map((s) => [s.producerId, s.transactionState]),
    [[ongoing.producerId, 'Ongoing']],
  );
  assert.equal((await listed({ stateFilters: ['Ongoing'] })).length, 1, 'the Ongoing filter');
  assert.equal((await listed({ stateFilters: ['CompleteCommit', 'Empty'] })).length, 0, 'other state filters');
  assert.equal((await listed({ producerIdFilters: [ongoing.producerId] })).length, 1, 'its producer id');
  assert.equal((await listed({ producerIdFilters: [ongoing.producerId + 1000n] })).length, 0, 'another producer id');
  const unknownFilter = await listTransactions(conn, { stateFilters: ['NoSuchState', 'Ongoing'] });
  assert.equal(unknownFilter.errorCode, ErrorCode.NONE);
  assert.deepEqual(unknownFilter.unknownStateFilters, ['NoSuchState']);
  assert.ok(unknownFilter.transactionStates.some((s) => s.transactionalId === transactionalId));

  // ListTransactions v1 (KIP-994) filters by how long a transaction has been running.
  if ((await maxVersion(conn, 66)) >= 1) {
    await sleep(50);
    assert.equal((await listed({ durationFilter: 3_600_000n }, 1)).length, 0, 'running for an hour');
    assert.equal((await listed({ durationFilter: 10n }, 1)).length, 1, 'running for 10 ms');
  }

  // Committed.
  await within(txn.commit(), 30_000, 'commit');
  await waitFor(
    async () => (await describeTransaction(conn, transactionalId)).transactionState === 'CompleteCommit',
    15_000,
    'CompleteCommit',
  );
  const committed = await describeTransaction(conn, transactionalId);
  assert.equal(committed.producerId, ongoing.producerId);
  assert.equal(committed.producerEpoch, ongoing.producerEpoch);
  assert.deepEqual(committed.topics, []);
  assert.deepEqual(
    (await listed()).map((s) => s.transactionState),
    ['CompleteCommit'],
  );
  assert.equal((await listed({ stateFilters: ['CompleteCommit'] })).length, 1);
  assert.equal((await listed({ stateFilters: ['Ongoing'] })).length, 0);

  // Aborted.
  const txn2 = await within(producer.transaction(), 30_000, 'the second transaction');
  await txn2.send({ topic, messages: [{ partition: 1, value: 'z' }] });
  const ongoing2 = await describeTransaction(conn, transactionalId);
  assert.equal(ongoing2.transactionState, 'Ongoing');
  assert.deepEqual(
    ongoing2.topics.map((x) => [x.topic, x.partitions]),
    [[topic, [1]]],
  );
  await within(txn2.abort(), 30_000, 'abort');
  await waitFor(
    async () => (await describeTransaction(conn, transactionalId)).transactionState === 'CompleteAbort',
    15_000,
    'CompleteAbort',
  );
  assert.deepEqual(
    (await listed()).map((s) => s.transactionState),
    ['CompleteAbort'],
  );

  // An id nobody used.
  const [unknown] = await describeTransactions(conn, [randomTopic('no-such-txn-id')]);
  assert.equal(unknown?.errorCode, ErrorCode.TRANSACTIONAL_ID_NOT_FOUND);
});
