// bin/samsa.js as an installed `samsa` runs it: executed directly, through its shebang.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const BIN = fileURLToPath(new URL('../../../bin/samsa.js', import.meta.url));

test('bin/samsa.js runs through its shebang, with --single-threaded-gc', async () => {
  const { stdout, stderr } = await promisify(execFile)(BIN, ['help'], {
    env: {
      ...process.env,
      // `env node` must find this Node 24, whatever node comes first on the machine's PATH.
      PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
      // Reports the V8/Node flags the shebang passed.
      NODE_OPTIONS: '--import data:text/javascript,console.error(JSON.stringify(process.execArgv))',
    },
  });
  assert.match(stdout, /Usage: samsa <command>/);
  const execArgv = JSON.parse(stderr.split('\n').find((l) => l.startsWith('[')) ?? '[]') as string[];
  assert.ok(execArgv.includes('--single-threaded-gc'), `execArgv: ${stderr}`);
});

test('samsa perf re-runs itself with 1 MB semi-spaces, keeping the exit code and output', async () => {
  const env = {
    ...process.env,
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
    NODE_OPTIONS: '--import data:text/javascript,console.error(JSON.stringify(process.execArgv))',
  };
  const { stdout, stderr } = await promisify(execFile)(BIN, ['perf', '--help'], { env });
  assert.match(stdout, /Usage: samsa perf produce\|consume/);
  const flags = stderr
    .split('\n')
    .filter((l) => l.startsWith('['))
    .map((l) => JSON.parse(l) as string[]);
  // The launcher, then the generator with both flags.
  assert.equal(flags.length, 2, stderr);
  assert.ok(flags[1]!.includes('--max-semi-space-size=1') && flags[1]!.includes('--single-threaded-gc'), stderr);
  // A usage error's exit code (2) comes back through the launcher.
  const failed = await promisify(execFile)(BIN, ['perf', 'produce', '--topic', 't'], { env }).then(
    () => 0,
    (err: { code: number }) => err.code,
  );
  assert.equal(failed, 2);
});

/** A Node older than 24 on this machine (the system Node, often), or undefined. */
function olderNode(): string | undefined {
  const candidates = [
    '/usr/bin/node',
    '/usr/local/bin/node',
    ...(process.env.PATH ?? '').split(':').map((dir) => `${dir}/node`),
  ];
  for (const candidate of candidates) {
    try {
      const version = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim();
      if (Number(/^v(\d+)/.exec(version)?.[1] ?? 99) < 24) return candidate;
    } catch {
      // not there
    }
  }
  return undefined;
}

test('on a Node older than 24, bin/samsa.js says which Node it needs and what to do, exit code 2', async (t) => {
  const node = olderNode();
  if (node === undefined) {
    t.skip('no Node older than 24 on this machine');
    return;
  }
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  for (const args of [['--help'], ['start'], ['--version']]) {
    const result: { code: number; stdout: string; stderr: string } = await promisify(execFile)(node, [
      BIN,
      ...args,
    ]).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    assert.equal(result.code, 2, `${args}: ${result.stderr}`);
    assert.equal(
      result.stderr,
      `samsa: needs Node.js >= 24, found ${version}: in a Samsa checkout run \`npx samsa ...\` (it uses the Node 24 that \`npm ci\` installed), or install Node 24\n`,
    );
    assert.equal(result.stdout, '');
  }
});

test('samsa --version prints the package version', async () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, '--version']);
  assert.equal(stdout, `${pkg.version}\n`);
});
