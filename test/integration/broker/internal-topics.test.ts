// Issue 11 item 2: `samsa topic delete --topic __consumer_offsets` succeeded and every group's
// committed offsets vanished at the next restart. The broker now refuses, for every client,
// DeleteTopics, CreatePartitions, a cleanup policy other than compact, DeleteRecords and client
// Produce on internal topics, as Kafka does, unless samsa.internal.topic.changes.enable is set.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import type { ProduceResponse } from '../../../src/protocol/messages/000-produce.ts';
import type { FindCoordinatorResponse } from '../../../src/protocol/messages/010-find-coordinator.ts';
import type { DeleteTopicsResponse } from '../../../src/protocol/messages/020-delete-topics.ts';
import type { DeleteRecordsResponse } from '../../../src/protocol/messages/021-delete-records.ts';
import type { CreatePartitionsResponse } from '../../../src/protocol/messages/037-create-partitions.ts';
import type { IncrementalAlterConfigsResponse } from '../../../src/protocol/messages/044-incremental-alter-configs.ts';
import { buildRecordBatch } from '../../../src/protocol/records/builder.ts';
import { WireClient } from '../../helpers/wire-client.ts';
import { runCli } from '../cli/helpers.ts';

const OFFSETS = '__consumer_offsets';

/** A broker whose __consumer_offsets exists (FindCoordinator creates it). */
async function brokerWithOffsetsTopic(
  t: { after(fn: () => Promise<void> | void): void },
  overrides: Record<string, string> = {},
): Promise<{ broker: RunningBroker; client: WireClient }> {
  const broker = await startBroker({ overrides: { 'offsets.topic.num.partitions': '3', ...overrides } });
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  for (let i = 0; i < 100; i++) {
    const r = await client.request<FindCoordinatorResponse>(10, 4, { keyType: 0, coordinatorKeys: ['g'] });
    if (r.coordinators[0]!.errorCode === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { broker, client };
}

test('internal topics can be deleted: samsa topic delete --topic __consumer_offsets is refused', async (t) => {
  const { broker } = await brokerWithOffsetsTopic(t);
  const r = await runCli(['topic', 'delete', '--bootstrap', broker.bootstrap, '--topic', OFFSETS]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /is a kafka internal topic and is not allowed to be marked for deletion/);
  const listed = await runCli(['topic', 'list', '--bootstrap', broker.bootstrap]);
  assert.match(listed.stdout, /__consumer_offsets/);
});

test('internal topics can be deleted: kafkajs admin gets INVALID_REQUEST for delete and create-partitions', async (t) => {
  const { broker } = await brokerWithOffsetsTopic(t);
  const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await assert.rejects(admin.deleteTopics({ topics: [OFFSETS] }), (err: Error & { type?: string }) => {
    assert.equal((err as { errors?: { type: string }[] }).errors?.[0]?.type ?? err.type, 'INVALID_REQUEST');
    return true;
  });
  await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic: OFFSETS, count: 10 }] }));
  const md = await admin.fetchTopicMetadata({ topics: [OFFSETS] });
  assert.equal(md.topics[0]!.partitions.length, 3);
});

test('internal topics can be deleted: raw requests for every destructive change are refused', async (t) => {
  const { client } = await brokerWithOffsetsTopic(t);
  const del = await client.request<DeleteTopicsResponse>(20, 5, { topicNames: [OFFSETS], timeoutMs: 5000 });
  assert.equal(del.responses[0]!.errorCode, ErrorCode.INVALID_REQUEST);
  assert.equal(
    del.responses[0]!.errorMessage,
    'Topic __consumer_offsets is a kafka internal topic and is not allowed to be marked for deletion.',
  );
  const parts = await client.request<CreatePartitionsResponse>(37, 2, {
    topics: [{ name: OFFSETS, count: 6, assignments: null }],
    timeoutMs: 5000,
    validateOnly: false,
  });
  assert.equal(parts.results[0]!.errorCode, ErrorCode.INVALID_REQUEST);
  const policy = await client.request<IncrementalAlterConfigsResponse>(44, 1, {
    resources: [
      {
        resourceType: 2,
        resourceName: OFFSETS,
        configs: [{ name: 'cleanup.policy', configOperation: 0, value: 'delete' }],
      },
    ],
    validateOnly: false,
  });
  assert.equal(policy.responses[0]!.errorCode, ErrorCode.INVALID_REQUEST);
  assert.match(policy.responses[0]!.errorMessage!, /cleanup.policy must stay compact/);
  // Removing the override would fall back to the broker default (delete): refused too.
  const reset = await client.request<IncrementalAlterConfigsResponse>(44, 1, {
    resources: [
      {
        resourceType: 2,
        resourceName: OFFSETS,
        configs: [{ name: 'cleanup.policy', configOperation: 1, value: null }],
      },
    ],
    validateOnly: false,
  });
  assert.equal(reset.responses[0]!.errorCode, ErrorCode.INVALID_REQUEST);
  // Harmless changes go through.
  const segment = await client.request<IncrementalAlterConfigsResponse>(44, 1, {
    resources: [
      {
        resourceType: 2,
        resourceName: OFFSETS,
        configs: [{ name: 'segment.bytes', configOperation: 0, value: '1048576' }],
      },
    ],
    validateOnly: false,
  });
  assert.equal(segment.responses[0]!.errorCode, 0);
  const records = await client.request<DeleteRecordsResponse>(21, 2, {
    topics: [{ name: OFFSETS, partitions: [{ partitionIndex: 0, offset: -1n }] }],
    timeoutMs: 5000,
  });
  assert.equal(records.topics[0]!.partitions[0]!.errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION);
  const produced = await client.request<ProduceResponse>(0, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 5000,
    topicData: [
      {
        name: OFFSETS,
        partitionData: [
          { index: 0, records: await buildRecordBatch({ records: [{ key: Buffer.from('k'), value: null }] }) },
        ],
      },
    ],
  });
  const p = produced.responses[0]!.partitionResponses[0]!;
  assert.equal(p.errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION);
  assert.equal(p.errorMessage, 'Cannot append to internal topic __consumer_offsets');
});

test('internal topics can be deleted: samsa.internal.topic.changes.enable=true allows it', async (t) => {
  const { client } = await brokerWithOffsetsTopic(t, { 'samsa.internal.topic.changes.enable': 'true' });
  const del = await client.request<DeleteTopicsResponse>(20, 5, { topicNames: [OFFSETS], timeoutMs: 5000 });
  assert.equal(del.responses[0]!.errorCode, 0);
});
