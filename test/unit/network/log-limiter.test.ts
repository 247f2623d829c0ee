import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LogRateLimiter } from '../../../src/network/log-limiter.ts';

test('one line per key per interval; the next one counts the lines held back', () => {
  let now = 1_000;
  const limiter = new LogRateLimiter(10_000, 100, () => now);
  assert.equal(limiter.admit('a'), 0);
  for (let i = 0; i < 99; i++) assert.equal(limiter.admit('a'), undefined);
  assert.equal(limiter.admit('b'), 0, 'keys are independent');
  now += 9_999;
  assert.equal(limiter.admit('a'), undefined);
  now += 1;
  assert.equal(limiter.admit('a'), 100, 'the 100 lines held back');
  now += 10_000;
  assert.equal(limiter.admit('a'), 0);
});

test('interval 0 lets every line through', () => {
  const limiter = new LogRateLimiter(0);
  for (let i = 0; i < 10; i++) assert.equal(limiter.admit('a'), 0);
});

test('at most maxKeys addresses are remembered, the ones logged longest ago forgotten first', () => {
  let now = 0;
  const limiter = new LogRateLimiter(10_000, 3, () => now);
  for (const k of ['a', 'b', 'c', 'd']) assert.equal(limiter.admit(k), 0);
  now += 1;
  // 'a' was forgotten, so it is let through again; 'd' is still held back.
  assert.equal(limiter.admit('a'), 0);
  assert.equal(limiter.admit('d'), undefined);
});
