// `samsa cluster drain`, `samsa topic reassign` and `samsa topic elect-leaders` against four
// brokers on a real etcd, racks a,a,b,b: a drain moves every replica off broker 1 (to broker 2,
// its rack's other broker, where that is not a replica already) with the records intact;
// a reassignment by plan file with --wait; an election; and their one-line usage errors.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import type { KafkaClient } from '../../../src/network/kafka-client.ts';
import { type Cluster, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import {
  brokerClients,
  clientOf,
  errorName,
  fetchAll,
  metadataFrom,
  mustProduce,
  NO_ETCD,
  uniqueName,
  waitForMembership,
} from '../cluster/helpers.ts';
import { runCli } from './helpers.ts';

const skip = etcdAvailable() ? false : NO_ETCD;
const RACKS: Record<number, string> = { 1: 'a', 2: 'a', 3: 'b', 4: 'b' };
let cluster: Cluster;
let clients: Map<number, KafkaClient>;
let dir: string;

before(async () => {
  if (skip !== false) return;
  dir = await mkdtemp(join(tmpdir(), 'samsa-drain-'));
  cluster = await startCluster({
    brokers: 4,
    brokerOverrides: Object.fromEntries(Object.entries(RACKS).map(([id, rack]) => [id, { 'broker.rack': rack }])),
  });
  clients = await brokerClients(cluster);
  await waitForMembership(cluster, clients, [1, 2, 3, 4]);
});

after(async () => {
  await cluster?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function createTopic(topic: string, partitions: number, replicationFactor: number): Promise<void> {
  const res = await clientOf(clients, 2).request(ApiKey.CreateTopics, {
    topics: [{ name: topic, numPartitions: partitions, replicationFactor, assignments: [], configs: [] }],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  assert.equal(errorName(res.topics[0]!.errorCode), 'NONE', res.topics[0]!.errorMessage ?? '');
  await cluster.waitFor(`${topic} led with full ISRs`, async () => {
    const t = (await metadataFrom(clientOf(clients, 2), [topic])).topics.get(topic);
    return (
      t?.partitions.length === partitions &&
      t.partitions.every((p) => p.leaderId >= 0 && p.isr.length === replicationFactor)
    );
  });
}

test('cluster drain moves every replica off a broker, to its rack first, records intact', {
  skip,
  timeout: 80_000,
}, async () => {
  const topic = uniqueName('drain');
  await createTopic(topic, 4, 2);
  const before = (await metadataFrom(clientOf(clients, 2), [topic])).topics.get(topic)!;
  for (const p of before.partitions)
    await mustProduce(clientOf(clients, p.leaderId), topic, p.partition, [`r${p.partition}-a`, `r${p.partition}-b`]);

  const r = await runCli(['cluster', 'drain', '--broker', '1', '-b', cluster.bootstrap], '', 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Moving \d+ replica\(s\) off broker 1\./);
  assert.match(r.stdout, /Broker 1 holds no replica now\./);

  const md = await metadataFrom(clientOf(clients, 2), null);
  for (const t of md.topics.values())
    for (const p of t.partitions) assert.ok(!p.replicas.includes(1), `${t.name}-${p.partition}: ${p.replicas}`);
  const after = md.topics.get(topic)!;
  for (const p of before.partitions) {
    const now = after.partitions[p.partition]!;
    // Broker 1's replica went to broker 2 (same rack) unless 2 held one already.
    if (p.replicas.includes(1) && !p.replicas.includes(2))
      assert.deepEqual(
        now.replicas,
        p.replicas.map((x) => (x === 1 ? 2 : x)),
      );
    if (!p.replicas.includes(1)) assert.deepEqual(now.replicas, p.replicas);
    const leader = await cluster.waitFor(`${topic}-${p.partition} led`, async () => {
      const q = (await metadataFrom(clientOf(clients, 2), [topic])).topics.get(topic)?.partitions[p.partition];
      return q !== undefined && q.leaderId >= 0 ? q.leaderId : undefined;
    });
    const records = await fetchAll(clientOf(clients, leader), topic, p.partition);
    assert.deepEqual(
      records.map((x) => x.value),
      [`r${p.partition}-a`, `r${p.partition}-b`],
    );
  }
  const again = await runCli(['cluster', 'drain', '--broker', '1', '-b', cluster.bootstrap]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /Broker 1 holds no replica: nothing to move\./);
});

test('topic reassign (plan file, --wait, --list) and topic elect-leaders', { skip, timeout: 60_000 }, async () => {
  const topic = uniqueName('plan');
  await createTopic(topic, 1, 2);
  const plan = join(dir, 'plan.json');
  await writeFile(
    plan,
    JSON.stringify({ version: 1, partitions: [{ topic, partition: 0, replicas: [4, 3], log_dirs: ['any', 'any'] }] }),
  );
  const r = await runCli(
    ['topic', 'reassign', '--reassignment-json-file', plan, '--wait', '-b', cluster.bootstrap],
    '',
    40_000,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Reassignment of ${topic}-0 to replicas 4,3 started\\.`));
  assert.match(r.stdout, /Reassignment of 1 partition\(s\) complete\./);
  const p = (await metadataFrom(clientOf(clients, 2), [topic])).topics.get(topic)!.partitions[0]!;
  assert.deepEqual(p.replicas, [4, 3]);

  const list = await runCli(['topic', 'reassign', '--list', '--format', 'json', '-b', cluster.bootstrap]);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), { reassignments: [] });

  // Broker 4 leads once in sync (the completion moved leadership to it, or the election does).
  await cluster.waitFor('the ISR of both', async () => {
    const q = (await metadataFrom(clientOf(clients, 2), [topic])).topics.get(topic)!.partitions[0]!;
    return q.isr.length === 2;
  });
  const elect = await runCli(['topic', 'elect-leaders', '--topic', topic, '-b', cluster.bootstrap]);
  assert.equal(elect.code, 0, elect.stderr);
  assert.match(
    elect.stdout,
    new RegExp(
      `(Successfully completed leader election \\(PREFERRED\\)|Valid replica already elected) for partitions ${topic}-0`,
    ),
  );
  assert.equal((await metadataFrom(clientOf(clients, 2), [topic])).topics.get(topic)!.partitions[0]!.leaderId, 4);

  const cancel = await runCli([
    'topic',
    'reassign',
    '--topic',
    topic,
    '--partition',
    '0',
    '--cancel',
    '-b',
    cluster.bootstrap,
  ]);
  assert.equal(cancel.code, 1);
  assert.match(cancel.stderr, /cannot reassign .*-0: NO_REASSIGNMENT_IN_PROGRESS/);
  const bad = await runCli([
    'topic',
    'reassign',
    '--topic',
    topic,
    '--partition',
    '0',
    '--replicas',
    '1,1',
    '-b',
    cluster.bootstrap,
  ]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  const unknown = await runCli([
    'topic',
    'reassign',
    '--topic',
    topic,
    '--partition',
    '0',
    '--replicas',
    '1,9',
    '-b',
    cluster.bootstrap,
  ]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /INVALID_REPLICA_ASSIGNMENT/);
});
