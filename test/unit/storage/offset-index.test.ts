import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { realFileLayer } from '../../../src/storage/file-layer.ts';
import { OffsetIndex } from '../../../src/storage/offset-index.ts';
import { tempDir } from './helpers.ts';

test('OffsetIndex lookup returns the greatest entry at or below the target', () => {
  const idx = OffsetIndex.create('/nonexistent', 100n, 1024);
  assert.deepEqual(idx.lookup(150n), { offset: 100n, position: 0 });
  idx.append(110n, 1000);
  idx.append(120n, 2000);
  idx.append(130n, 3000);
  assert.deepEqual(idx.lookup(99n), { offset: 100n, position: 0 });
  assert.deepEqual(idx.lookup(109n), { offset: 100n, position: 0 });
  assert.deepEqual(idx.lookup(110n), { offset: 110n, position: 1000 });
  assert.deepEqual(idx.lookup(125n), { offset: 120n, position: 2000 });
  assert.deepEqual(idx.lookup(10_000n), { offset: 130n, position: 3000 });
  assert.throws(() => idx.append(125n, 4000), RangeError);
  idx.truncateTo(120n);
  assert.equal(idx.entries, 1);
  assert.equal(idx.lastOffset, 110n);
});

test('OffsetIndex is full at segment.index.bytes / 8 entries', () => {
  const idx = OffsetIndex.create('/nonexistent', 0n, 8 * 3 + 5);
  idx.append(1n, 10);
  idx.append(2n, 20);
  idx.append(3n, 30);
  assert.equal(idx.isFull(), true);
  assert.throws(() => idx.append(4n, 40), /full/);
});

test('OffsetIndex file is preallocated, trimmed on close, and reloads', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, '00000000000000000000.index');
  const idx = OffsetIndex.create(path, 0n, 8 * 100);
  for (let i = 1; i <= 10; i++) idx.append(BigInt(i * 10), i * 100);
  await idx.flush(realFileLayer);
  assert.equal((await stat(path)).size, 800, 'preallocated to the max size');
  // A crash now leaves entries followed by zeros: load accepts the entries.
  const crashed = await OffsetIndex.load(realFileLayer, path, 0n, 800, 5000);
  assert.equal(crashed.ok, true);
  assert.equal(crashed.index.entries, 10);
  await idx.trim(realFileLayer);
  assert.equal((await stat(path)).size, 80, 'trimmed to its entries');
  const loaded = await OffsetIndex.load(realFileLayer, path, 0n, 800, 5000);
  assert.equal(loaded.ok, true);
  assert.deepEqual(loaded.index.lookup(55n), { offset: 50n, position: 500 });
});

test('OffsetIndex truncation zeroes the stale tail of the file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'x.index');
  const idx = OffsetIndex.create(path, 0n, 8 * 100);
  for (let i = 1; i <= 10; i++) idx.append(BigInt(i), i * 100);
  await idx.flush(realFileLayer);
  idx.truncateTo(5n);
  await idx.flush(realFileLayer);
  const loaded = await OffsetIndex.load(realFileLayer, path, 0n, 800, 5000);
  assert.equal(loaded.ok, true);
  assert.equal(loaded.index.entries, 4);
});

test('OffsetIndex load flags a corrupt file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'bad.index');
  const b = Buffer.alloc(32);
  b.writeInt32BE(5, 0);
  b.writeInt32BE(100, 4);
  b.writeInt32BE(3, 8); // goes backwards
  b.writeInt32BE(200, 12);
  await writeFile(path, b);
  assert.equal((await OffsetIndex.load(realFileLayer, path, 0n, 1024, 1000)).ok, false);
  // Entry pointing past the log.
  const c = Buffer.alloc(8);
  c.writeInt32BE(5, 0);
  c.writeInt32BE(5000, 4);
  await writeFile(path, c);
  assert.equal((await OffsetIndex.load(realFileLayer, path, 0n, 1024, 1000)).ok, false);
  assert.equal((await OffsetIndex.load(realFileLayer, join(dir, 'missing.index'), 0n, 1024, 1000)).ok, false);
});
