// DeleteTopics by name (v0-5) and by topic ID (v6, KIP-516), over a real socket.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import type { MetadataResponse } from '../../../src/protocol/messages/003-metadata.ts';
import type { CreateTopicsResponse } from '../../../src/protocol/messages/019-create-topics.ts';
import type { DeleteTopicsResponse } from '../../../src/protocol/messages/020-delete-topics.ts';
import { WireClient } from '../../helpers/wire-client.ts';

test('DeleteTopics by name and by topic ID; unknown ones get their error codes', async (t) => {
  const broker = await startBroker();
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  const created = await client.request<CreateTopicsResponse>(19, 7, {
    topics: ['by-name', 'by-id', 'kept'].map((name) => ({ name, numPartitions: 2, replicationFactor: 1 })),
    timeoutMs: 5000,
  });
  const idOf = (name: string) => created.topics.find((x) => x.name === name)!.topicId;

  const byName = await client.request<DeleteTopicsResponse>(20, 5, {
    topicNames: ['by-name', 'missing'],
    timeoutMs: 5000,
  });
  assert.deepEqual(
    byName.responses.map((r) => [r.name, r.errorCode]),
    [
      ['by-name', 0],
      ['missing', 3], // UNKNOWN_TOPIC_OR_PARTITION
    ],
  );
  const byId = await client.request<DeleteTopicsResponse>(20, 6, {
    topics: [
      { name: null, topicId: idOf('by-id') },
      { name: null, topicId: 'AQIDBAUGBwgJCgsMDQ4PEA' },
    ],
    timeoutMs: 5000,
  });
  assert.deepEqual(
    byId.responses.map((r) => [r.name, r.errorCode]),
    [
      ['by-id', 0],
      [null, 100], // UNKNOWN_TOPIC_ID
    ],
  );
  const md = await client.request<MetadataResponse>(3, 12, { topics: null });
  assert.deepEqual(
    md.topics.map((x) => x.name),
    ['kept'],
  );
  assert.equal(md.topics[0]?.topicId, idOf('kept'));
});
