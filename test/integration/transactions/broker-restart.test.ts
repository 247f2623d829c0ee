// Transactions survive a broker crash (kill -9), as in Kafka: the partition's producer state
// (snapshot + replay) still holds the open transaction, so the last stable offset stays at its
// first record; the reloaded transaction coordinator still knows it and aborts it at its timeout;
// the abort marker's .txnindex entry survives the next crash, so a read_committed consumer never
// sees the aborted record, while a read_uncommitted one does.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type BrokerProcess, spawnBroker } from '../../helpers/broker-process.ts';
import {
  consumeKafkajs,
  describeTransaction,
  kafkajsClient,
  latestOffset,
  RawConnection,
  READ_COMMITTED,
  READ_UNCOMMITTED,
  randomTopic,
  seenAll,
  sleep,
  TXN_BROKER_OVERRIDES,
  values,
} from './helpers.ts';

const OVERRIDES = {
  ...TXN_BROKER_OVERRIDES,
  'transaction.abort.timed.out.transaction.cleanup.interval.ms': '500',
};

test('an open transaction survives kill -9 of the broker, is aborted at its timeout, and its abort survives another', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-txn-restart-'));
  let broker: BrokerProcess | undefined = await spawnBroker(dataDir, OVERRIDES);
  t.after(async () => {
    await broker?.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });
  const topic = randomTopic('txn-restart');
  const transactionalId = randomTopic('txn-restart-id');
  {
    const kafka = kafkajsClient(broker.bootstrap, 'txn-restart-it');
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 6000,
    });
    await producer.connect();
    const committed = await producer.transaction();
    await committed.send({ topic, messages: [{ partition: 0, value: 'committed' }] });
    await committed.commit(); // committed@0, marker@1
    const open = await producer.transaction();
    await open.send({ topic, messages: [{ partition: 0, value: 'open' }] }); // open@2
    // Crash with the transaction open (the producer is left behind with the dead broker).
    await broker.stop('SIGKILL');
    await producer.disconnect().catch(() => undefined);
  }

  broker = await spawnBroker(dataDir, OVERRIDES);
  const conn = await RawConnection.connect(broker.bootstrap);
  t.after(() => conn.close());
  // The reloaded partition still has the transaction open: the LSO is its first offset.
  assert.equal(await latestOffset(conn, topic, 0, READ_UNCOMMITTED), 3n);
  assert.equal(await latestOffset(conn, topic, 0, READ_COMMITTED), 2n);
  // The reloaded coordinator aborts it at its timeout (6 s after it began): the LSO moves on.
  let lso = 0n;
  for (let i = 0; i < 100 && lso !== 4n; i++) {
    await sleep(200);
    lso = await latestOffset(conn, topic, 0, READ_COMMITTED);
  }
  assert.equal(lso, 4n, 'the abandoned transaction was aborted by the coordinator');
  assert.equal(await latestOffset(conn, topic, 0, READ_UNCOMMITTED), 4n);
  assert.equal((await describeTransaction(conn, transactionalId)).transactionState, 'CompleteAbort');
  conn.close();

  // Crash again: the abort is indexed on disk (.txnindex), read_committed still drops the record.
  await broker.stop('SIGKILL');
  broker = await spawnBroker(dataDir, OVERRIDES);
  const kafka = kafkajsClient(broker.bootstrap, 'txn-restart-read-it');
  const committedView = await consumeKafkajs(kafka, topic, {
    readUncommitted: false,
    until: seenAll(['committed']),
    what: 'the committed record (read_committed)',
    settleMs: 1000,
  });
  assert.deepEqual(values(committedView), ['committed']);
  const uncommittedView = await consumeKafkajs(kafka, topic, {
    readUncommitted: true,
    until: seenAll(['committed', 'open']),
    what: 'both records (read_uncommitted)',
  });
  assert.deepEqual(values(uncommittedView), ['committed', 'open']);
});
