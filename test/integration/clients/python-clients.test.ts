// The two Python Kafka clients Debian bookworm packages, against a broker run as a child process
// (`node src/cli.ts start`), both run by the system /usr/bin/python3:
//   - kafka-python 2.0.2 (python3-kafka, pure Python). It infers "broker 2.4" from ApiVersions v0
//     and then speaks old versions: Metadata v0/v1 (v5 from the admin client), Produce v7, Fetch
//     v4, ListOffsets v1, CreateTopics v3, DescribeConfigs v2 and the classic group APIs
//     FindCoordinator v0, JoinGroup v2, SyncGroup/Heartbeat/LeaveGroup v1, OffsetCommit v2,
//     OffsetFetch v1.
//   - confluent-kafka-python 1.7.0 (python3-confluent-kafka) on librdkafka 2.0.2: ApiVersions v3,
//     Metadata v4, Produce v7, Fetch v11, ListOffsets v2, InitProducerId v4, CreateTopics v4,
//     DescribeConfigs v1, FindCoordinator v2, JoinGroup v5, SyncGroup/Heartbeat v3, LeaveGroup v1,
//     OffsetCommit/OffsetFetch v7.
// Each client, used as an application would (test/fixtures/python/*.py, printing JSON):
//   - creates topics with its admin API (with a topic config), lists and describes them;
//   - produces keyed records with headers and explicit timestamps, acks=all (confluent-kafka
//     idempotent), with every compression codec it has here, one topic per codec; the batches the
//     broker stored are checked for that codec and for the producer id and sequences;
//   - consumes every topic from the beginning, its own and the other client's: every record, in
//     order per partition, contiguous offsets, same keys, values, headers and timestamps;
//   - runs a consumer group: two members share a 4-partition topic, commit, leave; a new member of
//     the same client, then one of the other client, resumes at the committed offsets.
// Python or a client module missing fails the tests naming the Debian package (.ci/run installs
// them); only kafka-python's optional codec modules (snappy, lz4, zstandard) are skipped, saying so.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, type TestContext, test } from 'node:test';
import { Compression, decodeBatchSync, iterateBatches } from '../../../src/protocol/records/index.ts';
import { fetchPartition, metadata, RawConnection, run } from '../broker/helpers.ts';
import {
  type BrokerProcess,
  type ConsumerEvent,
  ConsumerProcess,
  randomTopic,
  spawnBroker,
  waitFor,
} from '../groups/helpers.ts';

const PYTHON = '/usr/bin/python3';
const PARTITIONS = 4;
const RECORDS_PER_CODEC = 12;
const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
type Codec = (typeof CODECS)[number];

interface PythonClient {
  readonly id: 'kafka-python' | 'confluent-kafka';
  readonly script: string;
  readonly module: string;
  readonly debPackage: string;
  /** Idempotent producer: batches carry a producer id and sequences. */
  readonly idempotent: boolean;
  /** kafka-python's send() takes header values as bytes only, never None. */
  readonly nullHeaderValues: boolean;
  /** Optional codec modules and the Debian package that provides each. */
  readonly codecPackages: Partial<Record<Codec, string>>;
}

const KAFKA_PYTHON: PythonClient = {
  id: 'kafka-python',
  script: 'test/fixtures/python/kafka_python_client.py',
  module: 'kafka',
  debPackage: 'python3-kafka',
  idempotent: false,
  nullHeaderValues: false,
  codecPackages: { snappy: 'python3-snappy', lz4: 'python3-lz4', zstd: 'python3-zstandard' },
};

const CONFLUENT_KAFKA: PythonClient = {
  id: 'confluent-kafka',
  script: 'test/fixtures/python/confluent_kafka_client.py',
  module: 'confluent_kafka',
  debPackage: 'python3-confluent-kafka',
  idempotent: true,
  nullHeaderValues: true,
  codecPackages: {},
};

const CLIENTS = [KAFKA_PYTHON, CONFLUENT_KAFKA] as const;

function other(client: PythonClient): PythonClient {
  return client === KAFKA_PYTHON ? CONFLUENT_KAFKA : KAFKA_PYTHON;
}

// ------------------------------------------------------------------------------------------------
// Running the fixtures

interface ClientInfo {
  client: string;
  version: string;
  librdkafka?: string;
  codecs: Record<Codec, boolean>;
}

function installHint(client: PythonClient): string {
  return `install the Debian package ${client.debPackage} (apt-get install ${client.debPackage}; .ci/run does)`;
}

/** Runs a fixture mode and parses its JSON output; fails naming the Debian package if Python or the module is missing. */
async function python<T>(client: PythonClient, args: readonly string[], input?: string): Promise<T> {
  let res: Awaited<ReturnType<typeof run>>;
  try {
    res = await run(PYTHON, [client.script, ...args], { timeoutMs: 60_000, ...(input === undefined ? {} : { input }) });
  } catch (err) {
    throw new Error(`cannot run ${PYTHON} (${(err as Error).message}): ${installHint(client)}`);
  }
  if (/ModuleNotFoundError|ImportError/.test(res.stderr) && res.stderr.includes(client.module)) {
    assert.fail(`${PYTHON} cannot import ${client.module}: ${installHint(client)}\n${res.stderr}`);
  }
  assert.equal(
    res.code,
    0,
    `${client.id} ${args.slice(0, 1).join(' ')} exited with ${res.code ?? res.signal}:\n${res.stderr}${res.stdout}`,
  );
  try {
    return JSON.parse(res.stdout) as T;
  } catch {
    assert.fail(`${client.id} ${args[0]} printed no JSON:\n${res.stdout}\n${res.stderr}`);
  }
}

const infos = new Map<PythonClient, Promise<ClientInfo>>();

/** The client's versions and codecs; every test calls it first so a missing package fails each of them. */
function requireClient(client: PythonClient): Promise<ClientInfo> {
  let info = infos.get(client);
  if (info === undefined) {
    info = python<ClientInfo>(client, ['info']);
    infos.set(client, info);
  }
  return info;
}

function spawnGroupMember(client: PythonClient, name: string, topic: string, group: string): ConsumerProcess {
  return new ConsumerProcess(name, PYTHON, [client.script, 'group', broker.bootstrap, topic, group], {
    stdout: (line) => {
      if (!line.startsWith('{')) return undefined;
      return JSON.parse(line) as ConsumerEvent;
    },
  });
}

// ------------------------------------------------------------------------------------------------
// Records

type Headers = [string, string | null][];

interface RecordSpec {
  partition: number;
  key: string | null;
  value: string | null;
  headers: Headers;
  timestamp: number;
}

interface Ack {
  partition: number;
  offset: number;
  timestamp: number;
}

interface ProduceResult {
  topic: string;
  codec: Codec;
  acks: Ack[];
}

/** A record as a consumer reports it, and as the test expects it. */
interface SeenRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: Headers;
  timestamp: number;
  timestamp_type: string;
}

interface ConsumeResult {
  ends: { topic: string; partition: number; offset: number }[];
  records: SeenRecord[];
}

/** Keyed records spread over the partitions; a tombstone, duplicate, empty and (where the client allows) null headers. */
function makeRecords(client: PythonClient, codec: Codec, baseTimestamp: number): RecordSpec[] {
  return Array.from({ length: RECORDS_PER_CODEC }, (_, i) => {
    const headers: Headers = [
      ['seq', String(i)],
      ['codec', codec],
    ];
    if (i % 3 === 0) headers.push(['empty', '']);
    if (i % 5 === 2) headers.push(['seq', `again-${i}`]);
    if (client.nullHeaderValues && i % 4 === 1) headers.push(['null', null]);
    return {
      partition: i % PARTITIONS,
      key: `${client.id}/${codec}/key-${i}`,
      value: i === 5 ? null : `${codec} värde ${i} € ${'compressible text '.repeat(12)}`,
      headers,
      timestamp: baseTimestamp + i * 7,
    };
  });
}

// ------------------------------------------------------------------------------------------------
// Shared state: one broker for the file, topics and what was produced to them

let broker: BrokerProcess;
let dataDir: string;
let conn: RawConnection;

interface ClientState {
  /** One topic per codec, created by this client's admin API. */
  readonly codecTopics: Record<Codec, string>;
  readonly groupTopic: string;
  /** topic -> what this client produced there (with the acknowledged offsets), set once the topic passed its checks. */
  readonly produced: Map<string, { codec: Codec; records: SeenRecord[] }>;
}

const state = new Map<PythonClient, ClientState>(
  CLIENTS.map((c) => [
    c,
    {
      codecTopics: Object.fromEntries(CODECS.map((codec) => [codec, randomTopic(`py-${c.id}-${codec}`)])) as Record<
        Codec,
        string
      >,
      groupTopic: randomTopic(`py-${c.id}-group`),
      produced: new Map(),
    },
  ]),
);

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'samsa-python-'));
  broker = await spawnBroker(dataDir, {
    'offsets.topic.num.partitions': '5',
    'group.initial.rebalance.delay.ms': '1000',
  });
  conn = await RawConnection.connect(broker.bootstrap);
});

after(async () => {
  conn?.close();
  await broker?.stop();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------------
// What the broker stored, read with Samsa's own codecs

interface StoredBatch {
  baseOffset: number;
  codec: number;
  producerId: bigint;
  baseSequence: number;
  records: { offset: number; key: string | null; value: string | null; headers: Headers; timestamp: number }[];
}

async function storedBatches(topic: string, partition: number): Promise<StoredBatch[]> {
  const out: StoredBatch[] = [];
  let next = 0n;
  for (let round = 0; round < 100; round++) {
    const p = await fetchPartition(conn, topic, partition, next);
    if (next >= p.highWatermark) return out;
    const bytes = p.records ?? Buffer.alloc(0);
    for (const b of iterateBatches(bytes, { partialTail: 'stop' })) {
      const batch = decodeBatchSync(bytes.subarray(b.offset, b.offset + b.size));
      out.push({
        baseOffset: Number(batch.header.baseOffset),
        codec: batch.header.attributes & 0x07,
        producerId: batch.header.producerId,
        baseSequence: batch.header.baseSequence,
        records: batch.records.map((r) => ({
          offset: Number(r.offset),
          key: r.key?.toString() ?? null,
          value: r.value?.toString() ?? null,
          headers: r.headers.map((h): [string, string | null] => [h.key, h.value?.toString() ?? null]),
          timestamp: Number(r.timestamp),
        })),
      });
      next = batch.header.baseOffset + BigInt(batch.header.lastOffsetDelta) + 1n;
    }
  }
  assert.fail(`Fetch ${topic}/${partition} made no progress`);
}

// ------------------------------------------------------------------------------------------------
// Checks

function byPartition<T extends { partition: number }>(records: readonly T[]): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const r of records) {
    let list = out.get(r.partition);
    if (list === undefined) {
      list = [];
      out.set(r.partition, list);
    }
    list.push(r);
  }
  return out;
}

/** `seen` (in delivery order) is exactly `expected`: per partition in order, offsets 0..n-1, same content. */
function assertSameRecords(what: string, seen: readonly SeenRecord[], expected: readonly SeenRecord[]): void {
  const got = byPartition(seen);
  const want = byPartition(expected);
  for (let p = 0; p < PARTITIONS; p++) {
    const g = got.get(p) ?? [];
    const w = want.get(p) ?? [];
    assert.deepEqual(
      g.map((r) => r.offset),
      w.map((_, i) => i),
      `${what}: partition ${p} delivered offsets out of order, with gaps or duplicates`,
    );
    assert.deepEqual(g, w, `${what}: partition ${p} records differ from what was produced`);
  }
  assert.equal(seen.length, expected.length, `${what}: record count`);
}

// ------------------------------------------------------------------------------------------------
// 1. Admin

interface KafkaPythonAdmin {
  api_version: number[];
  created: { topic: string; error_code: number; error_message: string | null }[];
  listed: string[];
  described: {
    topic: string;
    error_code: number;
    partitions: { partition: number; leader: number; replicas: number[]; isr: number[]; error_code: number }[];
  }[];
  configs: { topic: string; error_code: number; configs: Record<string, string> }[];
}

interface ConfluentAdmin {
  created: { topic: string; error: string | null }[];
  listed: string[];
  brokers: { id: number; host: string; port: number }[];
  controller_id: number;
  described: {
    topic: string;
    error: string | null;
    partitions: { partition: number; leader: number; replicas: number[]; isr: number[]; error: string | null }[];
  }[];
  configs: { topic: string; configs: Record<string, string> }[];
}

for (const client of CLIENTS) {
  test(`${client.id}: admin API creates ${CODECS.length + 1} topics (${PARTITIONS} partitions, retention.ms), lists and describes them`, async (t) => {
    const info = await requireClient(client);
    t.diagnostic(
      `${client.id} ${info.version}${info.librdkafka === undefined ? '' : ` on librdkafka ${info.librdkafka}`}`,
    );
    const s = state.get(client)!;
    const topics = [...Object.values(s.codecTopics), s.groupTopic];
    const md = await metadata(conn, []);
    const nodeId = md.brokers[0]!.nodeId;

    const raw = await python<KafkaPythonAdmin & ConfluentAdmin>(client, [
      'admin',
      broker.bootstrap,
      String(PARTITIONS),
      ...topics,
    ]);
    if (client === KAFKA_PYTHON) {
      const r = raw as KafkaPythonAdmin;
      t.diagnostic(`kafka-python inferred broker version ${r.api_version.join('.')}`);
      assert.deepEqual(
        r.created.map((c) => [c.topic, c.error_code]).sort(),
        topics.map((n) => [n, 0]).sort(),
        `CreateTopics errors: ${JSON.stringify(r.created)}`,
      );
      for (const d of r.described) {
        assert.equal(d.error_code, 0, `describe ${d.topic}`);
        for (const p of d.partitions) assert.equal(p.error_code, 0, `describe ${d.topic}/${p.partition}`);
      }
    } else {
      const r = raw as ConfluentAdmin;
      assert.deepEqual(
        r.created.map((c) => [c.topic, c.error]).sort(),
        topics.map((n) => [n, null]).sort(),
        `CreateTopics errors: ${JSON.stringify(r.created)}`,
      );
      assert.deepEqual(
        r.brokers.map((b) => `${b.id}@${b.host}:${b.port}`),
        [`${nodeId}@${broker.bootstrap}`],
      );
      assert.equal(r.controller_id, nodeId);
      for (const d of r.described) {
        assert.equal(d.error, null, `describe ${d.topic}`);
        for (const p of d.partitions) assert.equal(p.error, null, `describe ${d.topic}/${p.partition}`);
      }
    }
    for (const n of topics) assert.ok(raw.listed.includes(n), `list_topics lacks ${n}: ${raw.listed.join(', ')}`);
    assert.deepEqual(
      raw.described.map((d) => ({
        topic: d.topic,
        partitions: d.partitions.map((p) => [p.partition, p.leader, p.replicas, p.isr]),
      })),
      topics.map((topic) => ({
        topic,
        partitions: Array.from({ length: PARTITIONS }, (_, p) => [p, nodeId, [nodeId], [nodeId]]),
      })),
    );
    assert.deepEqual(raw.configs.map((c) => c.topic).sort(), [...topics].sort());
    for (const c of raw.configs) {
      assert.equal(c.configs['retention.ms'], '3600000', `${c.topic} retention.ms (set at creation)`);
      assert.equal(c.configs['cleanup.policy'], 'delete', `${c.topic} cleanup.policy`);
    }
    // The broker's own view agrees.
    const brokerView = await metadata(conn, topics);
    for (const mt of brokerView.topics) {
      assert.equal(mt.errorCode, 0, `Metadata ${mt.name}`);
      assert.equal(mt.partitions.length, PARTITIONS, `Metadata ${mt.name} partitions`);
    }
  });
}

// ------------------------------------------------------------------------------------------------
// 2. Produce

function skipReason(client: PythonClient, codec: Codec): string {
  return `${client.id} cannot ${codec}-compress here: its optional module is not importable (Debian ${client.codecPackages[codec] ?? '?'})`;
}

for (const client of CLIENTS) {
  test(`${client.id}: produces keyed records with headers and timestamps, acks=all${client.idempotent ? ', idempotent' : ''}, with each codec`, async (t) => {
    const info = await requireClient(client);
    const s = state.get(client)!;
    const available = CODECS.filter((c) => info.codecs[c]);
    for (const c of CODECS) if (!info.codecs[c]) t.diagnostic(`skipped: ${skipReason(client, c)}`);
    const base = Date.now() - 60_000 - (client === KAFKA_PYTHON ? 0 : 30_000);
    const runs = available.map((codec, n) => ({
      topic: s.codecTopics[codec],
      codec,
      records: makeRecords(client, codec, base + n * 1000),
    }));
    const results = await python<ProduceResult[]>(client, ['produce', broker.bootstrap], JSON.stringify(runs));
    assert.deepEqual(
      results.map((r) => r.codec),
      available,
    );

    for (const codec of CODECS) {
      await t.test(codec, async (t) => {
        if (!available.includes(codec)) {
          t.skip(skipReason(client, codec));
          return;
        }
        const spec = runs.find((r) => r.codec === codec)!;
        const { acks } = results.find((r) => r.codec === codec)!;
        const topic = spec.topic;
        assert.equal(acks.length, spec.records.length);
        // Acknowledged offsets: each record where it was sent, per partition in send order from 0.
        const nextOffset = new Map<number, number>();
        const expected: SeenRecord[] = spec.records.map((r, i) => {
          const ack = acks[i]!;
          const offset = nextOffset.get(r.partition) ?? 0;
          nextOffset.set(r.partition, offset + 1);
          assert.deepEqual(
            [ack.partition, ack.offset, ack.timestamp],
            [r.partition, offset, r.timestamp],
            `record ${i}: acknowledged (partition, offset, timestamp)`,
          );
          return { topic, ...r, offset, timestamp_type: 'CreateTime' };
        });
        // What the broker stored: batches in the requested codec, producer ids as configured.
        for (let p = 0; p < PARTITIONS; p++) {
          const batches = await storedBatches(topic, p);
          const want = expected.filter((r) => r.partition === p);
          assert.ok(batches.length > 0, `${topic}/${p}: nothing stored`);
          for (const b of batches) {
            assert.equal(b.codec, Compression[codec], `${topic}/${p} batch at ${b.baseOffset}: codec attribute`);
            if (client.idempotent) {
              // One producer wrote each partition from offset 0, its sequences from 0: they coincide.
              assert.ok(b.producerId >= 0n, `${topic}/${p}: idempotent batch without a producer id`);
              assert.equal(b.baseSequence, b.baseOffset, `${topic}/${p}: sequence of the batch at ${b.baseOffset}`);
            } else {
              assert.equal(b.producerId, -1n, `${topic}/${p}: unexpected producer id`);
            }
          }
          assert.deepEqual(
            batches.flatMap((b) => b.records),
            want.map(({ offset, key, value, headers, timestamp }) => ({ offset, key, value, headers, timestamp })),
            `${topic}/${p}: stored records`,
          );
        }
        s.produced.set(topic, { codec, records: expected });
      });
    }
  });
}

// ------------------------------------------------------------------------------------------------
// 3. Consume (own and cross-client)

for (const client of CLIENTS) {
  test(`${client.id}: consumes every topic from the beginning, its own and ${other(client).id}'s`, async (t) => {
    const info = await requireClient(client);
    const sources = CLIENTS.flatMap((producer) =>
      [...state.get(producer)!.produced].map(([topic, { codec, records }]) => ({ producer, topic, codec, records })),
    );
    assert.ok(
      sources.some((s) => s.producer === client),
      `nothing was produced by ${client.id} (see the produce test)`,
    );
    assert.ok(
      sources.some((s) => s.producer !== client),
      `nothing was produced by ${other(client).id} (see the produce test)`,
    );
    const readable = sources.filter((s) => info.codecs[s.codec]);
    const result = await python<ConsumeResult>(client, ['consume', broker.bootstrap, ...readable.map((s) => s.topic)]);
    for (const source of sources) {
      await t.test(`${source.producer.id} ${source.codec}`, (t) => {
        if (!info.codecs[source.codec]) {
          t.skip(`${client.id} cannot decompress ${source.codec} here (Debian ${client.codecPackages[source.codec]})`);
          return;
        }
        const ends = result.ends.filter((e) => e.topic === source.topic);
        assert.deepEqual(
          ends.map((e) => [e.partition, e.offset]).sort(),
          Array.from({ length: PARTITIONS }, (_, p) => [p, source.records.filter((r) => r.partition === p).length]),
          `${source.topic}: end offsets`,
        );
        assertSameRecords(
          `${client.id} reading ${source.producer.id}'s ${source.codec} topic`,
          result.records.filter((r) => r.topic === source.topic),
          source.records,
        );
      });
    }
  });
}

// ------------------------------------------------------------------------------------------------
// 4. Consumer groups

function messages(
  c: ConsumerProcess,
): { partition: number; offset: number; key: string | null; value: string | null }[] {
  return c.events
    .filter((e) => e.type === 'message')
    .map((e) => ({
      partition: e.partition!,
      offset: Number(e.offset),
      key: (e.key as string | null) ?? null,
      value: e.value ?? null,
    }));
}

/** Highest committed offset per partition, as the member reported its successful commits. */
function committed(c: ConsumerProcess): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of c.events) {
    if (e.type === 'committed') out.set(e.partition!, Math.max(out.get(e.partition!) ?? 0, Number(e.offset)));
  }
  return out;
}

async function stopMember(c: ConsumerProcess): Promise<void> {
  c.child.kill('SIGTERM');
  const timer = setTimeout(() => c.child.kill('SIGKILL'), 10_000);
  await c.exited;
  clearTimeout(timer);
  assert.equal(c.child.exitCode, 0, `${c.name} exited with ${c.child.exitCode ?? c.child.signalCode}:\n${c.stderr}`);
  assert.ok(
    c.events.some((e) => e.type === 'closed'),
    `${c.name} did not close cleanly:\n${c.stderr}`,
  );
}

for (const client of CLIENTS) {
  test(`${client.id}: group of two shares ${PARTITIONS} partitions and commits; a new ${client.id} member, then a ${other(client).id} one, resume at the commits`, async (t: TestContext) => {
    await requireClient(client);
    await requireClient(other(client));
    const topic = state.get(client)!.groupTopic;
    const group = randomTopic(`py-${client.id}-g`);
    const members: ConsumerProcess[] = [];
    t.after(async () => {
      for (const m of members) await m.kill();
    });
    const failWith = (what: string) => (): string =>
      `${what}\n${members.map((m) => `${m.name}: ${JSON.stringify(m.events.filter((e) => e.type !== 'message'))}\n${m.stderr}`).join('\n')}`;
    /** Waits for `check`; fails at once if one of `running` exits meanwhile. */
    const waitOr = async (
      running: readonly ConsumerProcess[],
      check: () => boolean,
      ms: number,
      what: string,
    ): Promise<void> => {
      let died: ConsumerProcess | undefined;
      try {
        await waitFor(
          () => {
            died = running.find((m) => !m.alive);
            return died !== undefined || check();
          },
          ms,
          what,
        );
      } catch {
        assert.fail(failWith(`timed out waiting for ${what}`)());
      }
      if (died !== undefined) assert.fail(failWith(`${died.name} exited while waiting for ${what}`)());
    };

    // Records produced so far per partition; values name partition and offset.
    const produced = new Map<number, number>();
    const produce = async (perPartition: number): Promise<void> => {
      const records: RecordSpec[] = [];
      for (let p = 0; p < PARTITIONS; p++) {
        const from = produced.get(p) ?? 0;
        for (let i = 0; i < perPartition; i++) {
          records.push({ partition: p, key: `k${p}`, value: `p${p}-o${from + i}`, headers: [], timestamp: Date.now() });
        }
        produced.set(p, from + perPartition);
      }
      await python(client, ['produce', broker.bootstrap], JSON.stringify([{ topic, codec: 'gzip', records }]));
    };
    const checkValues = (m: ConsumerProcess): void => {
      for (const r of messages(m)) {
        assert.deepEqual([r.key, r.value], [`k${r.partition}`, `p${r.partition}-o${r.offset}`], `${m.name} record`);
      }
    };

    // Two members share the partitions, each gets some.
    const a = spawnGroupMember(client, `${client.id}-a`, topic, group);
    const b = spawnGroupMember(client, `${client.id}-b`, topic, group);
    members.push(a, b);
    const started = Date.now();
    await waitOr(
      [a, b],
      () => {
        const x = a.assignment() ?? [];
        const y = b.assignment() ?? [];
        return (
          x.length > 0 &&
          y.length > 0 &&
          new Set([...x, ...y]).size === PARTITIONS &&
          x.length + y.length === PARTITIONS
        );
      },
      20_000,
      'two members to share the partitions',
    );
    t.diagnostic(
      `assignment ${JSON.stringify(a.assignment())} / ${JSON.stringify(b.assignment())} after ${Date.now() - started} ms`,
    );

    await produce(3);
    await waitOr(
      [a, b],
      () => [a, b].every((m) => [...m.owned].every((p) => committed(m).get(p) === 3)),
      20_000,
      'every record consumed and committed',
    );
    for (const m of [a, b]) {
      const own = messages(m);
      assert.ok(own.length > 0, `${m.name} consumed nothing`);
      for (const r of own) assert.ok(m.owned.has(r.partition), `${m.name} got ${r.partition}:${r.offset}, not its own`);
      checkValues(m);
    }
    const all = [...messages(a), ...messages(b)];
    assert.deepEqual(
      all.map((r) => `${r.partition}:${r.offset}`).sort(),
      [...produced].flatMap(([p, n]) => Array.from({ length: n }, (_, o) => `${p}:${o}`)).sort(),
      'each record exactly once across the group',
    );
    await Promise.all([stopMember(a), stopMember(b)]);

    // A new member of the same client starts at the committed offsets; then one of the other client.
    for (const [name, impl, perPartition] of [
      [`${client.id}-c`, client, 2],
      [`${other(client).id}-d`, other(client), 1],
    ] as const) {
      const committedEnds = new Map(produced);
      await produce(perPartition);
      const m = spawnGroupMember(impl, name, topic, group);
      members.push(m);
      await waitOr(
        [m],
        () => [...produced].every(([p, n]) => committed(m).get(p) === n),
        20_000,
        `${name} to consume and commit the new records`,
      );
      assert.deepEqual(
        m.assignment(),
        Array.from({ length: PARTITIONS }, (_, p) => p),
        `${name} alone owns every partition`,
      );
      for (const r of messages(m)) {
        assert.ok(
          r.offset >= committedEnds.get(r.partition)!,
          failWith(`${name} re-read ${r.partition}:${r.offset}, committed before it joined`)(),
        );
      }
      assert.equal(messages(m).length, perPartition * PARTITIONS, `${name} record count`);
      checkValues(m);
      await stopMember(m);
    }
  });
}
