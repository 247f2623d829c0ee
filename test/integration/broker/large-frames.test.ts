// Regression guard for recycled frame buffers: many Produce requests that span socket reads (so
// they are copied into pooled buffers that are then reused) must all land intact.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import type { FetchResponse } from '../../../src/protocol/messages/001-fetch.ts';
import { buildRecordBatch } from '../../../src/protocol/records/builder.ts';
import { iterateBatches } from '../../../src/protocol/records/iterate-batches.ts';
import { decodeRecordsSync } from '../../../src/protocol/records/record.ts';
import { WireClient } from '../../helpers/wire-client.ts';

test('40 multi-read Produce requests with distinct contents are stored intact', async (t) => {
  const broker = await startBroker();
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  await client.request(19, 4, { topics: [{ name: 'big', numPartitions: 2, replicationFactor: 1 }], timeoutMs: 5000 });
  const value = (i: number, j: number) => Buffer.alloc(4096, (i * 7 + j) % 251);
  for (let i = 0; i < 40; i++) {
    const partitionData = [];
    for (const index of [0, 1]) {
      const records = await buildRecordBatch({
        records: Array.from({ length: 50 }, (_, j) => ({ key: Buffer.from(`${i}:${index}:${j}`), value: value(i, j) })),
      });
      partitionData.push({ index, records });
    }
    const r = await client.request<{ responses: { partitionResponses: { errorCode: number }[] }[] }>(0, 9, {
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: 'big', partitionData }],
    });
    assert.deepEqual(
      r.responses[0]?.partitionResponses.map((p) => p.errorCode),
      [0, 0],
    );
  }
  for (const partition of [0, 1]) {
    let offset = 0n;
    let count = 0;
    while (offset < 2000n) {
      const f = await client.request<FetchResponse>(1, 12, {
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 4 << 20,
        sessionEpoch: -1,
        topics: [{ topic: 'big', partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 4 << 20 }] }],
      });
      const records = f.responses[0]!.partitions[0]!.records!;
      for (const { offset: at, size } of iterateBatches(records, { partialTail: 'stop' })) {
        for (const rec of decodeRecordsSync(records.subarray(at, at + size))) {
          const [i, p, j] = rec.key!.toString().split(':').map(Number);
          assert.equal(p, partition);
          assert.ok(rec.value!.equals(value(i!, j!)), `record ${rec.key} corrupted`);
          count++;
          offset = rec.offset + 1n;
        }
      }
    }
    assert.equal(count, 2000);
  }
});
