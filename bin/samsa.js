#!/usr/bin/env node
// The published package runs the compiled dist/; a checkout runs the TypeScript sources (Node 24).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
await import(existsSync(source) ? source.href : new URL('../dist/cli.js', import.meta.url).href);
