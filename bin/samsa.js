#!/usr/bin/env -S node --single-threaded-gc
// --single-threaded-gc: the broker's heap is small (tens of MB) and its event loop is one thread;
// V8's parallel GC helper threads only compete with the libuv I/O threads and the kernel for the
// cores. Measured on 2 cores (bench/RESULTS.md): produce p99 at half load about halved, and
// maximum produce throughput up by a quarter.
// Runs the bundled CLI in dist/bin (the published package, or a checkout after `npm run build`:
// one pre-linked bundle starts in a fraction of the time of ~200 separate modules) unless the
// TypeScript sources are newer, in which case Node 24 runs them directly.
//
// This file is written so that any Node with ES modules parses it (no top-level await, no `?.`
// or `??`): on an older Node it must get as far as the version check below and say what to do,
// rather than fail somewhere in the CLI with a TypeError. Only node:fs and node:module are
// imported before the check, and only what every such Node has.
import { existsSync, readdirSync, statSync } from 'node:fs';
import module from 'node:module';

const REQUIRED_NODE_MAJOR = 24;
if (Number(process.versions.node.split('.')[0]) < REQUIRED_NODE_MAJOR) {
  console.error(
    `samsa: needs Node.js >= ${REQUIRED_NODE_MAJOR}, found v${process.versions.node}: ` +
      'in a Samsa checkout run `npx samsa ...` (it uses the Node 24 that `npm ci` installed), or install Node 24',
  );
  process.exit(2);
}

// V8's code cache for our modules (kept under the OS temp dir): later starts skip compilation.
if (typeof module.enableCompileCache === 'function') module.enableCompileCache();

const built = new URL('../dist/bin/cli.js', import.meta.url);
const sources = new URL('../src/', import.meta.url);

function newestSourceMs() {
  let newest = 0;
  for (const entry of readdirSync(sources, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(`${entry.parentPath}/${entry.name}`).mtimeMs);
  }
  return newest;
}

// `samsa perf` measures latency on its own event loop, so its own GC pauses count. Under load V8
// grows the young generation to 16 MB semi-spaces, and each scavenge then paused the generator
// 3-5 ms, several times a second: that alone made its p99 ~2 ms worse (bench/RESULTS.md).
// Semi-spaces of 1 MB scavenge more often, each in well under a millisecond. V8 takes the size
// only at start-up, so perf re-runs itself with it; the broker keeps V8's default, which
// measured better for it.
const PERF_NODE_FLAGS = ['--max-semi-space-size=1'];

async function rerunWithPerfFlags() {
  const { spawn } = await import('node:child_process');
  const { constants } = await import('node:os');
  const child = spawn(process.execPath, [...process.execArgv, ...PERF_NODE_FLAGS, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  // Ctrl-C reaches both processes (one process group): the child prints its summary and exits.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, signal) => {
    process.exit(code !== null ? code : signal === null ? 1 : 128 + (constants.signals[signal] || 0));
  });
}

const useBuilt = existsSync(built) && (!existsSync(sources) || statSync(built).mtimeMs >= newestSourceMs());
if (process.argv[2] === 'perf' && !process.execArgv.some((flag) => flag.startsWith('--max-semi-space-size'))) {
  void rerunWithPerfFlags();
} else {
  // Not awaited (see above): a failure is still an unhandled rejection, reported and exit code 1.
  void import(useBuilt ? built.href : new URL('cli.ts', sources).href);
}
