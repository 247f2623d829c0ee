// kcat -G (librdkafka 2.0.2's balanced consumer, as Debian ships it) against an in-process
// broker, with the eager range/roundrobin assignors and with cooperative-sticky (KIP-429
// incremental rebalancing through the classic protocol): three members share a 6-partition
// topic 2/2/2; one is killed with SIGKILL and its partitions move to the other two within the
// session timeout (6 s); every record is consumed, and only the killed member's uncommitted
// records come twice; after a clean stop a new member resumes at the committed offsets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { startBroker } from '../../../src/broker.ts';
import { type ConsumerProcess, consumedKeys, randomTopic, spawnKcatConsumer, waitFor } from './helpers.ts';

const PARTITIONS = 6;
const SESSION_TIMEOUT_MS = 6000;

async function scenario(t: import('node:test').TestContext, extra: readonly string[]): Promise<void> {
  const broker = await startBroker({
    overrides: { 'offsets.topic.num.partitions': '5', 'group.initial.rebalance.delay.ms': '1000' },
  });
  const consumers: ConsumerProcess[] = [];
  t.after(async () => {
    for (const c of consumers) await c.kill();
    await broker.close();
  });
  const kafka = new Kafka({ clientId: 'kcat-group-it', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = randomTopic('kcat-group');
  const group = randomTopic('kcat-g');
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  const produced = new Map<number, number>();
  const produce = async (perPartition: number): Promise<void> => {
    for (let p = 0; p < PARTITIONS; p++) {
      const base = produced.get(p) ?? 0;
      await producer.send({
        topic,
        messages: Array.from({ length: perPartition }, (_, i) => ({ partition: p, value: `p${p}-${base + i}` })),
      });
      produced.set(p, base + perPartition);
    }
  };
  const total = (): number => [...produced.values()].reduce((a, b) => a + b, 0);
  const unique = (cs: readonly ConsumerProcess[]): number => new Set(consumedKeys(cs)).size;

  await produce(10);
  for (let i = 0; i < 3; i++) consumers.push(spawnKcatConsumer(`k${i}`, broker.bootstrap, topic, group, extra));
  await waitFor(
    () => {
      const a = consumers.map((c) => c.assignment() ?? []);
      return a.every((x) => x.length === 2) && new Set(a.flat()).size === PARTITIONS;
    },
    30_000,
    'a 2/2/2 assignment',
  );
  await waitFor(() => unique(consumers) === total(), 20_000, 'the first records');

  const victim = consumers[0]!;
  const victimPartitions = new Set(victim.assignment());
  const survivors = consumers.slice(1);
  // Let auto-commit (every 100 ms) catch up, so the victim's duplicates stay few.
  await new Promise((r) => setTimeout(r, 500));
  const killedAt = Date.now();
  await victim.kill('SIGKILL');
  await waitFor(
    () => {
      const a = survivors.map((c) => c.assignment() ?? []);
      return a.every((x) => x.length === 3) && new Set(a.flat()).size === PARTITIONS;
    },
    SESSION_TIMEOUT_MS + 10_000,
    'the survivors to own every partition',
  );
  const failoverMs = Date.now() - killedAt;
  t.diagnostic(`failover after kill -9: ${failoverMs} ms`);
  assert.ok(failoverMs < SESSION_TIMEOUT_MS + 5000, `failover took ${failoverMs} ms`);

  await produce(10);
  await waitFor(() => unique(consumers) === total(), 20_000, 'every record after the failover');
  const counts = new Map<string, number>();
  for (const k of consumedKeys(consumers)) counts.set(k, (counts.get(k) ?? 0) + 1);
  for (const [k, n] of counts) {
    if (n > 1) assert.ok(victimPartitions.has(Number(k.split(':')[0])), `${k} consumed ${n} times`);
  }

  // A clean stop commits; a new member then reads only what came after.
  for (const c of survivors) await c.kill('SIGTERM');
  const ends = new Map(produced);
  await produce(5);
  const resumed = spawnKcatConsumer('resumed', broker.bootstrap, topic, group, extra);
  consumers.push(resumed);
  await waitFor(() => unique([resumed]) === 5 * PARTITIONS, 30_000, 'the resumed member to read the new records');
  for (const e of resumed.events) {
    if (e.type === 'message') {
      assert.ok(Number(e.offset) >= (ends.get(e.partition!) ?? 0), `re-read ${e.partition}:${e.offset}`);
    }
  }
}

test('kcat -G (eager assignors): 2/2/2, failover on kill -9, resume from committed offsets', (t) => scenario(t, []));

test('kcat -G cooperative-sticky: 2/2/2, incremental failover on kill -9, resume from committed offsets', (t) =>
  scenario(t, ['-X', 'partition.assignment.strategy=cooperative-sticky']));
