// Until the transaction coordinator exists, a transactional batch is refused per partition
// (INVALID_TXN_STATE) instead of being stored where it would hold the last stable offset back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import type { ProduceResponse } from '../../../src/protocol/messages/000-produce.ts';
import { buildRecordBatch } from '../../../src/protocol/records/builder.ts';
import { WireClient } from '../../helpers/wire-client.ts';

test('a transactional batch is refused with INVALID_TXN_STATE and nothing is stored', async (t) => {
  const broker = await startBroker();
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  await client.request(19, 4, { topics: [{ name: 'txn', numPartitions: 1, replicationFactor: 1 }], timeoutMs: 5000 });
  const produce = async (transactional: boolean) => {
    const records = await buildRecordBatch({
      records: [{ key: null, value: Buffer.from('v') }],
      producerId: 5n,
      producerEpoch: 0,
      baseSequence: 0,
      transactional,
    });
    const r = await client.request<ProduceResponse>(0, 9, {
      transactionalId: transactional ? 'tx' : null,
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: 'txn', partitionData: [{ index: 0, records }] }],
    });
    return r.responses[0]!.partitionResponses[0]!;
  };
  assert.equal((await produce(true)).errorCode, 48); // INVALID_TXN_STATE
  const ok = await produce(false);
  assert.equal(ok.errorCode, 0);
  assert.equal(ok.baseOffset, 0n, 'the refused batch took no offset');
});
