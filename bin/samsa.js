#!/usr/bin/env -S node --single-threaded-gc
// --single-threaded-gc: the broker's heap is small (tens of MB) and its event loop is one thread;
// V8's parallel GC helper threads only compete with the libuv I/O threads and the kernel for the
// cores. Measured on 2 cores (bench/RESULTS.md): produce p99 at half load about halved, and
// maximum produce throughput up by a quarter.
// Runs the bundled CLI in dist/bin (the published package, or a checkout after `npm run build`:
// one pre-linked bundle starts in a fraction of the time of ~200 separate modules) unless the
// TypeScript sources are newer, in which case Node 24 runs them directly.
import { existsSync, readdirSync, statSync } from 'node:fs';
import module from 'node:module';

// V8's code cache for our modules (kept under the OS temp dir): later starts skip compilation.
module.enableCompileCache?.();

const built = new URL('../dist/bin/cli.js', import.meta.url);
const sources = new URL('../src/', import.meta.url);

function newestSourceMs() {
  let newest = 0;
  for (const entry of readdirSync(sources, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(`${entry.parentPath}/${entry.name}`).mtimeMs);
  }
  return newest;
}

const useBuilt = existsSync(built) && (!existsSync(sources) || statSync(built).mtimeMs >= newestSourceMs());
await import(useBuilt ? built.href : new URL('cli.ts', sources).href);
