/**
 * Broker start-up: time from spawning `samsa start` (empty data dir) to the first accepted TCP
 * connection, and the broker's idle RSS a few seconds later.
 *   node bench/startup.bench.ts [--runs 10] [--entry bin/samsa.js]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1] ?? 10) || 10;
const entry = args.includes('--entry') ? args[args.indexOf('--entry') + 1]! : 'bin/samsa.js';

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
}

const times: number[] = [];
const rss: number[] = [];
for (let i = 0; i < runs; i++) {
  const dir = mkdtempSync(join(tmpdir(), 'samsa-start-'));
  const port = 29700 + i;
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [join(root, entry), 'start', '--listen', `127.0.0.1:${port}`, '--data-dir', dir, '--log-level', 'warn'],
    { stdio: 'ignore' },
  );
  while (!(await tryConnect(port))) await new Promise((r) => setTimeout(r, 1));
  times.push(performance.now() - started);
  await new Promise((r) => setTimeout(r, 3000));
  rss.push(rssKb(child.pid!) / 1024);
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
  rmSync(dir, { recursive: true, force: true });
}
const sorted = [...times].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)]!;
console.log(
  `entry ${entry}: start to first accepted connection over ${runs} runs: median ${median.toFixed(0)} ms, min ${sorted[0]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`,
);
console.log(`idle RSS after 3 s: median ${[...rss].sort((a, b) => a - b)[Math.floor(rss.length / 2)]!.toFixed(1)} MB`);
