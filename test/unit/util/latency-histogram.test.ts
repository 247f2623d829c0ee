import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyHistogram } from '../../../src/util/latency-histogram.ts';

test('percentiles of 1..10000 ms are within 0.1%', () => {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 10000; i++) h.record(i);
  for (const [q, expected] of [
    [0.5, 5000],
    [0.95, 9500],
    [0.99, 9900],
    [0.999, 9990],
  ] as const) {
    const actual = h.percentileMs(q);
    assert.ok(Math.abs(actual - expected) / expected < 0.001, `p${q * 100}: ${actual} vs ${expected}`);
  }
  assert.equal(h.count, 10000);
  assert.equal(h.maxMs, 10000);
  assert.ok(Math.abs(h.meanMs - 5000.5) < 0.01);
});

test('sub-millisecond values are exact to the microsecond', () => {
  const h = new LatencyHistogram();
  h.record(0.25, 99);
  h.record(1.5, 1);
  assert.equal(h.percentileMs(0.5), 0.25);
  assert.equal(h.percentileMs(0.99), 0.25);
  assert.equal(h.percentileMs(1), 1.5);
});

test('weights, empty histogram, out-of-range values', () => {
  const h = new LatencyHistogram();
  assert.equal(h.percentileMs(0.99), 0);
  assert.equal(h.meanMs, 0);
  h.record(-5);
  h.record(1e12);
  assert.equal(h.count, 2);
  assert.equal(h.percentileMs(0.5), 0);
  assert.ok(h.percentileMs(1) > 1e8);
  const w = new LatencyHistogram();
  w.record(2, 1000);
  w.record(100, 1);
  assert.equal(w.percentileMs(0.999), 2);
  assert.ok(Math.abs(w.percentileMs(1) - 100) < 0.1);
});
