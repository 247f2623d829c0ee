// TransactionCoordinator (Kafka's TransactionCoordinator + TransactionStateManager + the completion
// side of the marker channel) over an in-memory __transaction_state: InitProducerId (new ids,
// fencing, KIP-360 bumps, epoch exhaustion), AddPartitionsToTxn/EndTxn with every transition
// written before it takes effect, markers retried until written and then CompleteCommit/Abort,
// InitProducerId aborting an ongoing transaction, a new coordinator completing a prepared
// transaction on load, timed-out transactions, transactional id expiry, verification,
// Describe/ListTransactions, and failing or hanging writes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GroupTopicAccess } from '../../../../src/coordinator/group/group-coordinator-service.ts';
import {
  TRANSACTION_STATE_TOPIC,
  TransactionCoordinator,
  type TxnCoordinatorConfig,
  type TxnLogAccess,
  type TxnMarker,
  type TxnMarkerWriter,
  txnCoordinatorConfigFrom,
} from '../../../../src/coordinator/txn/transaction-coordinator.ts';
import { type TopicPartition, TransactionState } from '../../../../src/coordinator/txn/transaction-metadata.ts';
import {
  decodeTxnRecord,
  encodeTxnRecord,
  type TxnLogRecord,
} from '../../../../src/coordinator/txn/transaction-records.ts';
import type { TopicMetadata } from '../../../../src/metadata/metadata-store.ts';
import { ErrorCode, KafkaError } from '../../../../src/protocol/error-codes.ts';
import { readBatchHeader, setBaseOffset } from '../../../../src/protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../../../../src/protocol/records/builder.ts';
import { decodeRecordsSync } from '../../../../src/protocol/records/record.ts';

const S = TransactionState;
const TP0: TopicPartition = { topic: 'orders', partition: 0 };
const TP1: TopicPartition = { topic: 'orders', partition: 1 };
const TP2: TopicPartition = { topic: 'payments', partition: 3 };
const TIMEOUT = 60_000;

type Ctx = { after(fn: () => unknown): void };

const code = (errorCode: number) => (err: unknown) => {
  assert.ok(err instanceof KafkaError, `expected a KafkaError, got ${String(err)}`);
  assert.equal(err.errorCode, errorCode, `expected error ${errorCode}, got ${err.errorCode} (${err.message})`);
  return true;
};

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const tick = () => new Promise((r) => setTimeout(r, 20));

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

class Topics implements GroupTopicAccess {
  readonly topics = new Map<string, TopicMetadata>();
  readonly created: { name: string; partitions: number; rf: number; configs: Record<string, string> }[] = [];

  constructor(existing = true, leaderEpoch = 0) {
    if (existing) this.topics.set(TRANSACTION_STATE_TOPIC, topicMeta(1, [leaderEpoch]));
  }
  get(name: string) {
    return this.topics.get(name);
  }
  list() {
    return [...this.topics.values()];
  }
  async create(name: string, partitions: number, rf: number, configs: Record<string, string>) {
    this.created.push({ name, partitions, rf, configs });
    const t = topicMeta(
      partitions,
      Array.from({ length: partitions }, () => 0),
      configs,
    );
    this.topics.set(name, t);
    return t;
  }
}

function topicMeta(partitions: number, leaderEpochs: number[], configs: Record<string, string> = {}): TopicMetadata {
  return {
    name: TRANSACTION_STATE_TOPIC,
    topicId: 'AAAAAAAAAAAAAAAAAAAAAA',
    partitions,
    replicationFactor: 1,
    configs,
    leaderEpochs,
  };
}

/** __transaction_state in memory: batches per partition with offsets assigned as a log would. */
class MemLog implements TxnLogAccess {
  readonly batches = new Map<number, Buffer[]>();
  readonly ends = new Map<number, bigint>();
  /** Runs before each append: throw to fail it, return a pending promise to hang it. */
  beforeAppend: ((partition: number) => void | Promise<void>) | undefined;
  /** Runs before each read (loading). */
  beforeRead: (() => void | Promise<void>) | undefined;
  readonly acks: number[] = [];

  async append(_topic: TopicMetadata, partition: number, records: Buffer, requiredAcks: number): Promise<unknown> {
    await this.beforeAppend?.(partition);
    this.acks.push(requiredAcks);
    this.appendRaw(partition, records);
    return {};
  }

  appendRaw(partition: number, records: Buffer): void {
    const copy = Buffer.from(records);
    const end = this.ends.get(partition) ?? 0n;
    setBaseOffset(copy, 0, end);
    const list = this.batches.get(partition) ?? [];
    list.push(copy);
    this.batches.set(partition, list);
    this.ends.set(partition, end + BigInt(readBatchHeader(copy).lastOffsetDelta) + 1n);
  }

  async readToLogEnd(_topic: TopicMetadata, partition: number, fetchOffset: bigint, _maxBytes: number) {
    await this.beforeRead?.();
    const records = (this.batches.get(partition) ?? []).filter((b) => {
      const h = readBatchHeader(b);
      return h.baseOffset + BigInt(h.lastOffsetDelta) >= fetchOffset;
    });
    return { records, logEndOffset: this.ends.get(partition) ?? 0n };
  }

  offsets(_topic: TopicMetadata, partition: number) {
    return { logStartOffset: 0n, logEndOffset: this.ends.get(partition) ?? 0n };
  }

  /** Every record written, decoded. */
  records(partition = 0): TxnLogRecord[] {
    const out: TxnLogRecord[] = [];
    for (const b of this.batches.get(partition) ?? [])
      for (const r of decodeRecordsSync(b)) {
        assert.ok(r.key !== null);
        const rec = decodeTxnRecord(Buffer.from(r.key), r.value === null ? null : Buffer.from(r.value));
        assert.ok(rec !== null);
        out.push(rec);
      }
    return out;
  }

  /** The states written for `id`, in order (null: a tombstone). */
  states(id: string): (TransactionState | null)[] {
    return this.records()
      .filter((r) => r.transactionalId === id)
      .map((r) => (r.value === null ? null : r.value.state));
  }

  /** Seeds a record, as a previous coordinator would have written it. */
  seed(record: TxnLogRecord, partition = 0): void {
    const e = encodeTxnRecord(record);
    this.appendRaw(partition, buildRecordBatchSync({ records: [{ key: e.key, value: e.value, timestamp: 0n }] }));
  }
}

class Markers implements TxnMarkerWriter {
  readonly calls: { marker: TxnMarker; partitions: TopicPartition[] }[] = [];
  /** The code for one partition of the n-th call (1-based); throw to fail the whole call. */
  respond: (tp: TopicPartition, call: number, marker: TxnMarker) => number = () => ErrorCode.NONE;
  /** Runs before answering (return a pending promise to hang). */
  before: (() => void | Promise<void>) | undefined;
  /** Released when the test ends, so the coordinator's close() finds no call in flight. */
  readonly stuck = deferred();

  hangForever(): void {
    this.before = () => this.stuck.promise;
  }

  async writeMarkers(marker: TxnMarker, partitions: readonly TopicPartition[]): Promise<number[]> {
    this.calls.push({ marker: { ...marker }, partitions: [...partitions] });
    const n = this.calls.length;
    await this.before?.();
    return partitions.map((tp) => this.respond(tp, n, marker));
  }
}

interface Setup {
  coord: TransactionCoordinator;
  log: MemLog;
  markers: Markers;
  topics: Topics;
  clock: { now: number };
  allocated: bigint[];
}

interface SetupOptions {
  log?: MemLog;
  markers?: Markers;
  topics?: Topics;
  clock?: { now: number };
  /** Elect partition 0 at this epoch directly (no start()); default: start() at the topic's epoch. */
  electAt?: number;
  /** Do not elect at all. */
  noElection?: boolean;
  config?: Partial<TxnCoordinatorConfig>;
  nextProducerId?: { next: bigint };
}

async function setup(t: Ctx, options: SetupOptions = {}): Promise<Setup> {
  const log = options.log ?? new MemLog();
  const markers = options.markers ?? new Markers();
  const topics = options.topics ?? new Topics();
  const clock = options.clock ?? { now: 1000 };
  const ids = options.nextProducerId ?? { next: 1000n };
  const allocated: bigint[] = [];
  const coord = new TransactionCoordinator({
    topics,
    logs: log,
    markers,
    allocateProducerId: async () => {
      const id = ids.next++;
      allocated.push(id);
      return id;
    },
    config: { ...txnCoordinatorConfigFrom({}), numPartitions: 1, ...options.config },
    logger: { info: () => {}, warn: () => {}, error: () => {} } as never,
    ownership: 'all',
    replicationFactor: () => 1,
    now: () => clock.now,
  });
  t.after(async () => {
    markers.stuck.resolve();
    await coord.close();
  });
  if (!options.noElection) {
    if (options.electAt !== undefined) await coord.onElection(0, options.electAt);
    else {
      coord.start();
      await coord.onElection(0, topics.get(TRANSACTION_STATE_TOPIC)?.leaderEpochs[0] ?? 0);
    }
  }
  return { coord, log, markers, topics, clock, allocated };
}

function describe(coord: TransactionCoordinator, id: string) {
  const d = coord.describeTransactions([id])[0];
  assert.ok(d !== undefined);
  return d;
}

async function waitForState(coord: TransactionCoordinator, id: string, state: string): Promise<void> {
  await waitFor(() => describe(coord, id).transactionState === state, `${id} to reach ${state}`);
}

/** InitProducerId, then AddPartitionsToTxn: an ongoing transaction. */
async function ongoing(s: Setup, id: string, partitions: TopicPartition[] = [TP0, TP1]) {
  const p = await s.coord.initProducerId(id, TIMEOUT, -1n, -1);
  await s.coord.addPartitions(id, p.producerId, p.producerEpoch, partitions);
  return p;
}

test('InitProducerId gives a new transactional id a producer id at epoch 0; again, epoch 1 fences the old instance', async (t) => {
  const s = await setup(t);
  const first = await s.coord.initProducerId('tx', TIMEOUT, -1n, -1);
  assert.deepEqual(first, { producerId: 1000n, producerEpoch: 0 });
  const second = await s.coord.initProducerId('tx', TIMEOUT, -1n, -1);
  assert.deepEqual(second, { producerId: 1000n, producerEpoch: 1 });
  assert.deepEqual(s.allocated, [1000n], 'one producer id per transactional id');
  // The old instance is fenced.
  await assert.rejects(s.coord.addPartitions('tx', 1000n, 0, [TP0]), code(ErrorCode.PRODUCER_FENCED));
  await assert.rejects(s.coord.endTxn('tx', 1000n, 0, false), code(ErrorCode.PRODUCER_FENCED));
  // Both transitions were written (acks=all) as Empty records at the new epoch.
  const recs = s.log.records();
  assert.equal(recs.length, 2);
  assert.deepEqual(
    recs.map((r) => [r.transactionalId, r.value?.producerId, r.value?.producerEpoch, r.value?.state]),
    [
      ['tx', 1000n, 0, S.Empty],
      ['tx', 1000n, 1, S.Empty],
    ],
  );
  assert.equal(recs[0]?.value?.txnTimeoutMs, TIMEOUT);
  assert.ok(s.log.acks.every((a) => a === -1));
  // Another transactional id gets another producer id.
  assert.deepEqual(await s.coord.initProducerId('other', TIMEOUT, -1n, -1), { producerId: 1001n, producerEpoch: 0 });
});

test('a commit: Ongoing, PrepareCommit, markers stamped with the coordinator epoch, then CompleteCommit', async (t) => {
  const s = await setup(t, { topics: new Topics(true, 7) });
  const p = await s.coord.initProducerId('tx', TIMEOUT, -1n, -1);
  s.clock.now = 2000;
  await s.coord.addPartitions('tx', p.producerId, p.producerEpoch, [TP0]);
  s.clock.now = 2500;
  await s.coord.addPartitions('tx', p.producerId, p.producerEpoch, [TP1, TP2]);
  const before = s.log.records().length;
  await s.coord.addPartitions('tx', p.producerId, p.producerEpoch, [TP0, TP2]);
  assert.equal(s.log.records().length, before, 'partitions already in the transaction write nothing');
  const d = describe(s.coord, 'tx');
  assert.equal(d.transactionState, 'Ongoing');
  assert.equal(d.transactionStartTimeMs, 2000n, 'the first partition starts the clock');
  assert.deepEqual(d.topics, [
    { topic: 'orders', partitions: [0, 1] },
    { topic: 'payments', partitions: [3] },
  ]);

  s.clock.now = 3000;
  await s.coord.endTxn('tx', p.producerId, p.producerEpoch, true);
  await waitForState(s.coord, 'tx', 'CompleteCommit');
  assert.equal(s.markers.calls.length, 1);
  assert.deepEqual(s.markers.calls[0], {
    marker: { producerId: 1000n, producerEpoch: 0, coordinatorEpoch: 7, commit: true },
    partitions: [TP0, TP1, TP2],
  });
  assert.deepEqual(s.log.states('tx'), [S.Empty, S.Ongoing, S.Ongoing, S.PrepareCommit, S.CompleteCommit]);
  const recs = s.log.records();
  const prepare = recs[3]?.value;
  assert.ok(prepare);
  assert.deepEqual(prepare.topicPartitions, [TP0, TP1, TP2]);
  assert.equal(prepare.txnStartTimestamp, 2000n);
  assert.equal(prepare.txnLastUpdateTimestamp, 3000n);
  const complete = recs[4]?.value;
  assert.ok(complete);
  assert.deepEqual(complete.topicPartitions, []);
  assert.equal(complete.producerEpoch, 0);
  assert.equal(describe(s.coord, 'tx').topics.length, 0);

  // The next transaction starts from CompleteCommit.
  s.clock.now = 4000;
  await s.coord.addPartitions('tx', p.producerId, p.producerEpoch, [TP2]);
  assert.equal(describe(s.coord, 'tx').transactionStartTimeMs, 4000n);
});

test('an abort: PrepareAbort, abort markers, CompleteAbort', async (t) => {
  const s = await setup(t);
  const p = await ongoing(s, 'tx');
  await s.coord.endTxn('tx', p.producerId, p.producerEpoch, false);
  await waitForState(s.coord, 'tx', 'CompleteAbort');
  assert.deepEqual(s.markers.calls, [
    { marker: { producerId: 1000n, producerEpoch: 0, coordinatorEpoch: 0, commit: false }, partitions: [TP0, TP1] },
  ]);
  assert.deepEqual(s.log.states('tx'), [S.Empty, S.Ongoing, S.PrepareAbort, S.CompleteAbort]);
});

test('EndTxn retries: the same result again is fine, the other one is INVALID_TXN_STATE; nothing to end is INVALID_TXN_STATE', async (t) => {
  const s = await setup(t);
  const p = await s.coord.initProducerId('tx', TIMEOUT, -1n, -1);
  await assert.rejects(s.coord.endTxn('tx', p.producerId, 0, true), code(ErrorCode.INVALID_TXN_STATE), 'Empty');
  await assert.rejects(s.coord.endTxn('tx', p.producerId, 0, false), code(ErrorCode.INVALID_TXN_STATE), 'Empty');
  await s.coord.addPartitions('tx', p.producerId, 0, [TP0]);
  await s.coord.endTxn('tx', p.producerId, 0, true);
  await waitForState(s.coord, 'tx', 'CompleteCommit');
  const written = s.log.records().length;
  await s.coord.endTxn('tx', p.producerId, 0, true); // a retry of the commit
  await assert.rejects(s.coord.endTxn('tx', p.producerId, 0, false), code(ErrorCode.INVALID_TXN_STATE));
  assert.equal(s.log.records().length, written, 'a retry writes nothing');
  assert.equal(s.markers.calls.length, 1, 'a retry sends no markers');

  await s.coord.addPartitions('tx', p.producerId, 0, [TP0]);
  await s.coord.endTxn('tx', p.producerId, 0, false);
  await waitForState(s.coord, 'tx', 'CompleteAbort');
  await s.coord.endTxn('tx', p.producerId, 0, false);
  await assert.rejects(s.coord.endTxn('tx', p.producerId, 0, true), code(ErrorCode.INVALID_TXN_STATE));
});

test('while the markers are being written: the same EndTxn is CONCURRENT_TRANSACTIONS, the other INVALID_TXN_STATE; the next AddPartitionsToTxn waits for them', async (t) => {
  const s = await setup(t);
  const gate = deferred();
  s.markers.before = () => gate.promise;
  const p = await ongoing(s, 'tx');
  await s.coord.endTxn('tx', p.producerId, 0, true);
  assert.equal(describe(s.coord, 'tx').transactionState, 'PrepareCommit');
  await waitFor(() => s.markers.calls.length === 1, 'the markers to be sent');
  await assert.rejects(s.coord.endTxn('tx', p.producerId, 0, true), code(ErrorCode.CONCURRENT_TRANSACTIONS));
  await assert.rejects(s.coord.endTxn('tx', p.producerId, 0, false), code(ErrorCode.INVALID_TXN_STATE));
  let added = false;
  const adding = s.coord.addPartitions('tx', p.producerId, 0, [TP2]).then(() => {
    added = true;
  });
  await tick();
  assert.equal(added, false, 'waits for the markers');
  gate.resolve();
  await adding;
  assert.equal(describe(s.coord, 'tx').transactionState, 'Ongoing');
  assert.deepEqual(s.log.states('tx'), [S.Empty, S.Ongoing, S.PrepareCommit, S.CompleteCommit, S.Ongoing]);
});

test('EndTxn and AddPartitionsToTxn: another epoch is PRODUCER_FENCED, another producer id INVALID_PRODUCER_ID_MAPPING', async (t) => {
  const s = await setup(t);
  await s.coord.initProducerId('tx', TIMEOUT, -1n, -1);
  const p = await ongoing(s, 'tx'); // epoch 1
  assert.equal(p.producerEpoch, 1);
  await assert.rejects(s.coord.endTxn('tx', p.producerId, 0, true), code(ErrorCode.PRODUCER_FENCED));
  await assert.rejects(s.coord.endTxn('tx', p.producerId, 2, true), code(ErrorCode.PRODUCER_FENCED));
  await assert.rejects(s.coord.endTxn('tx', 4242n, 1, true), code(ErrorCode.INVALID_PRODUCER_ID_MAPPING));
  await assert.rejects(s.coord.endTxn('unknown', p.producerId, 1, true), code(ErrorCode.INVALID_PRODUCER_ID_MAPPING));
  await assert.rejects(s.coord.addPartitions('tx', p.producerId, 0, [TP2]), code(ErrorCode.PRODUCER_FENCED));
  await assert.rejects(s.coord.addPartitions('tx', 4242n, 1, [TP2]), code(ErrorCode.INVALID_PRODUCER_ID_MAPPING));
  await assert.rejects(s.coord.addPartitions('nope', 4242n, 0, [TP2]), code(ErrorCode.INVALID_PRODUCER_ID_MAPPING));
  assert.equal(describe(s.coord, 'tx').transactionState, 'Ongoing', 'nothing changed');
  assert.deepEqual(s.markers.calls, []);
});

test('InitProducerId during an ongoing transaction bumps the epoch, aborts it with the bumped epoch and answers CONCURRENT_TRANSACTIONS; the retry gets a higher epoch', async (t) => {
  const s = await setup(t);
  const p = await ongoing(s, 'tx');
  await assert.rejects(s.coord.initProducerId('tx', TIMEOUT, -1n, -1), code(ErrorCode.CONCURRENT_TRANSACTIONS));
  await waitFor(() => s.markers.calls.length === 1, 'the abort markers');
  assert.deepEqual(s.markers.calls[0], {
    marker: { producerId: 1000n, producerEpoch: 1, coordinatorEpoch: 0, commit: false },
    partitions: [TP0, TP1],
  });
  // The old producer is fenced at once.
  await assert.rejects(s.coord.endTxn('tx', p.producerId, 0, true), code(ErrorCode.PRODUCER_FENCED));
  const again = await s.coord.initProducerId('tx', TIMEOUT, -1n, -1);
  assert.equal(again.producerId, 1000n);
  assert.ok(again.producerEpoch > 1, `epoch ${again.producerEpoch}`);
  assert.equal(again.producerEpoch, 2);
  const recs = s.log.records().filter((r) => r.transactionalId === 'tx');
  assert.deepEqual(
    recs.map((r) => [r.value?.state, r.value?.producerEpoch]),
    [
      [S.Empty, 0],
      [S.Ongoing, 0],
      [S.PrepareAbort, 1],
      [S.CompleteAbort, 1],
      [S.Empty, 2],
    ],
  );
  assert.ok(!recs.some((r) => r.value?.state === S.PrepareEpochFence), 'PrepareEpochFence is never written');
  assert.deepEqual(s.allocated, [1000n]);
});

test('markers are retried until written (retriable codes, a failed call); only the partitions still missing one are sent again', async (t) => {
  const s = await setup(t);
  s.markers.respond = (tp, call) => {
    if (call === 2) throw new Error('connection reset');
    if (tp === TP1 || (tp.topic === TP1.topic && tp.partition === TP1.partition)) return ErrorCode.NONE;
    if (call === 1) return ErrorCode.NOT_LEADER_OR_FOLLOWER;
    if (call === 3) return ErrorCode.NOT_ENOUGH_REPLICAS;
    return ErrorCode.NONE;
  };
  const p = await ongoing(s, 'tx');
  await s.coord.endTxn('tx', p.producerId, 0, true);
  await waitForState(s.coord, 'tx', 'CompleteCommit');
  assert.deepEqual(
    s.markers.calls.map((c) => c.partitions),
    [[TP0, TP1], [TP0], [TP0], [TP0]],
  );
  assert.ok(s.markers.calls.every((c) => c.marker.commit && c.marker.producerEpoch === 0));
  assert.deepEqual(s.log.states('tx'), [S.Empty, S.Ongoing, S.PrepareCommit, S.CompleteCommit]);
});

test('UNKNOWN_TOPIC_OR_PARTITION (the topic was deleted) drops the partition from the markers to write', async (t) => {
  const s = await setup(t);
  s.markers.respond = (tp) => (tp.partition === 0 ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION : ErrorCode.NONE);
  const p = await ongoing(s, 'tx');
  await s.coord.endTxn('tx', p.producerId, 0, false);
  await waitForState(s.coord, 'tx', 'CompleteAbort');
  assert.equal(s.markers.calls.length, 1);
});

test('the CompleteCommit write is retried when it fails', async (t) => {
  const s = await setup(t);
  const p = await ongoing(s, 'tx');
  let failures = 0;
  s.log.beforeAppend = () => {
    if (describe(s.coord, 'tx').transactionState === 'PrepareCommit' && failures < 2) {
      failures++;
      throw new KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS);
    }
  };
  await s.coord.endTxn('tx', p.producerId, 0, true);
  await waitForState(s.coord, 'tx', 'CompleteCommit');
  assert.equal(failures, 2);
  assert.equal(s.markers.calls.length, 1, 'the markers are not sent again');
  assert.deepEqual(s.log.states('tx'), [S.Empty, S.Ongoing, S.PrepareCommit, S.CompleteCommit]);
});

test('a new coordinator (higher leader epoch) loading a PrepareCommit completes it with markers stamped with its epoch', async (t) => {
  const log = new MemLog();
  const failing = new Markers();
  failing.respond = () => ErrorCode.NOT_LEADER_OR_FOLLOWER;
  const a = await setup(t, { log, markers: failing, electAt: 2 });
  const p = await ongoing(a, 'tx', [TP0, TP2]);
  await ongoing(a, 'idle', [TP1]); // an ongoing transaction: loaded as such, no markers
  await a.coord.initProducerId('fresh', TIMEOUT, -1n, -1);
  await a.coord.endTxn('tx', p.producerId, 0, true);
  await waitFor(() => failing.calls.length >= 1, 'the first marker attempt');
  assert.equal(failing.calls[0]?.marker.coordinatorEpoch, 2);
  // The partition leaves this broker: its requests now answer NOT_COORDINATOR and its markers stop.
  a.coord.onResignation(0, 3);
  await assert.rejects(a.coord.initProducerId('tx', TIMEOUT, -1n, -1), code(ErrorCode.NOT_COORDINATOR));
  assert.equal(a.coord.verifyPartition('tx', p.producerId, 0, TP0), ErrorCode.NOT_COORDINATOR);
  assert.equal(describe(a.coord, 'tx').errorCode, ErrorCode.NOT_COORDINATOR);
  await new Promise((r) => setTimeout(r, 150));
  const aCalls = failing.calls.length;

  const b = await setup(t, { log, electAt: 3, nextProducerId: { next: 5000n } });
  await waitForState(b.coord, 'tx', 'CompleteCommit');
  assert.deepEqual(b.markers.calls, [
    { marker: { producerId: 1000n, producerEpoch: 0, coordinatorEpoch: 3, commit: true }, partitions: [TP0, TP2] },
  ]);
  assert.deepEqual(log.states('tx'), [S.Empty, S.Ongoing, S.PrepareCommit, S.CompleteCommit]);
  const idle = describe(b.coord, 'idle');
  assert.equal(idle.transactionState, 'Ongoing');
  assert.deepEqual(idle.topics, [{ topic: 'orders', partitions: [1] }]);
  assert.equal(idle.producerId, 1001n);
  const fresh = describe(b.coord, 'fresh');
  assert.deepEqual([fresh.transactionState, fresh.producerId, fresh.producerEpoch], ['Empty', 1002n, 0]);
  // The loaded producer keeps going on the new coordinator.
  await b.coord.addPartitions('tx', p.producerId, 0, [TP1]);
  assert.deepEqual(b.allocated, []);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(failing.calls.length, aCalls, 'the deposed coordinator stopped sending markers');

  // A third coordinator loading everything sends nothing for completed or ongoing transactions.
  const c = await setup(t, { log, electAt: 4 });
  await tick();
  assert.deepEqual(c.markers.calls, []);
  assert.equal(describe(c.coord, 'tx').transactionState, 'Ongoing');
});

test('a newer election replaces the shard: the older one never sends markers', async (t) => {
  const log = new MemLog();
  const a = await setup(t, { log, electAt: 1 });
  const p = await ongoing(a, 'tx');
  a.markers.hangForever();
  await a.coord.endTxn('tx', p.producerId, 0, false);
  a.coord.onResignation(0);
  const gate = deferred();
  log.beforeRead = () => gate.promise;
  const b = await setup(t, { log, noElection: true });
  const first = b.coord.onElection(0, 4);
  assert.equal(b.coord.loaded, false);
  await assert.rejects(b.coord.initProducerId('tx', TIMEOUT, -1n, -1), code(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS));
  assert.equal(b.coord.verifyPartition('tx', p.producerId, 0, TP0), ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  assert.equal(b.coord.listTransactions([], [], -1n).errorCode, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  const second = b.coord.onElection(0, 5);
  gate.resolve();
  await Promise.all([first, second]);
  assert.equal(b.coord.loaded, true);
  await waitForState(b.coord, 'tx', 'CompleteAbort');
  assert.deepEqual(
    b.markers.calls.map((c) => c.marker.coordinatorEpoch),
    [5],
  );
});

test('abortTimedOutTransactions fences and aborts an ongoing transaction past its timeout, not one within it', async (t) => {
  const s = await setup(t);
  const p = await s.coord.initProducerId('slow', 1000, -1n, -1);
  s.clock.now = 5000;
  await s.coord.addPartitions('slow', p.producerId, 0, [TP0]);
  const q = await s.coord.initProducerId('quick', 10_000, -1n, -1);
  await s.coord.addPartitions('quick', q.producerId, 0, [TP1]);
  s.clock.now = 5999;
  s.coord.abortTimedOutTransactions();
  await tick();
  assert.deepEqual(s.markers.calls, []);
  assert.equal(describe(s.coord, 'slow').transactionState, 'Ongoing');
  s.clock.now = 6001;
  s.coord.abortTimedOutTransactions();
  await waitForState(s.coord, 'slow', 'CompleteAbort');
  assert.deepEqual(s.markers.calls, [
    { marker: { producerId: p.producerId, producerEpoch: 1, coordinatorEpoch: 0, commit: false }, partitions: [TP0] },
  ]);
  assert.equal(describe(s.coord, 'slow').producerEpoch, 1);
  assert.equal(describe(s.coord, 'quick').transactionState, 'Ongoing');
  // The timed-out producer is fenced.
  await assert.rejects(s.coord.endTxn('slow', p.producerId, 0, true), code(ErrorCode.PRODUCER_FENCED));
  await assert.rejects(s.coord.addPartitions('slow', p.producerId, 0, [TP0]), code(ErrorCode.PRODUCER_FENCED));
  // A new instance gets the next epoch.
  assert.deepEqual(await s.coord.initProducerId('slow', 1000, -1n, -1), { producerId: p.producerId, producerEpoch: 2 });
});

test("a transaction exactly at its timeout is not aborted yet (Kafka's txnStartTimestamp + txnTimeoutMs < now)", async (t) => {
  const s = await setup(t);
  const p = await s.coord.initProducerId('edge', 1000, -1n, -1);
  s.clock.now = 5000;
  await s.coord.addPartitions('edge', p.producerId, 0, [TP0]);
  s.clock.now = 6000;
  s.coord.abortTimedOutTransactions();
  await tick();
  assert.equal(describe(s.coord, 'edge').transactionState, 'Ongoing');
});

test('removeExpiredTransactionalIds writes a tombstone for an idle id and forgets it; ongoing ones stay', async (t) => {
  const s = await setup(t, { config: { transactionalIdExpirationMs: 10_000 } });
  const idle = await s.coord.initProducerId('idle', TIMEOUT, -1n, -1); // last update 1000
  await ongoing(s, 'busy');
  s.clock.now = 10_999;
  s.coord.removeExpiredTransactionalIds();
  await tick();
  assert.equal(describe(s.coord, 'idle').errorCode, ErrorCode.NONE);
  s.clock.now = 11_000;
  s.coord.removeExpiredTransactionalIds();
  await waitFor(() => describe(s.coord, 'idle').errorCode === ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, 'the expiry');
  assert.deepEqual(s.log.states('idle'), [S.Empty, null], 'a tombstone');
  assert.equal(describe(s.coord, 'busy').transactionState, 'Ongoing', 'an ongoing transaction never expires');
  assert.deepEqual(
    s.coord.listTransactions([], [], -1n).transactionStates.map((x) => x.transactionalId),
    ['busy'],
  );
  await assert.rejects(s.coord.endTxn('idle', idle.producerId, 0, false), code(ErrorCode.INVALID_PRODUCER_ID_MAPPING));
  // A reload replays the tombstone.
  const b = await setup(t, { log: s.log, electAt: 1 });
  assert.equal(describe(b.coord, 'idle').errorCode, ErrorCode.TRANSACTIONAL_ID_NOT_FOUND);
  assert.equal(describe(b.coord, 'busy').transactionState, 'Ongoing');
  // The id starts afresh with a new producer id.
  const again = await s.coord.initProducerId('idle', TIMEOUT, -1n, -1);
  assert.deepEqual(again, { producerId: 1002n, producerEpoch: 0 });
});

test('verifyPartition (KIP-890 part 1) codes', async (t) => {
  const none = await setup(t, { noElection: true });
  assert.equal(none.coord.verifyPartition('tx', 1n, 0, TP0), ErrorCode.NOT_COORDINATOR);
  const s = await setup(t);
  assert.equal(s.coord.verifyPartition('tx', 1000n, 0, TP0), ErrorCode.INVALID_PRODUCER_ID_MAPPING, 'unknown id');
  const p = await s.coord.initProducerId('tx', TIMEOUT, -1n, -1);
  assert.equal(s.coord.verifyPartition('tx', p.producerId, 0, TP0), ErrorCode.INVALID_TXN_STATE, 'no transaction');
  await s.coord.addPartitions('tx', p.producerId, 0, [TP0]);
  assert.equal(s.coord.verifyPartition('tx', p.producerId, 0, TP0), ErrorCode.NONE);
  assert.equal(s.coord.verifyPartition('tx', p.producerId, 0, TP1), ErrorCode.INVALID_TXN_STATE, 'not added');
  assert.equal(s.coord.verifyPartition('tx', p.producerId, 1, TP0), ErrorCode.PRODUCER_FENCED);
  assert.equal(s.coord.verifyPartition('tx', 77n, 0, TP0), ErrorCode.INVALID_PRODUCER_ID_MAPPING);
  await s.coord.endTxn('tx', p.producerId, 0, true);
  await waitForState(s.coord, 'tx', 'CompleteCommit');
  assert.equal(s.coord.verifyPartition('tx', p.producerId, 0, TP0), ErrorCode.INVALID_TXN_STATE, 'completed');
});

test("verifyPartition during PrepareCommit answers CONCURRENT_TRANSACTIONS (Kafka's handleVerifyPartitionsInTransaction)", async (t) => {
  const s = await setup(t);
  s.markers.hangForever();
  const p = await ongoing(s, 'tx');
  await s.coord.endTxn('tx', p.producerId, 0, true);
  assert.equal(s.coord.verifyPartition('tx', p.producerId, 0, TP0), ErrorCode.CONCURRENT_TRANSACTIONS);
});

test('describeTransactions', async (t) => {
  const s = await setup(t);
  s.clock.now = 1234;
  const p = await s.coord.initProducerId('tx', 30_000, -1n, -1);
  s.clock.now = 2000;
  await s.coord.addPartitions('tx', p.producerId, 0, [TP2, TP0]);
  const [d, missing] = s.coord.describeTransactions(['tx', 'missing']);
  assert.deepEqual(d, {
    errorCode: ErrorCode.NONE,
    transactionalId: 'tx',
    transactionState: 'Ongoing',
    transactionTimeoutMs: 30_000,
    transactionStartTimeMs: 2000n,
    producerId: 1000n,
    producerEpoch: 0,
    topics: [
      { topic: 'payments', partitions: [3] },
      { topic: 'orders', partitions: [0] },
    ],
  });
  assert.deepEqual(missing, {
    errorCode: ErrorCode.TRANSACTIONAL_ID_NOT_FOUND,
    transactionalId: 'missing',
    transactionState: '',
    transactionTimeoutMs: 0,
    transactionStartTimeMs: -1n,
    producerId: -1n,
    producerEpoch: -1,
    topics: [],
  });
  await s.coord.initProducerId('empty', 30_000, -1n, -1);
  const e = describe(s.coord, 'empty');
  assert.equal(e.transactionState, 'Empty');
  assert.equal(e.transactionStartTimeMs, -1n);
});

test('listTransactions: state, producer id and duration filters; unknown state filters', async (t) => {
  const s = await setup(t);
  await ongoing(s, 'a'); // 1000, Ongoing since 1000
  await s.coord.initProducerId('b', TIMEOUT, -1n, -1); // 1001, Empty
  const c = await ongoing(s, 'c'); // 1002
  await s.coord.endTxn('c', c.producerId, 0, true);
  await waitForState(s.coord, 'c', 'CompleteCommit');
  const ids = (r: ReturnType<TransactionCoordinator['listTransactions']>) =>
    r.transactionStates.map((x) => `${x.transactionalId}:${x.producerId}:${x.transactionState}`).sort();

  const all = s.coord.listTransactions([], [], -1n);
  assert.equal(all.errorCode, ErrorCode.NONE);
  assert.deepEqual(all.unknownStateFilters, []);
  assert.deepEqual(ids(all), ['a:1000:Ongoing', 'b:1001:Empty', 'c:1002:CompleteCommit']);
  assert.deepEqual(ids(s.coord.listTransactions(['Ongoing'], [], -1n)), ['a:1000:Ongoing']);
  assert.deepEqual(ids(s.coord.listTransactions(['Empty', 'CompleteCommit'], [], -1n)), [
    'b:1001:Empty',
    'c:1002:CompleteCommit',
  ]);
  const bogus = s.coord.listTransactions(['Bogus'], [], -1n);
  assert.deepEqual(bogus.unknownStateFilters, ['Bogus']);
  assert.deepEqual(ids(bogus), [], 'only unknown states match nothing');
  const mixed = s.coord.listTransactions(['Ongoing', 'ongoing'], [], -1n);
  assert.deepEqual(mixed.unknownStateFilters, ['ongoing'], 'state names are case-sensitive');
  assert.deepEqual(ids(mixed), ['a:1000:Ongoing']);
  assert.deepEqual(ids(s.coord.listTransactions([], [1001n, 9n], -1n)), ['b:1001:Empty']);
  assert.deepEqual(ids(s.coord.listTransactions(['Ongoing'], [1001n], -1n)), []);
  // Duration (KIP-994): running longer than the filter.
  s.clock.now = 5000;
  assert.deepEqual(ids(s.coord.listTransactions(['Ongoing'], [], 3999n)), ['a:1000:Ongoing']);
  assert.deepEqual(ids(s.coord.listTransactions(['Ongoing'], [], 4000n)), []);
});

test('KIP-360: a producer bumps its own epoch with the expected epoch; a lost response is answered again; others are fenced', async (t) => {
  const s = await setup(t);
  const p = await s.coord.initProducerId('tx', TIMEOUT, -1n, -1);
  const bumped = await s.coord.initProducerId('tx', TIMEOUT, p.producerId, 0);
  assert.deepEqual(bumped, { producerId: p.producerId, producerEpoch: 1 });
  // The response was lost: the retry with the same expected epoch gets the same epoch.
  assert.deepEqual(await s.coord.initProducerId('tx', TIMEOUT, p.producerId, 0), bumped);
  assert.deepEqual(await s.coord.initProducerId('tx', TIMEOUT, p.producerId, 1), {
    producerId: p.producerId,
    producerEpoch: 2,
  });
  await assert.rejects(s.coord.initProducerId('tx', TIMEOUT, p.producerId, 7), code(ErrorCode.PRODUCER_FENCED));
  await assert.rejects(s.coord.initProducerId('tx', TIMEOUT, 999n, 2), code(ErrorCode.PRODUCER_FENCED));
  // A bump after an aborted transaction (the producer's recovery from an abortable error).
  await s.coord.addPartitions('tx', p.producerId, 2, [TP0]);
  await s.coord.endTxn('tx', p.producerId, 2, false);
  await waitForState(s.coord, 'tx', 'CompleteAbort');
  assert.deepEqual(await s.coord.initProducerId('tx', TIMEOUT, p.producerId, 2), {
    producerId: p.producerId,
    producerEpoch: 3,
  });
  assert.deepEqual(s.allocated, [1000n]);
  // A new instance fences the KIP-360 retry path: the last epoch is forgotten.
  assert.deepEqual(await s.coord.initProducerId('tx', TIMEOUT, -1n, -1), {
    producerId: p.producerId,
    producerEpoch: 4,
  });
  await assert.rejects(s.coord.initProducerId('tx', TIMEOUT, p.producerId, 3), code(ErrorCode.PRODUCER_FENCED));
});

function seeded(id: string, producerId: bigint, epoch: number, state: TransactionState, tps: TopicPartition[] = []) {
  return {
    transactionalId: id,
    value: {
      producerId,
      previousProducerId: -1n,
      nextProducerId: -1n,
      producerEpoch: epoch,
      txnTimeoutMs: TIMEOUT,
      state,
      topicPartitions: tps,
      txnStartTimestamp: tps.length > 0 || state === S.CompleteCommit ? 500n : -1n,
      txnLastUpdateTimestamp: 500n,
      clientTransactionVersion: 0,
    },
  };
}

test('an exhausted epoch moves the transactional id to a new producer id at epoch 0', async (t) => {
  const log = new MemLog();
  log.seed(seeded('a', 50n, 32765, S.Empty));
  log.seed(seeded('b', 60n, 32766, S.CompleteCommit));
  const s = await setup(t, { log });
  // 32765 is not exhausted: one more bump on the same producer id.
  assert.deepEqual(await s.coord.initProducerId('a', TIMEOUT, -1n, -1), { producerId: 50n, producerEpoch: 32766 });
  assert.deepEqual(s.allocated, []);
  assert.deepEqual(await s.coord.initProducerId('a', TIMEOUT, -1n, -1), { producerId: 1000n, producerEpoch: 0 });
  const last = log.records().at(-1);
  assert.equal(last?.value?.producerId, 1000n);
  assert.equal(last?.value?.producerEpoch, 0);
  // KIP-360 with the exhausted epoch: rotated, and a retry (old producer id, old epoch) gets the same answer.
  const rotated = await s.coord.initProducerId('b', TIMEOUT, 60n, 32766);
  assert.deepEqual(rotated, { producerId: 1001n, producerEpoch: 0 });
  assert.deepEqual(await s.coord.initProducerId('b', TIMEOUT, 60n, 32766), rotated);
  assert.deepEqual(s.allocated, [1000n, 1001n]);
});

test('fencing an ongoing transaction at epoch 32766 aborts it at 32767, then the retry rotates the producer id', async (t) => {
  const log = new MemLog();
  log.seed(seeded('tx', 70n, 32766, S.Ongoing, [TP0]));
  const s = await setup(t, { log });
  await assert.rejects(s.coord.initProducerId('tx', TIMEOUT, -1n, -1), code(ErrorCode.CONCURRENT_TRANSACTIONS));
  await waitForState(s.coord, 'tx', 'CompleteAbort');
  assert.deepEqual(s.markers.calls[0]?.marker, {
    producerId: 70n,
    producerEpoch: 32767,
    coordinatorEpoch: 0,
    commit: false,
  });
  assert.deepEqual(await s.coord.initProducerId('tx', TIMEOUT, -1n, -1), { producerId: 1000n, producerEpoch: 0 });
});

test('a failed write changes nothing and answers the coordinator error Kafka maps it to; a retry succeeds', async (t) => {
  const s = await setup(t);
  const p = await s.coord.initProducerId('tx', TIMEOUT, -1n, -1);
  s.log.beforeAppend = () => {
    throw new KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS);
  };
  await assert.rejects(s.coord.addPartitions('tx', p.producerId, 0, [TP0]), code(ErrorCode.COORDINATOR_NOT_AVAILABLE));
  assert.equal(describe(s.coord, 'tx').transactionState, 'Empty');
  s.log.beforeAppend = () => {
    throw new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER);
  };
  await assert.rejects(s.coord.initProducerId('tx', TIMEOUT, -1n, -1), code(ErrorCode.NOT_COORDINATOR));
  assert.equal(describe(s.coord, 'tx').producerEpoch, 0);
  s.log.beforeAppend = () => {
    throw new Error('disk on fire');
  };
  await assert.rejects(s.coord.addPartitions('tx', p.producerId, 0, [TP0]), code(ErrorCode.UNKNOWN_SERVER_ERROR));
  s.log.beforeAppend = undefined;
  await s.coord.addPartitions('tx', p.producerId, 0, [TP0]);
  s.log.beforeAppend = () => {
    throw new KafkaError(ErrorCode.REQUEST_TIMED_OUT);
  };
  await assert.rejects(s.coord.endTxn('tx', p.producerId, 0, true), code(ErrorCode.COORDINATOR_NOT_AVAILABLE));
  assert.equal(describe(s.coord, 'tx').transactionState, 'Ongoing');
  assert.deepEqual(s.markers.calls, []);
  s.log.beforeAppend = undefined;
  await s.coord.endTxn('tx', p.producerId, 0, true);
  await waitForState(s.coord, 'tx', 'CompleteCommit');
  assert.deepEqual(s.log.states('tx'), [S.Empty, S.Ongoing, S.PrepareCommit, S.CompleteCommit]);
});

test("a hanging write queues the transactional id's next request behind it; resigning meanwhile answers NOT_COORDINATOR", async (t) => {
  const s = await setup(t);
  const p = await s.coord.initProducerId('tx', TIMEOUT, -1n, -1);
  const gate = deferred();
  s.log.beforeAppend = () => gate.promise;
  const adding = s.coord.addPartitions('tx', p.producerId, 0, [TP0]);
  const ending = s.coord.endTxn('tx', p.producerId, 0, true);
  await tick();
  assert.equal(describe(s.coord, 'tx').transactionState, 'Empty', 'not applied before it is written');
  // Another transactional id is not held up... until its own write, which hangs too.
  s.log.beforeAppend = undefined;
  await s.coord.initProducerId('other', TIMEOUT, -1n, -1);
  s.log.beforeAppend = () => gate.promise;
  gate.resolve();
  await adding;
  await ending; // ran after the add, so it found the transaction ongoing
  s.log.beforeAppend = undefined;
  await waitForState(s.coord, 'tx', 'CompleteCommit');

  const hang = deferred();
  s.log.beforeAppend = () => hang.promise;
  const adding2 = s.coord.addPartitions('tx', p.producerId, 0, [TP1]);
  await tick();
  s.coord.onResignation(0);
  hang.resolve();
  await assert.rejects(adding2, code(ErrorCode.NOT_COORDINATOR));
});

test('ensureTopic creates __transaction_state with Kafka\'s settings and loads it ("all" ownership)', async (t) => {
  const topics = new Topics(false);
  const s = await setup(t, {
    topics,
    noElection: true,
    config: { numPartitions: 3, minInsyncReplicas: 2, segmentBytes: 1 << 20 },
  });
  s.coord.start();
  await assert.rejects(s.coord.initProducerId('tx', TIMEOUT, -1n, -1), code(ErrorCode.NOT_COORDINATOR));
  const [a, b] = await Promise.all([s.coord.ensureTopic(), s.coord.ensureTopic()]);
  assert.equal(a, b);
  assert.equal(topics.created.length, 1);
  assert.deepEqual(topics.created[0], {
    name: TRANSACTION_STATE_TOPIC,
    partitions: 3,
    rf: 1,
    configs: {
      'cleanup.policy': 'compact',
      'compression.type': 'uncompressed',
      'min.insync.replicas': '1',
      'segment.bytes': String(1 << 20),
      'unclean.leader.election.enable': 'false',
    },
  });
  await waitFor(() => s.coord.loaded, 'the load');
  for (const id of ['tx', 'other', 'third', 'x']) {
    const p = await s.coord.initProducerId(id, TIMEOUT, -1n, -1);
    assert.equal(p.producerEpoch, 0);
    assert.equal(s.log.records(s.coord.partitionFor(id)).filter((r) => r.transactionalId === id).length, 1);
  }
});

test('records written to __transaction_state decode as Kafka lays them out', async (t) => {
  const s = await setup(t);
  s.clock.now = 10_000;
  const p = await s.coord.initProducerId('tx', 45_000, -1n, -1);
  s.clock.now = 11_000;
  await s.coord.addPartitions('tx', p.producerId, 0, [TP0, TP2]);
  const recs = s.log.records();
  assert.deepEqual(recs, [
    {
      transactionalId: 'tx',
      value: {
        producerId: 1000n,
        previousProducerId: -1n,
        nextProducerId: -1n,
        producerEpoch: 0,
        txnTimeoutMs: 45_000,
        state: S.Empty,
        topicPartitions: [],
        txnStartTimestamp: -1n,
        txnLastUpdateTimestamp: 10_000n,
        clientTransactionVersion: 0,
      },
    },
    {
      transactionalId: 'tx',
      value: {
        producerId: 1000n,
        previousProducerId: -1n,
        nextProducerId: -1n,
        producerEpoch: 0,
        txnTimeoutMs: 45_000,
        state: S.Ongoing,
        topicPartitions: [TP0, TP2],
        txnStartTimestamp: 11_000n,
        txnLastUpdateTimestamp: 11_000n,
        clientTransactionVersion: 0,
      },
    },
  ]);
  // Each record is its own batch, timestamped with the coordinator's clock, not transactional.
  const batches = s.log.batches.get(0) ?? [];
  assert.equal(batches.length, 2);
  assert.equal(readBatchHeader(batches[1]!).producerId, -1n);
  assert.equal(decodeRecordsSync(batches[1]!)[0]?.timestamp, 11_000n);
});
