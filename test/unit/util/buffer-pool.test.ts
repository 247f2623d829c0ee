import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool } from '../../../src/util/buffer-pool.ts';

test('released frames are reused for frames of the same size class; foreign buffers are ignored', () => {
  const pool = new BufferPool(1 << 24);
  const a = pool.acquire(100_000);
  assert.equal(a.length, 100_000);
  pool.release(a);
  const b = pool.acquire(120_000); // same 128 KiB class
  assert.equal(b.buffer, a.buffer, 'the buffer was reused');
  assert.equal(b.length, 120_000);
  const c = pool.acquire(120_000); // the pool is empty again: a new buffer
  assert.notEqual(c.buffer, b.buffer);
  pool.release(Buffer.alloc(200_000)); // not from the pool: ignored
  assert.notEqual(pool.acquire(200_000).buffer, c.buffer);
});

test('the pool keeps at most its byte budget', () => {
  const pool = new BufferPool(256 * 1024);
  const frames = [pool.acquire(200_000), pool.acquire(200_000), pool.acquire(200_000)];
  for (const f of frames) pool.release(f);
  const reused = [pool.acquire(200_000), pool.acquire(200_000)].filter((f) =>
    frames.some((g) => g.buffer === f.buffer),
  );
  assert.equal(reused.length, 1, 'only one 256 KiB buffer fit in the budget');
});
