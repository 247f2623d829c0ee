// Per-API request timings (Kafka's TotalTimeMs / LocalTimeMs) recorded by the network layer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import { WireClient } from '../../helpers/wire-client.ts';

test('every answered request is timed under its API key; a long-poll Fetch shows its wait', async (t) => {
  const broker = await startBroker();
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  broker.requestMetrics.reset();
  for (let i = 0; i < 3; i++) await client.request(18, 3, {});
  const topic = `metrics-${Date.now()}`;
  await client.request(19, 4, { topics: [{ name: topic, numPartitions: 1, replicationFactor: 1 }], timeoutMs: 5000 });
  // An empty partition and min_bytes 1: the broker holds the Fetch for max_wait_ms.
  await client.request(1, 4, {
    replicaId: -1,
    maxWaitMs: 200,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
  });
  const byKey = new Map(broker.requestMetrics.apis().map((a) => [a.apiKey, a]));
  assert.equal(byKey.get(18)?.requests, 3, 'ApiVersions x3');
  assert.equal(byKey.get(19)?.requests, 1, 'CreateTopics');
  const fetch = byKey.get(1);
  assert.equal(fetch?.requests, 1, 'Fetch');
  assert.ok(fetch.total.percentileMs(1) >= 150, `the long poll took ${fetch.total.percentileMs(1)} ms`);
  assert.ok(fetch.total.percentileMs(1) >= fetch.local.percentileMs(1) - 0.01, 'total includes the handler time');
  assert.ok(byKey.get(18)!.total.maxMs < 150, 'ApiVersions is answered at once');
});
