import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { partitionForKey } from '../../../src/admin/partitioner.ts';
import type { RunningBroker } from '../../../src/broker.ts';
import { collect, randomTopic, runCli, spawnCli, startTestBroker } from './helpers.ts';

interface Printed {
  timestamp: number;
  partition: number;
  offset: number;
  headers: string;
  key: string;
  value: string;
}

/** Parses lines printed with every --print-* flag (Kafka's DefaultMessageFormatter order). */
function parsePrinted(stdout: string): Printed[] {
  return stdout
    .trimEnd()
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const m = /^CreateTime:(\d+)\tPartition:(\d+)\tOffset:(\d+)\t([^\t]*)\t([^\t]*)\t(.*)$/.exec(line);
      assert.ok(m, `unexpected line: ${JSON.stringify(line)}`);
      return {
        timestamp: Number(m[1]),
        partition: Number(m[2]),
        offset: Number(m[3]),
        headers: m[4]!,
        key: m[5]!,
        value: m[6]!,
      };
    });
}

const PRINT_ALL = ['--print-timestamp', '--print-partition', '--print-offset', '--print-headers', '--print-key'];

describe('samsa produce / consume', () => {
  let broker: RunningBroker;
  let b: string[];
  before(async () => {
    broker = await startTestBroker();
    b = ['--bootstrap', broker.bootstrap];
  });
  after(() => broker.close());

  test('keyed lines with headers go to the murmur2 partition and come back with offsets, timestamps, headers', async () => {
    const topic = randomTopic('cli-pc');
    assert.equal((await runCli(['topic', 'create', ...b, '--topic', topic, '--partitions', '3'])).code, 0);
    const lines: string[] = [];
    for (let i = 0; i < 30; i++) lines.push(`${i % 2 === 0 ? `h1:a${i},h2:b` : ''}\tkey-${i % 7}=value ${i}`);
    const started = Date.now();
    const produced = await runCli(
      ['produce', ...b, '--topic', topic, '--key-separator', '=', '--parse-headers', '--header', 'source=cli'],
      `${lines.join('\n')}\n`,
    );
    assert.equal(produced.code, 0, produced.stderr);

    const consumed = await runCli([
      'consume',
      ...b,
      '--topic',
      topic,
      '--from-beginning',
      '--max-messages',
      '30',
      ...PRINT_ALL,
    ]);
    assert.equal(consumed.code, 0, consumed.stderr);
    assert.match(consumed.stderr, /Processed a total of 30 messages/);
    const records = parsePrinted(consumed.stdout);
    assert.equal(records.length, 30);
    const byPartition = new Map<number, Printed[]>();
    for (const r of records) {
      const i = Number(r.value.slice('value '.length));
      assert.equal(r.key, `key-${i % 7}`);
      assert.equal(r.partition, partitionForKey(Buffer.from(r.key), 3), `partition of ${r.key}`);
      assert.equal(r.headers, i % 2 === 0 ? `source:cli,h1:a${i},h2:b` : 'source:cli');
      assert.ok(r.timestamp >= started - 1000 && r.timestamp <= Date.now() + 1000, `timestamp ${r.timestamp}`);
      const list = byPartition.get(r.partition) ?? [];
      list.push(r);
      byPartition.set(r.partition, list);
    }
    for (const list of byPartition.values()) {
      // Offsets 0..n-1 per partition, and the lines in the order they were written.
      assert.deepEqual(
        list.map((r) => r.offset),
        list.map((_, i) => i),
      );
      const order = list.map((r) => Number(r.value.slice('value '.length)));
      assert.deepEqual(
        order,
        [...order].sort((x, y) => x - y),
      );
    }

    // --offset and --partition
    const p = records[0]!.partition;
    const count = byPartition.get(p)!.length;
    const fromOffset = await runCli([
      'consume',
      ...b,
      '--topic',
      topic,
      '--partition',
      String(p),
      '--offset',
      '1',
      '--max-messages',
      String(count - 1),
      '--print-offset',
    ]);
    assert.equal(fromOffset.code, 0, fromOffset.stderr);
    const offsets = fromOffset.stdout
      .trim()
      .split('\n')
      .map((l) => Number(/^Offset:(\d+)\t/.exec(l)?.[1]));
    assert.deepEqual(
      offsets,
      Array.from({ length: count - 1 }, (_, i) => i + 1),
    );
  });

  test('every compression codec, unkeyed lines, plain output', async () => {
    const topic = randomTopic('cli-codec');
    assert.equal((await runCli(['topic', 'create', ...b, '--topic', topic, '--partitions', '1'])).code, 0);
    const expected: string[] = [];
    for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) {
      const lines = Array.from({ length: 50 }, (_, i) => `${codec} line ${i} ${'x'.repeat(i * 10)}`);
      expected.push(...lines);
      const r = await runCli(['produce', ...b, '--topic', topic, '--compression', codec], `${lines.join('\n')}\n`);
      assert.equal(r.code, 0, `${codec}: ${r.stderr}`);
    }
    const consumed = await runCli([
      'consume',
      ...b,
      '--topic',
      topic,
      '--from-beginning',
      '--max-messages',
      String(expected.length),
    ]);
    assert.equal(consumed.code, 0, consumed.stderr);
    assert.deepEqual(consumed.stdout.trimEnd().split('\n'), expected);
  });

  test('acks=0 and acks=1; --timeout-ms ends an idle consume', async () => {
    const topic = randomTopic('cli-acks');
    for (const acks of ['0', '1', 'all']) {
      const r = await runCli(['produce', ...b, '--topic', topic, '--acks', acks], `acks ${acks}\n`);
      assert.equal(r.code, 0, r.stderr);
    }
    const consumed = await runCli(['consume', ...b, '--topic', topic, '--from-beginning', '--timeout-ms', '1500']);
    assert.equal(consumed.code, 0, consumed.stderr);
    assert.deepEqual(consumed.stdout.trimEnd().split('\n').sort(), ['acks 0', 'acks 1', 'acks all']);
    assert.match(consumed.stderr, /Processed a total of 3 messages/);
  });

  test('by default consume starts at the end; Ctrl-C ends it with exit code 0', async () => {
    const topic = randomTopic('cli-latest');
    assert.equal((await runCli(['produce', ...b, '--topic', topic], 'old 1\nold 2\n')).code, 0);
    const child = spawnCli(['consume', ...b, '--topic', topic]);
    const result = collect(child);
    let printed = '';
    child.stdout!.on('data', (d: Buffer | string) => {
      printed += d.toString();
    });
    // The consumer is ready at some unknown moment: keep producing until it prints something.
    for (let i = 0; printed === '' && i < 100; i++) {
      assert.equal((await runCli(['produce', ...b, '--topic', topic], `new ${i}\n`)).code, 0);
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill('SIGINT');
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    const values = r.stdout.trimEnd().split('\n');
    assert.ok(values.length >= 1);
    for (const v of values) assert.match(v, /^new \d+$/);
    assert.match(r.stderr, new RegExp(`Processed a total of ${values.length} messages`));
  });

  test('bad input: usage errors exit 2, a line without the key separator exits 1', async () => {
    for (const args of [
      ['produce'],
      ['produce', '--topic', 't', '--compression', 'brotli'],
      ['produce', '--topic', 't', '--acks', '2'],
      ['consume', '--topic', 't', '--from-beginning', '--offset', '3'],
      ['consume'],
      ['consume', '--topic', 't', '--max-messages', '0'],
      ['consume', '--topic', 't', '--isolation-level', 'dirty'],
    ]) {
      const r = await runCli([...args, ...b]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^samsa (produce|consume): .+ \(see 'samsa (produce|consume) --help'\)\n$/);
    }
    const topic = randomTopic('cli-bad');
    const r = await runCli(['produce', ...b, '--topic', topic, '--key-separator', ':'], 'k:v\nno separator here\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /line 2: no key separator/);
    const missing = await runCli(['consume', ...b, '--topic', randomTopic('cli-none'), '--max-messages', '1']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /UNKNOWN_TOPIC_OR_PARTITION/);
  });
});
