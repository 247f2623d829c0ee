import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningBroker } from '../../../src/broker.ts';
import { randomTopic, runCli, startTestBroker } from './helpers.ts';

describe('samsa topic', () => {
  let broker: RunningBroker;
  before(async () => {
    broker = await startTestBroker();
  });
  after(() => broker.close());

  test('create, list, describe, alter-config, delete', async () => {
    const b = ['--bootstrap', broker.bootstrap];
    const topic = randomTopic('cli-topic');

    const created = await runCli([
      'topic',
      'create',
      ...b,
      '--topic',
      topic,
      '--partitions',
      '3',
      '--config',
      'retention.ms=3600000',
      '--config',
      'cleanup.policy=compact',
    ]);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout.trim(), `Created topic ${topic}.`);

    const again = await runCli(['topic', 'create', ...b, '--topic', topic]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /TOPIC_ALREADY_EXISTS/);
    const ifNotExists = await runCli(['topic', 'create', ...b, '--topic', topic, '--if-not-exists']);
    assert.equal(ifNotExists.code, 0, ifNotExists.stderr);

    const list = await runCli(['topic', 'list', ...b]);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(list.stdout.split('\n').includes(topic), list.stdout);

    const described = await runCli(['topic', 'describe', ...b, '--topic', topic]);
    assert.equal(described.code, 0, described.stderr);
    const lines = described.stdout.trim().split('\n');
    assert.match(
      lines[0]!,
      new RegExp(
        `^Topic: ${topic}\\tTopicId: [A-Za-z0-9_-]{22}\\tPartitionCount: 3\\tReplicationFactor: 1\\tConfigs: `,
      ),
    );
    assert.match(lines[0]!, /Configs: cleanup\.policy=compact,retention\.ms=3600000$/);
    assert.equal(lines.length, 4);
    for (let p = 0; p < 3; p++) {
      assert.match(
        lines[p + 1]!,
        new RegExp(`^\\tTopic: ${topic}\\tPartition: ${p}\\tLeader: \\d+\\tReplicas: \\d+\\tIsr: \\d+$`),
      );
    }

    const altered = await runCli([
      'topic',
      'alter-config',
      ...b,
      '--topic',
      topic,
      '--set',
      'retention.ms=60000',
      '--set',
      'max.message.bytes=2000000',
      '--delete',
      'cleanup.policy',
    ]);
    assert.equal(altered.code, 0, altered.stderr);
    assert.equal(altered.stdout.trim(), `Completed updating config for topic ${topic}.`);
    const after = await runCli(['topic', 'describe', ...b, '--topic', topic]);
    assert.match(after.stdout, /Configs: max\.message\.bytes=2000000,retention\.ms=60000\n/);

    const badConfig = await runCli(['topic', 'alter-config', ...b, '--topic', topic, '--set', 'retention.ms=banana']);
    assert.equal(badConfig.code, 1);
    assert.match(badConfig.stderr, /INVALID_CONFIG/);

    const deleted = await runCli(['topic', 'delete', ...b, '--topic', topic]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout.trim(), `Deleted topic ${topic}.`);
    const listAfter = await runCli(['topic', 'list', ...b]);
    assert.ok(!listAfter.stdout.split('\n').includes(topic));

    const missing = await runCli(['topic', 'describe', ...b, '--topic', topic]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /UNKNOWN_TOPIC_OR_PARTITION/);
    const deleteMissing = await runCli(['topic', 'delete', ...b, '--topic', topic]);
    assert.equal(deleteMissing.code, 1);
    const deleteIfExists = await runCli(['topic', 'delete', ...b, '--topic', topic, '--if-exists']);
    assert.equal(deleteIfExists.code, 0, deleteIfExists.stderr);
  });

  test('describe without --topic describes every topic', async () => {
    const b = ['--bootstrap', broker.bootstrap];
    const t1 = randomTopic('cli-all');
    const t2 = randomTopic('cli-all');
    for (const t of [t1, t2]) assert.equal((await runCli(['topic', 'create', ...b, '--topic', t])).code, 0);
    const all = await runCli(['topic', 'describe', ...b]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, new RegExp(`Topic: ${t1}\\tTopicId`));
    assert.match(all.stdout, new RegExp(`Topic: ${t2}\\tTopicId`));
  });

  test('bad arguments: a message, the usage, exit code 2', async () => {
    for (const args of [
      ['topic', 'create'],
      ['topic', 'create', '--topic', 'x', '--partitions', 'three'],
      ['topic', 'create', '--topic', 'x', '--config', 'novalue'],
      ['topic', 'frobnicate'],
      ['topic', 'list', '--nope'],
      ['topic', 'list', '--topic', 'x'],
      ['topic', 'alter-config', '--topic', 'x'],
      ['topic', 'list', '--bootstrap', 'host:notaport'],
      ['topic'],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr + r.stdout, /Usage: samsa topic/);
    }
    const help = await runCli(['topic', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /alter-config/);
  });

  test('an unreachable broker is one line and exit code 1', async () => {
    const r = await runCli(['topic', 'list', '--bootstrap', '127.0.0.1:1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^samsa topic: cannot connect to 127\.0\.0\.1:1/);
  });
});
