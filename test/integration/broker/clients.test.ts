// Real clients against one in-process broker: kafkajs 2.2.4, @platformatic/kafka and kcat
// (librdkafka 2.0.2). Each producer writes keyed records with every compression codec it
// supports; every consumer reads each topic back, and the records must come back per partition in
// order, with the offsets the producer was acknowledged, and the same keys, values, headers and
// timestamps. kafkajs consumes through a consumer group, so its variant runs only once the broker
// advertises JoinGroup. Also: an auto-created topic, a 100-partition topic, a 900 KiB record, and
// a long-poll Fetch woken by an append.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, type TestContext, test } from 'node:test';
import { Admin, Consumer, Producer } from '@platformatic/kafka';
import kafkajs, { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import type { FetchRequestInput, FetchResponse } from '../../../src/protocol/messages/001-fetch.ts';
import type { ListOffsetsResponse } from '../../../src/protocol/messages/002-list-offsets.ts';
import {
  Compression,
  type CompressionType,
  compress,
  decodeBatchSync,
  decompress,
  iterateBatches,
} from '../../../src/protocol/records/index.ts';
import {
  ApiKeys,
  brokerSupports,
  type KcatRecord,
  kcat,
  kcatConsumeAll,
  RawConnection,
  randomTopic,
} from './helpers.ts';

/** One record as any consumer saw it, normalised for comparison. */
interface SeenRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: [string, string | null][];
  timestamp: number;
}

/** What a producer wrote; `timestamp` is exact when the producer set it, else a [from, to] window. */
interface SentRecord {
  partition: number;
  offset: number;
  key: string;
  value: string;
  headers: [string, string][];
  timestamp: number | [number, number];
}

type PlatformaticFetchResponse = Awaited<ReturnType<Consumer['fetch']>>;

/**
 * kafkajs ships gzip only; snappy, lz4 and zstd are plugins a user registers (kafkajs-snappy,
 * kafkajs-lz4, ...). Registering codecs backed by Samsa's protocol layer lets the kafkajs consumer
 * read what kcat and @platformatic/kafka compressed; kafkajs itself only produces none and gzip here.
 */
function registerKafkajsCodec(kafkajsType: CompressionTypes, codec: CompressionType): void {
  // CompressionCodecs is not a static named export of the CommonJS module: reach it via the default.
  (kafkajs.CompressionCodecs as Record<number, () => unknown>)[kafkajsType] = () => ({
    compress: (encoder: { buffer: Buffer }) => compress(codec, encoder.buffer),
    decompress: (buffer: Buffer) => decompress(codec, buffer),
  });
}
registerKafkajsCodec(CompressionTypes.Snappy, Compression.snappy);
registerKafkajsCodec(CompressionTypes.LZ4, Compression.lz4);
registerKafkajsCodec(CompressionTypes.ZSTD, Compression.zstd);

let broker: RunningBroker;
let kafka: Kafka;
/** Whether the broker serves consumer groups yet (kafkajs consumers need them). */
let groupsSupported = false;

before(async () => {
  // No initial rebalance delay: each kafkajs consumer group here has a single member.
  broker = await startBroker({ overrides: { 'group.initial.rebalance.delay.ms': '0' } });
  kafka = new Kafka({ clientId: 'samsa-it', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  groupsSupported =
    (await brokerSupports(broker.bootstrap, ApiKeys.FindCoordinator)) &&
    (await brokerSupports(broker.bootstrap, ApiKeys.JoinGroup));
});

after(async () => {
  await broker.close();
});

// ------------------------------------------------------------------------------------------------
// Consumers, each returning SeenRecord[] sorted by (partition, offset)

function sortSeen(records: SeenRecord[]): SeenRecord[] {
  return records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

function fromKcat(r: KcatRecord): SeenRecord {
  const headers: [string, string | null][] = [];
  const flat = r.headers ?? [];
  for (let i = 0; i + 1 < flat.length; i += 2) headers.push([flat[i]!, flat[i + 1] ?? null]);
  return { partition: r.partition, offset: r.offset, key: r.key, value: r.payload, headers, timestamp: r.ts };
}

async function consumeWithKcat(topic: string): Promise<SeenRecord[]> {
  return sortSeen((await kcatConsumeAll(broker.bootstrap, topic)).map(fromKcat));
}

function newPlatformaticConsumer(): Consumer {
  return new Consumer({
    clientId: 'samsa-it-platformatic',
    groupId: randomTopic('unused-group'),
    bootstrapBrokers: [broker.bootstrap],
    retries: 2,
  });
}

/**
 * Reads every partition of `topic` from offset 0 to its log end offset with @platformatic/kafka's
 * group-less `fetch` (Fetch v12+, by topic id).
 */
async function consumeWithPlatformatic(topic: string): Promise<SeenRecord[]> {
  const consumer = newPlatformaticConsumer();
  try {
    const metadata = await consumer.metadata({ topics: [topic] });
    const info = metadata.topics.get(topic);
    assert.ok(info !== undefined, `platformatic metadata lacks ${topic}`);
    const ends = (await consumer.listOffsets({ topics: [topic] })).get(topic)!;
    const next = ends.map(() => 0n);
    const seen: SeenRecord[] = [];
    for (let round = 0; next.some((o, p) => o < ends[p]!); round++) {
      assert.ok(round < 200, 'platformatic fetch made no progress');
      const partitions = next
        .map((fetchOffset, partition) => ({ partition, fetchOffset }))
        .filter(({ partition, fetchOffset }) => fetchOffset < ends[partition]!)
        .map(({ partition, fetchOffset }) => ({
          partition,
          fetchOffset,
          currentLeaderEpoch: -1,
          lastFetchedEpoch: -1,
          partitionMaxBytes: 2 * 1024 * 1024,
        }));
      const response: PlatformaticFetchResponse = await consumer.fetch({
        node: info.partitions[0]!.leader,
        topics: [{ topicId: info.id, partitions }],
        maxWaitTime: 100,
        minBytes: 1,
        maxBytes: 16 * 1024 * 1024,
      });
      assert.equal(response.errorCode, 0);
      for (const t of response.responses) {
        for (const p of t.partitions) {
          assert.equal(p.errorCode, 0, `fetch ${topic}/${p.partitionIndex}: error ${p.errorCode}`);
          for (const batch of p.records ?? []) {
            for (const r of batch.records) {
              const offset = batch.firstOffset + BigInt(r.offsetDelta);
              // A fetch returns whole batches: skip records below the fetch offset, as clients do.
              if (offset < next[p.partitionIndex]!) continue;
              seen.push({
                partition: p.partitionIndex,
                offset: Number(offset),
                key: r.key === null ? null : r.key.toString(),
                value: r.value === null ? null : r.value.toString(),
                headers: r.headers.map(([k, v]) => [k?.toString() ?? '', v === null ? null : v.toString()]),
                // With LogAppendTime (attribute bit 3) every record carries the batch's maxTimestamp.
                timestamp: Number(
                  (batch.attributes & 0x08) !== 0 ? batch.maxTimestamp : batch.firstTimestamp + r.timestampDelta,
                ),
              });
              next[p.partitionIndex] = offset + 1n;
            }
          }
        }
      }
    }
    return sortSeen(seen);
  } finally {
    await consumer.close();
  }
}

/** Reads `topic` through a kafkajs consumer group (needs FindCoordinator/JoinGroup/SyncGroup...). */
async function consumeWithKafkajs(topic: string, expectedCount: number): Promise<SeenRecord[]> {
  const consumer = kafka.consumer({ groupId: randomTopic('kafkajs-group'), maxWaitTimeInMs: 100 });
  const seen: SeenRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const { promise: done, resolve, reject } = Promise.withResolvers<void>();
    consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        seen.push({
          partition,
          offset: Number(message.offset),
          key: message.key === null ? null : message.key.toString(),
          value: message.value === null ? null : message.value.toString(),
          headers: Object.entries(message.headers ?? {}).map(([k, v]) => [
            k,
            v === undefined ? null : Buffer.isBuffer(v) ? v.toString() : String(v),
          ]),
          timestamp: Number(message.timestamp),
        });
        if (seen.length >= expectedCount) resolve();
      },
    });
    const timer = setTimeout(resolve, 30_000);
    await done;
    clearTimeout(timer);
  } finally {
    await consumer.disconnect();
  }
  return sortSeen(seen);
}

/** Reads `topic` through a @platformatic/kafka consumer group (FindCoordinator v4+, JoinGroup v6+...). */
async function consumeWithPlatformaticGroup(topic: string, expectedCount: number): Promise<SeenRecord[]> {
  const consumer = new Consumer({
    clientId: 'samsa-it-platformatic-group',
    groupId: randomTopic('platformatic-group'),
    bootstrapBrokers: [broker.bootstrap],
    maxWaitTime: 100,
    retries: 2,
  });
  const seen: SeenRecord[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    const timer = setTimeout(() => void stream.close(), 30_000);
    try {
      for await (const m of stream) {
        seen.push({
          partition: m.partition,
          offset: Number(m.offset),
          key: m.key === undefined || m.key === null ? null : m.key.toString(),
          value: m.value === undefined || m.value === null ? null : m.value.toString(),
          headers: [...m.headers].map(([k, v]) => [k.toString(), v === null ? null : v.toString()]),
          timestamp: Number(m.timestamp),
        });
        if (seen.length >= expectedCount) break;
      }
    } finally {
      clearTimeout(timer);
      await stream.close();
    }
  } finally {
    await consumer.close();
  }
  return sortSeen(seen);
}

// ------------------------------------------------------------------------------------------------
// Comparison

function assertMatches(seen: SeenRecord[], sent: SentRecord[], consumer: string): void {
  const expected = [...sent].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  assert.equal(seen.length, expected.length, `${consumer}: record count`);
  for (let i = 0; i < expected.length; i++) {
    const s = seen[i]!;
    const e = expected[i]!;
    const where = `${consumer}: record ${i} (partition ${e.partition} offset ${e.offset})`;
    assert.equal(s.partition, e.partition, `${where}: partition`);
    assert.equal(s.offset, e.offset, `${where}: offset`);
    assert.equal(s.key, e.key, `${where}: key`);
    assert.equal(s.value, e.value, `${where}: value`);
    assert.deepEqual(s.headers, e.headers, `${where}: headers`);
    if (typeof e.timestamp === 'number') assert.equal(s.timestamp, e.timestamp, `${where}: timestamp`);
    else
      assert.ok(
        s.timestamp >= e.timestamp[0] && s.timestamp <= e.timestamp[1],
        `${where}: timestamp ${s.timestamp} outside [${e.timestamp[0]}, ${e.timestamp[1]}]`,
      );
  }
  // Per partition, offsets are dense from 0: nothing lost, nothing duplicated.
  const byPartition = new Map<number, number[]>();
  for (const s of seen) byPartition.set(s.partition, [...(byPartition.get(s.partition) ?? []), s.offset]);
  for (const [p, offsets] of byPartition)
    assert.deepEqual(
      offsets,
      offsets.map((_, i) => i),
      `${consumer}: partition ${p} offsets`,
    );
}

/** Reads the topic back with every consumer available and compares each with what was sent. */
async function assertEveryConsumerSees(t: TestContext, topic: string, sent: SentRecord[]): Promise<void> {
  assertMatches(await consumeWithKcat(topic), sent, `kcat ${topic}`);
  assertMatches(await consumeWithPlatformatic(topic), sent, `@platformatic/kafka ${topic}`);
  if (groupsSupported) {
    assertMatches(await consumeWithKafkajs(topic, sent.length), sent, `kafkajs group consumer ${topic}`);
    assertMatches(
      await consumeWithPlatformaticGroup(topic, sent.length),
      sent,
      `@platformatic/kafka group consumer ${topic}`,
    );
  }
  t.diagnostic(
    `${sent.length} records read back by kcat and @platformatic/kafka fetch${groupsSupported ? ', and by kafkajs and @platformatic/kafka group consumers' : ' (group consumers skipped: the broker has no consumer groups)'}`,
  );
}

const PARTITIONS = 3;
const PER_CODEC = 12;

// ------------------------------------------------------------------------------------------------
// Producers

test('kafkajs produces keyed records with none and gzip; every client reads them back', async (t) => {
  const topic = randomTopic('kafkajs');
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] }), true);
  const producer = kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());

  const sent: SentRecord[] = [];
  const baseTs = Date.now() - 60_000;
  for (const [name, codec] of [
    ['none', CompressionTypes.None],
    ['gzip', CompressionTypes.GZIP],
  ] as const) {
    const messages = Array.from({ length: PER_CODEC }, (_, i) => ({
      partition: i % PARTITIONS,
      key: `key-${i % 4}`,
      value: `kafkajs ${name} #${i}`,
      headers: { codec: name, index: String(i) },
      timestamp: String(baseTs + sent.length + i),
    }));
    const acks = await producer.send({ topic, compression: codec, acks: -1, messages });
    // One batch per partition: message j of partition p sits at baseOffset(p) + j.
    const base = new Map(acks.map((a) => [a.partition, Number(a.baseOffset)]));
    const perPartition = new Map<number, number>();
    for (const m of messages) {
      const j = perPartition.get(m.partition) ?? 0;
      perPartition.set(m.partition, j + 1);
      sent.push({
        partition: m.partition,
        offset: base.get(m.partition)! + j,
        key: m.key,
        value: m.value,
        headers: Object.entries(m.headers),
        timestamp: Number(m.timestamp),
      });
    }
  }
  await assertEveryConsumerSees(t, topic, sent);

  // Starting in the middle of a batch (plain and gzip): the broker returns the whole batch and the
  // client skips the records below its offset; kcat must start exactly at the offset asked for.
  const partition0 = sent.filter((r) => r.partition === 0).sort((a, b) => a.offset - b.offset);
  for (const from of [2, 5]) {
    const out = await kcat(broker.bootstrap, ['-C', '-t', topic, '-p', '0', '-o', String(from), '-e', '-J', '-q']);
    const got = out
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => fromKcat(JSON.parse(l) as KcatRecord));
    assert.deepEqual(
      got.map((r) => [r.offset, r.value]),
      partition0.filter((r) => r.offset >= from).map((r) => [r.offset, r.value]),
      `kcat from offset ${from}`,
    );
  }
});

test('kcat produces keyed records with none, gzip, snappy, lz4 and zstd; every client reads them back', async (t) => {
  const topic = randomTopic('kcat');
  const admin = new Admin({ clientId: 'samsa-it-admin', bootstrapBrokers: [broker.bootstrap] });
  t.after(() => admin.close());
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 });

  const sent: SentRecord[] = [];
  const nextOffset = [0, 0, 0];
  for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const lines: string[] = [];
      const from = Date.now();
      for (let i = 0; i < PER_CODEC / PARTITIONS; i++) lines.push(`key-${i}\tkcat ${codec} p${partition} #${i}`);
      await kcat(
        broker.bootstrap,
        [
          '-P',
          '-t',
          topic,
          '-p',
          String(partition),
          '-z',
          codec,
          '-K',
          '\t',
          '-H',
          `codec=${codec}`,
          '-H',
          'client=kcat',
          '-X',
          'request.required.acks=-1',
        ],
        { input: `${lines.join('\n')}\n` },
      );
      const to = Date.now();
      for (const line of lines) {
        const [key, value] = line.split('\t') as [string, string];
        sent.push({
          partition,
          offset: nextOffset[partition]!++,
          key,
          value,
          headers: [
            ['codec', codec],
            ['client', 'kcat'],
          ],
          timestamp: [from, to],
        });
      }
    }
  }
  await assertEveryConsumerSees(t, topic, sent);
});

test('@platformatic/kafka produces keyed records with every codec; every client reads them back', async (t) => {
  const topic = randomTopic('platformatic');
  const admin = new Admin({ clientId: 'samsa-it-admin', bootstrapBrokers: [broker.bootstrap] });
  t.after(() => admin.close());
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 });
  const producer = new Producer({ clientId: 'samsa-it-producer', bootstrapBrokers: [broker.bootstrap], acks: -1 });
  t.after(() => producer.close());

  const sent: SentRecord[] = [];
  const baseTs = Date.now() - 120_000;
  for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const) {
    const messages = Array.from({ length: PER_CODEC }, (_, i) => ({
      topic,
      partition: i % PARTITIONS,
      key: Buffer.from(`key-${i % 4}`),
      value: Buffer.from(`platformatic ${codec} #${i}`),
      headers: new Map([
        [Buffer.from('codec'), Buffer.from(codec)],
        [Buffer.from('index'), Buffer.from(String(i))],
      ]),
      timestamp: BigInt(baseTs + sent.length + i),
    }));
    const result = await producer.send({ messages, compression: codec });
    const base = new Map((result.offsets ?? []).map((o) => [o.partition, Number(o.offset)]));
    assert.equal(base.size, PARTITIONS, `platformatic ${codec}: one acknowledged offset per partition`);
    const perPartition = new Map<number, number>();
    for (const m of messages) {
      const j = perPartition.get(m.partition) ?? 0;
      perPartition.set(m.partition, j + 1);
      sent.push({
        partition: m.partition,
        offset: base.get(m.partition)! + j,
        key: m.key.toString(),
        value: m.value.toString(),
        headers: [...m.headers].map(([k, v]) => [k.toString(), v.toString()]),
        timestamp: Number(m.timestamp),
      });
    }
  }
  await assertEveryConsumerSees(t, topic, sent);
});

test('a LogAppendTime topic: the broker stamps the time, returns it to the producer, and consumers see it', async (t) => {
  const topic = randomTopic('log-append-time');
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await admin.createTopics({
    topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] }],
  });
  const producer = kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  const before = Date.now();
  const [ack] = await producer.send({
    topic,
    acks: -1,
    compression: CompressionTypes.GZIP,
    messages: [
      { key: 'a', value: '1', timestamp: '1000' },
      { key: 'b', value: '2', timestamp: '2000' },
    ],
  });
  const after = Date.now();
  assert.equal(ack?.errorCode, 0);
  const appendTime = Number(ack?.logAppendTime);
  assert.ok(
    appendTime >= before && appendTime <= after,
    `logAppendTime ${ack?.logAppendTime} not in [${before}, ${after}]`,
  );
  const kcatRecords = await kcatConsumeAll(broker.bootstrap, topic);
  assert.deepEqual(
    kcatRecords.map((r) => [r.key, r.tstype, r.ts]),
    [
      ['a', 'logappend', appendTime],
      ['b', 'logappend', appendTime],
    ],
  );
  const consumers: [string, SeenRecord[]][] = [['@platformatic/kafka', await consumeWithPlatformatic(topic)]];
  if (groupsSupported) consumers.push(['kafkajs', await consumeWithKafkajs(topic, 2)]);
  for (const [name, seen] of consumers) {
    assert.deepEqual(
      seen.map((r) => [r.key, r.timestamp]),
      [
        ['a', appendTime],
        ['b', appendTime],
      ],
      name,
    );
  }
});

// ------------------------------------------------------------------------------------------------
// Topic shapes and sizes

test('topics are auto-created on first use by kafkajs, kcat and @platformatic/kafka', async (t) => {
  const numPartitions = broker.config.numPartitions;

  const kafkajsTopic = randomTopic('auto-kafkajs');
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  t.after(() => producer.disconnect());
  const [ack] = await producer.send({ topic: kafkajsTopic, messages: [{ key: 'k', value: 'auto kafkajs' }] });
  assert.equal(ack?.errorCode, 0);

  const kcatTopic = randomTopic('auto-kcat');
  await kcat(broker.bootstrap, ['-P', '-t', kcatTopic, '-K', '\t', '-X', 'topic.request.required.acks=-1'], {
    input: 'k\tauto kcat\n',
  });

  const platformaticTopic = randomTopic('auto-platformatic');
  const pProducer = new Producer({
    clientId: 'samsa-it-producer',
    bootstrapBrokers: [broker.bootstrap],
    autocreateTopics: true,
  });
  t.after(() => pProducer.close());
  await pProducer.send({
    messages: [{ topic: platformaticTopic, key: Buffer.from('k'), value: Buffer.from('auto platformatic') }],
  });

  for (const [topic, value] of [
    [kafkajsTopic, 'auto kafkajs'],
    [kcatTopic, 'auto kcat'],
    [platformaticTopic, 'auto platformatic'],
  ] as const) {
    const listing = JSON.parse(await kcat(broker.bootstrap, ['-L', '-J', '-t', topic])) as {
      topics: { topic: string; partitions: unknown[]; error?: string }[];
    };
    assert.equal(listing.topics[0]?.topic, topic);
    assert.equal(listing.topics[0]?.error, undefined, `${topic}: ${listing.topics[0]?.error}`);
    assert.equal(listing.topics[0]?.partitions.length, numPartitions, `${topic}: num.partitions`);
    const viaKcat = await consumeWithKcat(topic);
    assert.deepEqual(
      viaKcat.map((r) => [r.key, r.value]),
      [['k', value]],
    );
    const viaPlatformatic = await consumeWithPlatformatic(topic);
    assert.deepEqual(
      viaPlatformatic.map((r) => [r.key, r.value]),
      [['k', value]],
    );
    if (groupsSupported) {
      const viaKafkajs = await consumeWithKafkajs(topic, 1);
      assert.deepEqual(
        viaKafkajs.map((r) => [r.key, r.value]),
        [['k', value]],
      );
    }
  }
});

test('a 100-partition topic: created, listed, written and read across all partitions', async (t) => {
  const topic = randomTopic('wide');
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await admin.createTopics({ topics: [{ topic, numPartitions: 100 }] });
  const kafkajsMetadata = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.equal(kafkajsMetadata.topics[0]?.partitions.length, 100);

  const listing = JSON.parse(await kcat(broker.bootstrap, ['-L', '-J', '-t', topic])) as {
    topics: { partitions: { partition: number; leader: number }[] }[];
  };
  assert.deepEqual(
    listing.topics[0]?.partitions.map((p) => p.partition).sort((a, b) => a - b),
    Array.from({ length: 100 }, (_, i) => i),
  );

  // One produce request carrying 100 batches (kafkajs), then one more record per partition from kcat.
  const producer = kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  const ts = Date.now() - 1000;
  const acks = await producer.send({
    topic,
    acks: -1,
    messages: Array.from({ length: 100 }, (_, p) => ({
      partition: p,
      key: `k${p}`,
      value: `kafkajs to ${p}`,
      timestamp: String(ts + p),
    })),
  });
  assert.equal(acks.length, 100);
  assert.ok(acks.every((a) => a.errorCode === 0 && a.baseOffset === '0'));
  const sent: SentRecord[] = Array.from({ length: 100 }, (_, p) => ({
    partition: p,
    offset: 0,
    key: `k${p}`,
    value: `kafkajs to ${p}`,
    headers: [],
    timestamp: ts + p,
  }));
  // consumeWithPlatformatic fetches all 100 partitions in each Fetch request.
  await assertEveryConsumerSees(t, topic, sent);
});

test('a 900 KiB record round-trips through every client', async (t) => {
  const topic = randomTopic('large');
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });

  // Hex text, so kcat can carry it as one line; 921,600 bytes each, one per producer.
  const big = (tag: string) => `${tag}:${randomBytes(460_800).toString('hex')}`.slice(0, 921_600);
  const values = { kafkajs: big('kafkajs'), kcat: big('kcat'), platformatic: big('platformatic') };
  for (const v of Object.values(values)) assert.equal(v.length, 900 * 1024);

  const producer = kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  const [a0] = await producer.send({ topic, acks: -1, messages: [{ key: 'kafkajs', value: values.kafkajs }] });
  assert.equal(a0?.baseOffset, '0');

  await kcat(broker.bootstrap, ['-P', '-t', topic, '-p', '0', '-K', '\t', '-X', 'topic.request.required.acks=-1'], {
    input: `kcat\t${values.kcat}\n`,
  });

  const pProducer = new Producer({ clientId: 'samsa-it-producer', bootstrapBrokers: [broker.bootstrap], acks: -1 });
  t.after(() => pProducer.close());
  const r = await pProducer.send({
    messages: [{ topic, partition: 0, key: Buffer.from('platformatic'), value: Buffer.from(values.platformatic) }],
  });
  assert.equal(r.offsets?.[0]?.offset, 2n);

  // KIP-74: a Fetch whose byte limits are smaller than the first batch still returns that batch whole.
  const conn = await RawConnection.connect(broker.bootstrap);
  t.after(() => conn.close());
  const small = await conn.request<FetchResponse>(ApiKeys.Fetch, 11, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 1024,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 1n, partitionMaxBytes: 1024 }] }],
    forgottenTopicsData: [],
    rackId: '',
  } satisfies FetchRequestInput);
  const smallRecords = small.responses[0]?.partitions[0]?.records ?? Buffer.alloc(0);
  const smallBatches = [...iterateBatches(smallRecords, { partialTail: 'stop' })];
  assert.equal(smallBatches.length, 1, 'one whole batch despite max bytes 1024');
  const first = decodeBatchSync(smallRecords.subarray(0, smallBatches[0]!.size)).records;
  assert.deepEqual(
    first.map((r) => [r.offset, r.key?.toString(), r.value?.length]),
    [[1n, 'kcat', 900 * 1024]],
  );

  const expected = [
    ['kafkajs', values.kafkajs],
    ['kcat', values.kcat],
    ['platformatic', values.platformatic],
  ];
  const consumers: [string, SeenRecord[]][] = [
    ['kcat', await consumeWithKcat(topic)],
    ['@platformatic/kafka', await consumeWithPlatformatic(topic)],
  ];
  if (groupsSupported) consumers.push(['kafkajs', await consumeWithKafkajs(topic, 3)]);
  for (const [name, seen] of consumers) {
    assert.deepEqual(
      seen.map((s) => s.offset),
      [0, 1, 2],
      `${name}: offsets`,
    );
    // Compare without printing 900 KiB on failure.
    for (let i = 0; i < 3; i++) {
      assert.equal(seen[i]!.key, expected[i]![0], `${name}: key ${i}`);
      assert.ok(seen[i]!.value === expected[i]![1], `${name}: value ${i} differs (length ${seen[i]!.value?.length})`);
    }
  }
});

// ------------------------------------------------------------------------------------------------
// Long poll

/** Fetch is a parked waiter woken by an append: it must return soon after the append, not at max.wait. */
const APPEND_AFTER_MS = 300;
const WAKE_BOUND_MS = APPEND_AFTER_MS + 250;

test('long poll: a @platformatic/kafka fetch waiting 5 s returns right after an append', async (t) => {
  const topic = randomTopic('longpoll');
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const producer = kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  await producer.send({ topic, messages: [{ value: 'already there' }] });

  const consumer = newPlatformaticConsumer();
  t.after(() => consumer.close());
  const info = (await consumer.metadata({ topics: [topic] })).topics.get(topic)!;
  const fetchAtEnd = () =>
    consumer.fetch({
      node: info.partitions[0]!.leader,
      topics: [
        {
          topicId: info.id,
          partitions: [
            { partition: 0, fetchOffset: 1n, currentLeaderEpoch: -1, lastFetchedEpoch: -1, partitionMaxBytes: 1 << 20 },
          ],
        },
      ],
      maxWaitTime: 5000,
      minBytes: 1,
      maxBytes: 1 << 20,
    });
  // Warm the connection so the measurement covers the wait only.
  await consumer.fetch({
    node: info.partitions[0]!.leader,
    topics: [
      {
        topicId: info.id,
        partitions: [
          { partition: 0, fetchOffset: 0n, currentLeaderEpoch: -1, lastFetchedEpoch: -1, partitionMaxBytes: 1 << 20 },
        ],
      },
    ],
    maxWaitTime: 10,
    minBytes: 1,
    maxBytes: 1 << 20,
  });

  const started = performance.now();
  const pending = fetchAtEnd();
  await new Promise((r) => setTimeout(r, APPEND_AFTER_MS));
  await producer.send({ topic, messages: [{ value: 'wake up' }] });
  const response = await pending;
  const elapsed = performance.now() - started;
  const records = response.responses[0]?.partitions[0]?.records?.flatMap((b) => b.records) ?? [];
  assert.deepEqual(
    records.map((r) => r.value?.toString()),
    ['wake up'],
  );
  assert.ok(elapsed >= APPEND_AFTER_MS - 20, `fetch returned after ${elapsed.toFixed(0)} ms, before the append`);
  assert.ok(elapsed < WAKE_BOUND_MS, `fetch returned after ${elapsed.toFixed(0)} ms, want < ${WAKE_BOUND_MS}`);
});

test('long poll: a Fetch v11 (kafkajs/librdkafka era) waiting 5 s returns right after an append; without one it waits max.wait', async (t) => {
  const topic = randomTopic('longpoll-v11');
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const producer = kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  const conn = await RawConnection.connect(broker.bootstrap);
  t.after(() => conn.close());

  const fetch = (maxWaitMs: number) =>
    conn.request<FetchResponse>(ApiKeys.Fetch, 11, {
      replicaId: -1,
      maxWaitMs,
      minBytes: 1,
      maxBytes: 1 << 20,
      isolationLevel: 1,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [],
      rackId: '',
    });

  // Nothing to read: the broker holds the request for max.wait, then answers empty.
  const idleStart = performance.now();
  const idle = await fetch(400);
  const idleElapsed = performance.now() - idleStart;
  assert.equal(idle.responses[0]?.partitions[0]?.errorCode, 0);
  assert.equal(idle.responses[0]?.partitions[0]?.records?.length ?? 0, 0);
  assert.ok(idleElapsed >= 380 && idleElapsed < 1500, `empty fetch returned after ${idleElapsed.toFixed(0)} ms`);

  const started = performance.now();
  const pending = fetch(5000);
  await new Promise((r) => setTimeout(r, APPEND_AFTER_MS));
  await producer.send({ topic, messages: [{ key: 'k', value: 'wake up' }] });
  const response = await pending;
  const elapsed = performance.now() - started;
  const part = response.responses[0]?.partitions[0];
  assert.equal(part?.errorCode, 0);
  assert.equal(part?.highWatermark, 1n);
  const batches = [...iterateBatches(part!.records!)].map((b) =>
    decodeBatchSync(part!.records!.subarray(b.offset, b.offset + b.size)),
  );
  assert.deepEqual(
    batches.flatMap((b) => b.records.map((r) => r.value?.toString())),
    ['wake up'],
  );
  assert.ok(elapsed >= APPEND_AFTER_MS - 20, `fetch returned after ${elapsed.toFixed(0)} ms, before the append`);
  assert.ok(elapsed < WAKE_BOUND_MS, `fetch returned after ${elapsed.toFixed(0)} ms, want < ${WAKE_BOUND_MS}`);

  // min.bytes: an append smaller than min.bytes does not end the wait, one that reaches it does.
  const minBytesStart = performance.now();
  const waiting = conn.request<FetchResponse>(ApiKeys.Fetch, 11, {
    replicaId: -1,
    maxWaitMs: 5000,
    minBytes: 4000,
    maxBytes: 1 << 20,
    isolationLevel: 1,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 1n, partitionMaxBytes: 1 << 20 }] }],
    forgottenTopicsData: [],
    rackId: '',
  } satisfies FetchRequestInput);
  let settled = false;
  void waiting.then(() => {
    settled = true;
  });
  await new Promise((r) => setTimeout(r, APPEND_AFTER_MS));
  await producer.send({ topic, messages: [{ value: 'small' }] });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(settled, false, 'a fetch with min.bytes 4000 returned after a 5-byte append');
  await producer.send({ topic, messages: [{ value: 'x'.repeat(5000) }] });
  const big = await waiting;
  const bigElapsed = performance.now() - minBytesStart;
  assert.ok(bigElapsed < APPEND_AFTER_MS + 200 + 250, `min.bytes fetch returned after ${bigElapsed.toFixed(0)} ms`);
  const bigRecords = big.responses[0]!.partitions[0]!.records!;
  assert.deepEqual(
    [...iterateBatches(bigRecords)].flatMap((b) =>
      decodeBatchSync(bigRecords.subarray(b.offset, b.offset + b.size)).records.map((r) => r.value?.length),
    ),
    [5, 5000],
  );

  // ListOffsets agrees with the high watermark the Fetch reported.
  const offsets = await conn.request<ListOffsetsResponse>(ApiKeys.ListOffsets, 5, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] }],
  });
  assert.equal(offsets.topics[0]?.partitions[0]?.offset, 3n);
});
