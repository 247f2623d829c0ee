// `samsa cluster info` (like kcat -L and kafka-broker-api-versions.sh, with each broker's
// liveness and partition and leader counts), the --bootstrap aliases (-b, --bootstrap-server),
// SAMSA_BROKERS, and one-line errors for the top-level command.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import { randomTopic, runCli, startTestBroker } from './helpers.ts';

interface ClusterInfoJson {
  clusterId: string;
  controllerId: number;
  topicCount: number;
  partitionCount: number;
  offlinePartitionCount: number;
  brokers: {
    nodeId: number;
    host: string | null;
    port: number | null;
    rack: string | null;
    listed: boolean;
    isController: boolean;
    reachable: boolean;
    error?: string;
    partitionCount: number;
    leaderCount: number;
    apiVersions: { apiKey: number; name: string; minVersion: number; maxVersion: number; usableVersion: number }[];
  }[];
}

describe('samsa cluster info', () => {
  let broker: RunningBroker;
  let clusterId: string;
  let nodeId: number;
  before(async () => {
    broker = await startTestBroker();
    // What the broker stored at its first start: the id Metadata must report.
    const stored = JSON.parse(await readFile(join(broker.dataDir, 'samsa-metadata.json'), 'utf8')) as {
      clusterId: string;
    };
    clusterId = stored.clusterId;
    nodeId = broker.config.nodeId;
  });
  after(() => broker.close());

  test('a listed broker that does not answer is marked unreachable, with its counts', async (t) => {
    // It advertises an address nobody listens on: Metadata (from the bootstrap connection) lists
    // it there, and the connection to it fails, as it would for a broker that died.
    const lost = await startBroker({
      logLevel: 'silent',
      overrides: { 'advertised.listeners': 'PLAINTEXT://127.0.0.1:1' },
    });
    t.after(() => lost.close());
    const listener = `127.0.0.1:${lost.listeners[0]!.port}`;
    const topic = randomTopic('cli-cluster-lost');
    const created = await runCli(['topic', 'create', '-b', listener, '--topic', topic, '--partitions', '2']);
    assert.equal(created.code, 0, created.stderr);
    const r = await runCli(['cluster', 'info', '-b', listener, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as ClusterInfoJson;
    const b = info.brokers[0]!;
    assert.equal(b.reachable, false);
    assert.match(b.error ?? '', /cannot connect to 127\.0\.0\.1:1/);
    assert.deepEqual(b.apiVersions, []);
    assert.equal(b.leaderCount, 2);
    assert.equal(b.partitionCount, 2);
    const text = await runCli(['cluster', 'info', '-b', listener]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^Brokers: 1 \(1 unreachable\)$/m);
    assert.match(
      text.stdout,
      /^ {2}\d+ +127\.0\.0\.1:1 +- +2 +2 +unreachable: cannot connect to 127\.0\.0\.1:1.*, controller$/m,
    );
  });

  test('--format json: cluster id, controller, brokers, their partition and leader counts and API versions', async () => {
    const topic = randomTopic('cli-cluster');
    const created = await runCli(['topic', 'create', '-b', broker.bootstrap, '--topic', topic, '--partitions', '3']);
    assert.equal(created.code, 0, created.stderr);
    const r = await runCli(['cluster', 'info', '--bootstrap', broker.bootstrap, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as ClusterInfoJson;
    assert.equal(info.clusterId, clusterId);
    assert.equal(info.controllerId, nodeId);
    assert.ok(info.topicCount >= 1 && info.partitionCount >= 3, r.stdout);
    assert.equal(info.brokers.length, 1);
    const b = info.brokers[0]!;
    assert.equal(`${b.host}:${b.port}`, broker.bootstrap);
    assert.equal(b.nodeId, nodeId);
    assert.equal(b.isController, true);
    assert.equal(b.listed, true);
    assert.equal(b.reachable, true);
    assert.equal(b.error, undefined);
    // The only broker holds and leads every partition of every topic.
    assert.equal(info.offlinePartitionCount, 0);
    assert.equal(b.partitionCount, info.partitionCount);
    assert.equal(b.leaderCount, info.partitionCount);
    const byName = new Map(b.apiVersions.map((a) => [a.name, a]));
    assert.deepEqual(byName.get('Produce'), {
      apiKey: 0,
      name: 'Produce',
      minVersion: 0,
      maxVersion: 11,
      usableVersion: 11,
    });
    assert.deepEqual(byName.get('DeleteRecords'), {
      apiKey: 21,
      name: 'DeleteRecords',
      minVersion: 0,
      maxVersion: 2,
      usableVersion: 2,
    });
    assert.ok(byName.has('ConsumerGroupHeartbeat'));
    for (const a of b.apiVersions) assert.ok(a.usableVersion <= a.maxVersion && a.minVersion <= a.maxVersion, a.name);
  });

  test('text output: a table of brokers like kcat -L, then kafka-broker-api-versions.sh per broker', async () => {
    const topic = randomTopic('cli-cluster-text');
    const created = await runCli(['topic', 'create', '-b', broker.bootstrap, '--topic', topic, '--partitions', '2']);
    assert.equal(created.code, 0, created.stderr);
    const json = JSON.parse(
      (await runCli(['cluster', 'info', '-b', broker.bootstrap, '--format', 'json'])).stdout,
    ) as ClusterInfoJson;
    const n = json.partitionCount;
    const r = await runCli(['cluster', 'info', '--bootstrap-server', broker.bootstrap]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Cluster ID: ${clusterId}\\nController: ${nodeId}\\n`));
    assert.match(r.stdout, new RegExp(`^Topics: ${json.topicCount} \\(${n} partitions\\)\\nBrokers: 1\\n`, 'm'));
    assert.match(r.stdout, /^ {2}ID +ADDRESS +RACK +PARTITIONS +LEADERS +STATUS$/m);
    assert.match(r.stdout, new RegExp(`^  ${nodeId} +${broker.bootstrap} +- +${n} +${n} +up, controller$`, 'm'));
    assert.match(r.stdout, new RegExp(`^${broker.bootstrap} \\(id: ${nodeId} rack: null\\) -> \\($`, 'm'));
    assert.match(r.stdout, /^\tFetch\(1\): 0 to 17 \[usable: 17\],$/m);
  });

  test('SAMSA_BROKERS names the brokers when no flag does; a flag wins over it', async () => {
    const fromEnv = await runCli(['cluster', 'info', '--format', 'json'], '', undefined, {
      SAMSA_BROKERS: broker.bootstrap,
    });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.equal((JSON.parse(fromEnv.stdout) as ClusterInfoJson).clusterId, clusterId);
    const flagWins = await runCli(['cluster', 'info', `-b${broker.bootstrap}`], '', undefined, {
      SAMSA_BROKERS: '127.0.0.1:1',
    });
    assert.equal(flagWins.code, 0, flagWins.stderr);
    for (const flag of [
      [`-b=${broker.bootstrap}`],
      [`--bootstrap-server=${broker.bootstrap}`],
      ['-b', broker.bootstrap],
    ]) {
      const r = await runCli(['topic', 'list', ...flag], '', undefined, { SAMSA_BROKERS: '127.0.0.1:1' });
      assert.equal(r.code, 0, `${flag.join(' ')}: ${r.stderr}`);
    }
    const envOnly = await runCli(['topic', 'list'], '', undefined, { SAMSA_BROKERS: '127.0.0.1:1' });
    assert.equal(envOnly.code, 1);
    assert.match(envOnly.stderr, /^samsa topic: cannot connect to 127\.0\.0\.1:1/);
    const badEnv = await runCli(['topic', 'list'], '', undefined, { SAMSA_BROKERS: 'host:port' });
    assert.equal(badEnv.code, 2);
    assert.match(badEnv.stderr, /^samsa topic: SAMSA_BROKERS: 'host:port' is not HOST:PORT/);
  });

  test('errors are one line: unknown command, unknown action, unknown option', async () => {
    for (const [args, pattern] of [
      [['frobnicate'], /^samsa: unknown command 'frobnicate' \(see 'samsa --help'\)\n$/],
      [['cluster', 'nodes'], /^samsa cluster: unknown action 'nodes' \(see 'samsa cluster --help'\)\n$/],
      [['cluster', 'info', '--nope'], /^samsa cluster: Unknown option '--nope' \(see 'samsa cluster --help'\)\n$/],
      [['cluster', 'info', '--format', 'xml'], /^samsa cluster: --format: 'xml' is not text or json/],
    ] as const) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stdout, '');
    }
  });
});
