// @platformatic/kafka transactions (issue 15) against an in-process broker: a producer with a
// transactionalId (InitProducerId v4+, AddPartitionsToTxn, EndTxn, flexible versions) commits one
// transaction on two partitions and aborts another; a consume-transform-produce transaction adds
// its consumer's group (AddOffsetsToTxn) and the consumed message's offset (TxnOffsetCommit) and
// commits. A read_committed consumer (the client's default isolation level) sees exactly the
// committed records at their offsets (each marker takes one); a read_uncommitted one sees the
// aborted records too; the group's committed offset is the one after the consumed message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Consumer,
  FetchIsolationLevels,
  type Message,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';
import {
  kafkajsClient,
  partitionView,
  randomTopic,
  type Seen,
  seenAll,
  sleep,
  sortSeen,
  startTxnBroker,
  values,
  waitFor,
  within,
} from './helpers.ts';

/** Reads `topic` from the beginning in a fresh group until `until` holds, then a little more. */
async function consumePlatformatic(
  bootstrap: string,
  topic: string,
  isolationLevel: number,
  until: (seen: readonly Seen[]) => boolean,
  what: string,
): Promise<Seen[]> {
  const consumer = new Consumer({
    clientId: 'pltf-txn-reader',
    groupId: randomTopic('pltf-txn-reader'),
    bootstrapBrokers: [bootstrap],
    deserializers: stringDeserializers,
    maxWaitTime: 200,
    isolationLevel,
  });
  const seen: Seen[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, isolationLevel });
    stream.on('data', (m: Message<string, string, string, string>) => {
      seen.push({ partition: m.partition, offset: Number(m.offset), value: m.value });
    });
    stream.on('error', () => {});
    try {
      await waitFor(() => until(seen), 30_000, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}; seen so far: ${JSON.stringify(sortSeen([...seen]))}`);
    }
    await sleep(500);
    await stream.close();
  } finally {
    await consumer.close(true);
  }
  return sortSeen(seen);
}

test('@platformatic/kafka: commit, abort, consume-transform-produce; read_committed sees committed records only', async (t) => {
  const { broker, defer } = await startTxnBroker(t);
  const kafka = kafkajsClient(broker.bootstrap, 'pltf-txn-admin');
  const admin = kafka.admin();
  await admin.connect();
  defer(() => admin.disconnect());
  const topic = randomTopic('pltf-txn');
  const input = randomTopic('pltf-txn-in');
  const group = randomTopic('pltf-txn-g');
  await admin.createTopics({
    topics: [
      { topic, numPartitions: 2 },
      { topic: input, numPartitions: 1 },
    ],
  });
  const plain = kafka.producer();
  await plain.connect();
  defer(() => plain.disconnect());
  await plain.send({ topic: input, messages: Array.from({ length: 3 }, (_, i) => ({ value: `in-${i}` })) });

  const producer = new Producer({
    clientId: 'pltf-txn-producer',
    bootstrapBrokers: [broker.bootstrap],
    transactionalId: randomTopic('pltf-txn-id'),
    idempotent: true,
    // Also the transaction timeout this client asks for in InitProducerId.
    timeout: 30_000,
    retries: 10,
    retryDelay: 200,
    serializers: stringSerializers,
  });
  defer(() => producer.close(true));

  // 1. Committed: p0 offsets 0, 1 (marker 2); p1 offset 0 (marker 1).
  const txn1 = await within(producer.beginTransaction(), 30_000, 'first beginTransaction');
  await within(
    txn1.send({
      messages: [
        { topic, partition: 0, value: 'c1-p0-0' },
        { topic, partition: 0, value: 'c1-p0-1' },
        { topic, partition: 1, value: 'c1-p1-0' },
      ],
    }),
    30_000,
    'first send',
  );
  await within(txn1.commit(), 30_000, 'first commit');

  // 2. Aborted: p0 offset 3 (marker 4); p1 offset 2 (marker 3).
  const txn2 = await within(producer.beginTransaction(), 30_000, 'second beginTransaction');
  await within(
    txn2.send({
      messages: [
        { topic, partition: 0, value: 'a2-p0-0' },
        { topic, partition: 1, value: 'a2-p1-0' },
      ],
    }),
    30_000,
    'second send',
  );
  await within(txn2.abort(), 30_000, 'abort');

  // 3. Consume-transform-produce: the first two input records become p0 offsets 5, 6 (marker 7),
  //    with p1 offset 4 (marker 5), and the group's offset moves past the second one with the commit.
  const source = new Consumer({
    clientId: 'pltf-txn-source',
    groupId: group,
    bootstrapBrokers: [broker.bootstrap],
    deserializers: stringDeserializers,
    maxWaitTime: 200,
  });
  defer(() => source.close(true));
  const stream = await source.consume({ topics: [input], mode: 'earliest', autocommit: false });
  const consumed: Message<string, string, string, string>[] = [];
  stream.on('data', (m: Message<string, string, string, string>) => {
    if (consumed.length < 2) consumed.push(m);
    if (consumed.length === 2) stream.pause();
  });
  await waitFor(() => consumed.length === 2, 30_000, 'two input records');
  const txn3 = await within(producer.beginTransaction(), 30_000, 'third beginTransaction');
  await within(
    txn3.send({
      messages: [
        ...consumed.map((m) => ({ topic, partition: 0, value: m.value.toUpperCase() })),
        { topic, partition: 1, value: 'c3-p1-0' },
      ],
    }),
    30_000,
    'third send',
  );
  await within(txn3.addConsumer(source), 30_000, 'addConsumer');
  await within(txn3.addOffset(consumed[1]!), 30_000, 'addOffset');
  await within(txn3.commit(), 30_000, 'third commit');
  await stream.close();

  const groupOffset = async (): Promise<string | undefined> => {
    const res = await admin.fetchOffsets({ groupId: group, topics: [input] });
    return res.find((x) => x.topic === input)?.partitions.find((p) => p.partition === 0)?.offset;
  };
  await waitFor(async () => (await groupOffset()) === '2', 15_000, "the group's offset 2 from the transaction");

  await t.test('a read_committed consumer sees the committed records only, at their offsets', async () => {
    const committed = ['c1-p0-0', 'c1-p0-1', 'c1-p1-0', 'IN-0', 'IN-1', 'c3-p1-0'];
    const seen = await consumePlatformatic(
      broker.bootstrap,
      topic,
      FetchIsolationLevels.READ_COMMITTED,
      seenAll(committed),
      'the committed records (read_committed)',
    );
    assert.deepEqual(partitionView(seen, 0), [
      [0, 'c1-p0-0'],
      [1, 'c1-p0-1'],
      [5, 'IN-0'],
      [6, 'IN-1'],
    ]);
    assert.deepEqual(partitionView(seen, 1), [
      [0, 'c1-p1-0'],
      [4, 'c3-p1-0'],
    ]);
    assert.ok(!values(seen).some((v) => v?.startsWith('a2-')), 'an aborted record reached a read_committed consumer');
  });

  await t.test('a read_uncommitted consumer sees the aborted records too', async () => {
    const all = ['c1-p0-0', 'c1-p0-1', 'c1-p1-0', 'a2-p0-0', 'a2-p1-0', 'IN-0', 'IN-1', 'c3-p1-0'];
    const seen = await consumePlatformatic(
      broker.bootstrap,
      topic,
      FetchIsolationLevels.READ_UNCOMMITTED,
      seenAll(all),
      'every record (read_uncommitted)',
    );
    assert.deepEqual(partitionView(seen, 0), [
      [0, 'c1-p0-0'],
      [1, 'c1-p0-1'],
      [3, 'a2-p0-0'],
      [5, 'IN-0'],
      [6, 'IN-1'],
    ]);
    assert.deepEqual(partitionView(seen, 1), [
      [0, 'c1-p1-0'],
      [2, 'a2-p1-0'],
      [4, 'c3-p1-0'],
    ]);
  });
});
