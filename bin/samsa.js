#!/usr/bin/env node
// Runs the built CLI when installed from npm, the TypeScript sources in a checkout (Node 24).
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli.js', import.meta.url);
await import(existsSync(built) ? built.href : new URL('../src/cli.ts', import.meta.url).href);
