// KIP-227 incremental fetch sessions against a real broker over a real socket.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import type { ProduceResponse } from '../../../src/protocol/messages/000-produce.ts';
import type { FetchResponse } from '../../../src/protocol/messages/001-fetch.ts';
import type { DeleteRecordsResponse } from '../../../src/protocol/messages/021-delete-records.ts';
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

// Kafka's CachedPartition.maybeUpdateResponseData: an incremental response carries a partition
// whose high watermark or log start offset differs from what the session last sent, and the
// session takes the new values only from the response. A waiting fetch reads more than once; a
// change seen by an earlier read with no bytes must still reach the final response.
test('incremental fetch sessions: a waiting fetch reports a moved log start offset and high watermark', async (t) => {
  const broker = await startBroker({ logLevel: 'error' });
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  const admin = await WireClient.connect(broker.bootstrap);
  t.after(() => admin.close());
  const topic = `sessions-wait-${Date.now()}`;
  await client.request(19, 4, { topics: [{ name: topic, numPartitions: 2, replicationFactor: 1 }], timeoutMs: 5000 });
  const produce = async (partitions: number[], value: string) => {
    const records = await buildRecordBatch({ records: [{ key: null, value: Buffer.from(value) }] });
    const r = await admin.request<ProduceResponse>(0, 9, {
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: topic, partitionData: partitions.map((index) => ({ index, records })) }],
    });
    for (const p of r.responses[0]?.partitionResponses ?? []) assert.equal(p.errorCode, 0);
  };
  await produce([0, 1], 'a');
  await produce([0, 1], 'b');
  const atEnd = [
    { partition: 0, fetchOffset: 2n, partitionMaxBytes: 1 << 20 },
    { partition: 1, fetchOffset: 2n, partitionMaxBytes: 1 << 20 },
  ];
  const full = await client.request<FetchResponse>(1, 12, {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: 0,
    topics: [{ topic, partitions: atEnd }],
  });
  assert.equal(full.errorCode, 0);
  assert.notEqual(full.sessionId, 0);
  const sent = (r: FetchResponse) =>
    r.responses.flatMap((tr) =>
      tr.partitions.map((p) => ({
        partition: p.partitionIndex,
        highWatermark: p.highWatermark,
        logStartOffset: p.logStartOffset,
        bytes: p.records?.length ?? 0,
      })),
    );
  assert.deepEqual(
    sent(full).map((p) => [p.partition, p.highWatermark, p.logStartOffset, p.bytes]),
    [
      [0, 2n, 0n, 0],
      [1, 2n, 0n, 0],
    ],
  );

  // DeleteRecords moves partition 0's log start to 1, no new records. The waiting fetch's first
  // read sees it with 0 bytes and parks; its final read, at max.wait.ms, must still report it.
  const deleted = await admin.request<DeleteRecordsResponse>(21, 2, {
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, offset: 1n }] }],
    timeoutMs: 5000,
  });
  assert.equal(deleted.topics[0]?.partitions[0]?.errorCode, 0);
  const inc1 = await client.request<FetchResponse>(1, 12, {
    maxWaitMs: 300,
    minBytes: 1,
    maxBytes: 1 << 20,
    sessionId: full.sessionId,
    sessionEpoch: 1,
    topics: [],
  });
  assert.equal(inc1.errorCode, 0);
  assert.deepEqual(
    sent(inc1).map((p) => [p.partition, p.highWatermark, p.logStartOffset, p.bytes]),
    [[0, 2n, 1n, 0]],
  );
  // Sent once: the next incremental response leaves it out.
  const inc2 = await client.request<FetchResponse>(1, 12, {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    sessionId: full.sessionId,
    sessionEpoch: 2,
    topics: [],
  });
  assert.deepEqual(inc2.responses, []);

  // New records on both partitions, and a response max.bytes of 1: partition 0's first batch
  // uses the whole budget (KIP-74), partition 1 reads 0 bytes but its high watermark moved. Below
  // min.bytes, the fetch waits out max.wait.ms and reads again; partition 1's new high watermark
  // must be in that final response.
  await produce([0, 1], 'c');
  const inc3 = await client.request<FetchResponse>(1, 12, {
    maxWaitMs: 300,
    minBytes: 1 << 20,
    maxBytes: 1,
    sessionId: full.sessionId,
    sessionEpoch: 3,
    topics: [],
  });
  assert.equal(inc3.errorCode, 0);
  const got = sent(inc3);
  assert.deepEqual(
    got.map((p) => [p.partition, p.highWatermark, p.logStartOffset]),
    [
      [0, 3n, 1n],
      [1, 3n, 0n],
    ],
  );
  assert.ok((got[0]?.bytes ?? 0) > 0);
  assert.equal(got[1]?.bytes, 0);
});
