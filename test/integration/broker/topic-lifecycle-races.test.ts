// Issue 11 item 10: concurrent Metadata requests auto-creating one topic got an unexpected "topic
// exists" error (answered without a broker list, after which librdkafka dropped its brokers), and
// auto-creation racing DeleteTopics left a topic in metadata with no partition directories.
// Creation, deletion and auto-creation are now serialised, and a topic is visible only once its
// logs exist.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import type { ProduceResponse } from '../../../src/protocol/messages/000-produce.ts';
import type { MetadataResponse } from '../../../src/protocol/messages/003-metadata.ts';
import type { DeleteTopicsResponse } from '../../../src/protocol/messages/020-delete-topics.ts';
import { buildRecordBatch } from '../../../src/protocol/records/builder.ts';
import { WireClient } from '../../helpers/wire-client.ts';

function autoCreate(client: WireClient, topic: string): Promise<MetadataResponse> {
  return client.request<MetadataResponse>(3, 9, {
    topics: [{ name: topic }],
    allowAutoTopicCreation: true,
    includeTopicAuthorizedOperations: false,
  });
}

test('auto-creation races: concurrent Metadata requests creating one topic all get it, with the broker list', async (t) => {
  const broker = await startBroker({ overrides: { 'num.partitions': '4' } });
  t.after(() => broker.close());
  const clients = await Promise.all(Array.from({ length: 16 }, () => WireClient.connect(broker.bootstrap)));
  t.after(() => {
    for (const c of clients) c.close();
  });
  for (let round = 0; round < 5; round++) {
    const topic = `race-${round}`;
    const answers = await Promise.all(clients.map((c) => autoCreate(c, topic)));
    const ids = new Set<string>();
    for (const md of answers) {
      assert.equal(md.brokers.length, 1, 'every answer names the broker');
      const t0 = md.topics[0]!;
      assert.equal(t0.errorCode, 0, `round ${round}: error ${t0.errorCode}`);
      assert.equal(t0.partitions.length, 4);
      ids.add(t0.topicId);
    }
    assert.equal(ids.size, 1, 'one topic, one topic ID');
  }
});

test('auto-creation races: DeleteTopics racing auto-creation never leaves a topic without its partition logs', async (t) => {
  // Many partitions: deletion works through them one by one, a wide window for a creation.
  const broker = await startBroker({ overrides: { 'num.partitions': '40' } });
  t.after(() => broker.close());
  const creator = await WireClient.connect(broker.bootstrap);
  const creator2 = await WireClient.connect(broker.bootstrap);
  const deleter = await WireClient.connect(broker.bootstrap);
  const producer = await WireClient.connect(broker.bootstrap);
  t.after(() => {
    creator.close();
    creator2.close();
    deleter.close();
    producer.close();
  });
  const topic = 'churn';
  // Two connections auto-create the topic over and over while a third deletes it 20 times.
  let deleting = true;
  const createLoop = async (client: WireClient) => {
    while (deleting) await autoCreate(client, topic);
  };
  const creating = [createLoop(creator), createLoop(creator2)];
  for (let i = 0; i < 20; i++) {
    await deleter.request<DeleteTopicsResponse>(20, 4, { topicNames: [topic], timeoutMs: 5000 });
  }
  deleting = false;
  await Promise.all(creating);
  // Whatever the interleaving, a topic the broker lists has every partition's log: it takes
  // appends, and its directories are on disk.
  const md = await autoCreate(creator, topic);
  assert.equal(md.topics[0]!.errorCode, 0);
  for (let p = 0; p < 40; p++) {
    assert.ok(existsSync(join(broker.dataDir, `${topic}-${p}`)), `${topic}-${p} has a directory`);
    const r = await producer.request<ProduceResponse>(0, 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 5000,
      topicData: [
        {
          name: topic,
          partitionData: [
            { index: p, records: await buildRecordBatch({ records: [{ key: null, value: Buffer.from('v') }] }) },
          ],
        },
      ],
    });
    assert.equal(r.responses[0]!.partitionResponses[0]!.errorCode, 0);
  }
});
