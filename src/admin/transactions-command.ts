/**
 * `samsa transactions list|describe|describe-producers|find-hanging|abort`: transaction
 * administration over the Kafka protocol (ListTransactions, FindCoordinator, DescribeTransactions,
 * DescribeProducers, WriteTxnMarkers), so it works against any Kafka-compatible broker. It follows
 * kafka-transactions.sh: find-hanging and abort decide as Kafka's TransactionsCommand does. The
 * requests are in transactions-requests.ts.
 */
import type { KafkaClient } from '../network/kafka-client.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  BOOTSTRAP_USAGE,
  bootstrapOption,
  createClient,
  FORMAT_USAGE,
  formatOption,
  intOption,
  type OutputFormat,
  parseCommandArgs,
  printJson,
  printTable,
  requireOption,
  runCommand,
  UsageError,
} from './cli-common.ts';
import {
  describeProducers,
  describeTransaction,
  listAllTransactions,
  type PartitionProducers,
  type ProducerState,
  type TransactionDescription,
  type TransactionFilters,
  topicPartitions,
  writeAbortMarker,
} from './transactions-requests.ts';

/** Kafka's find-hanging default: 15 minutes, the default transaction.max.timeout.ms. */
const DEFAULT_MAX_TRANSACTION_TIMEOUT_MS = 900_000;

export const TRANSACTIONS_USAGE = `Usage: samsa transactions <action> [options]

Actions:
  list                [--state S]... [--producer-id N]... [--duration-filter MS] [--format json]
                      transactional ids of every coordinator (Ongoing, PrepareCommit,
                      CompleteCommit, ...); --duration-filter: open longer than MS
  describe            --transactional-id ID [--format json]
                      coordinator, state, producer id and epoch, timeout, start time,
                      duration, partitions of the open transaction
  describe-producers  --topic T --partition P [--broker-id N] [--format json]
                      the partition's active producers: epoch, last sequence and timestamp,
                      coordinator epoch, start offset of their open transaction
  find-hanging        (--broker-id N | --topic T [--partition P]) [--max-transaction-timeout-ms MS]
                      [--format json]   open transactions older than MS (default ${DEFAULT_MAX_TRANSACTION_TIMEOUT_MS}) that
                      their coordinator no longer has in a transaction with that partition
  abort               --topic T --partition P --start-offset O [--format json]
                      abort the open transaction starting at offset O (an abort marker written
                      at the leader, as for a hanging transaction)

Options:
${BOOTSTRAP_USAGE}
${FORMAT_USAGE}
  --timeout-ms MS          request timeout (default 30000)

JSON fields (list): transactions[]: transactionalId, producerId, state, coordinatorId.
JSON fields (describe): transactionalId, coordinatorId, state, producerId, producerEpoch,
  transactionTimeoutMs, transactionStartTimeMs, transactionDurationMs (both null: none open),
  partitions[]: topic, partition.
JSON fields (describe-producers): topic, partition, brokerId, producers[]: producerId,
  producerEpoch, lastSequence, lastTimestamp, coordinatorEpoch, currentTxnStartOffset (null: none).
JSON fields (find-hanging): hanging[]: topic, partition, producerId, producerEpoch,
  coordinatorEpoch, startOffset, lastTimestamp, durationMs, transactionalId (null: none found).
JSON fields (abort): topic, partition, startOffset, producerId, producerEpoch, coordinatorEpoch.`;

const OPTIONS = {
  bootstrap: { type: 'string' },
  'timeout-ms': { type: 'string' },
  format: { type: 'string' },
  state: { type: 'string', multiple: true },
  'producer-id': { type: 'string', multiple: true },
  'duration-filter': { type: 'string' },
  'transactional-id': { type: 'string' },
  topic: { type: 'string' },
  partition: { type: 'string' },
  'broker-id': { type: 'string' },
  'max-transaction-timeout-ms': { type: 'string' },
  'start-offset': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values'];

const ALLOWED: Record<string, readonly string[]> = {
  list: ['state', 'producer-id', 'duration-filter', 'format'],
  describe: ['transactional-id', 'format'],
  'describe-producers': ['topic', 'partition', 'broker-id', 'format'],
  'find-hanging': ['broker-id', 'topic', 'partition', 'max-transaction-timeout-ms', 'format'],
  abort: ['topic', 'partition', 'start-offset', 'format'],
};

export function transactionsCommand(argv: string[]): Promise<number> {
  return runCommand('transactions', TRANSACTIONS_USAGE, async () => {
    const [action, ...rest] = argv;
    if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
      console.log(TRANSACTIONS_USAGE);
      return action === undefined ? 2 : 0;
    }
    const { values } = parseCommandArgs(rest, OPTIONS);
    if (values.help === true) {
      console.log(TRANSACTIONS_USAGE);
      return 0;
    }
    const actionOptions = ALLOWED[action];
    if (actionOptions === undefined) throw new UsageError(`unknown action '${action}'`);
    for (const name of Object.keys(values)) {
      if (name !== 'bootstrap' && name !== 'timeout-ms' && !actionOptions.includes(name)) {
        throw new UsageError(`--${name} does not apply to 'transactions ${action}'`);
      }
    }
    const bootstrap = bootstrapOption(values.bootstrap);
    const timeoutMs = intOption(values['timeout-ms'], 'timeout-ms', { min: 1 }) ?? 30_000;
    const run = prepare(action, values);
    const client = createClient(bootstrap, timeoutMs);
    try {
      return await run(client);
    } finally {
      client.close();
    }
  });
}

const INT32 = { min: 0, max: 0x7fffffff };

function int64Option(value: string, name: string): bigint {
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--${name}: '${value}' is not a non-negative integer`);
  const n = BigInt(value.trim());
  if (n > 0x7fffffffffffffffn) throw new UsageError(`--${name}: ${n} is beyond a 64-bit integer`);
  return n;
}

function prepare(action: string, values: Values): (client: KafkaClient) => Promise<number> {
  const format = formatOption(values.format);
  switch (action) {
    case 'list': {
      const duration = values['duration-filter'];
      const filters: TransactionFilters = {
        states: values.state ?? [],
        producerIds: (values['producer-id'] ?? []).map((p) => int64Option(p, 'producer-id')),
        durationMs: duration === undefined ? -1n : int64Option(duration, 'duration-filter'),
      };
      return (client) => list(client, filters, format);
    }
    case 'describe': {
      const id = requireOption(values['transactional-id'], 'transactional-id');
      return (client) => describe(client, id, format);
    }
    case 'describe-producers': {
      const topic = requireOption(values.topic, 'topic');
      const partition = intOption(requireOption(values.partition, 'partition'), 'partition', INT32)!;
      const brokerId = intOption(values['broker-id'], 'broker-id', INT32) ?? null;
      return (client) => showProducers(client, topic, partition, brokerId, format);
    }
    case 'find-hanging': {
      const brokerId = intOption(values['broker-id'], 'broker-id', INT32) ?? null;
      const topic = values.topic ?? null;
      const partition = intOption(values.partition, 'partition', INT32) ?? null;
      if (topic === null && brokerId === null) throw new UsageError('--topic or --broker-id is required');
      if (partition !== null && topic === null) throw new UsageError('--partition needs --topic');
      const maxTimeoutMs =
        intOption(values['max-transaction-timeout-ms'], 'max-transaction-timeout-ms', { min: 0 }) ??
        DEFAULT_MAX_TRANSACTION_TIMEOUT_MS;
      return (client) => findHanging(client, { brokerId, topic, partition, maxTimeoutMs }, format);
    }
    default: {
      const topic = requireOption(values.topic, 'topic');
      const partition = intOption(requireOption(values.partition, 'partition'), 'partition', INT32)!;
      const startOffset = int64Option(requireOption(values['start-offset'], 'start-offset'), 'start-offset');
      return (client) => abort(client, topic, partition, startOffset, format);
    }
  }
}

async function list(client: KafkaClient, filters: TransactionFilters, format: OutputFormat): Promise<number> {
  const { transactions, unknownStates } = await listAllTransactions(client, filters);
  if (unknownStates.length > 0) {
    console.error(`samsa transactions: unknown state(s) ignored by the broker: ${unknownStates.join(', ')}`);
  }
  if (format === 'json') printJson({ transactions });
  else
    printTable(
      ['TRANSACTIONAL-ID', 'PRODUCER-ID', 'STATE', 'COORDINATOR'],
      transactions.map((t) => [t.transactionalId, String(t.producerId), t.state, String(t.coordinatorId)]),
    );
  return 0;
}

async function describe(client: KafkaClient, transactionalId: string, format: OutputFormat): Promise<number> {
  const d = await describeTransaction(client, transactionalId);
  if (d === null) {
    throw new KafkaError(
      ErrorCode.TRANSACTIONAL_ID_NOT_FOUND,
      `transactional id '${transactionalId}': TRANSACTIONAL_ID_NOT_FOUND (its coordinator does not know it)`,
    );
  }
  const open = d.transactionStartTimeMs >= 0n;
  const durationMs = open ? BigInt(Date.now()) - d.transactionStartTimeMs : null;
  if (format === 'json') {
    printJson({
      ...d,
      transactionStartTimeMs: open ? d.transactionStartTimeMs : null,
      transactionDurationMs: durationMs,
    });
    return 0;
  }
  printTable(
    [
      'COORDINATOR',
      'TRANSACTIONAL-ID',
      'PRODUCER-ID',
      'PRODUCER-EPOCH',
      'STATE',
      'TIMEOUT-MS',
      'START-TIME-MS',
      'DURATION-MS',
      'PARTITIONS',
    ],
    [
      [
        String(d.coordinatorId),
        d.transactionalId,
        String(d.producerId),
        String(d.producerEpoch),
        d.state,
        String(d.transactionTimeoutMs),
        open ? String(d.transactionStartTimeMs) : '-',
        durationMs === null ? '-' : String(durationMs),
        partitionList(d),
      ],
    ],
  );
  return 0;
}

function partitionList(d: TransactionDescription): string {
  return d.partitions.length === 0 ? '-' : d.partitions.map((p) => `${p.topic}-${p.partition}`).join(',');
}

/** -1 (none) as null, for JSON. */
function orNull<T extends number | bigint>(value: T): T | null {
  return value < 0 ? null : value;
}

async function showProducers(
  client: KafkaClient,
  topic: string,
  partition: number,
  brokerId: number | null,
  format: OutputFormat,
): Promise<number> {
  const [target] = await topicPartitions(client, topic, [partition]);
  const [result] = await describeProducers(client, [{ topic, ...target! }], brokerId);
  const producers = result?.producers ?? [];
  if (format === 'json') {
    printJson({
      topic,
      partition,
      brokerId: result?.brokerId ?? brokerId ?? target!.leaderId,
      producers: producers.map((p) => ({
        ...p,
        coordinatorEpoch: orNull(p.coordinatorEpoch),
        currentTxnStartOffset: orNull(p.currentTxnStartOffset),
      })),
    });
    return 0;
  }
  printTable(
    [
      'PRODUCER-ID',
      'PRODUCER-EPOCH',
      'COORDINATOR-EPOCH',
      'LAST-SEQUENCE',
      'LAST-TIMESTAMP',
      'CURRENT-TRANSACTION-START-OFFSET',
    ],
    producers.map((p) => [
      String(p.producerId),
      String(p.producerEpoch),
      String(p.coordinatorEpoch),
      String(p.lastSequence),
      String(p.lastTimestamp),
      p.currentTxnStartOffset < 0n ? '-' : String(p.currentTxnStartOffset),
    ]),
  );
  return 0;
}

export interface OpenTransaction {
  topic: string;
  partition: number;
  producer: ProducerState;
}

export interface HangingTransaction extends OpenTransaction {
  /** Null when no coordinator lists the producer id. */
  transactionalId: string | null;
}

/**
 * Which candidates hang (Kafka's filterHangingTransactions): those whose producer id no
 * coordinator lists (`idOf`), whose transactional id its coordinator does not know (a null
 * description), or whose transaction does not include the partition (any more).
 */
export function hangingAmong(
  candidates: readonly OpenTransaction[],
  idOf: ReadonlyMap<bigint, string>,
  descriptions: ReadonlyMap<string, TransactionDescription | null>,
): HangingTransaction[] {
  const out: HangingTransaction[] = [];
  for (const c of candidates) {
    const transactionalId = idOf.get(c.producer.producerId) ?? null;
    const d = transactionalId === null ? null : (descriptions.get(transactionalId) ?? null);
    if (d === null || !d.partitions.some((p) => p.topic === c.topic && p.partition === c.partition)) {
      out.push({ ...c, transactionalId });
    }
  }
  return out;
}

/**
 * Kafka's FindHangingTransactionsCommand: producers with an open transaction (a start offset)
 * whose last write is older than the max transaction timeout are candidates; a candidate hangs
 * when no coordinator lists a transactional id for its producer id, when that id's coordinator
 * does not know it, or when its transaction (DescribeTransactions: Ongoing, or Prepare* with
 * markers still to write) does not include the partition: then no coordinator will ever write
 * the marker that closes it.
 */
async function findHanging(
  client: KafkaClient,
  scope: { brokerId: number | null; topic: string | null; partition: number | null; maxTimeoutMs: number },
  format: OutputFormat,
): Promise<number> {
  const partitions: { topic: string; partition: number; leaderId: number }[] = [];
  if (scope.topic !== null) {
    const found = await topicPartitions(client, scope.topic, scope.partition === null ? null : [scope.partition]);
    for (const p of found) {
      if (scope.partition !== null || scope.brokerId === null || p.replicas.includes(scope.brokerId)) {
        partitions.push({ topic: scope.topic, partition: p.partition, leaderId: p.leaderId });
      }
    }
  } else {
    const md = await client.metadata(null);
    for (const t of [...md.topics.values()].filter((x) => !x.isInternal && x.errorCode === ErrorCode.NONE)) {
      for (const p of t.partitions) {
        if (p.replicas.includes(scope.brokerId!)) {
          partitions.push({ topic: t.name, partition: p.partition, leaderId: p.leaderId });
        }
      }
    }
  }
  const candidates: OpenTransaction[] = [];
  const now = BigInt(Date.now());
  const BATCH = 500;
  for (let i = 0; i < partitions.length; i += BATCH) {
    const described: PartitionProducers[] = await describeProducers(
      client,
      partitions.slice(i, i + BATCH),
      scope.brokerId,
    );
    for (const d of described) {
      for (const producer of d.producers) {
        if (producer.currentTxnStartOffset >= 0n && now - producer.lastTimestamp > BigInt(scope.maxTimeoutMs)) {
          candidates.push({ topic: d.topic, partition: d.partition, producer });
        }
      }
    }
  }
  let hanging: HangingTransaction[] = [];
  if (candidates.length > 0) {
    const producerIds = [...new Set(candidates.map((c) => c.producer.producerId))];
    const { transactions } = await listAllTransactions(client, { states: [], producerIds, durationMs: -1n });
    const idOf = new Map(transactions.map((t) => [t.producerId, t.transactionalId]));
    const descriptions = new Map<string, TransactionDescription | null>();
    for (const id of new Set(idOf.values())) descriptions.set(id, await describeTransaction(client, id));
    hanging = hangingAmong(candidates, idOf, descriptions);
  }
  const rows = hanging.map((h) => ({
    topic: h.topic,
    partition: h.partition,
    producerId: h.producer.producerId,
    producerEpoch: h.producer.producerEpoch,
    coordinatorEpoch: h.producer.coordinatorEpoch,
    startOffset: h.producer.currentTxnStartOffset,
    lastTimestamp: h.producer.lastTimestamp,
    durationMs: now - h.producer.lastTimestamp,
    transactionalId: h.transactionalId,
  }));
  if (format === 'json')
    printJson({ hanging: rows.map((r) => ({ ...r, coordinatorEpoch: orNull(r.coordinatorEpoch) })) });
  else
    printTable(
      [
        'TOPIC',
        'PARTITION',
        'PRODUCER-ID',
        'PRODUCER-EPOCH',
        'COORDINATOR-EPOCH',
        'START-OFFSET',
        'LAST-TIMESTAMP',
        'DURATION-MS',
      ],
      rows.map((r) => [
        r.topic,
        String(r.partition),
        String(r.producerId),
        String(r.producerEpoch),
        String(r.coordinatorEpoch),
        String(r.startOffset),
        String(r.lastTimestamp),
        String(r.durationMs),
      ]),
    );
  return 0;
}

/**
 * Kafka's AbortTransactionCommand with --start-offset: the producer whose open transaction
 * starts at that offset (DescribeProducers at the leader) gets an abort marker with its id,
 * epoch and coordinator epoch (0 when it has none yet, as Kafka's tool).
 */
async function abort(
  client: KafkaClient,
  topic: string,
  partition: number,
  startOffset: bigint,
  format: OutputFormat,
): Promise<number> {
  const [target] = await topicPartitions(client, topic, [partition]);
  const leader = { topic, partition, leaderId: target!.leaderId };
  const [state] = await describeProducers(client, [leader]);
  const producer = state?.producers.find((p) => p.currentTxnStartOffset === startOffset);
  if (producer === undefined) {
    console.error(
      `samsa transactions: no open transaction starts at offset ${startOffset} on ${topic}-${partition} ('samsa transactions describe-producers' shows the open ones)`,
    );
    return 1;
  }
  const coordinatorEpoch = Math.max(0, producer.coordinatorEpoch);
  await writeAbortMarker(client, leader, { ...producer, coordinatorEpoch });
  const result = {
    topic,
    partition,
    startOffset,
    producerId: producer.producerId,
    producerEpoch: producer.producerEpoch,
    coordinatorEpoch,
  };
  if (format === 'json') printJson(result);
  else
    console.log(
      `Aborted the transaction of producer ${producer.producerId} (epoch ${producer.producerEpoch}, coordinator epoch ${coordinatorEpoch}) that started at offset ${startOffset} on ${topic}-${partition}.`,
    );
  return 0;
}
