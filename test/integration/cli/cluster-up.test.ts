// `samsa cluster up`: a real etcd and three broker processes started by the command, the
// bootstrap list it prints, Metadata listing all three, and Ctrl-C (SIGINT) stopping all of it;
// without etcd on PATH, one line naming the package and exit code 2.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { KafkaClient } from '../../../src/network/kafka-client.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import { CLI, collect } from './helpers.ts';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The first of `n` consecutive free ports, away from the well-known ones and the ephemeral range. */
async function freePortRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = 20_000 + Math.floor(Math.random() * 10_000);
    let free = true;
    for (let i = 0; i < n && free; i++) free = await portFree(first + i);
    if (free) return first;
  }
  throw new Error(`no ${n} consecutive free ports found`);
}

/** Pids of the processes whose command line mentions `text` (Linux /proc). */
async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  let stdout = '';
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`)),
      timeoutMs,
    );
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const m = pattern.exec(stdout);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`cluster up exited (${code ?? signal}) early\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
}

/**
 * Runs `samsa cluster up --brokers n` in a temporary directory, waits for its bootstrap list,
 * checks Metadata lists every broker, then stops it with SIGINT and checks that nothing is left.
 */
async function upAndDown(t: TestContext, n: number): Promise<void> {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const dir = await mkdtemp(join(tmpdir(), 'samsa-cluster-up-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const first = await freePortRange(n);
  // In its own directory, so that the default ./samsa-cluster lands in the temporary one.
  const child = spawn(
    process.execPath,
    [CLI, 'cluster', 'up', '--brokers', String(n), '--port', String(first), '--timeout-ms', '20000'],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  try {
    const started = performance.now();
    const m = await waitForLine(child, /^ {2}bootstrap: (\S+)$/m, 40_000);
    t.diagnostic(`up in ${(performance.now() - started).toFixed(0)} ms`);
    const bootstrap = m[1]!;
    assert.equal(bootstrap, ids.map((id) => `127.0.0.1:${first + id - 1}`).join(','));
    const client = new KafkaClient({ bootstrap, clientId: 'cluster-up-test' });
    try {
      const md = await client.metadata(null);
      assert.deepEqual(
        [...md.brokers.keys()].sort((a, b) => a - b),
        ids,
      );
      for (const [id, b] of md.brokers) assert.equal(`${b.host}:${b.port}`, `127.0.0.1:${first + id - 1}`);
    } finally {
      client.close();
    }
    const sent = performance.now();
    child.kill('SIGINT');
    const { code } = await exited;
    t.diagnostic(`stopped in ${(performance.now() - sent).toFixed(0)} ms`);
    assert.equal(code, 0);
    assert.ok(performance.now() - sent < 15_000, 'took more than 15 s to stop');
    for (const log of ['etcd.log', ...ids.map((id) => `broker-${id}.log`)])
      assert.ok((await readFile(join(dir, 'samsa-cluster', log), 'utf8')).length > 0, `${log} is empty`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    // Whatever it left running (brokers and etcd name the directory in their arguments).
    const left = await processesMentioning(dir);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    assert.deepEqual(left, [], 'processes left running');
  }
}

describe('samsa cluster up', { skip: etcdAvailable() ? false : 'etcd is not on PATH (Debian etcd-server)' }, () => {
  // The whole life cycle with one broker: etcd, the broker, the summary, Ctrl-C.
  test('--brokers 1: etcd and a broker, the bootstrap list; SIGINT stops both', (t) => upAndDown(t, 1));

  test('--brokers 3: three brokers, Metadata lists all three; SIGINT stops all', (t) => upAndDown(t, 3));
});

test('cluster up without etcd on PATH: one line naming the package, exit code 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'samsa-cluster-up-'));
  try {
    const child = spawn(
      process.execPath,
      [CLI, 'cluster', 'up', '--brokers', '3', '--port', String(await freePortRange(3))],
      {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, PATH: dirname(process.execPath) },
      },
    );
    const r = await collect(child, 20_000);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'samsa cluster: etcd not found on PATH: install it (Debian/Ubuntu: apt-get install etcd-server) or give --metadata etcd://HOST:PORT of a running one\n',
    );
    assert.equal(r.stdout, '');
    // Nothing was started, nothing created.
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('cluster up: bad options are one-line usage errors', async () => {
  for (const [args, pattern] of [
    [['cluster', 'up'], /^samsa cluster: --brokers N is required/],
    [['cluster', 'up', '--brokers', '0'], /^samsa cluster: --brokers: 0 is outside 1\.\.100/],
    [
      ['cluster', 'up', '--brokers', '2', '--metadata', 'http://x:1'],
      /^samsa cluster: --metadata: 'http:\/\/x:1' is not etcd:/,
    ],
    [
      ['cluster', 'up', '--brokers', '2', '--etcd', '127.0.0.1:2379', '--metadata', 'etcd://127.0.0.1:2379'],
      /exclude each other/,
    ],
  ] as const) {
    const r = await collect(spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }), 20_000);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.split('\n').length, 2, r.stderr);
  }
});
