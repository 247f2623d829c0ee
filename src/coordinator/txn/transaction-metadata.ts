/**
 * A transactional id's state in the transaction coordinator, as Kafka's TransactionMetadata
 * (3.x, before KIP-890 part 2's producer id rotation on every commit).
 *
 * Every change is two steps so that a coordinator failover never loses one: `prepare*` checks
 * the transition and returns the target (`TxnTransitMetadata`) while marking it pending; the
 * coordinator writes that target to `__transaction_state`, and only once the write is
 * replicated does `completeTransitionTo` apply it (or `abortPendingTransition` drop it when
 * the write failed). While a transition is pending, no other may start.
 *
 * Pure: no I/O and no clock; callers pass timestamps and fresh producer ids.
 */
import { ErrorCode, KafkaError } from '../../protocol/error-codes.ts';

/** Kafka's TransactionState ids, as written in TransactionLogValue.TransactionStatus. */
export const TransactionState = {
  Empty: 0,
  Ongoing: 1,
  PrepareCommit: 2,
  PrepareAbort: 3,
  CompleteCommit: 4,
  CompleteAbort: 5,
  Dead: 6,
  PrepareEpochFence: 7,
} as const;
export type TransactionState = (typeof TransactionState)[keyof typeof TransactionState];

const S = TransactionState;

/** The names DescribeTransactions/ListTransactions report. */
export const TRANSACTION_STATE_NAMES: Readonly<Record<TransactionState, string>> = {
  [S.Empty]: 'Empty',
  [S.Ongoing]: 'Ongoing',
  [S.PrepareCommit]: 'PrepareCommit',
  [S.PrepareAbort]: 'PrepareAbort',
  [S.CompleteCommit]: 'CompleteCommit',
  [S.CompleteAbort]: 'CompleteAbort',
  [S.Dead]: 'Dead',
  [S.PrepareEpochFence]: 'PrepareEpochFence',
};

/** For each state, the states it may be entered from (Kafka's validPreviousStates). */
export const VALID_PREVIOUS_STATES: Readonly<Record<TransactionState, readonly TransactionState[]>> = {
  [S.Empty]: [S.Empty, S.CompleteCommit, S.CompleteAbort],
  [S.Ongoing]: [S.Ongoing, S.Empty, S.CompleteCommit, S.CompleteAbort],
  [S.PrepareCommit]: [S.Ongoing],
  [S.PrepareAbort]: [S.Ongoing, S.PrepareEpochFence],
  [S.CompleteCommit]: [S.PrepareCommit],
  [S.CompleteAbort]: [S.PrepareAbort],
  [S.Dead]: [S.Empty, S.CompleteAbort, S.CompleteCommit],
  [S.PrepareEpochFence]: [S.Ongoing],
};

export function transactionStateFromId(id: number): TransactionState {
  if (!Number.isInteger(id) || id < 0 || id > 7) throw new Error(`unknown transaction state id ${id}`);
  return id as TransactionState;
}

/** States in which an idle transactional id may expire (`transactional.id.expiration.ms`). */
export function isExpirationAllowed(state: TransactionState): boolean {
  return state === S.Empty || state === S.CompleteCommit || state === S.CompleteAbort;
}

export const NO_PRODUCER_ID = -1n;
export const NO_PRODUCER_EPOCH = -1;
const SHORT_MAX = 32767;

/**
 * Kafka never hands out epoch 32767 (nor 32766 as a bump target) so that the coordinator can
 * always bump once more to fence a producer.
 */
export function isEpochExhausted(epoch: number): boolean {
  return epoch >= SHORT_MAX - 1;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** ':' cannot occur in a topic name (legal: [a-zA-Z0-9._-]), so the key is unambiguous. */
function tpKey(tp: TopicPartition): string {
  return `${tp.topic}:${tp.partition}`;
}

/** An immutable target of a transition, to be written to the log before it takes effect. */
export interface TxnTransitMetadata {
  readonly producerId: bigint;
  readonly lastProducerId: bigint;
  readonly producerEpoch: number;
  readonly lastProducerEpoch: number;
  readonly txnTimeoutMs: number;
  readonly txnState: TransactionState;
  readonly topicPartitions: readonly TopicPartition[];
  readonly txnStartTimestamp: bigint;
  readonly txnLastUpdateTimestamp: bigint;
  /** Transaction version 2 (KIP-890 part 2): the producer id the transaction moves to when its epoch is exhausted (-1: none). */
  readonly nextProducerId: bigint;
  /** 2 when the transaction was ended with EndTxn v5+ (an epoch bump per transaction), else 0. */
  readonly clientTransactionVersion: number;
}

/** An invariant broken by the caller (Kafka's IllegalStateException): a bug, never a client error. */
export class IllegalTransitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IllegalTransitionError';
  }
}

export interface TransactionMetadataInit {
  transactionalId: string;
  producerId: bigint;
  lastProducerId?: bigint;
  producerEpoch: number;
  lastProducerEpoch?: number;
  txnTimeoutMs: number;
  state?: TransactionState;
  topicPartitions?: readonly TopicPartition[];
  txnStartTimestamp?: bigint;
  txnLastUpdateTimestamp: bigint;
  nextProducerId?: bigint;
  clientTransactionVersion?: number;
}

export class TransactionMetadata {
  readonly transactionalId: string;
  producerId: bigint;
  lastProducerId: bigint;
  producerEpoch: number;
  lastProducerEpoch: number;
  txnTimeoutMs: number;
  state: TransactionState;
  private readonly partitions = new Map<string, TopicPartition>();
  txnStartTimestamp: bigint;
  txnLastUpdateTimestamp: bigint;
  /** See TxnTransitMetadata. */
  nextProducerId: bigint;
  clientTransactionVersion: number;
  /** The state a transition in flight (its record not yet written) will enter. */
  pendingState: TransactionState | null = null;
  /**
   * A fence whose record failed to be written may still have bumped the epoch on some replica;
   * the retry reuses that epoch instead of bumping again (the epoch never reached a client).
   */
  hasFailedEpochFence = false;

  constructor(init: TransactionMetadataInit) {
    this.transactionalId = init.transactionalId;
    this.producerId = init.producerId;
    this.lastProducerId = init.lastProducerId ?? NO_PRODUCER_ID;
    this.producerEpoch = init.producerEpoch;
    this.lastProducerEpoch = init.lastProducerEpoch ?? NO_PRODUCER_EPOCH;
    this.txnTimeoutMs = init.txnTimeoutMs;
    this.state = init.state ?? S.Empty;
    for (const tp of init.topicPartitions ?? []) this.partitions.set(tpKey(tp), tp);
    this.txnStartTimestamp = init.txnStartTimestamp ?? -1n;
    this.txnLastUpdateTimestamp = init.txnLastUpdateTimestamp;
    this.nextProducerId = init.nextProducerId ?? NO_PRODUCER_ID;
    this.clientTransactionVersion = init.clientTransactionVersion ?? 0;
  }

  /** Transaction version 2 bumps the epoch at every EndTxn. */
  get supportsEpochBump(): boolean {
    return this.clientTransactionVersion >= 2;
  }

  get topicPartitions(): TopicPartition[] {
    return [...this.partitions.values()];
  }

  get pendingTransitionInProgress(): boolean {
    return this.pendingState !== null;
  }

  get isProducerEpochExhausted(): boolean {
    return isEpochExhausted(this.producerEpoch);
  }

  /** Ongoing or being completed: markers may still have to be written. */
  get hasPendingTransaction(): boolean {
    return this.state === S.Ongoing || this.state === S.PrepareAbort || this.state === S.PrepareCommit;
  }

  /**
   * The check Kafka's coordinator makes before AddPartitionsToTxn/AddOffsetsToTxn: the id must
   * be this transactional id's, an older epoch was fenced by a newer instance, and nothing may
   * be added while a write is in flight or the transaction is completing (the client retries).
   */
  verifyCanAddPartitions(producerId: bigint, producerEpoch: number): void {
    if (producerId !== this.producerId)
      throw new KafkaError(
        ErrorCode.INVALID_PRODUCER_ID_MAPPING,
        `${this.transactionalId} is not owned by ${producerId}`,
      );
    if (producerEpoch !== this.producerEpoch)
      throw new KafkaError(
        ErrorCode.PRODUCER_FENCED,
        `epoch ${producerEpoch} is not the current ${this.producerEpoch}`,
      );
    if (this.pendingState !== null || this.state === S.PrepareCommit || this.state === S.PrepareAbort)
      throw new KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS);
  }

  /** Once a marker is written to a partition it no longer needs one (only while preparing). */
  removePartition(tp: TopicPartition): void {
    if (this.state !== S.PrepareCommit && this.state !== S.PrepareAbort)
      throw new IllegalTransitionError(`cannot remove a partition in state ${TRANSACTION_STATE_NAMES[this.state]}`);
    this.partitions.delete(tpKey(tp));
  }

  /** The current state as a transit, e.g. to rewrite it (does not mark a transition pending). */
  prepareNoTransit(): TxnTransitMetadata {
    return this.transit(
      this.state,
      this.producerId,
      this.producerEpoch,
      this.lastProducerEpoch,
      this.txnTimeoutMs,
      this.topicPartitions,
      this.txnStartTimestamp,
      this.txnLastUpdateTimestamp,
    );
  }

  /** Bumps the epoch to fence the current producer of an ongoing transaction, before aborting it. */
  prepareFenceProducerEpoch(): TxnTransitMetadata {
    if (this.producerEpoch === SHORT_MAX)
      throw new IllegalTransitionError('cannot fence a producer whose epoch is already 32767');
    const bumped = this.hasFailedEpochFence ? this.producerEpoch : this.producerEpoch + 1;
    return this.prepareTransitionTo(
      S.PrepareEpochFence,
      this.producerId,
      bumped,
      NO_PRODUCER_EPOCH,
      this.txnTimeoutMs,
      this.topicPartitions,
      this.txnStartTimestamp,
      this.txnLastUpdateTimestamp,
    );
  }

  /**
   * InitProducerId on an idle transactional id. `expectedProducerEpoch` is the epoch a KIP-360
   * producer sends to recover (null for a new producer instance, which fences older ones).
   * When the epoch is exhausted, the transactional id moves to a fresh producer id from
   * `allocateProducerId` at epoch 0 (as Kafka's coordinator does with prepareProducerIdRotation).
   */
  prepareIncrementProducerEpoch(
    newTxnTimeoutMs: number,
    expectedProducerEpoch: number | null,
    updateTimestamp: bigint,
    allocateProducerId: () => bigint,
  ): TxnTransitMetadata {
    if (
      this.isProducerEpochExhausted &&
      (expectedProducerEpoch === null || expectedProducerEpoch === this.producerEpoch)
    )
      return this.prepareProducerIdRotation(
        allocateProducerId(),
        newTxnTimeoutMs,
        updateTimestamp,
        expectedProducerEpoch !== null,
      );
    let next: number;
    let last: number;
    if (expectedProducerEpoch === null) {
      // A new instance: bump, and forget the last epoch so an old instance cannot claim a retry.
      next = this.producerEpoch + 1;
      last = NO_PRODUCER_EPOCH;
    } else if (this.producerEpoch === NO_PRODUCER_EPOCH || expectedProducerEpoch === this.producerEpoch) {
      next = this.producerEpoch + 1;
      last = this.producerEpoch;
    } else if (expectedProducerEpoch === this.lastProducerEpoch) {
      // A retry of a bump that succeeded but whose response was lost: answer the same epoch.
      next = this.producerEpoch;
      last = this.lastProducerEpoch;
    } else {
      throw new KafkaError(
        ErrorCode.PRODUCER_FENCED,
        `expected epoch ${expectedProducerEpoch} is neither the current ${this.producerEpoch} nor the last ${this.lastProducerEpoch}`,
      );
    }
    if (next > SHORT_MAX - 1) throw new IllegalTransitionError(`producer epochs of ${this.producerId} are exhausted`);
    return this.prepareTransitionTo(S.Empty, this.producerId, next, last, newTxnTimeoutMs, [], -1n, updateTimestamp);
  }

  /** Moves the transactional id to a new producer id at epoch 0 (epoch exhaustion). */
  prepareProducerIdRotation(
    newProducerId: bigint,
    newTxnTimeoutMs: number,
    updateTimestamp: bigint,
    recordLastEpoch: boolean,
  ): TxnTransitMetadata {
    if (this.hasPendingTransaction)
      throw new IllegalTransitionError('cannot rotate the producer id while a transaction is pending');
    return this.prepareTransitionTo(
      S.Empty,
      newProducerId,
      0,
      recordLastEpoch ? this.producerEpoch : NO_PRODUCER_EPOCH,
      newTxnTimeoutMs,
      [],
      -1n,
      updateTimestamp,
    );
  }

  prepareAddPartitions(added: readonly TopicPartition[], updateTimestamp: bigint): TxnTransitMetadata {
    // The first partition of a transaction starts its clock (transaction.timeout.ms).
    const starts = this.state === S.Empty || this.state === S.CompleteAbort || this.state === S.CompleteCommit;
    const all = new Map(this.partitions);
    for (const tp of added) all.set(tpKey(tp), tp);
    return this.prepareTransitionTo(
      S.Ongoing,
      this.producerId,
      this.producerEpoch,
      this.lastProducerEpoch,
      this.txnTimeoutMs,
      [...all.values()],
      starts ? updateTimestamp : this.txnStartTimestamp,
      updateTimestamp,
    );
  }

  /**
   * EndTxn. With transaction version 2 (`clientTransactionVersion` 2: EndTxn v5+, KIP-890 part 2)
   * the epoch is bumped here, so the markers fence the transaction's late writes; when it would
   * pass 32767, `nextProducerId` is where the id moves once the transaction completes.
   */
  prepareAbortOrCommit(
    newState: typeof S.PrepareCommit | typeof S.PrepareAbort,
    updateTimestamp: bigint,
    clientTransactionVersion = 0,
    nextProducerId: bigint = NO_PRODUCER_ID,
  ): TxnTransitMetadata {
    const bump = clientTransactionVersion >= 2;
    return this.prepareTransitionTo(
      newState,
      this.producerId,
      bump ? this.producerEpoch + 1 : this.producerEpoch,
      bump ? this.producerEpoch : this.lastProducerEpoch,
      this.txnTimeoutMs,
      this.topicPartitions,
      this.txnStartTimestamp,
      updateTimestamp,
      { nextProducerId, clientTransactionVersion },
    );
  }

  /** After every marker is written: PrepareCommit → CompleteCommit, PrepareAbort → CompleteAbort. */
  prepareComplete(updateTimestamp: bigint): TxnTransitMetadata {
    const newState = this.state === S.PrepareCommit ? S.CompleteCommit : S.CompleteAbort;
    // Reaching completion means the fenced epoch was written, so a later fence bumps again.
    this.hasFailedEpochFence = false;
    // Transaction version 2 whose epoch overflowed: the id moves on now that the markers are written.
    const rotate = this.supportsEpochBump && this.nextProducerId !== NO_PRODUCER_ID;
    return this.prepareTransitionTo(
      newState,
      rotate ? this.nextProducerId : this.producerId,
      rotate ? 0 : this.producerEpoch,
      this.supportsEpochBump ? this.producerEpoch : this.lastProducerEpoch,
      this.txnTimeoutMs,
      [],
      this.txnStartTimestamp,
      updateTimestamp,
      { nextProducerId: NO_PRODUCER_ID, clientTransactionVersion: this.clientTransactionVersion },
    );
  }

  /** Expiry of an idle transactional id; its record is a tombstone, and it leaves the cache. */
  prepareDead(): TxnTransitMetadata {
    return this.prepareTransitionTo(
      S.Dead,
      this.producerId,
      this.producerEpoch,
      this.lastProducerEpoch,
      this.txnTimeoutMs,
      [],
      this.txnStartTimestamp,
      this.txnLastUpdateTimestamp,
    );
  }

  /**
   * Kafka's coordinator never writes PrepareEpochFence: ending the fenced transaction takes the
   * bumped epoch into memory at once and then prepares PrepareAbort from Ongoing, whose record
   * carries the new epoch (so the old producer is fenced once that record is written).
   */
  applyEpochFence(fence: TxnTransitMetadata): void {
    if (this.pendingState !== S.PrepareEpochFence || fence.txnState !== S.PrepareEpochFence)
      throw new IllegalTransitionError(`${this.transactionalId}: no epoch fence is pending`);
    this.pendingState = null;
    this.producerEpoch = fence.producerEpoch;
    this.lastProducerEpoch = NO_PRODUCER_EPOCH;
  }

  /** The record of the pending transition could not be written: forget it. */
  abortPendingTransition(): void {
    this.pendingState = null;
  }

  private transit(
    txnState: TransactionState,
    producerId: bigint,
    producerEpoch: number,
    lastProducerEpoch: number,
    txnTimeoutMs: number,
    topicPartitions: readonly TopicPartition[],
    txnStartTimestamp: bigint,
    txnLastUpdateTimestamp: bigint,
    extra: { nextProducerId?: bigint; clientTransactionVersion?: number } = {},
  ): TxnTransitMetadata {
    return {
      producerId,
      lastProducerId: this.producerId,
      producerEpoch,
      lastProducerEpoch,
      txnTimeoutMs,
      txnState,
      topicPartitions,
      txnStartTimestamp,
      txnLastUpdateTimestamp,
      nextProducerId: extra.nextProducerId ?? this.nextProducerId,
      clientTransactionVersion: extra.clientTransactionVersion ?? this.clientTransactionVersion,
    };
  }

  private prepareTransitionTo(
    newState: TransactionState,
    newProducerId: bigint,
    newEpoch: number,
    newLastEpoch: number,
    newTxnTimeoutMs: number,
    newTopicPartitions: readonly TopicPartition[],
    newTxnStartTimestamp: bigint,
    updateTimestamp: bigint,
    extra: { nextProducerId?: bigint; clientTransactionVersion?: number } = {},
  ): TxnTransitMetadata {
    // Kafka's coordinator answers CONCURRENT_TRANSACTIONS (retriable) while a write is in flight.
    if (this.pendingState !== null)
      throw new KafkaError(
        ErrorCode.CONCURRENT_TRANSACTIONS,
        `${this.transactionalId}: transition to ${TRANSACTION_STATE_NAMES[newState]} while ${TRANSACTION_STATE_NAMES[this.pendingState]} is pending`,
      );
    if (newProducerId < 0n) throw new IllegalTransitionError(`illegal new producer id ${newProducerId}`);
    // The epoch stays -1 from creation until a first InitProducerId, so only Dead may carry it.
    if (newState !== S.Dead && newEpoch < 0) throw new IllegalTransitionError(`illegal new producer epoch ${newEpoch}`);
    if (!VALID_PREVIOUS_STATES[newState].includes(this.state))
      throw new KafkaError(
        ErrorCode.INVALID_TXN_STATE,
        `${this.transactionalId}: cannot go from ${TRANSACTION_STATE_NAMES[this.state]} to ${TRANSACTION_STATE_NAMES[newState]}`,
      );
    this.pendingState = newState;
    return this.transit(
      newState,
      newProducerId,
      newEpoch,
      newLastEpoch,
      newTxnTimeoutMs,
      newTopicPartitions,
      newTxnStartTimestamp,
      updateTimestamp,
      extra,
    );
  }

  /** Kafka's validProducerEpoch: transaction version 2 moves the epoch at EndTxn and completion. */
  private validProducerEpoch(t: TxnTransitMetadata): boolean {
    const v2 = t.clientTransactionVersion >= 2;
    if (v2 && (t.txnState === S.CompleteCommit || t.txnState === S.CompleteAbort) && t.producerEpoch === 0)
      return t.lastProducerEpoch === this.producerEpoch && t.lastProducerId === this.producerId;
    if (v2 && (t.txnState === S.PrepareCommit || t.txnState === S.PrepareAbort))
      return t.lastProducerEpoch === this.producerEpoch && t.producerId === this.producerId;
    return t.producerEpoch === this.producerEpoch && t.producerId === this.producerId;
  }

  /**
   * Applies a prepared transition once its record is written. The checks catch a transit that
   * does not belong to the current metadata (a bug), exactly those Kafka makes.
   */
  completeTransitionTo(t: TxnTransitMetadata): void {
    const toState = this.pendingState;
    if (toState === null)
      throw new IllegalTransitionError(`${this.transactionalId}: completing a transition that is not pending`);
    if (toState !== t.txnState) this.fail(t);
    const sameEpoch = t.producerEpoch === this.producerEpoch && t.producerId === this.producerId;
    switch (toState) {
      case S.Empty: {
        const bump =
          t.producerEpoch === this.producerEpoch + 1 || (t.producerEpoch === 0 && t.producerId !== this.producerId);
        if (
          (t.producerEpoch !== this.producerEpoch && !bump) ||
          t.topicPartitions.length > 0 ||
          t.txnStartTimestamp !== -1n
        )
          this.fail(t);
        this.txnTimeoutMs = t.txnTimeoutMs;
        this.producerEpoch = t.producerEpoch;
        this.lastProducerEpoch = t.lastProducerEpoch;
        this.producerId = t.producerId;
        this.lastProducerId = t.lastProducerId;
        break;
      }
      case S.Ongoing: {
        const target = new Set(t.topicPartitions.map(tpKey));
        if (
          !sameEpoch ||
          ![...this.partitions.keys()].every((k) => target.has(k)) ||
          this.txnTimeoutMs !== t.txnTimeoutMs
        )
          this.fail(t);
        this.txnStartTimestamp = t.txnStartTimestamp;
        for (const tp of t.topicPartitions) this.partitions.set(tpKey(tp), tp);
        break;
      }
      case S.PrepareAbort:
      case S.PrepareCommit: {
        const target = new Set(t.topicPartitions.map(tpKey));
        const samePartitions =
          target.size === this.partitions.size && [...this.partitions.keys()].every((k) => target.has(k));
        if (
          !this.validProducerEpoch(t) ||
          !samePartitions ||
          this.txnTimeoutMs !== t.txnTimeoutMs ||
          this.txnStartTimestamp !== t.txnStartTimestamp
        )
          this.fail(t);
        if (t.clientTransactionVersion >= 2) {
          this.producerEpoch = t.producerEpoch;
          this.lastProducerEpoch = t.lastProducerEpoch;
          this.nextProducerId = t.nextProducerId;
        }
        this.clientTransactionVersion = t.clientTransactionVersion;
        break;
      }
      case S.CompleteAbort:
      case S.CompleteCommit:
        if (!this.validProducerEpoch(t) || this.txnTimeoutMs !== t.txnTimeoutMs || t.txnStartTimestamp === -1n)
          this.fail(t);
        this.txnStartTimestamp = t.txnStartTimestamp;
        this.partitions.clear();
        if (t.clientTransactionVersion >= 2) {
          this.producerEpoch = t.producerEpoch;
          this.lastProducerEpoch = t.lastProducerEpoch;
          this.lastProducerId = t.lastProducerId;
          this.producerId = t.producerId;
          this.nextProducerId = t.nextProducerId;
        }
        break;
      case S.PrepareEpochFence:
        // Never completed: the coordinator turns a fence into PrepareAbort before writing it.
        this.fail(t);
        break;
      case S.Dead:
        // An expired id is removed from the cache once its tombstone is written, never kept as Dead.
        throw new IllegalTransitionError(`${this.transactionalId}: a transition to Dead is completed by removal`);
    }
    this.txnLastUpdateTimestamp = t.txnLastUpdateTimestamp;
    this.pendingState = null;
    this.state = toState;
  }

  private fail(t: TxnTransitMetadata): never {
    throw new IllegalTransitionError(
      `${this.transactionalId}: unexpected metadata completing the transition to ${TRANSACTION_STATE_NAMES[t.txnState]}`,
    );
  }
}
