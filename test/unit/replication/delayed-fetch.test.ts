// The delayed-fetch purgatory (Kafka's DelayedOperationPurgatory for Fetch): a parked fetch reads
// again when a partition it watches changes, answers at max.wait.ms, and shutdown answers it at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DelayedFetchPurgatory } from '../../../src/replication/delayed-fetch.ts';

/** A read that finds `sizes[i]` bytes on its i-th call (the last size after that). */
function reader(sizes: number[], onRead: () => void = () => undefined) {
  let calls = 0;
  const read = async () => {
    const bytes = sizes[Math.min(calls, sizes.length - 1)]!;
    calls++;
    onRead();
    return { bytes, hasError: false };
  };
  return { read, calls: () => calls };
}

test('a fetch with enough bytes answers after one read, without parking', async () => {
  const purgatory = new DelayedFetchPurgatory();
  const r = reader([10]);
  const outcome = await purgatory.fetch(['t-0'], 5, 60_000, r.read);
  assert.equal(outcome.bytes, 10);
  assert.equal(r.calls(), 1);
  assert.equal(purgatory.size, 0);
});

test('a parked fetch reads again when a watched partition changes, not for another one', async () => {
  const purgatory = new DelayedFetchPurgatory();
  const r = reader([0, 0, 7]);
  const done = purgatory.fetch(['t-0', 't-1'], 5, 60_000, r.read);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(purgatory.size, 1);
  purgatory.checkAndComplete('u-0');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(r.calls(), 1);
  purgatory.checkAndComplete('t-1'); // still too little: parked again
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(r.calls(), 2);
  assert.equal(purgatory.size, 1);
  purgatory.checkAndComplete('t-0');
  assert.equal((await done).bytes, 7);
  assert.equal(r.calls(), 3);
  assert.equal(purgatory.size, 0);
});

test('a parked fetch answers at max wait with what it has', async () => {
  const purgatory = new DelayedFetchPurgatory();
  const r = reader([1]);
  const started = Date.now();
  const outcome = await purgatory.fetch(['t-0'], 5, 50, r.read);
  assert.equal(outcome.bytes, 1);
  assert.ok(Date.now() - started >= 45);
  assert.equal(purgatory.size, 0);
});

test('a change while the read is in flight makes it read again instead of parking', async () => {
  const purgatory = new DelayedFetchPurgatory();
  let first = true;
  const r = reader([0, 9], () => {
    if (first) purgatory.checkAndComplete('t-0');
    first = false;
  });
  const outcome = await purgatory.fetch(['t-0'], 5, 60_000, r.read);
  assert.equal(outcome.bytes, 9);
  assert.equal(r.calls(), 2);
});

test('shutdown answers parked fetches at once, and later ones after their first read', async () => {
  const purgatory = new DelayedFetchPurgatory();
  const r = reader([0]);
  const parked = purgatory.fetch(['t-0'], 5, 60_000, r.read);
  await new Promise((resolve) => setImmediate(resolve));
  purgatory.shutdown();
  assert.equal((await parked).bytes, 0);
  assert.equal(r.calls(), 2);
  const later = reader([0]);
  assert.equal((await purgatory.fetch(['t-0'], 5, 60_000, later.read)).bytes, 0);
  assert.equal(later.calls(), 1);
});

test('a partition error or nothing to watch answers after one read', async () => {
  const purgatory = new DelayedFetchPurgatory();
  const failed = await purgatory.fetch(['t-0'], 5, 60_000, async () => ({ bytes: 0, hasError: true }));
  assert.equal(failed.hasError, true);
  const r = reader([0]);
  await purgatory.fetch([], 5, 60_000, r.read);
  assert.equal(r.calls(), 1);
});
