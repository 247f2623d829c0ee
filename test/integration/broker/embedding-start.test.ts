// startBroker() as an application embeds it: a script of its own that imports Samsa. A failed
// start says why and leaves no temporary directory behind; a misspelt option is an error naming
// it; a script that starts and closes a broker ends.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

const samsa = pathToFileURL(join(import.meta.dirname, '../../../src/index.ts')).href;

interface Outcome {
  code: number | null;
  /** What the script printed: `ok`, or the rejection's `name: message`. */
  stdout: string;
  stderr: string;
  /** Whatever is left in the TMPDIR the script ran with. */
  leftovers: string[];
}

/** Runs `await startBroker(OPTIONS)` (then close()) in a fresh process with a TMPDIR of its own. */
async function embed(options: string): Promise<Outcome> {
  const tmp = await mkdtemp(join(tmpdir(), 'samsa-embed-'));
  try {
    const script = `import { startBroker } from ${JSON.stringify(samsa)};
try {
  const broker = await startBroker(${options});
  await broker.close();
  console.log('ok');
} catch (err) {
  console.log(err.name + ': ' + err.message);
}`;
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { env: { ...process.env, TMPDIR: tmp }, timeout: 20_000 },
        (err, stdout, stderr) => resolve({ code: err === null ? 0 : (err.code as number | null), stdout, stderr }),
      );
    });
    return { ...result, leftovers: await readdir(tmp) };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

test('a script that starts and closes an embedded broker ends, leaving nothing in TMPDIR', async () => {
  const run = await embed('');
  assert.deepEqual(run, { code: 0, stdout: 'ok\n', stderr: '', leftovers: [] });
});

test('an unknown startBroker option is an error naming it', async () => {
  const run = await embed(`{ datadir: '/tmp/x' }`);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(
    run.stdout,
    "ConfigError: startBroker: unknown option 'datadir' (did you mean 'dataDir'?); the options are " +
      'configFile, overrides, listen, advertise, dataDir, nodeId, defaultListen, temporary, logger, logLevel, httpListen\n',
  );
  assert.deepEqual(run.leftovers, []);
});

test('a failed start leaves no temporary directory behind', async (t) => {
  await t.test('an invalid config value', async () => {
    const run = await embed(`{ overrides: { 'num.partitions': 'abc' } }`);
    assert.equal(run.stdout, "ConfigError: num.partitions: 'abc' is not an integer\n", run.stderr);
    assert.deepEqual(run.leftovers, []);
  });

  await t.test('a port in use', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as { port: number }).port;
      const run = await embed(`{ listen: ['127.0.0.1:${port}'] }`);
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stdout,
        new RegExp(`^BrokerStartError: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`),
      );
      assert.equal(run.stderr, '');
      assert.deepEqual(run.leftovers, []);
    } finally {
      taken.close();
    }
  });

  await t.test('an HTTP port in use', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as { port: number }).port;
      const run = await embed(`{ httpListen: '127.0.0.1:${port}' }`);
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stdout,
        new RegExp(
          `^BrokerStartError: cannot listen on 127\\.0\\.0\\.1:${port} \\(--http-listen\\): the port is in use`,
        ),
      );
      assert.equal(run.stderr, '');
      assert.deepEqual(run.leftovers, []);
    } finally {
      taken.close();
    }
  });
});
