import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AbortedTransactionFilter } from '../../../src/admin/topic-fetcher.ts';
import { CONTROL_FLAG_MASK, TRANSACTIONAL_FLAG_MASK } from '../../../src/protocol/records/batch-header.ts';

const txn = (producerId: bigint, baseOffset: bigint, lastOffsetDelta = 0) => ({
  producerId,
  baseOffset,
  lastOffsetDelta,
  attributes: TRANSACTIONAL_FLAG_MASK,
});
const marker = (producerId: bigint, baseOffset: bigint) => ({
  producerId,
  baseOffset,
  lastOffsetDelta: 0,
  attributes: TRANSACTIONAL_FLAG_MASK | CONTROL_FLAG_MASK,
});

test("read_committed: batches of aborted transactions and control batches are skipped, as Kafka's consumer does", () => {
  // Producer 1 aborts a transaction starting at offset 0; producer 2 commits one starting at 1.
  const f = new AbortedTransactionFilter([{ producerId: 1n, firstOffset: 0n }]);
  assert.equal(f.skip(txn(1n, 0n, 1), false), true);
  assert.equal(f.skip(txn(2n, 2n), false), false);
  assert.equal(f.skip(marker(1n, 3n), true), true);
  assert.equal(f.skip(marker(2n, 4n), false), true);
  // After its ABORT marker, producer 1's next transaction is not aborted.
  assert.equal(f.skip(txn(1n, 5n), false), false);
  // Non-transactional batches always pass.
  assert.equal(f.skip({ producerId: -1n, baseOffset: 6n, lastOffsetDelta: 0, attributes: 0 }, false), false);
});

test('an aborted transaction applies from its first offset only', () => {
  const f = new AbortedTransactionFilter([{ producerId: 7n, firstOffset: 10n }]);
  assert.equal(f.skip(txn(7n, 2n), false), false);
  assert.equal(f.skip(txn(7n, 10n), false), true);
  assert.equal(new AbortedTransactionFilter(null).skip(txn(7n, 10n), false), false);
});
