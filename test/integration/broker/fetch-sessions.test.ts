// KIP-227 incremental fetch sessions against a real broker over a real socket.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import type { FetchResponse } from '../../../src/protocol/messages/001-fetch.ts';
import { buildRecordBatch } from '../../../src/protocol/records/builder.ts';
import { WireClient } from '../../helpers/wire-client.ts';

test('incremental fetch sessions: create, incremental updates, forgotten partitions, epoch errors', async (t) => {
  const broker = await startBroker();
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  const topic = `sessions-${Date.now()}`;
  await client.request(19, 4, { topics: [{ name: topic, numPartitions: 2, replicationFactor: 1 }], timeoutMs: 5000 });
  const produce = async (partition: number, value: string) => {
    const records = await buildRecordBatch({ records: [{ key: null, value: Buffer.from(value) }] });
    await client.request(0, 9, {
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
    });
  };
  await produce(0, 'a');
  await produce(1, 'b');
  const partitions = (offsets: [number, bigint][]) =>
    offsets.map(([partition, fetchOffset]) => ({ partition, fetchOffset, partitionMaxBytes: 1 << 20 }));

  // Full request, epoch 0: a new session with both partitions.
  const full = await client.request<FetchResponse>(1, 12, {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: 0,
    topics: [
      {
        topic,
        partitions: partitions([
          [0, 0n],
          [1, 0n],
        ]),
      },
    ],
  });
  assert.equal(full.errorCode, 0);
  assert.notEqual(full.sessionId, 0);
  assert.equal(full.responses[0]?.partitions.length, 2);

  // Incremental, epoch 1, partition 0 advanced: nothing new anywhere, so no partitions at all.
  const inc1 = await client.request<FetchResponse>(1, 12, {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    sessionId: full.sessionId,
    sessionEpoch: 1,
    topics: [
      {
        topic,
        partitions: partitions([
          [0, 1n],
          [1, 1n],
        ]),
      },
    ],
  });
  assert.equal(inc1.errorCode, 0);
  assert.equal(inc1.sessionId, full.sessionId);
  assert.deepEqual(inc1.responses, []);

  // New data on partition 1 only: the next incremental response carries just partition 1,
  // although the request names no partition (the session remembers the positions).
  await produce(1, 'c');
  const inc2 = await client.request<FetchResponse>(1, 12, {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    sessionId: full.sessionId,
    sessionEpoch: 2,
    topics: [],
  });
  assert.deepEqual(
    inc2.responses.flatMap((r) => r.partitions.map((p) => p.partitionIndex)),
    [1],
  );
  assert.equal(inc2.responses[0]?.partitions[0]?.highWatermark, 2n);

  // Forget partition 1; new data there is no longer reported.
  await client.request<FetchResponse>(1, 12, {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    sessionId: full.sessionId,
    sessionEpoch: 3,
    topics: [],
    forgottenTopicsData: [{ topic, partitions: [1] }],
  });
  await produce(1, 'd');
  const inc4 = await client.request<FetchResponse>(1, 12, {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    sessionId: full.sessionId,
    sessionEpoch: 4,
    topics: [],
  });
  assert.deepEqual(inc4.responses, []);

  // Wrong epoch and unknown session: Kafka's top-level errors.
  const wrongEpoch = await client.request<FetchResponse>(1, 12, {
    sessionId: full.sessionId,
    sessionEpoch: 9,
    topics: [],
  });
  assert.equal(wrongEpoch.errorCode, 71); // INVALID_FETCH_SESSION_EPOCH
  const unknown = await client.request<FetchResponse>(1, 12, { sessionId: 123456, sessionEpoch: 1, topics: [] });
  assert.equal(unknown.errorCode, 70); // FETCH_SESSION_ID_NOT_FOUND

  // Closing the session (epoch -1) makes it unknown afterwards.
  await client.request<FetchResponse>(1, 12, { sessionId: full.sessionId, sessionEpoch: -1, topics: [] });
  const closed = await client.request<FetchResponse>(1, 12, { sessionId: full.sessionId, sessionEpoch: 5, topics: [] });
  assert.equal(closed.errorCode, 70);
});
