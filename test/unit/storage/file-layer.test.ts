import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RealFileLayer } from '../../../src/storage/file-layer.ts';

test('rmTree removes a nested tree of files one deletion at a time; missing paths are fine', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'samsa-rmtree-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const topic = join(root, 'orders-0');
  mkdirSync(join(topic, 'nested', 'deeper'), { recursive: true });
  for (let i = 0; i < 20; i++) writeFileSync(join(topic, `${String(i).padStart(20, '0')}.log`), Buffer.alloc(4096, i));
  writeFileSync(join(topic, 'nested', 'deeper', 'x.index'), 'x');
  const files = new RealFileLayer();
  await Promise.all([files.rmTree(topic), files.unlink(join(root, 'missing')).catch((e) => e)]);
  assert.equal(existsSync(topic), false);
  assert.ok(existsSync(root));
  await files.rmTree(topic); // already gone
  await files.rmTree(join(root, 'never-existed'));
  const single = join(root, 'single.log');
  writeFileSync(single, 'x');
  await files.rmTree(single); // a plain file is removed too
  assert.equal(existsSync(single), false);
});

test('a failed unlink rejects only its own call; later deletions still run', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'samsa-unlink-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const files = new RealFileLayer();
  writeFileSync(join(root, 'a'), 'a');
  const failed = files.unlink(join(root, 'does-not-exist'));
  const ok = files.unlink(join(root, 'a'));
  await assert.rejects(failed, { code: 'ENOENT' });
  await ok;
  assert.equal(existsSync(join(root, 'a')), false);
});
