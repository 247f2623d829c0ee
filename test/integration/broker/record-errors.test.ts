// Issue 11 item 12: a batch with invalid records (keyless records on a compacted topic, records
// with timestamps out of range) was refused without KIP-467's per-record errors, so clients could
// not fail only those records. Produce v8+ now names each bad record in `record_errors` and says
// why in `error_message`; nothing of the batch is appended.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import type { ProduceResponse } from '../../../src/protocol/messages/000-produce.ts';
import type { CreateTopicsResponse } from '../../../src/protocol/messages/019-create-topics.ts';
import { buildRecordBatch } from '../../../src/protocol/records/builder.ts';
import { WireClient } from '../../helpers/wire-client.ts';

async function setUp(t: { after(fn: () => Promise<void> | void): void }, configs: Record<string, string>) {
  const broker = await startBroker();
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  const created = await client.request<CreateTopicsResponse>(19, 5, {
    topics: [
      {
        name: 'records',
        numPartitions: 1,
        replicationFactor: 1,
        assignments: [],
        configs: Object.entries(configs).map(([name, value]) => ({ name, value })),
      },
    ],
    timeoutMs: 5000,
    validateOnly: false,
  });
  assert.equal(created.topics[0]!.errorCode, 0);
  const produce = async (records: Buffer) =>
    (
      await client.request<ProduceResponse>(0, 9, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: 'records', partitionData: [{ index: 0, records }] }],
      })
    ).responses[0]!.partitionResponses[0]!;
  return { produce };
}

test('KIP-467 record errors: keyless records on a compacted topic are named one by one', async (t) => {
  const { produce } = await setUp(t, { 'cleanup.policy': 'compact' });
  const batch = await buildRecordBatch({
    records: [
      { key: Buffer.from('k0'), value: Buffer.from('a') },
      { key: null, value: Buffer.from('b') },
      { key: Buffer.from('k2'), value: Buffer.from('c') },
      { key: null, value: Buffer.from('d') },
    ],
  });
  const r = await produce(batch);
  assert.equal(r.errorCode, ErrorCode.INVALID_RECORD);
  assert.deepEqual(
    r.recordErrors.map((e) => e.batchIndex),
    [1, 3],
  );
  assert.match(r.recordErrors[0]!.batchIndexErrorMessage!, /Compacted topic cannot accept message without key/);
  assert.match(r.errorMessage!, /2 record errors/);
  // Nothing of the refused batch was appended: the next good batch starts at offset 0.
  const good = await produce(await buildRecordBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from('v') }] }));
  assert.equal(good.errorCode, 0);
  assert.equal(good.baseOffset, 0n);
});

test('KIP-467 record errors: records with timestamps out of range are named one by one', async (t) => {
  const { produce } = await setUp(t, { 'message.timestamp.after.max.ms': '60000' });
  const now = BigInt(Date.now());
  const batch = await buildRecordBatch({
    records: [
      { key: null, value: Buffer.from('ok'), timestamp: now },
      { key: null, value: Buffer.from('future'), timestamp: now + 3_600_000n },
      { key: null, value: Buffer.from('ok'), timestamp: now },
    ],
  });
  const r = await produce(batch);
  assert.equal(r.errorCode, ErrorCode.INVALID_TIMESTAMP);
  assert.deepEqual(
    r.recordErrors.map((e) => e.batchIndex),
    [1],
  );
  assert.match(r.recordErrors[0]!.batchIndexErrorMessage!, /of message with offset 1 is out of range/);
});
