import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { RunningBroker } from '../../../src/broker.ts';
import { CLI, randomTopic, runCli, startTestBroker } from './helpers.ts';

const SUMMARY =
  /^(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, ([\d.]+) ms 50th, ([\d.]+) ms 95th, ([\d.]+) ms 99th, ([\d.]+) ms 99\.9th\.$/;
const PROGRESS =
  /^\d+ records sent, [\d.]+ records\/sec \([\d.]+ MB\/sec\), [\d.]+ ms avg latency, [\d.]+ ms max latency\.$/;
const CSV_HEADER =
  'start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec';

describe('samsa perf', () => {
  let broker: RunningBroker;
  let b: string[];
  before(async () => {
    broker = await startTestBroker();
    b = ['--bootstrap', broker.bootstrap];
  });
  after(() => broker.close());

  test('perf produce then perf consume: Kafka-style progress lines and summaries', async () => {
    const topic = randomTopic('cli-perf');
    const produced = await runCli([
      'perf',
      'produce',
      ...b,
      '--topic',
      topic,
      '--num-records',
      '50000',
      '--record-size',
      '200',
      '--partitions',
      '3',
      '--acks',
      '1',
      '--batch-size',
      '16384',
      '--reporting-interval',
      '100',
    ]);
    assert.equal(produced.code, 0, produced.stderr);
    const lines = produced.stdout.trim().split('\n');
    const summary = SUMMARY.exec(lines.at(-1)!);
    assert.ok(summary, lines.at(-1));
    assert.equal(Number(summary[1]), 50000);
    assert.ok(Number(summary[2]) > 0);
    assert.ok(Math.abs(Number(summary[3]) - (Number(summary[2]) * 200) / 1048576) < 0.02);
    const [avg, max, p50, p95, p99, p999] = summary.slice(4).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    assert.ok(p50 <= p95 && p95 <= p99 && p99 <= p999 && p999 <= max + 0.01, summary[0]);
    assert.ok(avg <= max);
    for (const line of lines.slice(0, -1)) assert.match(line, PROGRESS);

    const described = await runCli(['topic', 'describe', ...b, '--topic', topic]);
    assert.match(described.stdout, /PartitionCount: 3/);

    const consumed = await runCli([
      'perf',
      'consume',
      ...b,
      '--topic',
      topic,
      '--messages',
      '50000',
      '--reporting-interval',
      '100',
    ]);
    assert.equal(consumed.code, 0, consumed.stderr);
    const out = consumed.stdout.trim().split('\n');
    assert.equal(out.at(-2), CSV_HEADER);
    const fields = out.at(-1)!.split(', ');
    assert.equal(fields.length, 10);
    assert.match(fields[0]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}$/);
    assert.equal(Number(fields[4]), 50000);
    // Batch bytes: a little more than the 200-byte values.
    assert.ok(Number(fields[2]) >= (50000 * 200) / 1048576, fields[2]);
    assert.ok(Number(fields[5]) > 0);

    const decoded = await runCli(['perf', 'consume', ...b, '--topic', topic, '--messages', '50000', '--decode']);
    assert.equal(decoded.code, 0, decoded.stderr);
    const decodedFields = decoded.stdout.trim().split('\n').at(-1)!.split(', ');
    assert.equal(Number(decodedFields[4]), 50000);
    assert.equal(Number(decodedFields[2]), Number(((50000 * 200) / 1048576).toFixed(4)));
  });

  test('perf produce --compression: compressed batches the broker accepts and --decode reads back', async () => {
    for (const codec of ['zstd', 'lz4']) {
      const topic = randomTopic(`cli-perf-${codec}`);
      const produced = await runCli([
        'perf',
        'produce',
        ...b,
        '--topic',
        topic,
        '--num-records',
        '20000',
        '--record-size',
        '300',
        '--partitions',
        '2',
        '--compression',
        codec,
      ]);
      assert.equal(produced.code, 0, produced.stderr);
      assert.equal(Number(SUMMARY.exec(produced.stdout.trim().split('\n').at(-1)!)?.[1]), 20000);
      const batchBytes = await runCli(['perf', 'consume', ...b, '--topic', topic, '--messages', '20000']);
      const decoded = await runCli(['perf', 'consume', ...b, '--topic', topic, '--messages', '20000', '--decode']);
      assert.equal(decoded.code, 0, decoded.stderr);
      const stored = Number(batchBytes.stdout.trim().split('\n').at(-1)!.split(', ')[2]);
      const fields = decoded.stdout.trim().split('\n').at(-1)!.split(', ');
      assert.equal(Number(fields[4]), 20000, codec);
      assert.equal(Number(fields[2]), Number(((20000 * 300) / 1048576).toFixed(4)), codec);
      // One random payload repeated: the stored batches are far smaller than the values.
      assert.ok(stored < Number(fields[2]) / 4, `${codec}: ${stored} MB stored`);
    }
  });

  test('--throughput paces the producer; latency counts from when each record was due', async () => {
    const topic = randomTopic('cli-perf-rate');
    const started = Date.now();
    const r = await runCli([
      'perf',
      'produce',
      ...b,
      '--topic',
      topic,
      '--num-records',
      '3000',
      '--record-size',
      '100',
      '--throughput',
      '2000',
      '--acks',
      'all',
    ]);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(r.code, 0, r.stderr);
    const summary = SUMMARY.exec(r.stdout.trim().split('\n').at(-1)!);
    assert.ok(summary, r.stdout);
    assert.equal(Number(summary[1]), 3000);
    // 3000 records at 2000/s take at least 1.5 s.
    assert.ok(Number(summary[2]) <= 2100, summary[0]);
    assert.ok(seconds >= 1.4);
  });

  test('perf consume gives up after --timeout-ms when the topic has fewer records', async () => {
    const topic = randomTopic('cli-perf-short');
    assert.equal((await runCli(['produce', ...b, '--topic', topic], 'a\nb\n')).code, 0);
    const r = await runCli(['perf', 'consume', ...b, '--topic', topic, '--messages', '10', '--timeout-ms', '1000']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /timeout \(1000 ms\) exceeded/);
    assert.equal(Number(r.stdout.trim().split('\n').at(-1)!.split(', ')[4]), 2);
  });

  test('bad arguments exit 2 with one line naming the --help to read', async () => {
    const bare = await runCli(['perf']);
    assert.equal(bare.code, 2);
    assert.match(bare.stdout, /Usage: samsa perf/);
    for (const args of [
      ['perf', 'fly'],
      ['perf', 'produce', '--topic', 't', '--record-size', '10'],
      ['perf', 'produce', '--topic', 't', '--num-records', '10', '--record-size', 'big'],
      ['perf', 'produce', '--topic', 't', '--num-records', '10', '--record-size', '10', '--throughput', '0'],
      ['perf', 'consume', '--topic', 't'],
    ]) {
      const r = await runCli([...args, ...b]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^samsa perf.*: .+ \(see 'samsa perf( produce| consume)? --help'\)\n$/);
    }
  });

  test('on a terminal, perf produce and perf consume draw a progress bar on stderr; not in a pipe', async () => {
    const topic = randomTopic('cli-perf-tty');
    // `script` runs the command on a pseudo-terminal (stdout and stderr both go to it).
    const onTerminal = async (args: string[]) => {
      const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
      const { stdout } = await promisify(execFile)('script', ['-qfec', command, '/dev/null']);
      return stdout;
    };
    const produce = ['perf', 'produce', ...b, '--topic', topic, '--num-records', '200000', '--record-size', '100'];
    const produced = await onTerminal([...produce, '--throughput', '400000']);
    assert.match(produced, new RegExp(`\\r\\x1b\\[2Kperf produce ${topic} \\[[#.]{20}\\] \\d+/200000 \\(\\d+%\\)`));
    assert.match(produced, /200000 records sent, .* ms 99\.9th\./);
    const consumed = await onTerminal(['perf', 'consume', ...b, '--topic', topic, '--messages', '200000']);
    assert.match(consumed, new RegExp(`\\r\\x1b\\[2Kperf consume ${topic} \\[[#.]{20}\\] \\d+/200000`));
    const piped = await runCli([...produce.slice(0, -4), '--num-records', '1000', '--record-size', '10']);
    assert.equal(piped.code, 0, piped.stderr);
    assert.ok(!(piped.stderr + piped.stdout).includes(String.fromCharCode(27)), piped.stderr);
    assert.doesNotMatch(piped.stderr + piped.stdout, /\[#/);
  });
});
