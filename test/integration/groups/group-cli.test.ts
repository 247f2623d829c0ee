// `samsa group list|describe|delete|reset-offsets` against an in-process broker: describe shows
// members, assignments, committed offsets, log end offsets and lag; reset-offsets is a dry run
// unless --execute and refuses a group with members; delete removes an empty group.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { startBroker } from '../../../src/broker.ts';
import { REPO_ROOT, randomTopic, waitFor } from './helpers.ts';

const execFileAsync = promisify(execFile);

async function samsa(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ['src/cli.ts', ...args], { cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The rows of a table printed by the CLI, as arrays of cells. */
function rows(stdout: string, header: string): string[][] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith(header));
  assert.ok(start >= 0, `no table with header ${header} in:\n${stdout}`);
  const out: string[][] = [];
  for (const l of lines.slice(start + 1)) {
    if (l.trim() === '' || l.startsWith('(') || l.startsWith('Consumer group')) break;
    out.push(l.trim().split(/\s+/));
  }
  return out;
}

test('samsa group list, describe (offsets, lag, members), reset-offsets, delete', async (t) => {
  const broker = await startBroker({
    overrides: { 'offsets.topic.num.partitions': '3', 'group.initial.rebalance.delay.ms': '0' },
  });
  const kafka = new Kafka({ clientId: 'cli-it', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const topic = randomTopic('cli');
  const group = randomTopic('cli-g');
  const admin = kafka.admin();
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 500 });
  t.after(async () => {
    await consumer.disconnect();
    await producer.disconnect();
    await admin.disconnect();
    await broker.close();
  });
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  await producer.connect();
  await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `${i}` })) });

  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  await consumer.run({
    autoCommit: false,
    eachMessage: async () => {
      seen++;
    },
  });
  await waitFor(() => seen === 10, 20_000, 'consumption');
  await consumer.commitOffsets([
    { topic, partition: 0, offset: '3' },
    { topic, partition: 1, offset: '5' },
  ]);
  await producer.send({ topic, messages: [{ partition: 1, value: 'late' }] });

  const list = await samsa('group', 'list', '--bootstrap', broker.bootstrap);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(
    rows(list.stdout, 'GROUP').find((r) => r[0] === group),
    [group, 'classic', 'consumer', 'Stable'],
  );
  const described = await samsa('group', 'describe', '--group', group, '--bootstrap', broker.bootstrap);
  assert.equal(described.code, 0, described.stderr);
  assert.match(described.stdout, /state Stable, 1 member\(s\)/);
  const table = rows(described.stdout, 'GROUP');
  assert.equal(table.length, 2);
  const [p0, p1] = table;
  assert.deepEqual(p0!.slice(0, 6), [group, topic, '0', '3', '5', '2']);
  assert.deepEqual(p1!.slice(0, 6), [group, topic, '1', '5', '6', '1']);
  assert.match(p0![6]!, /^cli-it-/, 'the owning member');
  assert.equal(p0![7], '/127.0.0.1');

  const refused = await samsa(
    'group',
    'reset-offsets',
    '--group',
    group,
    '--topic',
    topic,
    '--to-earliest',
    '--execute',
    '--bootstrap',
    broker.bootstrap,
  );
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /active member/);
  await consumer.disconnect();

  const dry = await samsa(
    'group',
    'reset-offsets',
    '--group',
    group,
    '--topic',
    `${topic}:1`,
    '--to-offset',
    '2',
    '--bootstrap',
    broker.bootstrap,
  );
  assert.equal(dry.code, 0, dry.stderr);
  assert.deepEqual(rows(dry.stdout, 'GROUP'), [[group, topic, '1', '2']]);
  assert.match(dry.stdout, /dry run/);
  let offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  assert.equal(offsets[0]!.partitions.find((p) => p.partition === 1)?.offset, '5');

  const exec = await samsa(
    'group',
    'reset-offsets',
    '--group',
    group,
    '--topic',
    topic,
    '--shift-by',
    '-4',
    '--execute',
    '--bootstrap',
    broker.bootstrap,
  );
  assert.equal(exec.code, 0, exec.stderr);
  offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  assert.deepEqual(offsets[0]!.partitions.map((p) => [p.partition, p.offset]).sort(), [
    [0, '0'],
    [1, '1'],
  ]);

  const deleted = await samsa(
    'group',
    'delete',
    '--group',
    group,
    '--group',
    'no-such-group',
    '--bootstrap',
    broker.bootstrap,
  );
  assert.equal(deleted.code, 1);
  assert.match(deleted.stdout, new RegExp(`Deleted consumer group '${group}'`));
  assert.match(deleted.stderr, /no-such-group'.*GROUP_ID_NOT_FOUND/);
  const gone = await samsa('group', 'describe', '--group', group, '--bootstrap', broker.bootstrap);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /does not exist/);
});
