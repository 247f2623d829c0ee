// What /metrics and /ready say in a 3-broker cluster: each broker counts the partitions it holds
// and leads; only the active controller reports the controller metrics (global topic and
// partition counts, partitions without a live leader), as Kafka's KafkaController metrics do; a
// broker killed shows up as offline partitions at the controller.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import { type Cluster, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import { runCli } from '../cli/helpers.ts';

const skip = etcdAvailable() ? false : 'etcd is not on PATH (Debian package etcd-server)';
let cluster: Cluster;

before(async () => {
  if (skip === false) cluster = await startCluster({ brokers: 3, http: true });
});
after(async () => {
  await cluster?.close();
});

async function gauges(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(kafka_(?:server_replicamanager|controller_kafkacontroller)_\w+) (\S+)$/.exec(line);
    if (m !== null) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

test('per-broker partition and leader counts; controller metrics from the active controller only', {
  skip,
}, async () => {
  const client = await cluster.client();
  await cluster.waitFor('3 brokers', async () => (await client.metadata([])).brokers.size === 3);
  const conn = await client.connect();
  const created = await conn.request(ApiKey.CreateTopics, {
    topics: [{ name: 'metrics', numPartitions: 12, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 10_000,
  });
  assert.equal(created.topics[0]!.errorCode, 0);
  const md = await cluster.waitFor('leaders of every partition', async () => {
    const m = await client.metadata(['metrics']);
    const t = m.topics.get('metrics');
    return t !== undefined && t.partitions.length === 12 && t.partitions.every((p) => p.leaderId > 0) ? m : undefined;
  });
  const leads = new Map<number, number>();
  for (const p of md.topics.get('metrics')!.partitions) leads.set(p.leaderId, (leads.get(p.leaderId) ?? 0) + 1);

  await cluster.waitFor('every broker to report its partitions', async () => {
    for (const b of cluster.brokers) {
      const g = await gauges(b.httpAddress()!);
      // Only this topic exists (no consumer group has created __consumer_offsets).
      if (g.get('kafka_server_replicamanager_partitioncount') !== leads.get(b.nodeId)) return false;
      if (g.get('kafka_server_replicamanager_leadercount') !== leads.get(b.nodeId)) return false;
      const active = b.nodeId === md.controllerId;
      assert.equal(
        g.get('kafka_controller_kafkacontroller_activecontrollercount'),
        active ? 1 : 0,
        `broker ${b.nodeId}`,
      );
      assert.equal(g.get('kafka_controller_kafkacontroller_globaltopiccount'), active ? 1 : 0);
      assert.equal(g.get('kafka_controller_kafkacontroller_globalpartitioncount'), active ? 12 : 0);
      assert.equal(g.get('kafka_controller_kafkacontroller_offlinepartitionscount'), 0);
    }
    return true;
  });

  const victim = cluster.brokers.find((b) => b.nodeId !== md.controllerId)!;
  await victim.kill();
  const controller = cluster.brokers.find((b) => b.nodeId === md.controllerId)!;
  await cluster.waitFor('the controller to count the dead broker’s partitions as offline', async () => {
    const g = await gauges(controller.httpAddress()!);
    return g.get('kafka_controller_kafkacontroller_offlinepartitionscount') === leads.get(victim.nodeId);
  });
  const ready = await fetch(`${controller.httpAddress()}/ready`);
  assert.equal(ready.status, 200);
});

test('a broker that cannot reach etcd past its lease is not ready, and says why', { skip }, async () => {
  // One still running (the first test killed one).
  const b = cluster.brokers.find((x) => x.child()?.exitCode === null && x.child()?.signalCode === null)!;
  assert.equal((await fetch(`${b.httpAddress()}/ready`)).status, 200);
  cluster.etcd.pause();
  try {
    const text = await cluster.waitFor('/ready to answer 503', async () => {
      const res = await fetch(`${b.httpAddress()}/ready`);
      return res.status === 503 ? await res.text() : undefined;
    });
    assert.match(text, /not registered in the cluster metadata/);
  } finally {
    cluster.etcd.resume();
  }
  await cluster.waitFor(
    '/ready again once etcd is back',
    async () => (await fetch(`${b.httpAddress()}/ready`)).status === 200,
  );
});

test('RF 3: no partition under-replicated while all replicas are in sync; a broker killed leaves every partition under-replicated at its leader', {
  skip,
}, async () => {
  // The first test killed a broker: bring every broker back.
  for (const b of cluster.brokers) if (b.child()?.exitCode !== null || b.child()?.signalCode !== null) await b.start();
  const client = await cluster.client();
  await cluster.waitFor('3 brokers', async () => (await client.metadata([])).brokers.size === 3);
  const conn = await client.connect();
  const created = await conn.request(ApiKey.CreateTopics, {
    topics: [{ name: 'replicated', numPartitions: 3, replicationFactor: 3, assignments: [], configs: [] }],
    timeoutMs: 10_000,
  });
  assert.equal(created.topics[0]!.errorCode, 0);
  const sum = async (name: string, brokers = cluster.brokers) => {
    let total = 0;
    for (const b of brokers) total += (await gauges(b.httpAddress()!)).get(name) ?? 0;
    return total;
  };
  await cluster.waitFor('every partition fully in sync', async () => {
    const t = (await client.metadata(['replicated'])).topics.get('replicated');
    return t?.partitions.every((p) => p.leaderId > 0 && p.isr.length === 3);
  });
  assert.equal(await sum('kafka_server_replicamanager_underreplicatedpartitions'), 0);
  const victim = cluster.brokers[2]!;
  await victim.kill();
  const live = cluster.brokers.filter((b) => b !== victim);
  await cluster.waitFor('every partition under-replicated at its (new) leader', async () => {
    return (await sum('kafka_server_replicamanager_underreplicatedpartitions', live)) === 3;
  });
  // samsa cluster info counts them too (from Metadata, as it would against Kafka).
  const info = await runCli(['cluster', 'info', '-b', live[0]!.address, '--format', 'json']);
  assert.equal(info.code, 0, info.stderr);
  // (The first test's RF 1 topic has partitions on the killed broker too: those are offline,
  // and counted as such, not as under-replicated.)
  const parsed = JSON.parse(info.stdout) as { underReplicatedPartitionCount: number; offlinePartitionCount: number };
  assert.equal(parsed.underReplicatedPartitionCount, 3);
  assert.equal(parsed.offlinePartitionCount, 4);
  await victim.start();
  await cluster.waitFor('the returned broker back in every ISR', async () => {
    return (await sum('kafka_server_replicamanager_underreplicatedpartitions')) === 0;
  });
});
