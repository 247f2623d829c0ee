// `samsa cluster info` (like kcat -L and kafka-broker-api-versions.sh), the --bootstrap aliases
// (-b, --bootstrap-server), SAMSA_BROKERS, and one-line errors for the top-level command.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunningBroker } from '../../../src/broker.ts';
import { randomTopic, runCli, startTestBroker } from './helpers.ts';

interface ClusterInfoJson {
  clusterId: string;
  controllerId: number;
  topicCount: number;
  partitionCount: number;
  brokers: {
    nodeId: number;
    host: string;
    port: number;
    rack: string | null;
    isController: boolean;
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

  test('--format json: cluster id, controller, brokers and the API versions each supports', async () => {
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

  test('text output: like kcat -L, then kafka-broker-api-versions.sh per broker', async () => {
    const r = await runCli(['cluster', 'info', '--bootstrap-server', broker.bootstrap]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Cluster ID: ${clusterId}\\nController: ${nodeId}\\n`));
    assert.match(r.stdout, new RegExp(`^  broker ${nodeId} at ${broker.bootstrap} \\(controller\\)$`, 'm'));
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
