// Issue 11 item 1: two brokers on one data directory both started and both acknowledged writes to
// the same topic; after a restart one broker's acknowledged records were gone. The directory is
// now locked for the broker's lifetime (flock on `.lock`, released by the kernel on kill -9).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import { DataDirectoryLockedError } from '../../../src/storage/data-dir-lock.ts';
import { REPO_ROOT, spawnBroker } from '../../helpers/broker-process.ts';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'samsa-lock-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `samsa start` on `dataDir` and returns its exit code and stderr (it must not start). */
function runStart(dataDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    process.execPath,
    ['src/cli.ts', 'start', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'warn'],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
    // Before the fix the second broker started: stop it so the test fails instead of hanging.
    if (stdout.includes('listening on')) child.kill('SIGKILL');
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

test('two brokers on one data directory: the second exits with code 2 naming the directory', async (t) => {
  const dataDir = await tempDir(t);
  const first = await spawnBroker(dataDir);
  t.after(() => first.stop('SIGKILL').then(() => undefined));
  const second = await runStart(dataDir);
  assert.equal(second.code, 2, `second broker: ${second.stdout}${second.stderr}`);
  assert.doesNotMatch(second.stdout, /listening on/);
  const lines = second.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, no stack trace: ${second.stderr}`);
  assert.match(
    lines[0]!,
    new RegExp(`data directory ${dataDir} is in use by another broker \\(pid ${first.child.pid}\\)`),
  );
});

test('two brokers on one data directory: startBroker() refuses the second and leaves the first serving', async (t) => {
  const dataDir = await tempDir(t);
  const first = await startBroker({ dataDir, temporary: false });
  t.after(() => first.close());
  const second = await startBroker({ dataDir, temporary: false }).catch((err: unknown) => err as Error);
  if (!(second instanceof Error)) {
    await second.close();
    assert.fail('a second broker started on the same data directory');
  }
  assert.ok(second instanceof DataDirectoryLockedError, String(second));
  assert.match(second.message, new RegExp(`data directory ${dataDir} is in use`));
  // A clean close releases the lock: the directory can be used again.
  await first.close();
  const again = await startBroker({ dataDir, temporary: false });
  await again.close();
});

test('two brokers on one data directory: kill -9 releases the lock for an immediate restart', async (t) => {
  const dataDir = await tempDir(t);
  const first = await spawnBroker(dataDir);
  const killed = await first.stop('SIGKILL');
  assert.equal(killed.signal, 'SIGKILL');
  // No wait: the kernel releases the lock when the helper sees the broker's pipe close.
  const second = await spawnBroker(dataDir);
  const stopped = await second.stop('SIGTERM');
  assert.equal(stopped.code, 0, second.stderr());
});
