import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, KafkaError } from '../../../src/protocol/error-codes.ts';
import { type BatchIdentity, ProducerStateManager } from '../../../src/storage/producer-state.ts';

function batch(seq: number, count = 1, epoch = 0, pid = 7n): BatchIdentity {
  return { producerId: pid, producerEpoch: epoch, baseSequence: seq, lastOffsetDelta: count - 1, maxTimestamp: 1000n };
}

function errorCodeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof KafkaError);
    return err.errorCode;
  }
  assert.fail('expected a KafkaError');
}

test('non-idempotent batches are never checked', () => {
  const m = new ProducerStateManager();
  assert.deepEqual(m.check({ ...batch(5), producerId: -1n }), { kind: 'append' });
  m.record({ ...batch(5), producerId: -1n }, 0n, 0n, 0);
  assert.equal(m.size, 0);
});

test('an unknown producer may start at any sequence; then sequences must follow', () => {
  const m = new ProducerStateManager();
  assert.deepEqual(m.check(batch(42, 3)), { kind: 'append' });
  m.record(batch(42, 3), 10n, 12n, 1);
  assert.deepEqual(m.check(batch(45)), { kind: 'append' });
  assert.equal(
    errorCodeOf(() => m.check(batch(47))),
    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  );
});

test('a retried batch among the last five is a duplicate with its original offsets', () => {
  const m = new ProducerStateManager();
  for (let i = 0; i < 6; i++) m.record(batch(i * 2, 2), BigInt(i * 2), BigInt(i * 2 + 1), i);
  assert.deepEqual(m.check(batch(10, 2)), { kind: 'duplicate', firstOffset: 10n, lastOffset: 11n });
  assert.deepEqual(m.check(batch(2, 2)), { kind: 'duplicate', firstOffset: 2n, lastOffset: 3n });
  // The first batch fell out of the window of five: no longer recognised, and out of order.
  assert.equal(
    errorCodeOf(() => m.check(batch(0, 2))),
    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  );
});

test('epochs: older is fenced, newer must restart at sequence 0', () => {
  const m = new ProducerStateManager();
  m.record(batch(0, 1, 3), 0n, 0n, 0);
  assert.equal(
    errorCodeOf(() => m.check(batch(1, 1, 2))),
    ErrorCode.INVALID_PRODUCER_EPOCH,
  );
  assert.equal(
    errorCodeOf(() => m.check(batch(5, 1, 4))),
    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
  );
  assert.deepEqual(m.check(batch(0, 1, 4)), { kind: 'append' });
  m.record(batch(0, 1, 4), 1n, 1n, 0);
  assert.equal(m.entry(7n)?.producerEpoch, 4);
  assert.equal(m.entry(7n)?.batches.length, 1);
});

test('sequence numbers wrap from Int32.MAX to 0', () => {
  const m = new ProducerStateManager();
  m.record(batch(2147483646, 2), 0n, 1n, 0);
  assert.deepEqual(m.check(batch(0)), { kind: 'append' });
});

test('snapshot round trip, expiry and truncation', () => {
  const m = new ProducerStateManager();
  m.record(batch(0, 2), 0n, 1n, 100);
  m.record(batch(0, 1, 0, 9n), 2n, 2n, 5000);
  const copy = ProducerStateManager.fromSnapshot(m.toSnapshot());
  assert.deepEqual(copy.entries(), m.entries());
  assert.deepEqual(copy.check(batch(0, 2)), { kind: 'duplicate', firstOffset: 0n, lastOffset: 1n });
  assert.equal(copy.expire(3000, 2000), 1);
  assert.equal(copy.entry(7n), undefined);
  copy.truncateFrom(2n);
  assert.equal(copy.size, 0);
});
