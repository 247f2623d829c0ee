// Issue 11 item 15: a listener configured as SSL://, SASL_PLAINTEXT:// or SASL_SSL:// was silently
// served in plaintext. Until TLS and SASL exist, the broker refuses to start, saying why.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import { ConfigError } from '../../../src/config/broker-config.ts';
import { REPO_ROOT } from '../../helpers/broker-process.ts';

function runStart(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['src/cli.ts', 'start', '--log-level', 'warn', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
    if (stdout.includes('listening on')) child.kill('SIGTERM');
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

for (const protocol of ['SSL', 'SASL_PLAINTEXT', 'SASL_SSL']) {
  test(`a ${protocol}:// listener is refused instead of served in plaintext`, async () => {
    const r = await runStart(['--data-dir', `/tmp/samsa-never-${protocol}`, '--listen', `${protocol}://127.0.0.1:0`]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /listening on/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`uses ${protocol}, which Samsa does not serve yet.*use a PLAINTEXT listener`));
  });
}

test('a listener name mapped to SSL in listener.security.protocol.map is refused; one mapped to PLAINTEXT starts', async () => {
  await assert.rejects(
    startBroker({
      overrides: { listeners: 'EXTERNAL://127.0.0.1:0', 'listener.security.protocol.map': 'EXTERNAL:SSL' },
    }),
    (err: unknown) => err instanceof ConfigError && /listeners: 'EXTERNAL:\/\/127.0.0.1:0' uses SSL/.test(err.message),
  );
  await assert.rejects(
    startBroker({ overrides: { listeners: 'INTERNAL://127.0.0.1:0' } }),
    (err: unknown) => err instanceof ConfigError && /listener name INTERNAL has no security protocol/.test(err.message),
  );
  const broker = await startBroker({
    overrides: { listeners: 'INTERNAL://127.0.0.1:0', 'listener.security.protocol.map': 'INTERNAL:PLAINTEXT' },
  });
  await broker.close();
  const plain = await startBroker({ listen: ['PLAINTEXT://127.0.0.1:0'] });
  await plain.close();
});
