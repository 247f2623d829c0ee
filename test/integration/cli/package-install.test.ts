// Samsa as another project installs it: `npm pack` of a checkout without dist/ (a fresh clone),
// run as CI runs it (root, CI=true), gives a tarball that a consumer project imports and runs.
//
// The consumer's node_modules is laid out as `npm install <tarball>` lays it out, the tarball
// unpacked into node_modules/samsa and its bin linked, but Samsa's own dependencies are linked
// from this checkout rather than downloaded: the test runs without the registry. (`npm install`
// of the tarball from the registry was checked by hand; see the commit.)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const REPO = join(import.meta.dirname, '../../..');
const run = promisify(execFile);
/** npm and `node` in scripts on this Node 24, whatever node comes first on the machine's PATH. */
const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, CI: 'true' };

test('npm pack of a checkout without dist/ builds it; a consumer imports startBroker and runs samsa', async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'samsa-pack-'));
  t.after(() => rm(tmp, { recursive: true, force: true }));

  // A checkout as a clone has it: sources and build inputs, no dist/. node_modules as after npm ci.
  const checkout = join(tmp, 'checkout');
  await mkdir(checkout);
  for (const entry of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'bin'])
    await cp(join(REPO, entry), join(checkout, entry), { recursive: true });
  await symlink(join(REPO, 'node_modules'), join(checkout, 'node_modules'));

  const started = performance.now();
  await run('npm', ['pack', '--pack-destination', tmp, '--silent'], { cwd: checkout, env });
  const buildSeconds = (performance.now() - started) / 1000;
  // `prepare` also runs on every `npm ci`: it must stay quick.
  assert.ok(buildSeconds < 60, `npm pack took ${buildSeconds.toFixed(1)} s`);
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as {
    version: string;
    dependencies: Record<string, string>;
  };
  const tarball = join(tmp, `samsa-${pkg.version}.tgz`);
  const { stdout: listing } = await run('tar', ['tzf', tarball]);
  for (const file of [
    'package/dist/index.js',
    'package/dist/index.d.ts',
    'package/dist/bin/cli.js',
    'package/bin/samsa.js',
  ])
    assert.ok(listing.split('\n').includes(file), `${file} is not in the tarball`);

  // The consumer project.
  const consumer = join(tmp, 'consumer');
  const modules = join(consumer, 'node_modules');
  await mkdir(join(modules, 'samsa'), { recursive: true });
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await run('tar', ['xzf', tarball, '-C', join(modules, 'samsa'), '--strip-components=1']);
  for (const dep of Object.keys(pkg.dependencies)) {
    await mkdir(dirname(join(modules, dep)), { recursive: true });
    await symlink(join(REPO, 'node_modules', dep), join(modules, dep));
  }
  await mkdir(join(modules, '.bin'));
  await symlink('../samsa/bin/samsa.js', join(modules, '.bin', 'samsa'));
  assert.ok(!(await readdir(join(modules, 'samsa'))).includes('src'));

  const script = `import { startBroker } from 'samsa';
const broker = await startBroker();
console.log(typeof broker.bootstrap);
await broker.close();
console.log('closed');`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: consumer, env });
  assert.equal(stdout, 'string\nclosed\n');

  const version = await run(join(modules, '.bin', 'samsa'), ['--version'], { cwd: consumer, env });
  assert.equal(version.stdout, `${pkg.version}\n`);
  const help = await run(join(modules, '.bin', 'samsa'), ['start', '--help'], { cwd: consumer, env });
  assert.match(help.stdout, /Usage: samsa start/);
});
