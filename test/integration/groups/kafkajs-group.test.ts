// A kafkajs 2.2.4 consumer group against an in-process broker: three consumers (child processes)
// share a 6-partition topic 2/2/2; one is killed with SIGKILL and its partitions move to the
// other two within the session timeout (6 s); every produced record is consumed and none twice
// after its commit; a restarted group resumes from the committed offsets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { startBroker } from '../../../src/broker.ts';
import {
  assertDeliveredOnceAfterCommit,
  type ConsumerProcess,
  consumedKeys,
  randomTopic,
  spawnKafkajsConsumer,
  waitFor,
} from './helpers.ts';

const PARTITIONS = 6;
const SESSION_TIMEOUT_MS = 6000;

test('kafkajs group: 2/2/2 split, failover on kill -9, no record twice after commit, resume after restart', async (t) => {
  const broker = await startBroker({
    overrides: { 'offsets.topic.num.partitions': '5', 'group.initial.rebalance.delay.ms': '1000' },
  });
  const consumers: ConsumerProcess[] = [];
  t.after(async () => {
    for (const c of consumers) await c.kill();
    await broker.close();
  });
  const kafka = new Kafka({ clientId: 'group-it', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = randomTopic('kafkajs-group');
  const group = randomTopic('kafkajs-g');
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
  const uniqueConsumed = (cs: readonly ConsumerProcess[]): number => new Set(consumedKeys(cs)).size;

  // 1. Three members share six partitions two each.
  for (let i = 0; i < 3; i++) consumers.push(spawnKafkajsConsumer(`c${i}`, broker.bootstrap, topic, group));
  await waitFor(
    () => {
      const a = consumers.map((c) => c.assignment());
      if (a.some((x) => x?.length !== 2)) return false;
      return new Set(a.flatMap((x) => x ?? [])).size === PARTITIONS;
    },
    30_000,
    'a 2/2/2 assignment',
  );

  await produce(20);
  await waitFor(() => uniqueConsumed(consumers) === total(), 20_000, 'the first records to be consumed');

  // 2. Kill one member abruptly: the other two take over its partitions within the session timeout.
  const victim = consumers[0]!;
  const survivors = consumers.slice(1);
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
  assert.ok(failoverMs < SESSION_TIMEOUT_MS + 5000, `failover took ${failoverMs} ms`);
  t.diagnostic(`failover after kill -9: ${failoverMs} ms`);

  await produce(20);
  await waitFor(() => uniqueConsumed(consumers) === total(), 20_000, 'every record after the failover');
  assertDeliveredOnceAfterCommit(consumers, produced, [victim]);

  // 3. Stop the group cleanly, produce more, start a new member: it resumes at the committed offsets.
  for (const c of survivors) await c.kill('SIGTERM');
  const before = total();
  await produce(5);
  const resumed = spawnKafkajsConsumer('resumed', broker.bootstrap, topic, group);
  consumers.push(resumed);
  await waitFor(() => uniqueConsumed([resumed]) === total() - before, 30_000, 'the resumed member to catch up');
  for (const e of resumed.events) {
    if (e.type !== 'message') continue;
    assert.ok(
      Number(e.offset) >= (produced.get(e.partition!) ?? 0) - 5,
      `resumed member re-read ${e.partition}:${e.offset}`,
    );
  }
  assertDeliveredOnceAfterCommit(consumers, produced, [victim]);
});
