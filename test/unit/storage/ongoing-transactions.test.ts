import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OngoingTransactions } from '../../../src/storage/ongoing-transactions.ts';

test('a transaction begins at its first batch and holds the LSO until its marker is replicated', () => {
  const txns = new OngoingTransactions();
  assert.equal(txns.firstUnstableOffset(), null);
  assert.equal(txns.lastStableOffset(10n), 10n);
  assert.equal(txns.begin(1n, 10n), true);
  assert.equal(txns.begin(1n, 12n), false, 'a later batch of the same transaction');
  assert.equal(txns.ongoingFirstOffset(1n), 10n);
  assert.equal(txns.firstUnstableOffset(), 10n);
  assert.equal(txns.lastStableOffset(15n), 10n);
  assert.equal(txns.lastStableOffset(8n), 8n, 'never above the high watermark');
  assert.equal(txns.complete(1n, 'commit', 15n), null, 'a commit indexes nothing');
  assert.equal(txns.firstUndecidedOffset(), null);
  // The marker at 15 is not below the high watermark yet: a new leader could lose it.
  assert.equal(txns.firstUnstableOffset(), 10n);
  txns.onHighWatermarkUpdated(15n);
  assert.equal(txns.lastStableOffset(15n), 10n);
  txns.onHighWatermarkUpdated(16n);
  assert.equal(txns.firstUnstableOffset(), null);
  assert.equal(txns.lastStableOffset(16n), 16n);
});

test('an abort returns the index entry, with the LSO after the marker', () => {
  const txns = new OngoingTransactions();
  txns.begin(1n, 0n);
  assert.deepEqual(txns.complete(1n, 'abort', 4n), {
    producerId: 1n,
    firstOffset: 0n,
    lastOffset: 4n,
    lastStableOffset: 5n,
  });
  assert.deepEqual(txns.unreplicated(), [{ producerId: 1n, firstOffset: 0n, lastOffset: 4n, isAborted: true }]);
});

test('interleaved producers: the LSO is the earliest ongoing first offset, and moves as they complete', () => {
  const txns = new OngoingTransactions();
  txns.begin(1n, 0n);
  txns.begin(2n, 3n);
  txns.begin(1n, 5n);
  txns.begin(3n, 7n);
  assert.deepEqual(txns.ongoing(), [
    { producerId: 1n, firstOffset: 0n },
    { producerId: 2n, firstOffset: 3n },
    { producerId: 3n, firstOffset: 7n },
  ]);
  assert.equal(txns.firstUnstableOffset(), 0n);
  // Producer 2 aborts first: its entry's LSO is the earliest other ongoing transaction (producer 1's).
  assert.deepEqual(txns.complete(2n, 'abort', 8n), {
    producerId: 2n,
    firstOffset: 3n,
    lastOffset: 8n,
    lastStableOffset: 0n,
  });
  txns.onHighWatermarkUpdated(9n);
  assert.equal(txns.firstUnstableOffset(), 0n, 'producer 1 still holds it');
  assert.equal(txns.complete(1n, 'commit', 9n), null);
  assert.equal(txns.firstUndecidedOffset(), 7n);
  assert.equal(txns.firstUnstableOffset(), 0n, 'producer 1 committed but the marker at 9 is not replicated');
  txns.onHighWatermarkUpdated(10n);
  assert.equal(txns.firstUnstableOffset(), 7n);
  assert.equal(txns.lastStableOffset(10n), 7n);
  assert.deepEqual(txns.complete(3n, 'abort', 10n), {
    producerId: 3n,
    firstOffset: 7n,
    lastOffset: 10n,
    lastStableOffset: 11n,
  });
  // A producer may begin its next transaction before the previous marker is replicated.
  txns.begin(3n, 11n);
  assert.equal(txns.firstUnstableOffset(), 7n);
  txns.onHighWatermarkUpdated(11n);
  assert.equal(txns.firstUnstableOffset(), 11n);
  assert.equal(txns.lastStableOffset(12n), 11n);
});

test('a marker without an ongoing transaction completes an empty one at the marker', () => {
  const txns = new OngoingTransactions();
  txns.begin(2n, 1n);
  assert.deepEqual(txns.complete(1n, 'abort', 5n), {
    producerId: 1n,
    firstOffset: 5n,
    lastOffset: 5n,
    lastStableOffset: 1n,
  });
  assert.equal(txns.firstUnstableOffset(), 1n);
  assert.equal(txns.complete(2n, 'commit', 6n), null);
  txns.onHighWatermarkUpdated(7n);
  assert.equal(txns.firstUnstableOffset(), null);
});

test('out-of-order input is refused; clear forgets everything', () => {
  const txns = new OngoingTransactions();
  txns.begin(1n, 10n);
  assert.throws(() => txns.begin(1n, 9n), /before its transaction/);
  assert.throws(() => txns.complete(1n, 'commit', 9n), /before its transaction/);
  assert.equal(txns.ongoingFirstOffset(1n), 10n, 'a refused marker leaves the transaction ongoing');
  txns.complete(1n, 'commit', 11n);
  txns.begin(2n, 12n);
  txns.clear();
  assert.equal(txns.firstUnstableOffset(), null);
  assert.deepEqual(txns.ongoing(), []);
  assert.deepEqual(txns.unreplicated(), []);
});
