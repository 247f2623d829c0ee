// The dependency direction of ENGINEERING.md, checked from the import lines of src/:
// util <- protocol <- storage <- config <- metadata <- coordinator <- replication <- handlers <- broker <- admin;
// network imports only protocol (and util); anything may use network's types and client.
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

/** The layer of a file under src/ (files at the top level are the composition root, "broker"). */
function layerOf(file: string): string {
  const rel = relative(src, file);
  const top = rel.split('/')[0]!;
  if (top === 'cli.ts') return 'admin';
  if (!rel.includes('/')) return 'broker';
  return top;
}

function allowed(from: string, to: string): boolean {
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

test('the layering rule itself', () => {
  assert.equal(allowed('storage', 'protocol'), true);
  assert.equal(allowed('storage', 'metadata'), false);
  assert.equal(allowed('config', 'storage'), true);
  assert.equal(allowed('storage', 'config'), false);
  assert.equal(allowed('replication', 'config'), true);
  assert.equal(allowed('network', 'storage'), false);
  assert.equal(allowed('handlers', 'network'), true);
  assert.equal(allowed('protocol', 'handlers'), false);
});
