// Regression: a well-formed Produce request whose records are garbage or a legacy (magic 0/1)
// message set used to fail the whole request with UNKNOWN_SERVER_ERROR; Kafka answers per
// partition (CORRUPT_MESSAGE, UNSUPPORTED_FOR_MESSAGE_FORMAT) and the other partitions succeed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import type { ProduceResponse } from '../../../src/protocol/messages/000-produce.ts';
import { buildRecordBatch } from '../../../src/protocol/records/builder.ts';
import { WireClient } from '../../helpers/wire-client.ts';

test('corrupt and legacy record sets fail only their partition', async (t) => {
  const broker = await startBroker();
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  await client.request(19, 4, { topics: [{ name: 'mixed', numPartitions: 3, replicationFactor: 1 }], timeoutMs: 5000 });
  const good = await buildRecordBatch({ records: [{ key: null, value: Buffer.from('ok') }] });
  const garbage = Buffer.from('this is not a record batch at all, not even close to one!!!!!!!!!!!!');
  // A magic-1 message set: offset, size, crc, magic=1, attributes, timestamp, key, value.
  const legacy = Buffer.alloc(12 + 22 + 4);
  legacy.writeInt32BE(26, 8);
  legacy.writeInt8(1, 16);
  legacy.writeInt32BE(-1, 26);
  legacy.writeInt32BE(4, 30);
  const r = await client.request<ProduceResponse>(0, 7, {
    acks: -1,
    timeoutMs: 5000,
    topicData: [
      {
        name: 'mixed',
        partitionData: [
          { index: 0, records: garbage },
          { index: 1, records: legacy },
          { index: 2, records: good },
        ],
      },
    ],
  });
  const codes = r.responses[0]!.partitionResponses.map((p) => [p.index, p.errorCode]);
  assert.deepEqual(codes, [
    [0, 2], // CORRUPT_MESSAGE
    [1, 43], // UNSUPPORTED_FOR_MESSAGE_FORMAT
    [2, 0],
  ]);
});
