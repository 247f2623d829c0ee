// @platformatic/kafka consumer groups against an in-process broker, with the classic protocol
// (JoinGroup v6+, SyncGroup v4+, flexible versions) and with KIP-848 (`groupProtocol: 'consumer'`,
// ConsumerGroupHeartbeat, server-side assignment): three members share a 6-partition topic
// 2/2/2; one is killed with SIGKILL and its partitions move to the other two within the session
// timeout (6 s); every record is consumed and none twice after its commit; after a clean stop a
// new member resumes at the committed offsets.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { startBroker } from '../../../src/broker.ts';
import {
  assertDeliveredOnceAfterCommit,
  type ConsumerProcess,
  consumedKeys,
  REPO_ROOT,
  randomTopic,
  spawnPlatformaticConsumer,
  waitFor,
} from './helpers.ts';

const execFileAsync = promisify(execFile);
const PARTITIONS = 6;
const SESSION_TIMEOUT_MS = 6000;

async function scenario(t: TestContext, protocol: 'classic' | 'consumer'): Promise<void> {
  const broker = await startBroker({
    overrides: {
      'offsets.topic.num.partitions': '5',
      'group.initial.rebalance.delay.ms': '1000',
      'group.consumer.session.timeout.ms': String(SESSION_TIMEOUT_MS),
      'group.consumer.heartbeat.interval.ms': '500',
    },
  });
  const consumers: ConsumerProcess[] = [];
  t.after(async () => {
    for (const c of consumers) await c.kill();
    await broker.close();
  });
  const kafka = new Kafka({
    clientId: 'platformatic-group-it',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const topic = randomTopic(`pltf-${protocol}`);
  const group = randomTopic(`pltf-g-${protocol}`);
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] });
  const producer = kafka.producer();
  await producer.connect();
  t.after(async () => {
    await producer.disconnect();
    await admin.disconnect();
  });
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
  for (let i = 0; i < 3; i++) {
    consumers.push(spawnPlatformaticConsumer(`p${i}`, broker.bootstrap, topic, group, protocol));
  }
  await waitFor(
    () => {
      const a = consumers.map((c) => c.assignment() ?? []);
      return a.every((x) => x.length === 2) && new Set(a.flat()).size === PARTITIONS;
    },
    30_000,
    'a 2/2/2 assignment',
  );
  await waitFor(() => unique(consumers) === total(), 20_000, 'the first records');
  if (protocol === 'consumer') {
    // The CLI describes KIP-848 groups through ConsumerGroupDescribe.
    const { stdout } = await execFileAsync(
      process.execPath,
      ['src/cli.ts', 'group', 'describe', '--group', group, '--bootstrap', broker.bootstrap],
      { cwd: REPO_ROOT },
    );
    assert.match(stdout, /\(consumer\), state Stable, 3 member\(s\), protocol uniform/);
    const owners = stdout
      .split('\n')
      .filter((l) => l.startsWith(group))
      .map((l) => l.trim().split(/\s+/));
    assert.equal(owners.length, PARTITIONS);
    assert.equal(new Set(owners.map((r) => r[6])).size, 3, 'three members own the partitions');
  }

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
  t.diagnostic(`failover after kill -9: ${failoverMs} ms`);
  assert.ok(failoverMs < SESSION_TIMEOUT_MS + 5000, `failover took ${failoverMs} ms`);
  // @platformatic/kafka does not discard the answer of a Fetch sent before a rebalance for a
  // partition the rebalance took away; let such long polls (maxWaitTime 200 ms) drain first.
  await new Promise((r) => setTimeout(r, 500));

  await produce(10);
  await waitFor(() => unique(consumers) === total(), 20_000, 'every record after the failover');
  assertDeliveredOnceAfterCommit(consumers, produced, [victim]);

  for (const c of survivors) await c.kill('SIGTERM');
  const ends = new Map(produced);
  await produce(5);
  const resumed = spawnPlatformaticConsumer('resumed', broker.bootstrap, topic, group, protocol);
  consumers.push(resumed);
  await waitFor(() => unique([resumed]) === 5 * PARTITIONS, 30_000, 'the resumed member to read the new records');
  for (const e of resumed.events) {
    if (e.type === 'message') {
      assert.ok(Number(e.offset) >= (ends.get(e.partition!) ?? 0), `re-read ${e.partition}:${e.offset}`);
    }
  }
  assertDeliveredOnceAfterCommit(consumers, produced, [victim]);
}

test('@platformatic/kafka classic group: 2/2/2, failover on kill -9, resume from commits', (t) =>
  scenario(t, 'classic'));

test('@platformatic/kafka KIP-848 consumer group: 2/2/2, failover on kill -9, resume from commits', (t) =>
  scenario(t, 'consumer'));
