import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { realFileLayer } from '../../../src/storage/file-layer.ts';
import { TimeIndex } from '../../../src/storage/time-index.ts';
import { tempDir } from './helpers.ts';

test('TimeIndex keeps strictly increasing timestamps and looks up the floor entry', () => {
  const idx = TimeIndex.create('/nonexistent', 1000n, 12 * 10);
  assert.deepEqual(idx.lookup(5n), { timestamp: -1n, offset: 1000n });
  idx.maybeAppend(100n, 1005n);
  idx.maybeAppend(100n, 1006n); // not larger: ignored
  idx.maybeAppend(90n, 1007n); // smaller: ignored
  idx.maybeAppend(200n, 1010n);
  assert.equal(idx.entries, 2);
  assert.deepEqual(idx.lookup(99n), { timestamp: -1n, offset: 1000n });
  assert.deepEqual(idx.lookup(150n), { timestamp: 100n, offset: 1005n });
  assert.deepEqual(idx.lookup(500n), { timestamp: 200n, offset: 1010n });
  assert.deepEqual(idx.lastEntry, { timestamp: 200n, offset: 1010n });
  assert.throws(() => idx.maybeAppend(300n, 1001n), RangeError);
  idx.truncateTo(1010n);
  assert.deepEqual(idx.lastEntry, { timestamp: 100n, offset: 1005n });
});

test('TimeIndex round-trips through its file and reads its last entry cheaply', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, '00000000000000000000.timeindex');
  const idx = TimeIndex.create(path, 0n, 12 * 50);
  for (let i = 1; i <= 5; i++) idx.maybeAppend(BigInt(1_000 * i), BigInt(i * 3));
  await idx.trim(realFileLayer);
  assert.equal((await stat(path)).size, 60);
  const loaded = await TimeIndex.load(realFileLayer, path, 0n, 600);
  assert.equal(loaded.ok, true);
  assert.equal(loaded.index.entries, 5);
  assert.deepEqual(await TimeIndex.readLastEntry(realFileLayer, path, 0n), { timestamp: 5000n, offset: 15n });
});
