import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RealFileLayer } from '../../../src/storage/file-layer.ts';
import { InlineWritePolicy } from '../../../src/storage/inline-writes.ts';

test('inline writes: only up to maxBytes, and never during the back-off after a slow one', () => {
  let now = 1000;
  const policy = new InlineWritePolicy({ maxBytes: 100, slowMs: 20, backoffMs: 500 }, () => now);
  assert.equal(policy.allows(100), true);
  assert.equal(policy.allows(101), false);
  policy.finished(20); // at the threshold: not slow
  assert.equal(policy.allows(1), true);
  assert.equal(policy.slowWrites, 0);
  const backoffs: Array<[number, number]> = [];
  policy.onBackoff = (ms, n) => backoffs.push([ms, n]);
  policy.finished(21);
  assert.equal(policy.slowWrites, 1);
  assert.deepEqual(backoffs, [[21, 1]]);
  assert.equal(policy.allows(1), false);
  now += 499;
  assert.equal(policy.allows(1), false);
  now += 1;
  assert.equal(policy.allows(1), true);
});

test('runInline times the write with the policy clock and reports undefined when not allowed', () => {
  let now = 0;
  const policy = new InlineWritePolicy({ maxBytes: 10, slowMs: 5, backoffMs: 100 }, () => now);
  assert.equal(
    policy.runInline(10, () => {
      now += 6; // the write "took" 6 ms
      return 10;
    }),
    10,
  );
  assert.equal(policy.slowWrites, 1);
  assert.equal(
    policy.runInline(1, () => 1),
    undefined,
  );
  now += 100;
  assert.throws(() =>
    policy.runInline(1, () => {
      now += 50;
      throw new Error('EIO');
    }),
  );
  assert.equal(policy.slowWrites, 2, 'a failed slow write still starts a back-off');
});

test('RealFileLayer with inline writes: write and writev land at their positions, big ones through the pool', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'samsa-inline-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const policy = new InlineWritePolicy({ maxBytes: 8, slowMs: 1e9, backoffMs: 0 });
  let inlineCalls = 0;
  const counting = Object.assign(Object.create(policy) as InlineWritePolicy, {
    runInline<T>(bytes: number, write: () => T): T | undefined {
      const r = policy.runInline(bytes, write);
      if (r !== undefined) inlineCalls++;
      return r;
    },
  });
  const files = new RealFileLayer({ inlineWrites: counting });
  const path = join(dir, 'f.log');
  const f = await files.open(path, 'w+');
  await f.write(Buffer.from('abcd'), 0); // inline
  await f.writev([Buffer.from('ef'), Buffer.from(''), Buffer.from('gh')], 4); // inline, empty buffer skipped
  await f.write(Buffer.from('0123456789'), 8); // 10 bytes > maxBytes: pool
  await f.writev([Buffer.from('XYZ'), Buffer.from('0123456789')], 18); // 13 bytes: pool
  await f.close();
  assert.equal(readFileSync(path, 'utf8'), 'abcdefgh0123456789XYZ0123456789');
  assert.equal(inlineCalls, 2);
});

test('an inline write to a closed file rejects the promise instead of throwing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'samsa-inline-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files = new RealFileLayer({ inlineWrites: new InlineWritePolicy() });
  const f = await files.open(join(dir, 'g.log'), 'w+');
  await f.close();
  const pending = f.write(Buffer.from('x'), 0);
  assert.ok(pending instanceof Promise);
  await assert.rejects(pending);
});
