// Issue 11 item 10, with a current librdkafka (node-rdkafka 3.6, librdkafka 2.12): concurrent
// Metadata requests auto-creating one topic raced; the losers got an unexpected "topic exists"
// error, answered without a broker list, after which librdkafka dropped its brokers ("All broker
// connections are down"). Many clients at once, as an application fleet starting up does: every
// Metadata request and every produce to the new topic succeeds, and every client still knows the
// broker afterwards. The broker runs as a process of its own: a dozen clients' blocking calls
// (getMetadata) would fill libuv's thread pool, which an in-process broker needs for its files.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type BrokerProcess, spawnBroker } from '../../helpers/broker-process.ts';
import { DeliveringProducer, getMetadata, type Metadata } from '../../helpers/rdkafka.ts';
import { randomTopic } from '../broker/helpers.ts';

const CLIENTS = 12;
const ROUNDS = 3;

const NODE_ID = 1;

let dataDir: string;
let broker: BrokerProcess;
const producers: DeliveringProducer[] = [];

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'samsa-rdkafka-race-'));
  broker = await spawnBroker(dataDir, { 'num.partitions': '3', 'node.id': String(NODE_ID) });
  for (let i = 0; i < CLIENTS; i++) {
    // A failed delivery is reported within 30 s instead of librdkafka's default 5 minutes.
    producers.push(await DeliveringProducer.create(broker.bootstrap, {}, { 'message.timeout.ms': 30_000 }));
  }
});

after(async () => {
  await Promise.all(producers.map((p) => p.close()));
  const exit = await broker?.stop();
  assert.equal(exit?.code, 0, `broker exit: ${broker?.stderr()}`);
  await rm(dataDir, { recursive: true, force: true });
});

function assertKnowsBrokerAndTopic(md: Metadata, topic: string, who: string): void {
  assert.deepEqual(
    md.brokers.map((b) => b.id),
    [NODE_ID],
    `${who}: the broker list`,
  );
  const t = md.topics.find((x) => x.name === topic);
  assert.ok(t !== undefined, `${who}: ${topic} in the metadata`);
  assert.equal(t.partitions.length, 3, `${who}: ${topic} partitions`);
}

test('concurrent librdkafka Metadata requests auto-creating one topic all succeed, with the broker list', async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const topic = randomTopic('rdkafka-race-md');
    const results = await Promise.allSettled(
      producers.map((p) => getMetadata(p.producer, { topic, allTopics: false })),
    );
    results.forEach((r, i) => {
      assert.equal(r.status, 'fulfilled', `client ${i}: ${r.status === 'rejected' ? String(r.reason) : ''}`);
      if (r.status === 'fulfilled') assertKnowsBrokerAndTopic(r.value, topic, `client ${i}, round ${round}`);
    });
  }
});

test('concurrent librdkafka producers auto-creating one topic all deliver and keep their broker', async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const topic = randomTopic('rdkafka-race-produce');
    const delivered = await Promise.allSettled(producers.map((p, i) => p.send(topic, null, `client-${i}`)));
    delivered.forEach((r, i) => {
      assert.equal(r.status, 'fulfilled', `client ${i}: ${r.status === 'rejected' ? String(r.reason) : ''}`);
    });
    // Every client still has the broker: an all-topics Metadata request names it and the topic.
    for (const [i, p] of producers.entries()) {
      assertKnowsBrokerAndTopic(await getMetadata(p.producer, { allTopics: true }), topic, `client ${i}`);
    }
  }
});
