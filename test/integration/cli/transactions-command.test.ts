// `samsa transactions list|describe|describe-producers|find-hanging|abort` against a real broker
// and kafkajs transactional producers: an open transaction is listed and described as Ongoing
// with its partitions and its start offset, then CompleteCommit; an abandoned open transaction
// is not hanging while its coordinator still has it Ongoing with the partition, and `abort
// --start-offset` closes it by hand (the last stable offset reaches the high watermark; the
// coordinator still shows it Ongoing, as after Kafka's tool). Usage errors are one line, exit 2.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { hangingAmong, type OpenTransaction } from '../../../src/admin/transactions-command.ts';
import type { TransactionDescription } from '../../../src/admin/transactions-requests.ts';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import { KafkaClient } from '../../../src/network/kafka-client.ts';
import { randomTopic, runCli } from './helpers.ts';

const OVERRIDES = {
  'offsets.topic.num.partitions': '1',
  'transaction.state.log.num.partitions': '1',
  'group.initial.rebalance.delay.ms': '0',
};

interface Fixture {
  broker: RunningBroker;
  b: string[];
  kafka: Kafka;
  topic: string;
  /** Cleanups run last-registered first, before the broker closes. */
  defer: (fn: () => Promise<unknown>) => void;
}

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<Fixture> {
  const broker = await startBroker({ logLevel: 'silent', overrides: OVERRIDES });
  const cleanups: (() => Promise<unknown>)[] = [() => broker.close()];
  t.after(async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
  });
  const b = ['-b', broker.bootstrap];
  const topic = randomTopic('cli-txn');
  const created = await runCli(['topic', 'create', ...b, '--topic', topic, '--partitions', '2']);
  assert.equal(created.code, 0, created.stderr);
  // Three plain records first: the transaction on partition 0 starts at offset 3.
  const produced = await runCli(['produce', ...b, '--topic', topic, '--partition', '0'], 'a\nb\nc\n');
  assert.equal(produced.code, 0, produced.stderr);
  const kafka = new Kafka({
    clientId: 'cli-txn-test',
    brokers: [broker.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
  });
  return { broker, b, kafka, topic, defer: (fn) => cleanups.push(fn) };
}

async function transactionalProducer(f: Fixture, transactionalId: string): Promise<Producer> {
  const producer = f.kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: 60_000,
  });
  await producer.connect();
  f.defer(() => producer.disconnect());
  return producer;
}

async function json<T>(args: string[]): Promise<T> {
  const r = await runCli([...args, '--format', 'json']);
  assert.equal(r.code, 0, `samsa ${args.join(' ')}: ${r.stderr}`);
  assert.equal(r.stderr, '');
  return JSON.parse(r.stdout) as T;
}

interface ListJson {
  transactions: { transactionalId: string; producerId: number; state: string; coordinatorId: number }[];
}
interface DescribeJson {
  transactionalId: string;
  coordinatorId: number;
  state: string;
  producerId: number;
  producerEpoch: number;
  transactionTimeoutMs: number;
  transactionStartTimeMs: number | null;
  transactionDurationMs: number | null;
  partitions: { topic: string; partition: number }[];
}
interface ProducersJson {
  topic: string;
  partition: number;
  brokerId: number;
  producers: {
    producerId: number;
    producerEpoch: number;
    lastSequence: number;
    lastTimestamp: number;
    coordinatorEpoch: number | null;
    currentTxnStartOffset: number | null;
  }[];
}
interface HangingJson {
  hanging: { topic: string; partition: number; producerId: number; startOffset: number }[];
}

test('transactions list, describe, describe-producers: Ongoing, then CompleteCommit', async (t) => {
  const f = await setup(t);
  const { b, topic } = f;
  const nodeId = f.broker.config.nodeId;
  const transactionalId = randomTopic('cli-txn-id');
  const producer = await transactionalProducer(f, transactionalId);
  const before = Date.now();
  const txn = await producer.transaction();
  await txn.send({
    topic,
    messages: [
      { partition: 0, value: 'x' },
      { partition: 1, value: 'y' },
    ],
  });

  const listed = (await json<ListJson>(['transactions', 'list', ...b])).transactions.filter(
    (x) => x.transactionalId === transactionalId,
  );
  assert.equal(listed.length, 1);
  assert.equal(listed[0]!.state, 'Ongoing');
  assert.equal(listed[0]!.coordinatorId, nodeId);
  const producerId = listed[0]!.producerId;

  const text = await runCli(['transactions', 'list', ...b]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^TRANSACTIONAL-ID +PRODUCER-ID +STATE +COORDINATOR\n/);
  assert.match(text.stdout, new RegExp(`${transactionalId} +${producerId} +Ongoing +${nodeId}\\n`));

  // Filters: state, producer id, duration.
  const ids = async (args: string[]) =>
    (await json<ListJson>(['transactions', 'list', ...b, ...args])).transactions.map((x) => x.transactionalId);
  assert.deepEqual(await ids(['--state', 'Ongoing']), [transactionalId]);
  assert.deepEqual(await ids(['--state', 'CompleteCommit']), []);
  assert.deepEqual(await ids(['--producer-id', String(producerId)]), [transactionalId]);
  assert.deepEqual(await ids(['--producer-id', String(producerId + 1000)]), []);
  assert.deepEqual(await ids(['--duration-filter', '3600000']), []);
  const unknownState = await runCli(['transactions', 'list', ...b, '--state', 'Nonsense']);
  assert.equal(unknownState.code, 0, unknownState.stderr);
  assert.match(unknownState.stderr, /unknown state\(s\) ignored by the broker: Nonsense/);

  const described = await json<DescribeJson>(['transactions', 'describe', ...b, '--transactional-id', transactionalId]);
  assert.equal(described.state, 'Ongoing');
  assert.equal(described.coordinatorId, nodeId);
  assert.equal(described.producerId, producerId);
  assert.equal(described.transactionTimeoutMs, 60_000);
  assert.ok(described.transactionStartTimeMs !== null && described.transactionStartTimeMs >= before - 1000);
  assert.ok(described.transactionDurationMs !== null && described.transactionDurationMs >= 0);
  assert.deepEqual(described.partitions, [
    { topic, partition: 0 },
    { topic, partition: 1 },
  ]);
  const describedText = await runCli(['transactions', 'describe', ...b, '--transactional-id', transactionalId]);
  assert.equal(describedText.code, 0, describedText.stderr);
  assert.match(describedText.stdout, /^COORDINATOR +TRANSACTIONAL-ID +PRODUCER-ID .* PARTITIONS\n/);
  assert.ok(describedText.stdout.includes(`${topic}-0,${topic}-1`), describedText.stdout);

  const producers = await json<ProducersJson>([
    'transactions',
    'describe-producers',
    ...b,
    '--topic',
    topic,
    '--partition',
    '0',
  ]);
  assert.equal(producers.brokerId, nodeId);
  const mine = producers.producers.find((p) => p.producerId === producerId);
  assert.ok(mine !== undefined, JSON.stringify(producers));
  assert.equal(mine.currentTxnStartOffset, 3);
  assert.equal(mine.producerEpoch, described.producerEpoch);
  const producersText = await runCli([
    'transactions',
    'describe-producers',
    ...b,
    '--topic',
    topic,
    '--partition',
    '1',
  ]);
  assert.equal(producersText.code, 0, producersText.stderr);
  assert.match(producersText.stdout, /CURRENT-TRANSACTION-START-OFFSET\n/);
  assert.match(producersText.stdout, new RegExp(`^${producerId} .* 0\\n`, 'm'));

  // Not hanging: its coordinator has it Ongoing with both partitions.
  const hanging = await json<HangingJson>([
    'transactions',
    'find-hanging',
    ...b,
    '--topic',
    topic,
    '--max-transaction-timeout-ms',
    '0',
  ]);
  assert.deepEqual(hanging.hanging, []);

  await txn.commit();
  const committed = await json<DescribeJson>(['transactions', 'describe', ...b, '--transactional-id', transactionalId]);
  assert.equal(committed.state, 'CompleteCommit');
  assert.deepEqual(committed.partitions, []);
  assert.deepEqual(await ids(['--state', 'CompleteCommit']), [transactionalId]);
  const after = await json<ProducersJson>([
    'transactions',
    'describe-producers',
    ...b,
    '--topic',
    topic,
    '--partition',
    '0',
  ]);
  assert.equal(after.producers.find((p) => p.producerId === producerId)?.currentTxnStartOffset, null);
  assert.equal(after.producers.find((p) => p.producerId === producerId)?.coordinatorEpoch, 0);

  const unknown = await runCli(['transactions', 'describe', ...b, '--transactional-id', 'no-such-id']);
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stdout, '');
  assert.match(unknown.stderr, /^samsa transactions: transactional id 'no-such-id': TRANSACTIONAL_ID_NOT_FOUND.*\n$/);
});

/** The latest offset of one partition: the high watermark, or with read_committed the last stable offset. */
async function latestOffset(bootstrap: string, topic: string, partition: number, readCommitted: boolean) {
  const client = new KafkaClient({ bootstrap });
  try {
    const r = await client.request(ApiKey.ListOffsets, {
      replicaId: -1,
      isolationLevel: readCommitted ? 1 : 0,
      topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp: -1n }] }],
    });
    const p = r.topics[0]!.partitions[0]!;
    assert.equal(p.errorCode, 0);
    return p.offset;
  } finally {
    client.close();
  }
}

test('transactions find-hanging and abort: an abandoned open transaction aborted by hand', async (t) => {
  const f = await setup(t);
  const { b, topic } = f;
  const transactionalId = randomTopic('cli-txn-abandoned');
  const producer = await transactionalProducer(f, transactionalId);
  const txn = await producer.transaction();
  await txn.send({ topic, messages: [{ partition: 0, value: 'left open' }] });
  // Abandoned: the producer never ends it; its coordinator would time it out after 60 s.
  const producerId = (await json<ListJson>(['transactions', 'list', ...b, '--state', 'Ongoing'])).transactions[0]!
    .producerId;

  assert.equal(await latestOffset(f.broker.bootstrap, topic, 0, false), 4n);
  assert.equal(await latestOffset(f.broker.bootstrap, topic, 0, true), 3n, 'the open transaction holds the LSO');

  // The coordinator still has it Ongoing with partition 0: not hanging, whichever the scope.
  for (const scope of [
    ['--topic', topic],
    ['--topic', topic, '--partition', '0'],
    ['--broker-id', String(f.broker.config.nodeId)],
  ]) {
    const r = await json<HangingJson>([
      'transactions',
      'find-hanging',
      ...b,
      ...scope,
      '--max-transaction-timeout-ms',
      '0',
    ]);
    assert.deepEqual(r.hanging, [], scope.join(' '));
  }
  const text = await runCli(['transactions', 'find-hanging', ...b, '--topic', topic]);
  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.stdout.trim().split('\n').length, 1, 'the header only');
  assert.match(text.stdout, /^TOPIC +PARTITION +PRODUCER-ID +PRODUCER-EPOCH +COORDINATOR-EPOCH +START-OFFSET/);

  // No transaction starts at offset 2.
  const wrong = await runCli([
    'transactions',
    'abort',
    ...b,
    '--topic',
    topic,
    '--partition',
    '0',
    '--start-offset',
    '2',
  ]);
  assert.equal(wrong.code, 1);
  assert.equal(wrong.stdout, '');
  assert.equal(wrong.stderr.split('\n').length, 2, wrong.stderr);
  assert.match(wrong.stderr, new RegExp(`^samsa transactions: no open transaction starts at offset 2 on ${topic}-0`));

  const aborted = await json<{
    topic: string;
    partition: number;
    startOffset: number;
    producerId: number;
    producerEpoch: number;
    coordinatorEpoch: number;
  }>(['transactions', 'abort', ...b, '--topic', topic, '--partition', '0', '--start-offset', '3']);
  assert.equal(aborted.producerId, producerId);
  assert.equal(aborted.startOffset, 3);
  assert.equal(aborted.coordinatorEpoch, 0, 'no marker yet: coordinator epoch 0, as Kafka tool');

  // The abort marker took offset 4; the LSO reached the high watermark.
  assert.equal(await latestOffset(f.broker.bootstrap, topic, 0, false), 5n);
  assert.equal(await latestOffset(f.broker.bootstrap, topic, 0, true), 5n);
  const producers = await json<ProducersJson>([
    'transactions',
    'describe-producers',
    ...b,
    '--topic',
    topic,
    '--partition',
    '0',
  ]);
  assert.equal(producers.producers.find((p) => p.producerId === producerId)?.currentTxnStartOffset, null);
  // A manual abort leaves the coordinator's state alone: it still has the transaction Ongoing.
  const described = await json<DescribeJson>(['transactions', 'describe', ...b, '--transactional-id', transactionalId]);
  assert.equal(described.state, 'Ongoing');

  const again = await runCli([
    'transactions',
    'abort',
    ...b,
    '--topic',
    topic,
    '--partition',
    '0',
    '--start-offset',
    '3',
  ]);
  assert.equal(again.code, 1, 'nothing left to abort');
  const textAbort = await runCli([
    'transactions',
    'abort',
    ...b,
    '--topic',
    topic,
    '--partition',
    '7',
    '--start-offset',
    '3',
  ]);
  assert.equal(textAbort.code, 1);
  assert.match(textAbort.stderr, /^samsa transactions: topic '.*' has no partition 7 \(it has 2\)\n$/);
});

test('transactions usage errors: one line, exit code 2', async () => {
  const cases: [string[], RegExp][] = [
    [['transactions', 'frob'], /unknown action 'frob'/],
    [['transactions', 'describe'], /--transactional-id is required/],
    [['transactions', 'list', '--topic', 'x'], /--topic does not apply to 'transactions list'/],
    [['transactions', 'find-hanging'], /--topic or --broker-id is required/],
    [['transactions', 'find-hanging', '--broker-id', '1', '--partition', '0'], /--partition needs --topic/],
    [['transactions', 'describe-producers', '--topic', 't'], /--partition is required/],
    [['transactions', 'abort', '--topic', 't', '--partition', '0'], /--start-offset is required/],
    [['transactions', 'abort', '--topic', 't', '--partition', 'x', '--start-offset', '1'], /--partition: 'x'/],
    [['transactions', 'list', '--producer-id', '-5'], /--producer-id: '-5' is not a non-negative integer/],
    [['transactions', 'list', '--format', 'xml'], /--format: 'xml' is not text or json/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, message);
    assert.match(r.stderr, /^samsa transactions: [^\n]*\(see 'samsa transactions --help'\)\n$/);
  }
  const help = await runCli(['transactions', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: samsa transactions <action>/);
  const bare = await runCli(['transactions']);
  assert.equal(bare.code, 2);
});

test('find-hanging decides as Kafka: no transactional id, unknown to its coordinator, or partition not in its transaction', () => {
  const open = (topic: string, partition: number, producerId: bigint): OpenTransaction => ({
    topic,
    partition,
    producer: {
      producerId,
      producerEpoch: 0,
      lastSequence: 0,
      lastTimestamp: 0n,
      coordinatorEpoch: -1,
      currentTxnStartOffset: 10n,
    },
  });
  const description = (id: string, partitions: { topic: string; partition: number }[]): TransactionDescription => ({
    transactionalId: id,
    coordinatorId: 1,
    state: partitions.length > 0 ? 'Ongoing' : 'CompleteCommit',
    producerId: 0n,
    producerEpoch: 0,
    transactionTimeoutMs: 60_000,
    transactionStartTimeMs: partitions.length > 0 ? 1n : -1n,
    partitions,
  });
  const candidates = [
    open('t', 0, 1n), // its transaction has t-0: the coordinator will write the marker
    open('t', 1, 1n), // its transaction lacks t-1: hanging
    open('t', 0, 2n), // no coordinator lists producer 2: hanging
    open('t', 0, 3n), // its coordinator does not know 'c': hanging
    open('t', 0, 4n), // its transaction completed: hanging
  ];
  const idOf = new Map([
    [1n, 'a'],
    [3n, 'c'],
    [4n, 'd'],
  ]);
  const descriptions = new Map<string, TransactionDescription | null>([
    ['a', description('a', [{ topic: 't', partition: 0 }])],
    ['c', null],
    ['d', description('d', [])],
  ]);
  assert.deepEqual(
    hangingAmong(candidates, idOf, descriptions).map((h) => [h.partition, h.producer.producerId, h.transactionalId]),
    [
      [1, 1n, 'a'],
      [0, 2n, null],
      [0, 3n, 'c'],
      [0, 4n, 'd'],
    ],
  );
});
