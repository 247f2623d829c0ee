// `samsa group` additions: --format json for list and describe, --all-groups for describe,
// delete and reset-offsets, --all-topics, delete-offsets (OffsetDelete), and a progress line for
// resets only when stderr is a terminal. Each test runs its own broker: --all-groups sees every
// group of the cluster.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CLI, randomTopic, runCli, startTestBroker } from './helpers.ts';

interface GroupsJson {
  groups: {
    group: string;
    type: string;
    state: string;
    protocol: string;
    members: unknown[];
    offsets: {
      topic: string;
      partition: number;
      committedOffset: number | null;
      logEndOffset: number | null;
      lag: number | null;
      memberId: string | null;
    }[];
  }[];
}

test('group describe/list --format json, --all-groups, --all-topics, delete-offsets', async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.close());
  const b = ['-b', broker.bootstrap];
  const topic = randomTopic('cli-g');
  assert.equal((await runCli(['topic', 'create', ...b, '--topic', topic, '--partitions', '2'])).code, 0);
  for (const p of ['0', '1']) {
    const lines = Array.from({ length: 10 }, (_, i) => `${p}-${i}`).join('\n');
    assert.equal((await runCli(['produce', ...b, '--topic', topic, '--partition', p], `${lines}\n`)).code, 0);
  }
  const [g1, g2] = [randomTopic('g1'), randomTopic('g2')];
  // Groups with committed offsets and no members.
  for (const [g, offset] of [
    [g1, '3'],
    [g2, '7'],
  ] as const) {
    const r = await runCli([
      'group',
      'reset-offsets',
      ...b,
      '--group',
      g,
      '--topic',
      topic,
      '--to-offset',
      offset,
      '--execute',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /Resetting/, 'no progress display when stderr is not a terminal');
  }

  const described = await runCli(['group', 'describe', ...b, '--all-groups', '--format', 'json']);
  assert.equal(described.code, 0, described.stderr);
  const doc = JSON.parse(described.stdout) as GroupsJson;
  assert.deepEqual(
    doc.groups.map((g) => g.group),
    [g1, g2].sort(),
  );
  const first = doc.groups.find((g) => g.group === g1)!;
  assert.equal(first.state, 'Empty');
  assert.deepEqual(first.members, []);
  assert.deepEqual(
    first.offsets.map((o) => [o.topic, o.partition, o.committedOffset, o.logEndOffset, o.lag, o.memberId]),
    [
      [topic, 0, 3, 10, 7, null],
      [topic, 1, 3, 10, 7, null],
    ],
  );

  const listed = await runCli(['group', 'list', ...b, '--format', 'json']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(
    (JSON.parse(listed.stdout) as { groups: { group: string; state: string }[] }).groups.map((g) => [g.group, g.state]),
    [
      [g1, 'Empty'],
      [g2, 'Empty'],
    ].sort(),
  );

  const deletedOffsets = await runCli(['group', 'delete-offsets', ...b, '--group', g1, '--topic', `${topic}:0`]);
  assert.equal(deletedOffsets.code, 0, deletedOffsets.stderr);
  assert.match(deletedOffsets.stdout, new RegExp(`^${topic}\\s+0\\s+Successful$`, 'm'));
  const after = JSON.parse(
    (await runCli(['group', 'describe', ...b, '--group', g1, '--format', 'json'])).stdout,
  ) as GroupsJson;
  assert.deepEqual(
    after.groups[0]!.offsets.map((o) => o.partition),
    [1],
  );
  const unknownGroup = await runCli(['group', 'delete-offsets', ...b, '--group', 'no-such', '--topic', topic]);
  assert.equal(unknownGroup.code, 1);
  assert.match(unknownGroup.stderr, /GROUP_ID_NOT_FOUND/);

  const reset = await runCli([
    'group',
    'reset-offsets',
    ...b,
    '--all-groups',
    '--all-topics',
    '--to-latest',
    '--execute',
  ]);
  assert.equal(reset.code, 0, reset.stderr);
  const latest = JSON.parse(
    (await runCli(['group', 'describe', ...b, '--all-groups', '--format', 'json'])).stdout,
  ) as GroupsJson;
  for (const g of latest.groups)
    for (const o of g.offsets) assert.equal(o.committedOffset, 10, `${g.group} ${o.partition}`);
  // g1 has no offset for partition 0 any more: --all-topics covers the committed partitions only.
  assert.equal(latest.groups.find((g) => g.group === g1)!.offsets.length, 1);

  const deleted = await runCli(['group', 'delete', ...b, '--all-groups']);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.match(deleted.stdout, new RegExp(`Deleted consumer group '${g1}'`));
  assert.match(deleted.stdout, new RegExp(`Deleted consumer group '${g2}'`));
  const none = JSON.parse((await runCli(['group', 'list', ...b, '--format', 'json'])).stdout) as GroupsJson;
  assert.deepEqual(none.groups, []);

  for (const args of [
    ['group', 'describe'],
    ['group', 'describe', '--group', 'x', '--all-groups'],
    ['group', 'reset-offsets', '--group', 'x', '--to-latest'],
    ['group', 'delete-offsets', '--group', 'x'],
  ]) {
    const r = await runCli([...args, ...b]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^samsa group: .+ \(see 'samsa group --help'\)\n$/);
  }
});

test('reset-offsets shows progress on a terminal', async (t) => {
  const broker = await startTestBroker();
  t.after(() => broker.close());
  const b = ['-b', broker.bootstrap];
  const topic = randomTopic('cli-prog');
  assert.equal((await runCli(['topic', 'create', ...b, '--topic', topic, '--partitions', '50'])).code, 0);
  const group = randomTopic('g');
  // `script` gives the command a pseudo-terminal for stdin, stdout and stderr.
  const command = [
    process.execPath,
    CLI,
    'group',
    'reset-offsets',
    ...b,
    '--group',
    group,
    '--topic',
    topic,
    '--to-earliest',
    '--execute',
  ]
    .map((a) => `'${a}'`)
    .join(' ');
  const { stdout } = await promisify(execFile)('script', ['-qfec', command, '/dev/null'], {
    env: { ...process.env, SAMSA_BROKERS: '' },
  });
  // ESC [ 2 K: erase the line before drawing it again.
  assert.ok(
    stdout.includes(`\r${String.fromCharCode(27)}[2KResetting offsets of '${group}' [${'#'.repeat(20)}] 50/50 (100%)`),
    stdout,
  );
  assert.match(stdout, new RegExp(`${topic}\\s+49\\s+0`));
});
