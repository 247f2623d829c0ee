import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameReader } from '../../../src/network/frame-reader.ts';
import { ProtocolError } from '../../../src/protocol/errors.ts';
import { BufferPool } from '../../../src/util/buffer-pool.ts';

function frame(payload: Buffer): Buffer {
  const size = Buffer.alloc(4);
  size.writeInt32BE(payload.length, 0);
  return Buffer.concat([size, payload]);
}

/** A seeded PRNG so a failure reproduces. */
function prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x * 1664525 + 1013904223) >>> 0;
    return x / 0x100000000;
  };
}

test('frames split at every kind of boundary come out whole and in order', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const rand = prng(seed);
    const payloads = Array.from({ length: 1 + Math.floor(rand() * 8) }, (_, i) =>
      Buffer.alloc(Math.floor(rand() * 3000), (seed + i) % 256),
    );
    const stream = Buffer.concat(payloads.map(frame));
    const reader = new FrameReader(1 << 20);
    const out: Buffer[] = [];
    for (let pos = 0; pos < stream.length; ) {
      // Chunks of 1 byte up to larger than a frame, so size fields and payloads both split.
      const n = Math.min(stream.length - pos, 1 + Math.floor(rand() * (rand() < 0.3 ? 3 : 5000)));
      // Each chunk is a reused read buffer: overwritten once the reader has drained it.
      const chunk = Buffer.from(stream.subarray(pos, pos + n));
      reader.push(chunk);
      pos += n;
      for (let f = reader.next(); f !== undefined; f = reader.next()) out.push(f);
      chunk.fill(0xee);
    }
    assert.deepEqual(out, payloads, `seed ${seed}`);
    assert.equal(reader.bufferedBytes, 0);
  }
});

test('a size above socket.request.max.bytes or below zero is a ProtocolError before anything is allocated', () => {
  const reader = new FrameReader(100);
  reader.push(frame(Buffer.alloc(101)).subarray(0, 10));
  assert.throws(() => reader.next(), ProtocolError);
  const negative = new FrameReader(100);
  negative.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  assert.throws(() => negative.next(), ProtocolError);
  const huge = new FrameReader(100 * 1024 * 1024);
  huge.push(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]));
  assert.throws(() => huge.next(), ProtocolError);
});

test('an incomplete frame waits for more bytes', () => {
  const reader = new FrameReader(1000);
  const f = frame(Buffer.from('hello'));
  reader.push(f.subarray(0, 2));
  assert.equal(reader.next(), undefined);
  reader.push(f.subarray(2, 7));
  assert.equal(reader.next(), undefined);
  reader.push(f.subarray(7));
  assert.equal(reader.next()?.toString(), 'hello');
  assert.equal(reader.next(), undefined);
});

test('frames from the pool and pushing before draining', () => {
  const pool = new BufferPool();
  const reader = new FrameReader(1 << 20, pool);
  const big = Buffer.alloc(100_000, 7);
  reader.push(frame(big));
  const f = reader.next();
  assert.ok(f?.equals(big));
  // A pooled frame is a view at the start of a power-of-two buffer, so it can be released.
  assert.equal(f?.buffer.byteLength, 131072);
  assert.equal(reader.next(), undefined);
  reader.push(Buffer.concat([frame(Buffer.from('a')), frame(Buffer.from('b'))]));
  assert.equal(reader.next()?.toString(), 'a');
  assert.throws(() => reader.push(Buffer.from([0])), /not drained/);
});

test('retain(): the rest of a shared chunk is copied, read later, and more bytes append to it', () => {
  const reader = new FrameReader(1000);
  const chunk = Buffer.concat([frame(Buffer.from('one')), frame(Buffer.from('two')), frame(Buffer.from('three'))]);
  const shared = Buffer.from(chunk.subarray(0, chunk.length - 2));
  reader.push(shared);
  assert.equal(reader.next()?.toString(), 'one');
  assert.ok(reader.atFrameBoundary);
  // The caller stops here (a bound is reached) and reuses its read buffer.
  reader.retain();
  shared.fill(0xee);
  assert.equal(reader.retainedBytes, shared.length - 7);
  reader.push(chunk.subarray(chunk.length - 2));
  assert.equal(reader.next()?.toString(), 'two');
  assert.equal(reader.next()?.toString(), 'three');
  assert.equal(reader.next(), undefined);
  assert.equal(reader.retainedBytes, 0);
  assert.equal(reader.bufferedBytes, 0);
});

test('a frame being filled is counted from its size field on, and release() drops it', () => {
  const pool = new BufferPool();
  const reader = new FrameReader(1 << 20, pool);
  reader.push(frame(Buffer.alloc(100_000)).subarray(0, 1000));
  assert.equal(reader.next(), undefined);
  assert.equal(reader.partialFrameBytes, 100_000);
  assert.equal(reader.atFrameBoundary, false);
  reader.release();
  assert.equal(reader.partialFrameBytes, 0);
  assert.ok(reader.atFrameBoundary);
});
