// `samsa start` where it cannot work, as a user runs it: each refusal is one line on stderr that
// says what to do, exit code 2, no stack trace, and never a hang. Also what a first start logs,
// and what a listener on every interface advertises.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WireClient } from '../../helpers/wire-client.ts';

const cli = join(import.meta.dirname, '../../../src/cli.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `samsa start ARGS` (under `wrap`, a command that execs the rest, when given) until it
 * exits, or kills it after `timeoutMs` and fails: a start that cannot work must not hang.
 */
async function start(args: string[], wrap: string[] = [], timeoutMs = 20_000): Promise<Run> {
  // No HTTP listener (its default port is fixed): tests running at once must not collide on it.
  const command = [...wrap, process.execPath, cli, 'start', '--http-listen', 'none', ...args];
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
    // Started after all: stop it, so the assertion below reports what it printed.
    if (stdout.includes('listening on')) child.kill('SIGTERM');
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  assert.notEqual(child.signalCode, 'SIGKILL', `still running after ${timeoutMs} ms: ${stderr}`);
  return { code, stdout, stderr };
}

/** Exit code 2 and, as the only output, `samsa: ` and a message matching `message`. */
function assertRefused(run: Run, message: RegExp): void {
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.stdout, '');
  const lines = run.stderr.trimEnd().split('\n');
  // Info lines from before the refusal may precede it, but no stack trace, logged or printed.
  assert.doesNotMatch(run.stderr, /\n\s+at |"stack"/);
  assert.match(lines.at(-1)!, /^samsa: /);
  assert.match(lines.at(-1)!, message);
}

async function listening(host = '127.0.0.1'): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return server;
}

function portOf(server: Server): number {
  return (server.address() as { port: number }).port;
}

async function freePort(): Promise<number> {
  const server = await listening();
  const port = portOf(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Whether `command` runs here (probed with a harmless argument list). */
function works(command: string[]): boolean {
  try {
    execFileSync(command[0]!, command.slice(1), { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('start-up errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'samsa-start-errors-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  await t.test('a port in use: one line naming it, exit code 2', async () => {
    const taken = await listening();
    try {
      const port = portOf(taken);
      const run = await start(['--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'port')]);
      assertRefused(
        run,
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use.*give --listen another port`),
      );
      // The second of two listeners: the first is closed again and the process exits.
      const two = await start([
        '--listen',
        `127.0.0.1:${await freePort()}`,
        '--listen',
        `127.0.0.1:${port}`,
        '--data-dir',
        join(dir, 'port'),
      ]);
      assertRefused(two, /the port is in use/);
    } finally {
      taken.close();
    }
  });

  await t.test('a data directory that is a file, or under a file', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    const port = await freePort();
    assertRefused(
      await start(['--listen', `127.0.0.1:${port}`, '--data-dir', file]),
      /data directory .*a-file is a file, not a directory: give --data-dir/,
    );
    assertRefused(
      await start(['--listen', `127.0.0.1:${port}`, '--data-dir', join(file, 'data')]),
      /data directory .*a-file\/data has a file where a parent directory should be/,
    );
  });

  await t.test('a data directory under /proc or /sys is refused at once (it used to hang)', async () => {
    const port = await freePort();
    for (const dataDir of ['/proc/samsa-data', '/proc/self', '/sys/samsa-data']) {
      assertRefused(
        await start(['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], [], 10_000),
        /is under \/(proc|sys), a virtual file system that cannot hold data: give --data-dir/,
      );
    }
  });

  await t.test('an unwritable data directory', async (t) => {
    // root writes anywhere: run the broker as root without the capability that allows it.
    const asRoot = process.getuid?.() === 0;
    const wrap = asRoot ? ['setpriv', '--bounding-set=-dac_override,-dac_read_search'] : [];
    if (asRoot && !works([...wrap, 'true'])) {
      t.skip('running as root, and setpriv cannot drop CAP_DAC_OVERRIDE here');
      return;
    }
    const readOnly = join(dir, 'read-only');
    await mkdir(readOnly);
    await chmod(readOnly, 0o555);
    const port = await freePort();
    for (const dataDir of [readOnly, join(readOnly, 'data')]) {
      assertRefused(
        await start(['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], wrap),
        /data directory .* is not writable by this user \(EACCES\): give --data-dir/,
      );
    }
  });

  await t.test('a data directory on a read-only file system', async (t) => {
    const mountPoint = join(dir, 'ro-mount');
    await mkdir(mountPoint);
    // A read-only tmpfs, mounted in a user and mount namespace of its own.
    const wrap = ['unshare', '-rm', 'sh', '-c', `mount -t tmpfs -o ro none '${mountPoint}' && exec "$@"`, 'sh'];
    if (!works([...wrap, 'true'])) {
      t.skip('cannot mount a read-only file system here (unshare -rm)');
      return;
    }
    const port = await freePort();
    assertRefused(
      await start(['--listen', `127.0.0.1:${port}`, '--data-dir', join(mountPoint, 'data')], wrap),
      /data directory .*ro-mount\/data is on a read-only file system \(EROFS\): give --data-dir/,
    );
  });

  await t.test('the first start on an empty directory does not log an unclean shutdown', async () => {
    const dataDir = join(dir, 'first');
    const run = await start([
      '--listen',
      `127.0.0.1:${await freePort()}`,
      '--data-dir',
      dataDir,
      '--log-level',
      'info',
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /loaded log directory/);
    assert.doesNotMatch(run.stderr, /"cleanShutdown":false|recover/i);
    assert.ok((await readdir(dataDir)).length > 0);
  });
});

test('--listen 0.0.0.0:PORT advertises the host name, and the listening line says so', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'samsa-advertise-'));
  const port = await freePort();
  const args = ['start', '--listen', `0.0.0.0:${port}`, '--data-dir', dir, '--http-listen', 'none'];
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Before the directory is removed: a broker still shutting down writes into it.
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  });
  let stdout = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: string) => {
      stdout += c;
      if (stdout.includes('\n')) resolve();
    });
    child.once('exit', () => reject(new Error(`exited before listening: ${stdout}`)));
  });
  assert.equal(
    stdout,
    `Samsa broker 1 listening on 0.0.0.0:${port} (advertised as ${hostname()}:${port}; data in ${dir})\n`,
  );
  // Scripts take the address after `listening on`, as before.
  assert.equal(/listening on (\S+)/.exec(stdout)?.[1], `0.0.0.0:${port}`);
  const client = await WireClient.connect(`127.0.0.1:${port}`);
  const md = await client.request<{ brokers: { nodeId: number; host: string; port: number }[] }>(3, 12, {
    topics: [],
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: false,
  });
  client.close();
  assert.deepEqual(
    md.brokers.map((b) => [b.host, b.port]),
    [[hostname(), port]],
  );
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
