/**
 * Group coordinator benchmark (issue 5): Samsa in its own process (`samsa start`), clients here.
 *   node bench/groups.bench.ts [--runs 3] [--seconds 5]
 * Measures:
 *  - rebalance time of a 10-member group on a 100-partition topic, from the first JoinGroup
 *    (consumers created at once) to every member consuming: kafkajs 2.2.4 (classic protocol,
 *    eager) and @platformatic/kafka (KIP-848 consumer protocol); group.initial.rebalance.delay.ms
 *    is 0 so the figure is the coordinator's and the clients', not the configured delay;
 *  - the rebalance after one member of the kafkajs group leaves (until the other 9 own all 100);
 *  - offset-commit throughput: OffsetCommit requests of one partition each, 64 in flight on one
 *    connection, each answered after its record is appended to __consumer_offsets; and of 100
 *    partitions each (partition offsets committed per second).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Consumer } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { ApiKey } from '../src/network/api-message-types.ts';
import { KafkaClient } from '../src/network/kafka-client.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const argValue = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const RUNS = argValue('--runs', 3);
const SECONDS = argValue('--seconds', 5);
const MEMBERS = 10;
const PARTITIONS = 100;

async function startBroker(dataDir: string): Promise<{ child: ChildProcess; bootstrap: string }> {
  const child = spawn(
    process.execPath,
    [
      'src/cli.ts',
      'start',
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
      '--override',
      'group.initial.rebalance.delay.ms=0',
      '--override',
      'group.consumer.heartbeat.interval.ms=500',
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const bootstrap = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m !== null) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}: ${out}`)));
  });
  return { child, bootstrap };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** kafkajs: 10 consumers join at once; ms until every one consumed a record. Then one leaves. */
async function kafkajsRebalance(kafka: Kafka, topic: string, run: number): Promise<{ join: number; leave: number }> {
  const groupId = `bench-kafkajs-${run}-${Date.now()}`;
  const consuming = new Set<number>();
  const latest = new Map<number, { generationId: number; partitions: number }>();
  const consumers = Array.from({ length: MEMBERS }, () =>
    kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 300, maxWaitTimeInMs: 100 }),
  );
  const t0 = performance.now();
  await Promise.all(
    consumers.map(async (c, i) => {
      c.on(c.events.GROUP_JOIN, (e) => {
        latest.set(i, { generationId: 0, partitions: e.payload.memberAssignment[topic]?.length ?? 0 });
      });
      await c.connect();
      await c.subscribe({ topic, fromBeginning: true });
      await c.run({
        eachMessage: async () => {
          consuming.add(i);
        },
      });
    }),
  );
  await waitUntil(() => consuming.size === MEMBERS, 60_000, 'every kafkajs member consuming');
  const join = performance.now() - t0;

  const t1 = performance.now();
  await consumers[0]!.disconnect();
  latest.delete(0);
  const owned = () => [...latest.values()].reduce((n, x) => n + x.partitions, 0);
  const sizes = () => [...latest.values()].map((x) => x.partitions);
  await waitUntil(
    () => latest.size === MEMBERS - 1 && owned() === PARTITIONS && sizes().every((n) => n >= 11),
    60_000,
    'the 9 remaining kafkajs members to own every partition',
  );
  const leave = performance.now() - t1;
  await Promise.all(consumers.slice(1).map((c) => c.disconnect()));
  return { join, leave };
}

/** @platformatic/kafka with the KIP-848 protocol: 10 members join at once; ms until all consume. */
async function kip848Rebalance(bootstrap: string, topic: string, run: number): Promise<number> {
  const groupId = `bench-848-${run}-${Date.now()}`;
  const consuming = new Set<number>();
  const consumers = Array.from(
    { length: MEMBERS },
    () =>
      new Consumer({
        clientId: 'bench-848',
        groupId,
        bootstrapBrokers: [bootstrap],
        groupProtocol: 'consumer',
        rebalanceTimeout: 60_000,
        maxWaitTime: 100,
      }),
  );
  const t0 = performance.now();
  const streams = await Promise.all(
    consumers.map(async (c, i) => {
      const stream = await c.consume({ topics: [topic], mode: 'earliest', autocommit: false });
      stream.on('data', () => {
        consuming.add(i);
      });
      return stream;
    }),
  );
  await waitUntil(() => consuming.size === MEMBERS, 60_000, 'every KIP-848 member consuming');
  const elapsed = performance.now() - t0;
  await Promise.all(streams.map((s) => s.close()));
  await Promise.all(consumers.map((c) => c.close(true)));
  return elapsed;
}

/** OffsetCommit requests (`partitionsPerCommit` partitions each), `window` in flight, for SECONDS. */
async function commitThroughput(bootstrap: string, topic: string, partitionsPerCommit: number): Promise<number> {
  const client = new KafkaClient({ bootstrap, clientId: 'bench-commit' });
  try {
    const conn = await client.connect();
    const groupId = `bench-commits-${partitionsPerCommit}-${Date.now()}`;
    let offset = 0n;
    const send = () =>
      conn.request(ApiKey.OffsetCommit, {
        groupId,
        generationIdOrMemberEpoch: -1,
        memberId: '',
        topics: [
          {
            name: topic,
            partitions: Array.from({ length: partitionsPerCommit }, (_, p) => ({
              partitionIndex: p,
              committedOffset: offset++,
              committedMetadata: '',
            })),
          },
        ],
      });
    await send(); // creates __consumer_offsets if needed, warms up
    const window = 64;
    let done = 0;
    const end = performance.now() + SECONDS * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: window }, async () => {
        while (performance.now() < end) {
          const r = await send();
          if (r.topics[0]?.partitions[0]?.errorCode !== 0) throw new Error('commit failed');
          done++;
        }
      }),
    );
    return done / ((performance.now() - t0) / 1000);
  } finally {
    client.close();
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'samsa-bench-groups-'));
const broker = await startBroker(dataDir);
try {
  const kafka = new Kafka({ clientId: 'bench', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = `bench-groups-${Date.now()}`;
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] });
  const producer = kafka.producer();
  await producer.connect();
  for (let p = 0; p < PARTITIONS; p++) await producer.send({ topic, messages: [{ partition: p, value: 'x' }] });
  await producer.disconnect();
  await admin.disconnect();

  const joins: number[] = [];
  const leaves: number[] = [];
  const kip848: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const r = await kafkajsRebalance(kafka, topic, run);
    joins.push(r.join);
    leaves.push(r.leave);
    kip848.push(await kip848Rebalance(broker.bootstrap, topic, run));
  }
  const single = await commitThroughput(broker.bootstrap, topic, 1);
  const batched = await commitThroughput(broker.bootstrap, topic, 100);

  const fmt = (xs: number[]) => `${median(xs).toFixed(0)} ms (runs: ${xs.map((x) => x.toFixed(0)).join(', ')})`;
  console.log(`10-member group on ${PARTITIONS} partitions, join to all consuming (median of ${RUNS}):`);
  console.log(`  kafkajs, classic eager protocol:        ${fmt(joins)}`);
  console.log(`  @platformatic/kafka, KIP-848 protocol:  ${fmt(kip848)}`);
  console.log(`  kafkajs, one member leaves -> 9 own all: ${fmt(leaves)}`);
  console.log(`offset commits (${SECONDS} s, 64 in flight, each appended to __consumer_offsets):`);
  console.log(`  1 partition per OffsetCommit:   ${single.toFixed(0)} commits/s`);
  console.log(
    `  100 partitions per OffsetCommit: ${batched.toFixed(0)} requests/s = ${(batched * 100).toFixed(0)} partition offsets/s`,
  );
} finally {
  broker.child.kill('SIGTERM');
  await new Promise((r) => broker.child.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
}
