// Restarts of a broker run as a child process (`node src/cli.ts start`) on one data directory:
// - SIGTERM: a clean shutdown (exit 0); after the restart every record is there at the same
//   offset with the same key, value, headers and timestamp, topic ids and configs are unchanged,
//   and appends continue at the old log end offset.
// - kill -9 mid-stream with log.flush.interval.messages=1: every acknowledged batch is present at
//   its acknowledged offset, the log has no holes or duplicates, and the idempotent producer state
//   is rebuilt from the log (a retry of the last acknowledged batch is still a duplicate).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '@platformatic/kafka';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import type {
  InitProducerIdRequestInput,
  InitProducerIdResponse,
} from '../../../src/protocol/messages/022-init-producer-id.ts';
import { buildRecordBatch, buildRecordBatchSync } from '../../../src/protocol/records/index.ts';
import { CLEAN_SHUTDOWN_FILE } from '../../../src/storage/log-manager.ts';
import {
  type BrokerProcess,
  createTopic,
  type FetchedRecord,
  fetchAll,
  kcat,
  kcatConsumeAll,
  listOffset,
  metadata,
  produceBatch,
  RawConnection,
  randomTopic,
  spawnBroker,
  toKafkaUuid,
} from './helpers.ts';

/** What a partition holds, in a form deepEqual can compare across restarts. */
function snapshot(records: FetchedRecord[]): unknown[] {
  return records.map((r) => [
    r.offset,
    r.timestamp,
    r.key?.toString('hex') ?? null,
    r.value?.toString('hex') ?? null,
    r.headers.map((h) => [h.key, h.value?.toString('hex') ?? null]),
  ]);
}

async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Stops whatever broker process is current and removes the data directory. */
function cleanup(current: () => BrokerProcess | undefined, dataDir: string): () => Promise<void> {
  return async () => {
    await current()?.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  };
}

test('SIGTERM then restart: records, offsets, topic ids and configs are all still there', async (t) => {
  const dataDir = await tempDir('samsa-restart-');
  let broker: BrokerProcess | undefined = await spawnBroker(dataDir);
  t.after(cleanup(() => broker, dataDir));
  const first = broker;

  const kafka = new Kafka({
    clientId: 'samsa-it',
    brokers: [first.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 },
  });
  const admin = kafka.admin();
  await admin.connect();
  const wide = randomTopic('restart-wide');
  const narrow = randomTopic('restart-narrow');
  await admin.createTopics({
    topics: [
      { topic: wide, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '3600000' }] },
      { topic: narrow, numPartitions: 1 },
    ],
  });
  const producer = kafka.producer();
  await producer.connect();
  for (let round = 0; round < 4; round++) {
    await producer.send({
      topic: wide,
      acks: -1,
      compression: round % 2 === 0 ? CompressionTypes.None : CompressionTypes.GZIP,
      messages: Array.from({ length: 9 }, (_, i) => ({
        partition: i % 3,
        key: `k${i}`,
        value: `round ${round} #${i}`,
        headers: { round: String(round) },
        timestamp: String(1_700_000_000_000 + round * 100 + i),
      })),
    });
  }
  await kcat(first.bootstrap, ['-P', '-t', narrow, '-z', 'lz4', '-K', '\t', '-X', 'topic.request.required.acks=-1'], {
    input: Array.from({ length: 20 }, (_, i) => `key${i}\tkcat value ${i}`).join('\n'),
  });
  await producer.disconnect();
  await admin.disconnect();

  // Everything observable before the stop.
  const conn = await RawConnection.connect(first.bootstrap);
  const topicIds = new Map((await metadata(conn, [wide, narrow])).topics.map((x) => [x.name, x.topicId]));
  assert.equal(topicIds.size, 2);
  const platformaticIds = async (bootstrap: string) => {
    const pAdmin = new Admin({ clientId: 'samsa-it-admin', bootstrapBrokers: [bootstrap] });
    try {
      const md = await pAdmin.metadata({ topics: [wide, narrow] });
      return [toKafkaUuid(md.topics.get(wide)?.id), toKafkaUuid(md.topics.get(narrow)?.id)];
    } finally {
      await pAdmin.close();
    }
  };
  assert.deepEqual(await platformaticIds(first.bootstrap), [topicIds.get(wide), topicIds.get(narrow)]);
  const partitions = [
    [wide, 0],
    [wide, 1],
    [wide, 2],
    [narrow, 0],
  ] as const;
  const before = new Map<string, unknown[]>();
  const endOffsets = new Map<string, bigint>();
  for (const [topic, p] of partitions) {
    before.set(`${topic}/${p}`, snapshot(await fetchAll(conn, topic, p)));
    endOffsets.set(`${topic}/${p}`, await listOffset(conn, topic, p));
  }
  assert.deepEqual([...endOffsets.values()], [12n, 12n, 12n, 20n]);
  const kcatBefore = await kcatConsumeAll(first.bootstrap, narrow);
  conn.close();

  // SIGTERM: a clean shutdown with exit code 0.
  const stopped = performance.now();
  const exit = await first.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, `exit after SIGTERM; stderr: ${first.stderr()}`);
  assert.ok(performance.now() - stopped < 10_000, 'SIGTERM shutdown took over 10 s');
  // Logs flushed and closed: the next start is marked as needing no recovery.
  assert.ok(existsSync(join(dataDir, CLEAN_SHUTDOWN_FILE)), 'no clean-shutdown marker after SIGTERM');
  broker = undefined;

  const second = await spawnBroker(dataDir);
  broker = second;
  const conn2 = await RawConnection.connect(second.bootstrap);
  t.after(() => conn2.close());
  const md = await metadata(conn2, [wide, narrow]);
  assert.deepEqual(new Map(md.topics.map((x) => [x.name, x.topicId])), topicIds, 'topic ids after restart');
  assert.deepEqual(
    md.topics.map((x) => x.partitions.length),
    [3, 1],
  );
  assert.deepEqual(await platformaticIds(second.bootstrap), [topicIds.get(wide), topicIds.get(narrow)]);
  for (const [topic, p] of partitions) {
    const key = `${topic}/${p}`;
    assert.deepEqual(snapshot(await fetchAll(conn2, topic, p)), before.get(key), `${key} records after restart`);
    assert.equal(await listOffset(conn2, topic, p), endOffsets.get(key), `${key} log end offset`);
    assert.equal(await listOffset(conn2, topic, p, -2n), 0n, `${key} log start offset`);
  }
  assert.deepEqual(await kcatConsumeAll(second.bootstrap, narrow), kcatBefore);

  // Per-topic configs survive too.
  const kafka2 = new Kafka({
    clientId: 'samsa-it',
    brokers: [second.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 },
  });
  const admin2 = kafka2.admin();
  await admin2.connect();
  t.after(() => admin2.disconnect());
  const configs = await admin2.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2, name: wide, configNames: ['retention.ms'] }],
  });
  assert.equal(
    configs.resources[0]?.configEntries.find((c) => c.configName === 'retention.ms')?.configValue,
    '3600000',
  );

  // Appends continue at the old log end offset.
  const producer2 = kafka2.producer();
  await producer2.connect();
  t.after(() => producer2.disconnect());
  const [ack] = await producer2.send({ topic: narrow, acks: -1, messages: [{ key: 'after', value: 'restart' }] });
  assert.equal(ack?.baseOffset, '20');
});

test('kill -9 mid-stream with log.flush.interval.messages=1: no acknowledged record is missing', async (t) => {
  const dataDir = await tempDir('samsa-kill9-');
  let broker: BrokerProcess | undefined = await spawnBroker(dataDir, { 'log.flush.interval.messages': '1' });
  t.after(cleanup(() => broker, dataDir));
  const first = broker;

  const topic = randomTopic('kill9');
  const PARTITIONS = 2;
  const setup = await RawConnection.connect(first.bootstrap);
  const topicId = await createTopic(setup, topic, PARTITIONS);
  const init = await setup.request<InitProducerIdResponse>(22, 4, {
    transactionalId: null,
    transactionTimeoutMs: 60_000,
  } satisfies InitProducerIdRequestInput);
  assert.equal(init.errorCode, 0);
  const producer = { producerId: init.producerId, producerEpoch: init.producerEpoch };
  setup.close();

  interface Acked {
    partition: number;
    baseOffset: bigint;
    baseSequence: number;
    values: string[];
    batch: Buffer;
  }
  const acked: Acked[] = [];
  const nextSequence = new Array<number>(PARTITIONS).fill(0);
  const conn = await RawConnection.connect(first.bootstrap);
  let stop = false;
  let sent = 0;

  // Four producers in flight on one pipelined connection, each alternating partitions, batches of
  // 1-3 idempotent records, until the broker dies under them.
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      const partition = (w + i) % PARTITIONS;
      const count = 1 + ((w + i) % 3);
      const baseSequence = nextSequence[partition]!;
      nextSequence[partition] = baseSequence + count;
      const values = Array.from({ length: count }, (_, j) => `p${partition}-seq${baseSequence + j}`);
      // Built and written in the same tick as its sequences are taken, so sequences reach the
      // socket in order.
      const batch = buildRecordBatchSync({
        ...producer,
        baseSequence,
        records: values.map((v) => ({ key: Buffer.from(`w${w}`), value: Buffer.from(v) })),
      });
      sent++;
      let response: Awaited<ReturnType<typeof produceBatch>>;
      try {
        response = await produceBatch(conn, 9, topic, partition, batch);
      } catch {
        return; // the connection died with the broker: this batch is unacknowledged
      }
      assert.equal(response.errorCode, 0, `produce to ${partition} seq ${baseSequence}: error ${response.errorCode}`);
      acked.push({ partition, baseOffset: response.baseOffset, baseSequence, values, batch });
    }
  };
  const workers = [0, 1, 2, 3].map((w) => worker(w));
  // Let a few hundred batches through, then kill the broker while requests are still in flight.
  const deadline = Date.now() + 10_000;
  while (acked.length < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  first.child.kill('SIGKILL');
  const exit = await first.exited;
  assert.equal(exit.signal, 'SIGKILL');
  assert.ok(!existsSync(join(dataDir, CLEAN_SHUTDOWN_FILE)), 'clean-shutdown marker present after kill -9');
  stop = true;
  await Promise.all(workers);
  conn.close();
  broker = undefined;
  assert.ok(acked.length >= 50, `only ${acked.length} batches acknowledged before the kill`);
  t.diagnostic(`${acked.length} batches acknowledged, ${sent - acked.length} in flight at kill -9`);

  const second = await spawnBroker(dataDir, { 'log.flush.interval.messages': '1' });
  broker = second;
  const conn2 = await RawConnection.connect(second.bootstrap);
  t.after(() => conn2.close());
  assert.equal((await metadata(conn2, [topic])).topics[0]?.topicId, topicId, 'topic id after kill -9');

  for (let partition = 0; partition < PARTITIONS; partition++) {
    const records = await fetchAll(conn2, topic, partition);
    const byOffset = new Map(records.map((r) => [r.offset, r.value?.toString()]));
    // Dense offsets from 0, each value once, sequences in order: no holes, no duplicates.
    assert.deepEqual(
      records.map((r) => r.offset),
      records.map((_, i) => BigInt(i)),
      `partition ${partition}: offsets are dense`,
    );
    assert.deepEqual(
      records.map((r) => r.value?.toString()),
      records.map((_, i) => `p${partition}-seq${i}`),
      `partition ${partition}: each sequence exactly once, in order`,
    );
    const mine = acked.filter((a) => a.partition === partition);
    for (const a of mine) {
      a.values.forEach((v, j) => {
        assert.equal(
          byOffset.get(a.baseOffset + BigInt(j)),
          v,
          `partition ${partition}: acknowledged record at offset ${a.baseOffset + BigInt(j)} missing after kill -9`,
        );
      });
    }
    assert.ok(mine.length > 0, `nothing acknowledged on partition ${partition}`);
    assert.equal(await listOffset(conn2, topic, partition), BigInt(records.length));

    // The producer state was rebuilt from the log: the last acknowledged batch is a duplicate...
    const last = mine.reduce((x, y) => (y.baseOffset > x.baseOffset ? y : x));
    const retry = await produceBatch(conn2, 9, topic, partition, last.batch);
    assert.deepEqual(
      [retry.errorCode, retry.baseOffset],
      [0, last.baseOffset],
      `partition ${partition}: retry of the last acknowledged batch after kill -9`,
    );
    // ...and the sequence after the last one the log holds is accepted at the log end.
    const nextSeq = records.length;
    const next = await produceBatch(
      conn2,
      9,
      topic,
      partition,
      await buildRecordBatch({
        ...producer,
        baseSequence: nextSeq,
        records: [{ key: null, value: Buffer.from(`p${partition}-seq${nextSeq}`) }],
      }),
    );
    assert.deepEqual([next.errorCode, next.baseOffset], [0, BigInt(records.length)]);
  }
});
