// The dependency direction of ENGINEERING.md, checked from the import lines of src/:
// util <- protocol <- storage <- config <- metadata <- coordinator <- replication <- handlers <- broker <- admin;
// network imports only protocol (and util); anything may use network's types and client.
// Every file of src/ is in a layer's directory except the composition root, the CLI entry and
// the package index.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const src = resolve(import.meta.dirname, '../../src');
const ORDER = [
  'util',
  'protocol',
  'storage',
  'config',
  'metadata',
  'coordinator',
  'replication',
  'handlers',
  'broker',
  'admin',
];

/** The files at the top of src/, outside the layer directories, and the layer each belongs to. */
const ROOT_FILES: ReadonlyMap<string, string> = new Map([
  // The composition root.
  ['broker.ts', 'broker'],
  ['broker-metrics.ts', 'broker'],
  // The CLI entry and the package index.
  ['cli.ts', 'admin'],
  ['index.ts', 'admin'],
]);

const LAYERS: ReadonlySet<string> = new Set([...ORDER, 'network']);

/** Neither a layer's directory nor a root file: every import from or to it is a violation. */
const UNLAYERED = '(no layer)';

/** The layer of a file under src/: its top-level directory, or for a root file, the table's. */
function layerOf(file: string): string {
  const rel = relative(src, file);
  if (!rel.includes('/')) return ROOT_FILES.get(rel) ?? UNLAYERED;
  const top = rel.split('/')[0]!;
  return LAYERS.has(top) ? top : UNLAYERED;
}

function allowed(from: string, to: string): boolean {
  if (from === UNLAYERED || to === UNLAYERED) return false;
  if (from === to) return true;
  if (from === 'network') return to === 'protocol' || to === 'util';
  if (to === 'network') return from !== 'util' && from !== 'protocol' && from !== 'storage';
  const a = ORDER.indexOf(from);
  const b = ORDER.indexOf(to);
  return a >= 0 && b >= 0 && b <= a;
}

/**
 * Loaded lazily by the composition root, only when enabled: the HTTP listener (/metrics, /health,
 * /ready) lives with the admin surfaces, and depends on nothing of the broker but its types.
 */
const LAZY_EXCEPTIONS = new Set(['broker.ts -> admin/http/http-server.ts']);

test('src/ imports point one way (ENGINEERING.md layering)', () => {
  const files = readdirSync(src, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith('.ts'))
    .map((d) => join(d.parentPath, d.name));
  assert.ok(files.length > 50);
  const violations: string[] = [];
  let checked = 0;
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const statics = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)];
    const dynamics = [...text.matchAll(/\bimport\('(\.[^']+)'\)/g)];
    for (const m of [...statics, ...dynamics]) {
      const target = resolve(dirname(file), m[1]!);
      const from = layerOf(file);
      const to = layerOf(target);
      checked++;
      if (!allowed(from, to) && !LAZY_EXCEPTIONS.has(`${relative(src, file)} -> ${relative(src, target)}`))
        violations.push(`${relative(src, file)} (${from}) imports ${relative(src, target)} (${to})`);
    }
  }
  assert.ok(checked > 300, `only ${checked} relative imports found`);
  assert.deepEqual(violations, []);
});

test('every file of src/ is in a layer (only the composition root, CLI entry and package index are not)', () => {
  const unlayered = readdirSync(src, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith('.ts'))
    .map((d) => join(d.parentPath, d.name))
    .filter((file) => layerOf(file) === UNLAYERED)
    .map((file) => relative(src, file));
  assert.deepEqual(unlayered, []);
});

test('the layering rule itself', () => {
  assert.equal(allowed('storage', 'protocol'), true);
  assert.equal(allowed('storage', 'metadata'), false);
  assert.equal(allowed('config', 'storage'), true);
  assert.equal(allowed('storage', 'config'), false);
  assert.equal(allowed('replication', 'config'), true);
  assert.equal(allowed('network', 'storage'), false);
  assert.equal(allowed('handlers', 'network'), true);
  assert.equal(allowed('protocol', 'handlers'), false);
  assert.equal(allowed('replication', 'handlers'), false);
  assert.equal(allowed(UNLAYERED, UNLAYERED), false);
  assert.equal(layerOf(join(src, 'log-service.ts')), UNLAYERED);
  assert.equal(layerOf(join(src, 'server', 'partition.ts')), UNLAYERED);
  assert.equal(layerOf(join(src, 'broker.ts')), 'broker');
});
