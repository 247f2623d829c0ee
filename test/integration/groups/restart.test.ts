// Committed offsets and group state survive a broker restart, clean (SIGTERM) or not (kill -9):
// the broker runs as a child process (`node src/cli.ts start`) on one data directory; a kafkajs
// group commits, the broker goes down and comes back, and then the offsets, the group's state and
// member (loaded from __consumer_offsets) are there, and a new member resumes at the offsets.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import {
  type BrokerProcess,
  type ConsumerProcess,
  randomTopic,
  spawnBroker,
  spawnKafkajsConsumer,
  waitFor,
} from './helpers.ts';

const PARTITIONS = 3;
const OVERRIDES = { 'offsets.topic.num.partitions': '4', 'group.initial.rebalance.delay.ms': '200' };

function client(bootstrap: string): Kafka {
  return new Kafka({
    clientId: 'restart-it',
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 500 },
  });
}

async function restartScenario(t: TestContext, signal: NodeJS.Signals): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-groups-'));
  let broker: BrokerProcess | undefined = await spawnBroker(dataDir, OVERRIDES);
  const consumers: ConsumerProcess[] = [];
  t.after(async () => {
    for (const c of consumers) await c.kill();
    await broker?.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });
  const topic = randomTopic('restart');
  const group = randomTopic('restart-g');
  let kafka = client(broker.bootstrap);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] });
  const producer = kafka.producer();
  await producer.connect();
  const send = async (perPartition: number, from: number) => {
    for (let p = 0; p < PARTITIONS; p++) {
      await producer.send({
        topic,
        messages: Array.from({ length: perPartition }, (_, i) => ({ partition: p, value: `v${from + i}` })),
      });
    }
  };
  await send(10, 0);
  // A simple (group-less) commit too, as the admin client's setOffsets makes one.
  await admin.setOffsets({ groupId: `${group}-simple`, topic, partitions: [{ partition: 1, offset: '7' }] });

  const first = spawnKafkajsConsumer('first', broker.bootstrap, topic, group);
  consumers.push(first);
  await waitFor(() => first.events.filter((e) => e.type === 'committed').length === 10 * PARTITIONS, 30_000, 'commits');
  const described = await admin.describeGroups([group]);
  const before = described.groups[0]!;
  assert.equal(before.state, 'Stable');
  assert.equal(before.members.length, 1);
  await producer.disconnect();
  await admin.disconnect();

  // The consumer dies with the broker; the group was Stable with one member.
  await first.kill('SIGKILL');
  const exit = await broker.stop(signal);
  if (signal === 'SIGTERM') assert.equal(exit.code, 0, broker.stderr());
  broker = await spawnBroker(dataDir, OVERRIDES);
  kafka = client(broker.bootstrap);
  const admin2 = kafka.admin();
  await admin2.connect();
  t.after(() => admin2.disconnect());

  const offsets = await admin2.fetchOffsets({ groupId: group, topics: [topic] });
  assert.deepEqual(
    offsets[0]!.partitions.map((p) => [p.partition, p.offset]).sort(),
    Array.from({ length: PARTITIONS }, (_, p) => [p, '10']),
  );
  const simple = await admin2.fetchOffsets({ groupId: `${group}-simple`, topics: [topic] });
  assert.equal(simple[0]!.partitions.find((p) => p.partition === 1)?.offset, '7');
  const after = (await admin2.describeGroups([group])).groups[0]!;
  assert.equal(after.state, 'Stable', 'the group comes back as Kafka loads it: Stable with its members');
  assert.deepEqual(
    after.members.map((m) => [m.memberId, m.clientId, m.memberAssignment.toString('hex')]),
    before.members.map((m) => [m.memberId, m.clientId, m.memberAssignment.toString('hex')]),
  );

  // A new member takes over once the dead one's session expires, and starts at the commits.
  const producer2 = kafka.producer();
  await producer2.connect();
  t.after(() => producer2.disconnect());
  for (let p = 0; p < PARTITIONS; p++) {
    await producer2.send({ topic, messages: Array.from({ length: 5 }, (_, i) => ({ partition: p, value: `w${i}` })) });
  }
  const second = spawnKafkajsConsumer('second', broker.bootstrap, topic, group);
  consumers.push(second);
  await waitFor(() => second.events.filter((e) => e.type === 'message').length >= 5 * PARTITIONS, 30_000, 'resume');
  for (const e of second.events) {
    if (e.type === 'message') assert.ok(Number(e.offset) >= 10, `re-read ${e.partition}:${e.offset}`);
  }
}

test('committed offsets and group state survive a clean restart (SIGTERM)', (t) => restartScenario(t, 'SIGTERM'));

test('committed offsets and group state survive kill -9', (t) => restartScenario(t, 'SIGKILL'));
