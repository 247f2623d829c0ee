// `samsa consume` options from kcat and rpk: --exit-at-end, relative (-N) and time (@...) start
// offsets, --format templates and json, hex/base64 keys and values; `samsa produce` binary input
// (hex, base64, --value-file) with arbitrary bytes round-tripping; a deleted topic ends a consume
// with an error instead of idling.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunningBroker } from '../../../src/broker.ts';
import { collect, randomTopic, runCli, runCliBytes, spawnCli, startTestBroker } from './helpers.ts';

interface JsonRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  timestampType: string;
  key: string | null;
  value: string | null;
  headers: { key: string; value: string | null }[];
}

const parseJsonLines = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as JsonRecord);

describe('samsa consume and produce options', () => {
  let broker: RunningBroker;
  let b: string[];
  before(async () => {
    broker = await startTestBroker();
    b = ['-b', broker.bootstrap];
  });
  after(() => broker.close());

  test('--exit-at-end, --offset -N, --offset @TIME, --format template and json', async () => {
    const topic = randomTopic('cli-opts');
    assert.equal((await runCli(['topic', 'create', ...b, '--topic', topic, '--partitions', '2'])).code, 0);
    const early = Array.from({ length: 10 }, (_, i) => `h:${i}\tk${i}=early ${i}`);
    const produced = await runCli(
      ['produce', ...b, '--topic', topic, '--partition', '1', '--key-separator', '=', '--parse-headers'],
      `${early.join('\n')}\n`,
    );
    assert.equal(produced.code, 0, produced.stderr);
    await new Promise((r) => setTimeout(r, 50));
    const cut = new Date();
    await new Promise((r) => setTimeout(r, 50));
    const late = Array.from({ length: 5 }, (_, i) => `late ${i}`);
    assert.equal(
      (await runCli(['produce', ...b, '--topic', topic, '--partition', '1'], `${late.join('\n')}\n`)).code,
      0,
    );

    // -e ends at the end of every partition (partition 0 is empty), without --max-messages.
    const all = await runCli([
      'consume',
      ...b,
      '--topic',
      topic,
      '--from-beginning',
      '--exit-at-end',
      '--format',
      '%t|%p|%o|%k|%s|%h|%K|%S\\n',
    ]);
    assert.equal(all.code, 0, all.stderr);
    const lines = all.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 15);
    assert.equal(lines[0], `${topic}|1|0|k0|early 0|h=0|2|7`);
    assert.equal(lines[14], `${topic}|1|14||late 4||-1|6`);
    assert.match(all.stderr, /Processed a total of 15 messages/);

    const committedOnly = await runCli([
      'consume',
      ...b,
      '--topic',
      topic,
      '--from-beginning',
      '-e',
      '--isolation-level',
      'read_committed',
    ]);
    assert.equal(committedOnly.code, 0, committedOnly.stderr);
    assert.match(committedOnly.stderr, /Processed a total of 15 messages/);

    const lastThree = await runCli(['consume', ...b, '--topic', topic, '--offset', '-3', '-e', '--format', '%v\\n']);
    assert.equal(lastThree.code, 0, lastThree.stderr);
    assert.deepEqual(lastThree.stdout.trimEnd().split('\n'), ['late 2', 'late 3', 'late 4']);
    // More than there are: from the beginning.
    const tooMany = await runCli(['consume', ...b, '--topic', topic, '--offset', '-100', '-e', '--format', '%o ']);
    assert.equal(tooMany.stdout.trim().split(' ').length, 15);

    const since = await runCli([
      'consume',
      ...b,
      '--topic',
      topic,
      '--offset',
      `@${cut.toISOString()}`,
      '-e',
      '--format',
      'json',
    ]);
    assert.equal(since.code, 0, since.stderr);
    const records = parseJsonLines(since.stdout);
    assert.deepEqual(
      records.map((r) => r.value),
      late,
    );
    assert.deepEqual(records[0], {
      topic,
      partition: 1,
      offset: 10,
      timestamp: records[0]!.timestamp,
      timestampType: 'CreateTime',
      key: null,
      value: 'late 0',
      headers: [],
    });
    assert.ok(records[0]!.timestamp >= cut.getTime());
    const byMs = await runCli([
      'consume',
      ...b,
      '--topic',
      topic,
      '--offset',
      `@${cut.getTime()}`,
      '-e',
      '--format',
      '%o ',
    ]);
    assert.equal(byMs.stdout.trim(), '10 11 12 13 14');
    const future = await runCli(['consume', ...b, '--topic', topic, '--offset', '@2999-01-01T00:00:00Z', '-e']);
    assert.equal(future.code, 0, future.stderr);
    assert.equal(future.stdout, '');

    const withHeaders = await runCli(['consume', ...b, '--topic', topic, '--offset', '-15', '-e', '--format', 'json']);
    const first = parseJsonLines(withHeaders.stdout)[0]!;
    assert.deepEqual([first.key, first.value, first.headers], ['k0', 'early 0', [{ key: 'h', value: '0' }]]);

    for (const args of [
      ['--offset', '@yesterday'],
      ['--offset', '-x'],
      ['--format', '%q'],
      ['--format', 'json', '--print-key'],
      ['--value-format', 'utf16'],
      ['--group', 'g', '--partition', '0'],
      ['--group', 'g', '--offset', '5'],
    ]) {
      const r = await runCli(['consume', ...b, '--topic', topic, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^samsa consume: .+ \(see 'samsa consume --help'\)\n$/);
    }
  });

  test('arbitrary bytes round-trip: produce --value-format base64|hex, --value-file; consume text|hex|base64', async () => {
    const topic = randomTopic('cli-bin');
    assert.equal((await runCli(['topic', 'create', ...b, '--topic', topic, '--partitions', '1'])).code, 0);
    // Every byte value, newlines and invalid UTF-8 included.
    const values = [
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
      randomBytes(1000),
      Buffer.from([0xff, 0xfe, 0x0a, 0x00]),
    ];
    const keys = [randomBytes(16), Buffer.from([0xc3, 0x28]), Buffer.from('plain')];
    const input = values.map((v, i) => `${keys[i]!.toString('hex')} ${v.toString('base64')}`).join('\n');
    const produced = await runCli(
      ['produce', ...b, '--topic', topic, '--key-separator', ' ', '--key-format', 'hex', '--value-format', 'base64'],
      `${input}\n`,
    );
    assert.equal(produced.code, 0, produced.stderr);
    const hexOut = await runCli([
      'consume',
      ...b,
      '--topic',
      topic,
      '--from-beginning',
      '-e',
      '--format',
      '%k %s\\n',
      '--key-format',
      'base64',
      '--value-format',
      'hex',
    ]);
    assert.equal(hexOut.code, 0, hexOut.stderr);
    assert.deepEqual(
      hexOut.stdout.trimEnd().split('\n'),
      values.map((v, i) => `${keys[i]!.toString('base64')} ${v.toString('hex')}`),
    );

    // Text lines are bytes too: non-UTF-8 bytes are sent and printed as they are.
    const raw = Buffer.concat([
      Buffer.from([0xff, 0xfe, 0x80, 0x41]),
      Buffer.from('\n'),
      Buffer.from([0xc0, 0xaf, 0x09, 0xe9]),
    ]);
    const textTopic = randomTopic('cli-raw');
    const producedRaw = await runCli(['produce', ...b, '--topic', textTopic], Buffer.concat([raw, Buffer.from('\n')]));
    assert.equal(producedRaw.code, 0, producedRaw.stderr);
    const rawOut = await runCliBytes(['consume', ...b, '--topic', textTopic, '--from-beginning', '-e']);
    assert.equal(rawOut.code, 0, rawOut.stderr);
    assert.ok(rawOut.stdout.equals(Buffer.concat([raw, Buffer.from('\n')])), rawOut.stdout.toString('hex'));

    // One record per file.
    const dir = await mkdtemp(join(tmpdir(), 'samsa-cli-files-'));
    try {
      const files = [randomBytes(5000), Buffer.from('two\nlines\n'), Buffer.alloc(0)];
      const paths = await Promise.all(
        files.map(async (f, i) => {
          const path = join(dir, `f${i}`);
          await writeFile(path, f);
          return path;
        }),
      );
      const fileTopic = randomTopic('cli-files');
      const sent = await runCli(['produce', ...b, '--topic', fileTopic, ...paths.flatMap((p) => ['--value-file', p])]);
      assert.equal(sent.code, 0, sent.stderr);
      const back = await runCli([
        'consume',
        ...b,
        '--topic',
        fileTopic,
        '--from-beginning',
        '-e',
        '--format',
        'json',
        '--value-format',
        'base64',
      ]);
      assert.deepEqual(
        parseJsonLines(back.stdout).map((r) => r.value),
        files.map((f) => f.toString('base64')),
      );
      const missing = await runCli(['produce', ...b, '--topic', fileTopic, '--value-file', join(dir, 'nope')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /--value-file .*nope: ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    const bad = await runCli(['produce', ...b, '--topic', topic, '--value-format', 'hex'], 'abc\n');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /line 1: the value is not hex/);
  });

  test('a topic deleted under a consumer ends it with an error, not an idle wait', async () => {
    const topic = randomTopic('cli-del');
    assert.equal((await runCli(['produce', ...b, '--topic', topic], 'one\n')).code, 0);
    const child = spawnCli(['consume', ...b, '--topic', topic, '--from-beginning']);
    const result = collect(child, 30_000);
    let printed = '';
    child.stdout!.on('data', (d: Buffer | string) => {
      printed += d.toString();
    });
    for (let i = 0; printed === '' && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(printed, 'one\n');
    assert.equal((await runCli(['topic', 'delete', ...b, '--topic', topic])).code, 0);
    const r = await result;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^samsa consume: topic '${topic}' no longer exists`, 'm'));
    assert.match(r.stderr, /Processed a total of 1 messages/);
  });
});
