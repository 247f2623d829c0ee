// Zombie fencing (issue 15) with two node-rdkafka producers (librdkafka 2.12) sharing one
// transactional id: the first opens a transaction and writes to partition 0; the second's
// init_transactions fences it. As in Kafka: the coordinator aborts the first's open transaction
// and gives the second a newer epoch; the first's commit fails with librdkafka's fatal fencing
// error (_FENCED, -144: librdkafka's name for both INVALID_PRODUCER_EPOCH and PRODUCER_FENCED);
// a read_committed consumer sees only the second's committed records.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  baseConfig,
  connect,
  disconnect,
  type LibrdKafkaError,
  type Producer,
  rdkafka,
} from '../../helpers/rdkafka.ts';
import {
  consumeKafkajs,
  describeTransaction,
  kafkajsClient,
  partitionView,
  RawConnection,
  randomTopic,
  seenAll,
  startTxnBroker,
  values,
  waitFor,
} from './helpers.ts';

const ERR__FENCED = -144;

function call(what: string, fn: (cb: (err: LibrdKafkaError | null | undefined) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    fn((err) => {
      if (err) reject(Object.assign(new Error(`${what}: ${err.message} (code ${err.code})`), { rdkafka: err }));
      else resolve();
    });
  });
}

/** The librdkafka error an operation failed with; fails the test if it succeeded. */
async function rdkafkaFailure(p: Promise<void>, what: string): Promise<LibrdKafkaError> {
  try {
    await p;
  } catch (err) {
    const e = (err as { rdkafka?: LibrdKafkaError }).rdkafka;
    assert.ok(e !== undefined, `${what}: ${String(err)}`);
    return e;
  }
  assert.fail(`${what} succeeded, expected it to be fenced`);
}

test('node-rdkafka: a second producer with the same transactional id fences the first', async (t) => {
  const { broker, defer } = await startTxnBroker(t);
  const kafka = kafkajsClient(broker.bootstrap, 'fencing-rdkafka-it');
  const admin = kafka.admin();
  await admin.connect();
  defer(() => admin.disconnect());
  const topic = randomTopic('fence-rdk');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const conn = await RawConnection.connect(broker.bootstrap);
  defer(() => conn.close());

  const transactionalId = randomTopic('fence-rdk-id');
  const newProducer = async (): Promise<Producer> => {
    const { Producer } = rdkafka();
    const p = new Producer({
      ...baseConfig(broker.bootstrap),
      'transactional.id': transactionalId,
      'transaction.timeout.ms': 60_000,
      dr_cb: true,
    });
    await connect(p);
    p.setPollInterval(10);
    defer(() => disconnect(p));
    return p;
  };

  const zombie = await newProducer();
  await call('zombie init', (cb) => zombie.initTransactions(30_000, cb));
  await call('zombie begin', (cb) => zombie.beginTransaction(cb));
  zombie.produce(topic, 0, Buffer.from('zombie-0'));
  zombie.produce(topic, 0, Buffer.from('zombie-1'));
  await call('zombie flush', (cb) => zombie.flush(30_000, cb));
  const before = await describeTransaction(conn, transactionalId);
  assert.equal(before.transactionState, 'Ongoing');

  const successor = await newProducer();
  await call('successor init', (cb) => successor.initTransactions(30_000, cb));
  const fenced = await describeTransaction(conn, transactionalId);
  assert.equal(fenced.producerId, before.producerId);
  assert.ok(
    fenced.producerEpoch > before.producerEpoch,
    `epoch ${fenced.producerEpoch}, ${before.producerEpoch} before`,
  );
  assert.equal(
    fenced.transactionState,
    'Empty',
    "the zombie's transaction aborted, the successor's InitProducerId done",
  );

  // The zombie comes back and commits: EndTxn at its old epoch is refused, and librdkafka makes
  // that its fatal fencing error. (A late Produce first would be answered INVALID_PRODUCER_EPOCH,
  // which librdkafka reports as an abortable error; fencing.test.ts checks that answer.)
  const err = await rdkafkaFailure(
    call('zombie commit', (cb) => zombie.commitTransaction(30_000, cb)),
    "the fenced producer's commit",
  );
  assert.equal(err.code, ERR__FENCED, `commit failed with ${err.message} (code ${err.code})`);
  assert.equal(err.isFatal, true, 'fencing is fatal');

  await call('successor begin', (cb) => successor.beginTransaction(cb));
  successor.produce(topic, 0, Buffer.from('successor-0'));
  await call('successor commit', (cb) => successor.commitTransaction(30_000, cb));
  await waitFor(
    async () => (await describeTransaction(conn, transactionalId)).transactionState === 'CompleteCommit',
    15_000,
    'CompleteCommit',
  );

  const seen = await consumeKafkajs(kafka, topic, {
    readUncommitted: false,
    until: seenAll(['successor-0']),
    what: "the successor's record (read_committed)",
  });
  assert.deepEqual(partitionView(seen, 0), [[3, 'successor-0']]);
  assert.ok(!values(seen).some((v) => v?.startsWith('zombie')), "a zombie's record reached read_committed");
});
