// `samsa start` as users run it: config validation before listening (exit code 2), unknown-key
// warnings, Kafka server.properties names, and signal handling.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { WireClient } from '../../helpers/wire-client.ts';

const cli = join(import.meta.dirname, '../../../src/cli.ts');
/** Every broker started here, killed at the end so a failed assertion never leaves one running. */
const children: ChildProcess[] = [];

function run(args: string[]): {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
} {
  // No HTTP listener (its default port is fixed): tests running at once must not collide on it.
  const child = spawn(process.execPath, [cli, 'start', '--http-listen', 'none', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(condition(), `timed out waiting for ${what}`);
}

test('samsa start', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'samsa-start-'));
  t.after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  await t.test('an invalid value is a clear error and exit code 2, before listening', async () => {
    const port = await freePort();
    const p = run([
      '--listen',
      `127.0.0.1:${port}`,
      '--data-dir',
      join(dir, 'bad'),
      '--override',
      'num.partitions=abc',
    ]);
    assert.equal(await p.exit, 2);
    assert.match(p.stderr(), /num\.partitions: 'abc' is not an integer/);
    assert.equal(p.stdout(), '');
  });

  await t.test('a bad --listen is exit code 2', async () => {
    const p = run(['--listen', 'nonsense', '--data-dir', join(dir, 'bad2')]);
    assert.equal(await p.exit, 2);
    assert.match(p.stderr(), /--listen: 'nonsense' is not HOST:PORT/);
  });

  await t.test(
    'a server.properties file with Kafka names; unknown keys are named in a warning; SIGTERM exits 0',
    async () => {
      const port = await freePort();
      const config = join(dir, 'server.properties');
      await writeFile(
        config,
        [
          '# Kafka names',
          `listeners=PLAINTEXT://127.0.0.1:${port}`,
          `log.dirs=${join(dir, 'data')}`,
          'node.id=7',
          'num.partitions=3',
          'some.unknown.key=1',
        ].join('\n'),
      );
      const p = run(['--config', config, '--log-level', 'info']);
      await waitFor(() => p.stdout().includes('listening on'), 'the listening line');
      assert.match(p.stdout(), new RegExp(`Samsa broker 7 listening on 127.0.0.1:${port}`));
      assert.match(p.stderr(), /unknown configuration keys ignored: some\.unknown\.key/);
      const client = await WireClient.connect(`127.0.0.1:${port}`);
      // Auto-creation uses num.partitions from the file.
      const md = await client.request<{
        topics: { name: string; partitions: unknown[] }[];
        brokers: { nodeId: number }[];
      }>(3, 4, {
        topics: [{ name: 'auto' }],
        allowAutoTopicCreation: true,
      });
      client.close();
      assert.equal(md.brokers[0]?.nodeId, 7);
      assert.equal(md.topics[0]?.partitions.length, 3);
      p.child.kill('SIGTERM');
      assert.equal(await p.exit, 0);
      assert.match(p.stderr(), /shutdown complete/);
    },
  );

  await t.test('a second signal exits at once', async () => {
    const port = await freePort();
    const p = run(['--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'twice')]);
    await waitFor(() => p.stdout().includes('listening on'), 'the listening line');
    p.child.kill('SIGINT');
    p.child.kill('SIGINT');
    const code = await p.exit;
    // Either the first signal finished the clean shutdown already (0) or the second cut it short (1).
    assert.ok(code === 0 || code === 1, `exit code ${code}`);
  });
});
