// kcat (librdkafka 2.0.2) reading a partition written by kafkajs transactions (issue 15): a
// committed, an aborted, a committed and an open transaction. As in Kafka, every marker takes an
// offset, so the offsets kcat prints have gaps where the markers are; read_uncommitted shows the
// aborted and the open records; read_committed (librdkafka's default isolation level) shows the
// committed records only and ends at the last stable offset, before the open transaction, whose
// records it shows once committed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kcat } from '../broker/helpers.ts';
import {
  kafkajsClient,
  latestOffset,
  RawConnection,
  READ_COMMITTED,
  READ_UNCOMMITTED,
  randomTopic,
  startTxnBroker,
  waitFor,
  within,
} from './helpers.ts';

test('kcat: offsets with gaps at the markers; read_committed shows committed records only', async (t) => {
  const { broker, defer } = await startTxnBroker(t);
  const kafka = kafkajsClient(broker.bootstrap, 'kcat-txn-it');
  const admin = kafka.admin();
  await admin.connect();
  defer(() => admin.disconnect());
  const topic = randomTopic('kcat-txn');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const conn = await RawConnection.connect(broker.bootstrap);
  defer(() => conn.close());

  const producer = kafka.producer({
    transactionalId: randomTopic('kcat-txn-id'),
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  defer(() => producer.disconnect());
  const transaction = async (vals: string[], end: 'commit' | 'abort' | 'open') => {
    const txn = await within(producer.transaction(), 30_000, `transaction ${vals[0]}`);
    await txn.send({ topic, messages: vals.map((value) => ({ partition: 0, value })) });
    if (end === 'commit') await within(txn.commit(), 30_000, `commit ${vals[0]}`);
    if (end === 'abort') await within(txn.abort(), 30_000, `abort ${vals[0]}`);
    return txn;
  };
  await transaction(['c1-0', 'c1-1'], 'commit'); // 0, 1; marker 2
  await transaction(['a2-0', 'a2-1'], 'abort'); // 3, 4; marker 5
  await transaction(['c3-0'], 'commit'); // 6; marker 7
  const open = await transaction(['o4-0', 'o4-1'], 'open'); // 8, 9; no marker yet

  // The last stable offset stops at the open transaction; the high watermark does not.
  await waitFor(
    async () => (await latestOffset(conn, topic, 0, READ_COMMITTED)) === 8n,
    15_000,
    'the last stable offset 8',
  );
  assert.equal(await latestOffset(conn, topic, 0, READ_UNCOMMITTED), 10n);

  const read = async (isolation: string | undefined): Promise<string[]> => {
    const args = ['-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o %s\\n'];
    if (isolation !== undefined) args.push('-X', `isolation.level=${isolation}`);
    const out = await kcat(broker.bootstrap, args, { timeoutMs: 30_000 });
    return out.split('\n').filter((l) => l.length > 0);
  };

  assert.deepEqual(await read('read_uncommitted'), [
    '0 c1-0',
    '1 c1-1',
    '3 a2-0',
    '4 a2-1',
    '6 c3-0',
    '8 o4-0',
    '9 o4-1',
  ]);
  const committedBefore = ['0 c1-0', '1 c1-1', '6 c3-0'];
  assert.deepEqual(await read('read_committed'), committedBefore, 'read_committed, with an open transaction');
  assert.deepEqual(await read(undefined), committedBefore, "librdkafka's default isolation level is read_committed");

  await within(open.commit(), 30_000, 'commit of the open transaction');
  const committedAfter = [...committedBefore, '8 o4-0', '9 o4-1'];
  let last: string[] = [];
  await waitFor(
    async () => {
      last = await read('read_committed');
      return last.length >= committedAfter.length;
    },
    20_000,
    'kcat read_committed to show the last transaction',
  );
  assert.deepEqual(last, committedAfter);
  assert.equal(await latestOffset(conn, topic, 0, READ_COMMITTED), 11n);
  assert.equal(await latestOffset(conn, topic, 0, READ_UNCOMMITTED), 11n);
});
