// EndTxn v5 (KIP-890 part 2, transaction version 2), raw requests: no client here speaks it (they
// negotiate transaction version 2 through a feature the broker does not advertise), so the
// protocol is driven by hand, as Kafka 4's coordinator answers it:
// - the commit bumps the producer epoch and the response carries it; the markers are written with it;
// - a retry of that EndTxn with the epoch before the bump succeeds and answers the same epoch;
// - the next transaction runs at the bumped epoch, sequences from 0;
// - a batch at the old epoch is refused (INVALID_PRODUCER_EPOCH): a late write of the finished
//   transaction cannot join the next one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import type { ProduceResponse } from '../../../src/protocol/messages/000-produce.ts';
import type { FetchResponse } from '../../../src/protocol/messages/001-fetch.ts';
import type { CreateTopicsResponse } from '../../../src/protocol/messages/019-create-topics.ts';
import type { InitProducerIdResponse } from '../../../src/protocol/messages/022-init-producer-id.ts';
import type { AddPartitionsToTxnResponse } from '../../../src/protocol/messages/024-add-partitions-to-txn.ts';
import type { EndTxnResponse } from '../../../src/protocol/messages/026-end-txn.ts';
import { isControl } from '../../../src/protocol/records/batch-header.ts';
import { buildRecordBatch } from '../../../src/protocol/records/builder.ts';
import { iterateBatches } from '../../../src/protocol/records/iterate-batches.ts';
import { describeTransaction, RawConnection, randomTopic, sleep, startTxnBroker } from './helpers.ts';

test('EndTxn v5 bumps the producer epoch per transaction; a retry answers the same epoch; the old epoch is fenced', async (t) => {
  const { broker, defer } = await startTxnBroker(t);
  const conn = await RawConnection.connect(broker.bootstrap);
  defer(() => conn.close());
  const topic = randomTopic('tv2');
  const created = await conn.request<CreateTopicsResponse>(19, 4, {
    topics: [{ name: topic, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 5000,
  });
  assert.equal(created.topics[0]!.errorCode, 0);
  const transactionalId = randomTopic('tv2-id');

  // FindCoordinator creates __transaction_state; InitProducerId retries while it loads.
  await conn.request(10, 3, { key: transactionalId, keyType: 1 });
  let init = await conn.request<InitProducerIdResponse>(22, 4, {
    transactionalId,
    transactionTimeoutMs: 60_000,
    producerId: -1n,
    producerEpoch: -1,
  });
  for (let i = 0; i < 100 && init.errorCode !== 0; i++) {
    await sleep(50);
    init = await conn.request<InitProducerIdResponse>(22, 4, {
      transactionalId,
      transactionTimeoutMs: 60_000,
      producerId: -1n,
      producerEpoch: -1,
    });
  }
  assert.equal(init.errorCode, 0);
  const producerId = init.producerId;
  const epoch0 = init.producerEpoch;

  const addPartition = async (epoch: number) => {
    const r = await conn.request<AddPartitionsToTxnResponse>(24, 3, {
      v3AndBelowTransactionalId: transactionalId,
      v3AndBelowProducerId: producerId,
      v3AndBelowProducerEpoch: epoch,
      v3AndBelowTopics: [{ name: topic, partitions: [0] }],
    });
    return r.resultsByTopicV3AndBelow[0]!.resultsByPartition[0]!.partitionErrorCode;
  };
  const produce = async (epoch: number, sequence: number, value: string) => {
    const records = await buildRecordBatch({
      records: [{ key: null, value: Buffer.from(value) }],
      producerId,
      producerEpoch: epoch,
      baseSequence: sequence,
      transactional: true,
    });
    const r = await conn.request<ProduceResponse>(0, 9, {
      transactionalId,
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
    });
    return r.responses[0]!.partitionResponses[0]!.errorCode;
  };
  const endTxn = (epoch: number, committed: boolean) =>
    conn.request<EndTxnResponse>(26, 5, { transactionalId, producerId, producerEpoch: epoch, committed });

  assert.equal(await addPartition(epoch0), 0);
  assert.equal(await produce(epoch0, 0, 'first'), 0);
  const committed = await endTxn(epoch0, true);
  assert.equal(committed.errorCode, 0);
  assert.equal(committed.producerId, producerId);
  assert.equal(committed.producerEpoch, epoch0 + 1, 'the commit bumps the epoch');

  // A retry of the same EndTxn (its response lost) succeeds with the bumped epoch.
  const retried = await endTxn(epoch0, true);
  assert.equal(retried.errorCode, 0);
  assert.equal(retried.producerEpoch, epoch0 + 1);

  // The next transaction at the new epoch, sequences from 0.
  const epoch1 = committed.producerEpoch;
  let added = await addPartition(epoch1);
  for (let i = 0; i < 50 && added === ErrorCode.CONCURRENT_TRANSACTIONS; i++) {
    await sleep(50);
    added = await addPartition(epoch1);
  }
  assert.equal(added, 0);
  assert.equal(await produce(epoch1, 0, 'second'), 0);
  // A late batch of the finished transaction (old epoch) is fenced.
  assert.equal(await produce(epoch0, 1, 'late'), ErrorCode.INVALID_PRODUCER_EPOCH);
  const aborted = await endTxn(epoch1, false);
  assert.equal(aborted.errorCode, 0);
  assert.equal(aborted.producerEpoch, epoch1 + 1);
  // The old epoch can no longer end anything.
  assert.equal((await endTxn(epoch0, true)).errorCode, ErrorCode.PRODUCER_FENCED);

  let described = await describeTransaction(conn, transactionalId);
  for (let i = 0; i < 50 && described.transactionState !== 'CompleteAbort'; i++) {
    await sleep(50);
    described = await describeTransaction(conn, transactionalId);
  }
  assert.equal(described.transactionState, 'CompleteAbort');
  assert.equal(described.producerEpoch, epoch1 + 1);

  // The log: data at epoch0, its commit marker at epoch0 + 1 (the bumped epoch fences), data at
  // epoch1 and its abort marker at epoch1 + 1.
  const fetched = await conn.request<FetchResponse>(1, 12, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic,
        partitions: [
          {
            partition: 0,
            currentLeaderEpoch: -1,
            fetchOffset: 0n,
            lastFetchedEpoch: -1,
            logStartOffset: -1n,
            partitionMaxBytes: 1 << 20,
          },
        ],
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  });
  const records = fetched.responses[0]!.partitions[0]!.records!;
  const batches = [...iterateBatches(Buffer.from(records))].map(({ header }) => ({
    control: isControl(header.attributes),
    epoch: header.producerEpoch,
  }));
  assert.deepEqual(batches, [
    { control: false, epoch: epoch0 },
    { control: true, epoch: epoch0 + 1 },
    { control: false, epoch: epoch1 },
    { control: true, epoch: epoch1 + 1 },
  ]);
});
