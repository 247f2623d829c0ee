// `samsa start --http-listen` as an operator runs it: the HTTP address is printed before the
// listening line, /ready answers 503 with a reason until the broker serves and 200 after, /metrics
// is scraped from the process, `none` opens nothing, and a port in use is one line and exit code 2.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const cli = join(import.meta.dirname, '../../../src/cli.ts');

interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function start(args: string[], t: { after(fn: () => unknown): void }): Started {
  const child = spawn(process.execPath, [cli, 'start', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function until(started: Started, what: RegExp): Promise<RegExpExecArray> {
  for (;;) {
    const m = what.exec(started.stdout());
    if (m !== null) return m;
    if (started.child.exitCode !== null) assert.fail(`exited ${started.child.exitCode}: ${started.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function listening(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function freePort(): Promise<number> {
  const server = await listening();
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('samsa start --http-listen', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'samsa-http-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  await t.test('/ready is 503 with a reason, then 200; /health and /metrics answer; SIGTERM exits 0', async (t) => {
    const port = await freePort();
    const broker = start(
      ['--listen', '127.0.0.1:0', '--data-dir', join(dir, 'ready'), '--http-listen', `127.0.0.1:${port}`],
      t,
    );
    // Probed from the first moment, as an orchestrator does: refused until the HTTP listener
    // opens, then 503 and a reason until the broker serves, then 200 for good.
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
      if (res === undefined) {
        if (broker.child.exitCode !== null) assert.fail(`exited: ${broker.stderr()}`);
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const body = await res.text();
      if (res.status === 200) {
        assert.equal(body, 'ready\n');
        break;
      }
      assert.equal(res.status, 503);
      assert.match(
        body,
        /^not ready: (recovering the partition logs|the Kafka listeners are not bound yet|the group coordinator is loading __consumer_offsets)\n$/,
      );
    }
    const lines = (await until(broker, /listening on .*\n/)).input.split('\n');
    assert.equal(lines[0], `Samsa HTTP listening on http://127.0.0.1:${port} (/metrics, /health, /ready)`);
    assert.match(lines[1]!, /^Samsa broker 1 listening on 127\.0\.0\.1:\d+ /);
    assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /^kafka_server_replicamanager_partitioncount \d+$/m);
    assert.match(metrics, /^kafka_controller_kafkacontroller_activecontrollercount 1$/m);
    assert.match(metrics, /^process_open_fds \d+$/m);
    broker.child.kill('SIGTERM');
    assert.equal(await broker.exit, 0, broker.stderr());
  });

  await t.test('without --http-listen, a broker on a free Kafka port gets a free HTTP port, printed', async (t) => {
    const broker = start(['--listen', '127.0.0.1:0', '--data-dir', join(dir, 'default')], t);
    const [, port] = await until(broker, /^Samsa HTTP listening on http:\/\/127\.0\.0\.1:(\d+) /m);
    await until(broker, /listening on 127/);
    assert.notEqual(port, '9644');
    assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
    broker.child.kill('SIGTERM');
    assert.equal(await broker.exit, 0);
  });

  await t.test('--http-listen none opens no HTTP listener', async (t) => {
    const broker = start(['--listen', '127.0.0.1:0', '--data-dir', join(dir, 'none'), '--http-listen', 'none'], t);
    await until(broker, /listening on/);
    assert.doesNotMatch(broker.stdout(), /HTTP/);
    broker.child.kill('SIGTERM');
    assert.equal(await broker.exit, 0);
  });

  await t.test('an HTTP port in use: one line naming it, exit code 2, nothing on stdout', async (t) => {
    const taken = await listening();
    t.after(() => taken.close());
    const port = (taken.address() as { port: number }).port;
    const broker = start(
      ['--listen', '127.0.0.1:0', '--data-dir', join(dir, 'taken'), '--http-listen', `127.0.0.1:${port}`],
      t,
    );
    assert.equal(await broker.exit, 2);
    assert.equal(broker.stdout(), '');
    assert.equal(
      broker.stderr(),
      `samsa: cannot listen on 127.0.0.1:${port} (--http-listen): the port is in use (another broker or program listens there); stop it or give --http-listen another port\n`,
    );
  });

  await t.test('a malformed --http-listen: exit code 2 before anything starts', async (t) => {
    const broker = start(['--listen', '127.0.0.1:0', '--data-dir', join(dir, 'bad'), '--http-listen', 'nonsense'], t);
    assert.equal(await broker.exit, 2);
    assert.equal(broker.stderr(), "samsa: --http-listen: 'nonsense' is not HOST:PORT\n");
  });
});
