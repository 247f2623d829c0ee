// Issue 11 item 9, with a current librdkafka (node-rdkafka 3.6, librdkafka 2.12): Fetch error
// partitions carried a null record set, which librdkafka refuses ("invalid MessageSetSize -1"):
// it drops the whole response unread and fetches again at once, thousands of times a second.
//   - A consumer at an out-of-range offset never saw OFFSET_OUT_OF_RANGE, so it never applied
//     auto.offset.reset and never received another record (every group whose committed offset
//     fell behind retention).
//   - A consumer of a topic deleted under it spun on Fetch instead of backing off.
// The raw-frame view of the same defect: test/integration/broker/fetch-error-records.test.ts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import type { DeleteTopicsResponse } from '../../../src/protocol/messages/020-delete-topics.ts';
import type { DeleteRecordsResponse } from '../../../src/protocol/messages/021-delete-records.ts';
import {
  baseConfig,
  connect,
  consumeBatch,
  DeliveringProducer,
  disconnect,
  type KafkaConsumer,
  type Message,
  rdkafka,
} from '../../helpers/rdkafka.ts';
import { ApiKeys, createTopic, RawConnection, randomTopic, waitFor } from '../broker/helpers.ts';

let broker: RunningBroker;
let admin: RawConnection;
let producer: DeliveringProducer;

before(async () => {
  broker = await startBroker({ logLevel: 'error' });
  admin = await RawConnection.connect(broker.bootstrap);
  producer = await DeliveringProducer.create(broker.bootstrap);
});

after(async () => {
  await producer?.close();
  admin?.close();
  await broker?.close();
});

/** A topic of one partition holding `count` records, values `v0`..; offsets 0..count-1. */
async function topicWith(prefix: string, count: number): Promise<string> {
  const topic = randomTopic(prefix);
  await createTopic(admin, topic, 1);
  for (let i = 0; i < count; i++) assert.equal(await producer.send(topic, 0, `v${i}`), i);
  return topic;
}

async function assignedConsumer(topic: string, offset: number, reset: 'earliest' | 'latest'): Promise<KafkaConsumer> {
  const { KafkaConsumer } = rdkafka();
  const consumer = new KafkaConsumer(
    {
      ...baseConfig(broker.bootstrap),
      'group.id': randomTopic('rdkafka-fetch-errors'),
      'enable.auto.commit': false,
    },
    { 'auto.offset.reset': reset },
  );
  await connect(consumer);
  consumer.setDefaultConsumeTimeout(100);
  consumer.assign([{ topic, partition: 0, offset }]);
  return consumer;
}

/** Consumes until `count` messages arrived; fails naming what it got if they do not within 30 s. */
async function consumeN(consumer: KafkaConsumer, count: number, what: string): Promise<Message[]> {
  const got: Message[] = [];
  await waitFor(
    async () => {
      got.push(...(await consumeBatch(consumer, count - got.length)));
      return got.length >= count;
    },
    30_000,
    `${what}: ${count} messages (got offsets ${got.map((m) => m.offset).join(',') || 'none'})`,
  );
  return got;
}

function requestsOf(apiKey: number): number {
  return broker.requestMetrics.apis().find((a) => a.apiKey === apiKey)?.requests ?? 0;
}

test('a librdkafka consumer below the log start offset applies auto.offset.reset=earliest and receives records', async (t) => {
  const topic = await topicWith('rdkafka-reset-earliest', 10);
  // Retention moved the log start to 5; the consumer resumes at 2 (say, an old committed offset).
  const deleted = await admin.request<DeleteRecordsResponse>(21, 2, {
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, offset: 5n }] }],
    timeoutMs: 5000,
  });
  assert.equal(deleted.topics[0]?.partitions[0]?.errorCode, 0);
  const consumer = await assignedConsumer(topic, 2, 'earliest');
  t.after(() => disconnect(consumer));
  const messages = await consumeN(consumer, 5, 'records from the log start after the reset');
  assert.deepEqual(
    messages.map((m) => [m.offset, m.value?.toString()]),
    [5, 6, 7, 8, 9].map((o) => [o, `v${o}`]),
  );
});

test('a librdkafka consumer past the log end applies auto.offset.reset=latest and receives new records', async (t) => {
  const topic = await topicWith('rdkafka-reset-latest', 10);
  const listOffsetsBefore = requestsOf(ApiKeys.ListOffsets);
  const consumer = await assignedConsumer(topic, 1000, 'latest');
  t.after(() => disconnect(consumer));
  // The reset to "latest" asks the broker for the log end (ListOffsets); once that is answered
  // (10), records produced from now on are the consumer's.
  await waitFor(
    () => requestsOf(ApiKeys.ListOffsets) > listOffsetsBefore,
    30_000,
    'the consumer to look up the log end for auto.offset.reset=latest',
  );
  for (let i = 10; i < 13; i++) assert.equal(await producer.send(topic, 0, `v${i}`), i);
  const messages = await consumeN(consumer, 3, 'records produced after the reset');
  assert.deepEqual(
    messages.map((m) => [m.offset, m.value?.toString()]),
    [10, 11, 12].map((o) => [o, `v${o}`]),
  );
});

test('a librdkafka consumer of a topic deleted under it does not spin on Fetch', async (t) => {
  const topic = await topicWith('rdkafka-deleted', 3);
  const consumer = await assignedConsumer(topic, 0, 'earliest');
  t.after(() => disconnect(consumer));
  // It is consuming: it has read what is there.
  await consumeN(consumer, 3, 'the records before the delete');
  const deleted = await admin.request<DeleteTopicsResponse>(20, 5, {
    topicNames: [topic],
    timeoutMs: 5000,
  });
  assert.equal(deleted.responses[0]?.errorCode, 0);

  // librdkafka backs off after a partition error (fetch.error.backoff.ms, 500 ms) and refreshes
  // its metadata: a handful of Fetch requests in 3 s. Refusing the response instead, it fetched
  // again at once, ~13,000 times a second.
  broker.requestMetrics.reset();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const fetches = requestsOf(ApiKeys.Fetch);
  t.diagnostic(`${fetches} Fetch requests in 3 s after the delete`);
  assert.ok(fetches < 200, `${fetches} Fetch requests in 3 s after the topic was deleted`);
});
