// bin/samsa.js as an installed `samsa` runs it: executed directly, through its shebang.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
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
