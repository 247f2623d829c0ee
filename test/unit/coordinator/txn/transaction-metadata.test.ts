// TransactionMetadata: Kafka's state table, every prepare* transition from every state, the
// pending-write discipline of completeTransitionTo, fencing, KIP-360 recovery and epoch exhaustion.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  IllegalTransitionError,
  isEpochExhausted,
  TransactionMetadata,
  TransactionState,
  type TxnTransitMetadata,
  VALID_PREVIOUS_STATES,
} from '../../../../src/coordinator/txn/transaction-metadata.ts';
import { ErrorCode, KafkaError } from '../../../../src/protocol/error-codes.ts';

const S = TransactionState;
const ALL = Object.values(S);
const TP = { topic: 't', partition: 0 };
const noFreshId = (): bigint => {
  throw new Error('no producer id expected');
};

function meta(state: TransactionState, epoch = 5): TransactionMetadata {
  const inTxn = state !== S.Empty && state !== S.CompleteCommit && state !== S.CompleteAbort && state !== S.Dead;
  return new TransactionMetadata({
    transactionalId: 'txn',
    producerId: 100n,
    producerEpoch: epoch,
    txnTimeoutMs: 60000,
    state,
    topicPartitions: inTxn ? [TP] : [],
    txnStartTimestamp: inTxn ? 1000n : -1n,
    txnLastUpdateTimestamp: 1000n,
  });
}

function errorCode(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof KafkaError) return e.errorCode;
    throw e;
  }
  return undefined;
}

test("the valid previous states are Kafka's", () => {
  assert.deepEqual(VALID_PREVIOUS_STATES, {
    [S.Empty]: [S.Empty, S.CompleteCommit, S.CompleteAbort],
    [S.Ongoing]: [S.Ongoing, S.Empty, S.CompleteCommit, S.CompleteAbort],
    [S.PrepareCommit]: [S.Ongoing],
    [S.PrepareAbort]: [S.Ongoing, S.PrepareEpochFence],
    [S.CompleteCommit]: [S.PrepareCommit],
    [S.CompleteAbort]: [S.PrepareAbort],
    [S.Dead]: [S.Empty, S.CompleteAbort, S.CompleteCommit],
    [S.PrepareEpochFence]: [S.Ongoing],
  });
});

// Each target state with the prepare call that heads for it.
const PREPARES: [TransactionState, (m: TransactionMetadata) => TxnTransitMetadata][] = [
  [S.Empty, (m) => m.prepareIncrementProducerEpoch(30000, null, 2000n, noFreshId)],
  [S.Ongoing, (m) => m.prepareAddPartitions([{ topic: 'u', partition: 1 }], 2000n)],
  [S.PrepareCommit, (m) => m.prepareAbortOrCommit(S.PrepareCommit, 2000n)],
  [S.PrepareAbort, (m) => m.prepareAbortOrCommit(S.PrepareAbort, 2000n)],
  [S.Dead, (m) => m.prepareDead()],
  [S.PrepareEpochFence, (m) => m.prepareFenceProducerEpoch()],
];

test('every prepare succeeds exactly from its valid previous states', () => {
  for (const [target, prepare] of PREPARES) {
    for (const from of ALL) {
      const m = meta(from);
      if (VALID_PREVIOUS_STATES[target].includes(from)) {
        const t = prepare(m);
        assert.equal(t.txnState, target, `${from} -> ${target}`);
        assert.equal(m.pendingState, target);
        assert.equal(m.state, from, 'nothing changes before the record is written');
      } else {
        assert.equal(
          errorCode(() => prepare(m)),
          ErrorCode.INVALID_TXN_STATE,
          `${from} -> ${target}`,
        );
        assert.equal(m.pendingState, null);
      }
    }
  }
});

test('prepareComplete goes to CompleteCommit from PrepareCommit and CompleteAbort from PrepareAbort only', () => {
  for (const from of ALL) {
    const m = meta(from);
    if (from === S.PrepareCommit) assert.equal(m.prepareComplete(3000n).txnState, S.CompleteCommit);
    else if (from === S.PrepareAbort) assert.equal(m.prepareComplete(3000n).txnState, S.CompleteAbort);
    else
      assert.equal(
        errorCode(() => m.prepareComplete(3000n)),
        ErrorCode.INVALID_TXN_STATE,
        `from ${from}`,
      );
  }
});

test('a pending transition blocks any other with CONCURRENT_TRANSACTIONS until completed or aborted', () => {
  const m = meta(S.Ongoing);
  m.prepareAddPartitions([{ topic: 'u', partition: 1 }], 2000n);
  assert.equal(
    errorCode(() => m.prepareAbortOrCommit(S.PrepareCommit, 2000n)),
    ErrorCode.CONCURRENT_TRANSACTIONS,
  );
  m.abortPendingTransition();
  assert.equal(m.topicPartitions.length, 1, 'an aborted transition leaves no trace');
  assert.equal(m.prepareAbortOrCommit(S.PrepareCommit, 2000n).txnState, S.PrepareCommit);
});

test('a whole commit: Empty -> Ongoing -> PrepareCommit -> CompleteCommit -> Empty', () => {
  const m = meta(S.Empty);
  const init = m.prepareIncrementProducerEpoch(30000, null, 1500n, noFreshId);
  m.completeTransitionTo(init);
  assert.equal(m.producerEpoch, 6);
  assert.equal(m.txnTimeoutMs, 30000);
  const add = m.prepareAddPartitions([TP], 2000n);
  assert.equal(add.txnStartTimestamp, 2000n, 'the first partition starts the transaction clock');
  m.completeTransitionTo(add);
  const more = m.prepareAddPartitions([TP, { topic: 't', partition: 1 }], 2500n);
  assert.equal(more.txnStartTimestamp, 2000n);
  m.completeTransitionTo(more);
  assert.equal(m.topicPartitions.length, 2);
  m.completeTransitionTo(m.prepareAbortOrCommit(S.PrepareCommit, 3000n));
  assert.equal(m.state, S.PrepareCommit);
  m.removePartition(TP);
  assert.equal(m.topicPartitions.length, 1);
  m.completeTransitionTo(m.prepareComplete(3500n));
  assert.equal(m.state, S.CompleteCommit);
  assert.deepEqual(m.topicPartitions, []);
  assert.equal(m.txnLastUpdateTimestamp, 3500n);
  m.completeTransitionTo(m.prepareIncrementProducerEpoch(30000, null, 4000n, noFreshId));
  assert.equal(m.state, S.Empty);
  assert.equal(m.producerEpoch, 7);
});

test('completeTransitionTo refuses a transit that is not the pending one', () => {
  const m = meta(S.Ongoing);
  assert.throws(() => m.completeTransitionTo(m.prepareNoTransit()), IllegalTransitionError);
  const t = m.prepareAbortOrCommit(S.PrepareCommit, 2000n);
  assert.throws(() => m.completeTransitionTo({ ...t, txnState: S.PrepareAbort }), IllegalTransitionError);
  assert.throws(() => m.completeTransitionTo({ ...t, producerEpoch: 9 }), IllegalTransitionError);
  assert.throws(() => m.completeTransitionTo({ ...t, topicPartitions: [] }), IllegalTransitionError);
  m.completeTransitionTo(t);
  assert.equal(m.state, S.PrepareCommit);
});

test('a transition to Dead is never completed (the id is removed instead)', () => {
  const m = meta(S.Empty);
  assert.throws(() => m.completeTransitionTo(m.prepareDead()), IllegalTransitionError);
});

test('fencing an ongoing transaction bumps the epoch, then aborts it', () => {
  const m = meta(S.Ongoing);
  const fence = m.prepareFenceProducerEpoch();
  assert.equal(fence.producerEpoch, 6);
  assert.throws(() => m.completeTransitionTo(fence), IllegalTransitionError, 'PrepareEpochFence is never written');
  const m2 = meta(S.Ongoing);
  m2.applyEpochFence(m2.prepareFenceProducerEpoch());
  assert.equal(m2.producerEpoch, 6);
  const abort = m2.prepareAbortOrCommit(S.PrepareAbort, 2000n);
  assert.equal(abort.producerEpoch, 6);
  m2.completeTransitionTo(abort);
  m2.completeTransitionTo(m2.prepareComplete(2500n));
  assert.equal(m2.state, S.CompleteAbort);
});

test('a failed fence is retried with the same epoch', () => {
  const m = meta(S.Ongoing);
  m.prepareFenceProducerEpoch();
  m.abortPendingTransition();
  m.hasFailedEpochFence = true;
  assert.equal(m.prepareFenceProducerEpoch().producerEpoch, 5);
  assert.throws(() => meta(S.Ongoing, 32767).prepareFenceProducerEpoch(), IllegalTransitionError);
});

test('KIP-360: the current epoch bumps, the last epoch is a retry, any other is fenced', () => {
  const m = meta(S.Empty);
  const t = m.prepareIncrementProducerEpoch(60000, 5, 2000n, noFreshId);
  assert.deepEqual([t.producerEpoch, t.lastProducerEpoch], [6, 5]);
  m.completeTransitionTo(t);
  const retry = m.prepareIncrementProducerEpoch(60000, 5, 2100n, noFreshId);
  assert.deepEqual([retry.producerEpoch, retry.lastProducerEpoch], [6, 5]);
  m.completeTransitionTo(retry);
  assert.equal(
    errorCode(() => m.prepareIncrementProducerEpoch(60000, 3, 2200n, noFreshId)),
    ErrorCode.PRODUCER_FENCED,
  );
  // A new instance (no expected epoch) forgets the last epoch, so the old one's retry is fenced.
  m.completeTransitionTo(m.prepareIncrementProducerEpoch(60000, null, 2300n, noFreshId));
  assert.equal(m.lastProducerEpoch, -1);
  assert.equal(
    errorCode(() => m.prepareIncrementProducerEpoch(60000, 6, 2400n, noFreshId)),
    ErrorCode.PRODUCER_FENCED,
  );
});

test('a new transactional id (epoch -1) starts at epoch 0', () => {
  const m = meta(S.Empty, -1);
  const t = m.prepareIncrementProducerEpoch(60000, null, 2000n, noFreshId);
  assert.equal(t.producerEpoch, 0);
  m.completeTransitionTo(t);
  assert.equal(m.producerEpoch, 0);
});

test('epoch exhaustion moves the transactional id to a new producer id at epoch 0', () => {
  assert.equal(isEpochExhausted(32765), false);
  assert.equal(isEpochExhausted(32766), true);
  const m = meta(S.CompleteCommit, 32765);
  m.completeTransitionTo(m.prepareIncrementProducerEpoch(60000, null, 2000n, noFreshId));
  assert.equal(m.producerEpoch, 32766);
  const rotated = m.prepareIncrementProducerEpoch(60000, null, 2100n, () => 200n);
  assert.deepEqual([rotated.producerId, rotated.producerEpoch, rotated.lastProducerEpoch], [200n, 0, -1]);
  m.completeTransitionTo(rotated);
  assert.deepEqual([m.producerId, m.lastProducerId, m.producerEpoch], [200n, 100n, 0]);
  // A KIP-360 producer at the exhausted epoch keeps its last epoch, so its retry is recognised.
  const k = meta(S.Empty, 32766);
  const t = k.prepareIncrementProducerEpoch(60000, 32766, 2000n, () => 300n);
  assert.deepEqual([t.producerId, t.producerEpoch, t.lastProducerEpoch], [300n, 0, 32766]);
});

test('the producer id cannot rotate while a transaction is pending', () => {
  assert.throws(() => meta(S.Ongoing).prepareProducerIdRotation(200n, 60000, 2000n, false), IllegalTransitionError);
});

test('partitions are removed only while preparing to complete', () => {
  assert.throws(() => meta(S.Ongoing).removePartition(TP), IllegalTransitionError);
  const m = meta(S.PrepareAbort);
  m.removePartition(TP);
  assert.deepEqual(m.topicPartitions, []);
});

test('adding partitions checks the producer id, the epoch and a transition in flight', () => {
  const m = meta(S.Ongoing);
  assert.equal(
    errorCode(() => m.verifyCanAddPartitions(101n, 5)),
    ErrorCode.INVALID_PRODUCER_ID_MAPPING,
  );
  assert.equal(
    errorCode(() => m.verifyCanAddPartitions(100n, 4)),
    ErrorCode.PRODUCER_FENCED,
  );
  assert.equal(
    errorCode(() => m.verifyCanAddPartitions(100n, 5)),
    undefined,
  );
  m.prepareAbortOrCommit(S.PrepareCommit, 2000n);
  assert.equal(
    errorCode(() => m.verifyCanAddPartitions(100n, 5)),
    ErrorCode.CONCURRENT_TRANSACTIONS,
  );
  assert.equal(
    errorCode(() => meta(S.PrepareAbort).verifyCanAddPartitions(100n, 5)),
    ErrorCode.CONCURRENT_TRANSACTIONS,
  );
});
