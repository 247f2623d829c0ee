// The idempotent producer, spoken byte for byte through the generated codecs over a raw socket:
// InitProducerId, five pipelined batches, retries answered with their original offsets and stored
// once, sequence gaps rejected with OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch after a bump
// rejected with INVALID_PRODUCER_EPOCH, sequences independent per partition, and all of it still
// true after the broker restarts on the same data directory.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import type {
  InitProducerIdRequestInput,
  InitProducerIdResponse,
} from '../../../src/protocol/messages/022-init-producer-id.ts';
import type {
  DescribeProducersRequestInput,
  DescribeProducersResponse,
} from '../../../src/protocol/messages/061-describe-producers.ts';
import { buildRecordBatch } from '../../../src/protocol/records/index.ts';
import { createTopic, fetchAll, listOffset, produceBatch, RawConnection, randomTopic } from './helpers.ts';

const INIT_PRODUCER_ID = 22;
const DESCRIBE_PRODUCERS = 61;

async function initProducerId(
  conn: RawConnection,
  version: number,
  current?: { producerId: bigint; producerEpoch: number },
): Promise<{ producerId: bigint; producerEpoch: number }> {
  const res = await conn.request<InitProducerIdResponse>(INIT_PRODUCER_ID, version, {
    transactionalId: null,
    transactionTimeoutMs: 60_000,
    producerId: current?.producerId ?? -1n,
    producerEpoch: current?.producerEpoch ?? -1,
  } satisfies InitProducerIdRequestInput);
  assert.equal(res.errorCode, 0, `InitProducerId v${version}: error ${res.errorCode}`);
  assert.ok(res.producerId >= 0n);
  return { producerId: res.producerId, producerEpoch: res.producerEpoch };
}

/** A batch of `count` records whose values name their sequence numbers. */
function idempotentBatch(
  producer: { producerId: bigint; producerEpoch: number },
  baseSequence: number,
  count: number,
  tag = '',
): Promise<Buffer> {
  return buildRecordBatch({
    producerId: producer.producerId,
    producerEpoch: producer.producerEpoch,
    baseSequence,
    records: Array.from({ length: count }, (_, i) => ({
      key: Buffer.from(`k${baseSequence + i}`),
      value: Buffer.from(`${tag}e${producer.producerEpoch}-seq${baseSequence + i}`),
    })),
  });
}

async function values(conn: RawConnection, topic: string, partition: number): Promise<string[]> {
  return (await fetchAll(conn, topic, partition)).map((r) => r.value?.toString() ?? '<null>');
}

test('idempotent producer: duplicates stored once with their original offsets, gaps and stale epochs rejected, state survives a restart', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-idempotence-'));
  let broker = await startBroker({ dataDir, temporary: false });
  let conn = await RawConnection.connect(broker.bootstrap);
  t.after(async () => {
    conn.close();
    await broker.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const topic = randomTopic('idempotence');
  await createTopic(conn, topic, 2);

  // InitProducerId v1 (kafkajs, librdkafka) and v4 (Java, platformatic) both hand out fresh ids.
  const other = await initProducerId(conn, 1);
  const producer = await initProducerId(conn, 4);
  assert.equal(producer.producerEpoch, 0);
  assert.notEqual(producer.producerId, other.producerId);

  // Five batches of two records (sequences 0-1, 2-3, ... 8-9) in flight at once on one connection.
  const batches = await Promise.all([0, 2, 4, 6, 8].map((seq) => idempotentBatch(producer, seq, 2)));
  const acks = await Promise.all(batches.map((b) => produceBatch(conn, 9, topic, 0, b)));
  assert.deepEqual(
    acks.map((a) => [a.errorCode, a.baseOffset]),
    [
      [0, 0n],
      [0, 2n],
      [0, 4n],
      [0, 6n],
      [0, 8n],
    ],
  );
  assert.equal(await listOffset(conn, topic, 0), 10n);

  await t.test('a retried batch is answered with its original offset and stored once', async () => {
    for (const [i, version] of [
      [0, 9],
      [2, 7],
      [4, 3],
    ] as const) {
      const retry = await produceBatch(conn, version, topic, 0, batches[i]!);
      assert.equal(retry.errorCode, ErrorCode.NONE, `retry of batch ${i} (Produce v${version})`);
      assert.equal(retry.baseOffset, acks[i]!.baseOffset, `retry of batch ${i}: original offset`);
    }
    // A retry rebuilt by the client (same sequences, new bytes: e.g. a new CRC after a timestamp change).
    const rebuilt = await idempotentBatch(producer, 8, 2);
    const again = await produceBatch(conn, 9, topic, 0, rebuilt);
    assert.deepEqual([again.errorCode, again.baseOffset], [0, 8n]);
    assert.equal(await listOffset(conn, topic, 0), 10n, 'log end offset after retries');
    assert.deepEqual(
      await values(conn, topic, 0),
      Array.from({ length: 10 }, (_, i) => `e0-seq${i}`),
    );
  });

  await t.test('a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER and nothing is appended', async () => {
    const gap = await produceBatch(conn, 9, topic, 0, await idempotentBatch(producer, 12, 1));
    assert.equal(gap.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    // A batch overlapping the last one without matching it exactly is not a duplicate either.
    const overlap = await produceBatch(conn, 9, topic, 0, await idempotentBatch(producer, 9, 2));
    assert.equal(overlap.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert.equal(await listOffset(conn, topic, 0), 10n);
    // The expected sequence is still accepted afterwards.
    const next = await produceBatch(conn, 9, topic, 0, await idempotentBatch(producer, 10, 1));
    assert.deepEqual([next.errorCode, next.baseOffset], [0, 10n]);
    // Only the last five batches are remembered (Kafka's NUM_BATCHES_TO_RETAIN): the first one
    // (sequences 0-1) has been evicted by the sixth, so its retry is out of order, not a duplicate.
    const evicted = await produceBatch(conn, 9, topic, 0, batches[0]!);
    assert.equal(evicted.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert.equal(await listOffset(conn, topic, 0), 11n);
  });

  await t.test('sequences are per partition', async () => {
    const p1 = await produceBatch(conn, 9, topic, 1, await idempotentBatch(producer, 0, 3));
    assert.deepEqual([p1.errorCode, p1.baseOffset], [0, 0n]);
    const p1dup = await produceBatch(conn, 9, topic, 1, await idempotentBatch(producer, 0, 3));
    assert.deepEqual([p1dup.errorCode, p1dup.baseOffset], [0, 0n]);
    assert.equal(await listOffset(conn, topic, 1), 3n);
  });

  let bumped = producer;
  await t.test('after an epoch bump the old epoch is INVALID_PRODUCER_EPOCH', async () => {
    bumped = await initProducerId(conn, 4, producer);
    assert.equal(bumped.producerId, producer.producerId);
    assert.equal(bumped.producerEpoch, producer.producerEpoch + 1);
    // A new epoch must restart at sequence 0.
    const notZero = await produceBatch(conn, 9, topic, 0, await idempotentBatch(bumped, 5, 1));
    assert.equal(notZero.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    const first = await produceBatch(conn, 9, topic, 0, await idempotentBatch(bumped, 0, 2));
    assert.deepEqual([first.errorCode, first.baseOffset], [0, 11n]);
    const stale = await produceBatch(conn, 9, topic, 0, await idempotentBatch(producer, 11, 1));
    assert.equal(stale.errorCode, ErrorCode.INVALID_PRODUCER_EPOCH);
    const staleV3 = await produceBatch(conn, 3, topic, 0, await idempotentBatch(producer, 11, 1));
    assert.equal(staleV3.errorCode, ErrorCode.INVALID_PRODUCER_EPOCH);
    assert.equal(await listOffset(conn, topic, 0), 13n);
  });

  // Everything the partition holds before the restart, with the producer identity of each record.
  const before = await fetchAll(conn, topic, 0);
  assert.equal(before.length, 13);
  const lastBatch = await idempotentBatch(bumped, 2, 3, 'last-');
  const lastAck = await produceBatch(conn, 9, topic, 0, lastBatch);
  assert.deepEqual([lastAck.errorCode, lastAck.baseOffset], [0, 13n]);

  await t.test('after a restart on the same data directory', async () => {
    conn.close();
    await broker.close();
    broker = await startBroker({ dataDir, temporary: false });
    conn = await RawConnection.connect(broker.bootstrap);

    assert.equal(await listOffset(conn, topic, 0), 16n);
    // The retry of the last batch is still a duplicate, answered with its original offset.
    const retry = await produceBatch(conn, 9, topic, 0, lastBatch);
    assert.deepEqual([retry.errorCode, retry.baseOffset], [0, 13n]);
    // So is an older one still among the last five.
    const older = await produceBatch(conn, 9, topic, 0, await idempotentBatch(bumped, 0, 2));
    assert.deepEqual([older.errorCode, older.baseOffset], [0, 11n]);
    assert.equal(await listOffset(conn, topic, 0), 16n);
    // A gap is still a gap, the stale epoch still stale.
    const gap = await produceBatch(conn, 9, topic, 0, await idempotentBatch(bumped, 7, 1));
    assert.equal(gap.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    const stale = await produceBatch(conn, 9, topic, 0, await idempotentBatch(producer, 11, 1));
    assert.equal(stale.errorCode, ErrorCode.INVALID_PRODUCER_EPOCH);
    // The next sequence is accepted.
    const next = await produceBatch(conn, 9, topic, 0, await idempotentBatch(bumped, 5, 1));
    assert.deepEqual([next.errorCode, next.baseOffset], [0, 16n]);
    // Partition 1 kept its own sequence too.
    const p1 = await produceBatch(conn, 7, topic, 1, await idempotentBatch(producer, 3, 1));
    assert.deepEqual([p1.errorCode, p1.baseOffset], [0, 3n]);

    const after = await fetchAll(conn, topic, 0);
    assert.equal(after.length, 17);
    assert.deepEqual(
      after.slice(0, 13).map((r) => [r.offset, r.value?.toString(), r.producerId, r.producerEpoch]),
      before.map((r) => [r.offset, r.value?.toString(), r.producerId, r.producerEpoch]),
    );
    assert.deepEqual(
      after.slice(13).map((r) => r.value?.toString()),
      ['last-e1-seq2', 'last-e1-seq3', 'last-e1-seq4', 'e1-seq5'],
    );

    // DescribeProducers reports the rebuilt state.
    const described = await conn.request<DescribeProducersResponse>(DESCRIBE_PRODUCERS, 0, {
      topics: [{ name: topic, partitionIndexes: [0] }],
    } satisfies DescribeProducersRequestInput);
    const p0 = described.topics[0]?.partitions[0];
    assert.equal(p0?.errorCode, 0);
    const state = p0.activeProducers.find((p) => p.producerId === producer.producerId);
    assert.ok(state !== undefined, 'producer missing from DescribeProducers after restart');
    assert.equal(state.producerEpoch, 1);
    assert.equal(state.lastSequence, 5);

    // Producer ids are never handed out twice, across restarts either.
    const fresh = await initProducerId(conn, 4);
    assert.ok(
      fresh.producerId !== producer.producerId && fresh.producerId !== other.producerId,
      `producer id ${fresh.producerId} reused after restart`,
    );
  });
});
