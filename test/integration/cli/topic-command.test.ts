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
    const partitionLines = lines.filter((l) => l.startsWith('\tTopic: '));
    assert.equal(partitionLines.length, 3);
    for (let p = 0; p < 3; p++) {
      assert.match(
        partitionLines[p]!,
        new RegExp(
          `^\\tTopic: ${topic}\\tPartition: ${p}\\tLeader: \\d+\\tReplicas: \\d+\\tIsr: \\d+\\tEarliestOffset: 0\\tLatestOffset: 0\\tSizeBytes: 0$`,
        ),
      );
    }
    // Every config follows, with its source.
    assert.ok(lines.includes('\tConfig: cleanup.policy=compact\tSource: DYNAMIC_TOPIC_CONFIG'), described.stdout);
    assert.ok(lines.includes('\tConfig: segment.bytes=1073741824\tSource: DEFAULT_CONFIG'), described.stdout);

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

  test('bad arguments: one line naming the problem and the --help to read, exit code 2', async () => {
    for (const args of [
      ['topic', 'create'],
      ['topic', 'create', '--topic', 'x', '--partitions', 'three'],
      ['topic', 'create', '--topic', 'x', '--config', 'novalue'],
      ['topic', 'frobnicate'],
      ['topic', 'list', '--nope'],
      ['topic', 'list', '--topic', 'x'],
      ['topic', 'alter-config', '--topic', 'x'],
      ['topic', 'list', '--bootstrap', 'host:notaport'],
      ['topic', 'list', '--format', 'yaml'],
      ['topic', 'add-partitions', '--topic', 'x'],
      ['topic', 'add-partitions', '--topic', 'x', '--num', '1', '--partitions', '3'],
      ['topic', 'trim', '--topic', 'x'],
      ['topic', 'trim', '--topic', 'x', '--offset', 'soon'],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^samsa topic: .+ \(see 'samsa topic --help'\)\n$/);
    }
    const bare = await runCli(['topic']);
    assert.equal(bare.code, 2);
    assert.match(bare.stdout, /Usage: samsa topic/);
    const help = await runCli(['topic', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /alter-config/);
  });

  test('an unreachable broker is one line and exit code 1', async () => {
    const r = await runCli(['topic', 'list', '--bootstrap', '127.0.0.1:1']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^samsa topic: cannot connect to 127\.0\.0\.1:1: .* \(is a broker listening there\? .*SAMSA_BROKERS\)\n$/,
    );
  });

  test('describe --format json: every config with its source, offsets and size per partition', async () => {
    const b = ['--bootstrap', broker.bootstrap];
    const topic = randomTopic('cli-json');
    const created = await runCli([
      'topic',
      'create',
      ...b,
      '--topic',
      topic,
      '--partitions',
      '2',
      '--config',
      'retention.ms=7200000',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const lines = Array.from({ length: 20 }, (_, i) => `record ${i}`);
    const produced = await runCli(['produce', ...b, '--topic', topic, '--partition', '1'], `${lines.join('\n')}\n`);
    assert.equal(produced.code, 0, produced.stderr);

    const r = await runCli(['topic', 'describe', ...b, '--topic', topic, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      topics: {
        name: string;
        topicId: string;
        isInternal: boolean;
        partitionCount: number;
        replicationFactor: number;
        configs: { name: string; value: string | null; source: string; isReadOnly: boolean; isSensitive: boolean }[];
        partitions: {
          partition: number;
          leader: number;
          replicas: number[];
          isr: number[];
          earliestOffset: number;
          latestOffset: number;
          sizeBytes: number;
          error: string | null;
          logDirError: string | null;
        }[];
      }[];
    };
    assert.equal(doc.topics.length, 1);
    const t = doc.topics[0]!;
    assert.equal(t.name, topic);
    assert.equal(t.partitionCount, 2);
    assert.equal(t.replicationFactor, 1);
    assert.equal(t.isInternal, false);
    const retention = t.configs.find((c) => c.name === 'retention.ms');
    assert.deepEqual(retention, {
      name: 'retention.ms',
      value: '7200000',
      source: 'DYNAMIC_TOPIC_CONFIG',
      isReadOnly: false,
      isSensitive: false,
    });
    assert.equal(t.configs.find((c) => c.name === 'cleanup.policy')?.source, 'DEFAULT_CONFIG');
    assert.ok(t.configs.length >= 20, `only ${t.configs.length} configs`);
    const [p0, p1] = t.partitions;
    assert.deepEqual([p0!.earliestOffset, p0!.latestOffset, p0!.sizeBytes], [0, 0, 0]);
    assert.deepEqual([p1!.earliestOffset, p1!.latestOffset], [0, 20]);
    assert.ok(p1!.sizeBytes > 20 * 'record 0'.length, `size ${p1!.sizeBytes}`);
    assert.equal(p1!.error, null);
    assert.equal(p1!.logDirError, null);
    assert.deepEqual(p1!.replicas, [p1!.leader]);

    const list = await runCli(['topic', 'list', ...b, '--format', 'json']);
    assert.equal(list.code, 0, list.stderr);
    const listed = (JSON.parse(list.stdout) as { topics: { name: string; partitionCount: number }[] }).topics;
    assert.equal(listed.find((x) => x.name === topic)?.partitionCount, 2);
  });

  test('trim deletes records before an offset (DeleteRecords); add-partitions grows a topic', async () => {
    const b = ['--bootstrap', broker.bootstrap];
    const topic = randomTopic('cli-trim');
    assert.equal((await runCli(['topic', 'create', ...b, '--topic', topic, '--partitions', '2'])).code, 0);
    for (const p of ['0', '1']) {
      const lines = Array.from({ length: 10 }, (_, i) => `p${p} ${i}`);
      const produced = await runCli(['produce', ...b, '--topic', topic, '--partition', p], `${lines.join('\n')}\n`);
      assert.equal(produced.code, 0, produced.stderr);
    }
    const trimmed = await runCli([
      'topic',
      'trim',
      ...b,
      '--topic',
      topic,
      '--offset',
      '4',
      '--partition',
      '0',
      '--format',
      'json',
    ]);
    assert.equal(trimmed.code, 0, trimmed.stderr);
    assert.deepEqual(JSON.parse(trimmed.stdout), {
      partitions: [{ topic, partition: 0, lowWatermark: 4, error: null }],
    });
    const consumed = await runCli([
      'consume',
      ...b,
      '--topic',
      topic,
      '--partition',
      '0',
      '--from-beginning',
      '--max-messages',
      '6',
    ]);
    assert.equal(consumed.code, 0, consumed.stderr);
    assert.deepEqual(consumed.stdout.trimEnd().split('\n'), ['p0 4', 'p0 5', 'p0 6', 'p0 7', 'p0 8', 'p0 9']);

    const all = await runCli(['topic', 'trim', ...b, '--topic', topic, '--offset', 'end']);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, new RegExp(`^${topic}\\s+0\\s+10\\s*$`, 'm'));
    assert.match(all.stdout, new RegExp(`^${topic}\\s+1\\s+10\\s*$`, 'm'));
    const described = await runCli(['topic', 'describe', ...b, '--topic', topic, '--format', 'json']);
    const parts = (JSON.parse(described.stdout) as { topics: { partitions: { earliestOffset: number }[] }[] })
      .topics[0]!.partitions;
    assert.deepEqual(
      parts.map((p) => p.earliestOffset),
      [10, 10],
    );
    const beyond = await runCli(['topic', 'trim', ...b, '--topic', topic, '--offset', '99']);
    assert.equal(beyond.code, 1);
    assert.match(beyond.stderr, /OFFSET_OUT_OF_RANGE/);

    const added = await runCli(['topic', 'add-partitions', ...b, '--topic', topic, '--num', '3']);
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout.trim(), `Added 3 partition(s) to topic ${topic}: now 5.`);
    const grown = await runCli(['topic', 'add-partitions', ...b, '--topic', topic, '--partitions', '6']);
    assert.equal(grown.code, 0, grown.stderr);
    const shrink = await runCli(['topic', 'add-partitions', ...b, '--topic', topic, '--partitions', '2']);
    assert.equal(shrink.code, 2);
    assert.match(shrink.stderr, /has 6 partitions already/);
    const after = await runCli(['topic', 'describe', ...b, '--topic', topic, '--format', 'json']);
    assert.equal((JSON.parse(after.stdout) as { topics: { partitionCount: number }[] }).topics[0]!.partitionCount, 6);
    const missing = await runCli(['topic', 'add-partitions', ...b, '--topic', randomTopic('none'), '--num', '1']);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^samsa topic: topic '.*': UNKNOWN_TOPIC_OR_PARTITION \(no such topic: 'samsa topic list' shows them\)\n$/,
    );
  });
});
