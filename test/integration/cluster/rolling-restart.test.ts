// Fault 4 of issue 14: a rolling restart of every broker under load. Each broker in turn gets
// SIGTERM (controlled shutdown: it stops leading and deregisters, so leadership moves at once),
// is started again and rejoins every ISR before the next one goes. An idempotent kafkajs producer
// with acks=all and min.insync.replicas=2 writes throughout: no send may fail, and afterwards
// every acknowledged record is in the log exactly once, at the offset it was acknowledged at.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import { type Cluster, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import { fetchAll, NO_ETCD } from './helpers.ts';

const skip = etcdAvailable() ? false : NO_ETCD;
const TOPIC = 'rolling';
const PARTITIONS = 3;
let cluster: Cluster;

before(async () => {
  if (skip === false) cluster = await startCluster({ brokers: 3 });
});
after(async () => {
  await cluster?.close();
});

test('rolling restart of every broker under acks=all load: no failed send, every acknowledged record once at its offset', {
  skip,
}, async (t) => {
  const client = await cluster.client();
  await cluster.waitFor('3 brokers', async () => (await client.metadata([])).brokers.size === 3);
  const created = await (await client.connect()).request(ApiKey.CreateTopics, {
    topics: [
      {
        name: TOPIC,
        numPartitions: PARTITIONS,
        replicationFactor: 3,
        assignments: [],
        configs: [{ name: 'min.insync.replicas', value: '2' }],
      },
    ],
    timeoutMs: 10_000,
  });
  assert.equal(created.topics[0]!.errorCode, 0);
  const fullIsr = async () => {
    const t = (await (await cluster.client()).metadata([TOPIC])).topics.get(TOPIC);
    return t?.partitions.length === PARTITIONS && t.partitions.every((p) => p.leaderId > 0 && p.isr.length === 3);
  };
  await cluster.waitFor('every replica in sync', fullIsr);

  const kafka = new Kafka({ clientId: 'rolling', brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 30 } });
  await producer.connect();
  const acked = new Map<string, { partition: number; offset: bigint }>();
  const failures: string[] = [];
  let running = true;
  // The longest time without an acknowledgement: how long writes stalled at worst.
  let longestGapMs = 0;
  let lastAck = Date.now();
  let n = 0;
  const load = (async () => {
    while (running) {
      const value = `v${n++}`;
      const partition = n % PARTITIONS;
      try {
        const [meta] = await producer.send({ topic: TOPIC, acks: -1, messages: [{ partition, value }] });
        acked.set(value, { partition, offset: BigInt(meta!.baseOffset!) });
        const now = Date.now();
        longestGapMs = Math.max(longestGapMs, now - lastAck);
        lastAck = now;
      } catch (err) {
        failures.push(`${value}: ${(err as Error).message}`);
      }
    }
  })();

  // Asked of a broker that is up (a client bootstrapped on the stopped one would not answer).
  const clientNot = async (nodeId: number) => cluster.client(cluster.brokers.find((x) => x.nodeId !== nodeId));
  const isrWithout = (nodeId: number) => async () => {
    const t = (await (await clientNot(nodeId)).metadata([TOPIC])).topics.get(TOPIC);
    return t?.partitions.every((p) => p.leaderId > 0 && p.leaderId !== nodeId && !p.isr.includes(nodeId));
  };
  try {
    for (const b of cluster.brokers) {
      const before = acked.size;
      await b.stop();
      // The controlled shutdown moved its leaderships and the controller took it out of every ISR.
      await cluster
        .waitFor(`broker ${b.nodeId} out of every ISR, its partitions led elsewhere`, isrWithout(b.nodeId))
        .catch(async (err) => {
          const md = await (await clientNot(b.nodeId)).metadata([TOPIC]);
          for (const x of cluster.brokers)
            console.log(
              `--- ${x.nodeId}\n` +
                x
                  .output()
                  .split('\n')
                  .filter((l) => /controller|elected|ISR|registration|shutdown|partition leaders/.test(l))
                  .map((l) => l.slice(0, 300))
                  .join('\n'),
            );
          throw new Error(
            `${JSON.stringify([md.controllerId, [...md.brokers.keys()], md.topics.get(TOPIC)?.partitions.map((p) => [p.partition, p.leaderId, p.leaderEpoch, p.replicas, p.isr])])}\n${(err as Error).message}`,
          );
        });
      const whileDown = acked.size;
      await b.start();
      await cluster.waitFor(`broker ${b.nodeId} back in every ISR`, fullIsr, 60_000);
      // Writes go on before the next broker goes.
      const target = acked.size + 50;
      await cluster.waitFor('50 more acknowledged records', async () => acked.size >= target);
      t.diagnostic(
        `broker ${b.nodeId} restarted: ${whileDown - before} records acknowledged while it stopped, ${acked.size - before} in all`,
      );
    }
  } finally {
    running = false;
    await load;
    await producer.disconnect();
  }

  // auto.leader.rebalance.enable: every partition is led by its preferred (first) replica again.
  await cluster.waitFor('every partition led by its preferred replica', async () => {
    const t = (await (await cluster.client()).metadata([TOPIC])).topics.get(TOPIC);
    return t?.partitions.every((p) => p.leaderId === p.replicas[0]);
  });
  assert.deepEqual(failures, [], 'no acks=all send failed during the rolling restart');
  assert.ok(acked.size > 100, `load ran throughout (${acked.size} acknowledged)`);
  const found = new Map<string, { partition: number; offset: bigint }[]>();
  const md = await (await cluster.client()).metadata([TOPIC]);
  for (let p = 0; p < PARTITIONS; p++) {
    // Read from the partition's leader (a follower answers NOT_LEADER_OR_FOLLOWER to consumers).
    const leader = md.topics.get(TOPIC)!.partitions[p]!.leaderId;
    const leaderClient = await cluster.client(cluster.brokers.find((b) => b.nodeId === leader));
    for (const r of await fetchAll(leaderClient, TOPIC, p)) {
      const list = found.get(r.value ?? '') ?? [];
      list.push({ partition: p, offset: r.offset });
      found.set(r.value ?? '', list);
    }
  }
  let lost = 0;
  let duplicated = 0;
  for (const [value, at] of acked) {
    const where = found.get(value) ?? [];
    if (where.length === 0) lost++;
    if (where.length > 1) duplicated++;
    if (where.length === 1) assert.deepEqual(where[0], at, `${value} is at the offset it was acknowledged at`);
  }
  t.diagnostic(`acknowledged ${acked.size}, lost ${lost}, duplicated ${duplicated}, longest stall ${longestGapMs} ms`);
  assert.equal(lost, 0, 'no acknowledged record lost');
  assert.equal(duplicated, 0, 'no record written twice');
});
