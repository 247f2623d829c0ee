/**
 * Plumbing for the transaction tests (issue 15): broker settings, a kafkajs reader that collects
 * what a read_committed or read_uncommitted consumer sees, raw ListOffsets with an isolation
 * level, raw ListTransactions / DescribeTransactions, and the errors a fenced producer surfaces.
 */
import assert from 'node:assert/strict';
import { type Kafka, Kafka as KafkaClient, logLevel } from 'kafkajs';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import type { ListOffsetsRequestInput, ListOffsetsResponse } from '../../../src/protocol/messages/002-list-offsets.ts';
import type {
  DescribeTransactionsRequestInput,
  DescribeTransactionsResponse,
  DescribeTransactionsResponseTransactionState,
} from '../../../src/protocol/messages/065-describe-transactions.ts';
import type {
  ListTransactionsRequestInput,
  ListTransactionsResponse,
} from '../../../src/protocol/messages/066-list-transactions.ts';
import { RawConnection } from '../broker/helpers.ts';
import { randomTopic, sleep, waitFor } from '../groups/helpers.ts';

export { RawConnection, randomTopic, sleep, waitFor };

export const PYTHON = '/usr/bin/python3';

/**
 * Small internal topics (the Kafka keys; one the broker does not know is only logged) and no
 * initial rebalance delay: every consumer group here is a single member.
 */
export const TXN_BROKER_OVERRIDES: Record<string, string> = {
  'offsets.topic.num.partitions': '3',
  'transaction.state.log.num.partitions': '3',
  'group.initial.rebalance.delay.ms': '0',
};

/** Cleanups run last-registered first (clients before the broker), each even if another fails. */
export type Defer = (fn: () => unknown) => void;

/**
 * A broker for one test, and `defer` for the test's cleanups: they run in t.after in reverse
 * order of registration, so clients disconnect before the broker closes.
 */
export async function startTxnBroker(
  t: { after: (fn: () => Promise<void>) => void },
  overrides: Record<string, string> = {},
): Promise<{ broker: RunningBroker; defer: Defer }> {
  const cleanups: (() => unknown)[] = [];
  t.after(async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // A client that fails to disconnect does not fail the test.
      }
    }
  });
  const broker = await startBroker({ overrides: { ...TXN_BROKER_OVERRIDES, ...overrides } });
  cleanups.push(() => broker.close());
  return { broker, defer: (fn) => cleanups.push(fn) };
}

export function kafkajsClient(bootstrap: string, clientId = 'samsa-txn-it'): Kafka {
  return new KafkaClient({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
  });
}

/** One record as a consumer saw it. */
export interface Seen {
  partition: number;
  offset: number;
  value: string | null;
}

export function sortSeen(records: Seen[]): Seen[] {
  return records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

/** [offset, value] pairs of one partition, in offset order. */
export function partitionView(records: readonly Seen[], partition: number): [number, string | null][] {
  return records
    .filter((r) => r.partition === partition)
    .sort((a, b) => a.offset - b.offset)
    .map((r) => [r.offset, r.value]);
}

/**
 * Reads `topic` from the beginning with a kafkajs consumer in a fresh group until `until` holds
 * for what it has seen, then `settleMs` more, and returns everything it saw (duplicates included).
 * kafkajs consumers are read_committed unless `readUncommitted`.
 */
export async function consumeKafkajs(
  kafka: Kafka,
  topic: string,
  options: {
    readUncommitted: boolean;
    until: (seen: readonly Seen[]) => boolean;
    what: string;
    timeoutMs?: number;
    settleMs?: number;
  },
): Promise<Seen[]> {
  const consumer = kafka.consumer({
    groupId: randomTopic('txn-reader'),
    readUncommitted: options.readUncommitted,
    maxWaitTimeInMs: 250,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
  });
  const seen: Seen[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        seen.push({ partition, offset: Number(message.offset), value: message.value?.toString() ?? null });
      },
    });
    try {
      await waitFor(() => options.until(seen), options.timeoutMs ?? 30_000, options.what);
    } catch (err) {
      throw new Error(`${(err as Error).message}; seen so far: ${JSON.stringify(sortSeen([...seen]))}`);
    }
    await sleep(options.settleMs ?? 500);
  } finally {
    await consumer.disconnect();
  }
  return sortSeen(seen);
}

export function values(records: readonly Seen[]): (string | null)[] {
  return records.map((r) => r.value);
}

/** Every expected value has been seen at least once. */
export function seenAll(expected: readonly string[]): (seen: readonly Seen[]) => boolean {
  return (seen) => {
    const got = new Set(seen.map((r) => r.value));
    return expected.every((v) => got.has(v));
  };
}

export const READ_UNCOMMITTED = 0;
export const READ_COMMITTED = 1;

/**
 * ListOffsets v5 for the latest offset of one partition with an isolation level: the high
 * watermark with read_uncommitted (0), the last stable offset with read_committed (1).
 */
export async function latestOffset(
  conn: RawConnection,
  topic: string,
  partition: number,
  isolationLevel: number,
): Promise<bigint> {
  const res = await conn.request<ListOffsetsResponse>(2, 5, {
    replicaId: -1,
    isolationLevel,
    topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp: -1n }] }],
  } satisfies ListOffsetsRequestInput);
  const p = res.topics[0]?.partitions[0];
  assert.equal(p?.errorCode, 0, `ListOffsets ${topic}/${partition} isolation ${isolationLevel}: error ${p?.errorCode}`);
  return p.offset;
}

/** DescribeTransactions v0 (API 65) for the given transactional ids. */
export async function describeTransactions(
  conn: RawConnection,
  transactionalIds: readonly string[],
): Promise<DescribeTransactionsResponseTransactionState[]> {
  const res = await conn.request<DescribeTransactionsResponse>(65, 0, {
    transactionalIds,
  } satisfies DescribeTransactionsRequestInput);
  return res.transactionStates;
}

/** DescribeTransactions of one id; fails the test on an error code. */
export async function describeTransaction(
  conn: RawConnection,
  transactionalId: string,
): Promise<DescribeTransactionsResponseTransactionState> {
  const [state] = await describeTransactions(conn, [transactionalId]);
  assert.ok(state !== undefined, `DescribeTransactions ${transactionalId}: no state in the response`);
  assert.equal(state.transactionalId, transactionalId);
  assert.equal(state.errorCode, ErrorCode.NONE, `DescribeTransactions ${transactionalId}: error ${state.errorCode}`);
  return state;
}

/** ListTransactions (API 66) v0, or v1 with a duration filter. */
export function listTransactions(
  conn: RawConnection,
  filters: ListTransactionsRequestInput = {},
  version = 0,
): Promise<ListTransactionsResponse> {
  return conn.request<ListTransactionsResponse>(66, version, {
    stateFilters: [],
    producerIdFilters: [],
    durationFilter: -1n,
    ...filters,
  } satisfies ListTransactionsRequestInput);
}

/** The highest version of `apiKey` the broker advertises, or -1. */
export async function maxVersion(conn: RawConnection, apiKey: number): Promise<number> {
  const res = await conn.request<{ apiKeys: { apiKey: number; maxVersion: number }[] }>(18, 3, {
    clientSoftwareName: 'samsa-it',
    clientSoftwareVersion: '0',
  });
  return res.apiKeys.find((k) => k.apiKey === apiKey)?.maxVersion ?? -1;
}

interface ErrorLike {
  name?: unknown;
  type?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  originalError?: unknown;
  errors?: unknown;
}

/** The error and every error it wraps (cause, originalError, errors[]), kafkajs and platformatic style. */
export function errorChain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  const visit = (e: unknown, depth: number): void => {
    if (e === null || typeof e !== 'object' || depth > 8 || out.includes(e as ErrorLike)) return;
    const x = e as ErrorLike;
    out.push(x);
    visit(x.cause, depth + 1);
    visit(x.originalError, depth + 1);
    if (Array.isArray(x.errors)) for (const inner of x.errors) visit(inner, depth + 1);
  };
  visit(err, 0);
  return out;
}

export function describeError(err: unknown): string {
  return errorChain(err)
    .map((e) => `${String(e.name)}(type=${String(e.type)}, code=${String(e.code)}): ${String(e.message)}`)
    .join(' <- ');
}

/**
 * The Kafka error code an operation failed with (the first one found in the error or what it
 * wraps; kafkajs reports a code it does not know as "Unknown error code N"), or undefined if it
 * succeeded; a failure without a Kafka error code is rethrown.
 */
export async function kafkaErrorCode(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    for (const e of errorChain(err)) {
      if (typeof e.message === 'string') {
        const unknown = /Unknown error code (-?\d+)/.exec(e.message);
        if (unknown !== null) return Number(unknown[1]);
      }
      if (typeof e.code === 'number' && e.code > 0) return e.code;
      if (typeof e.type === 'string' && e.type in ErrorCode) return ErrorCode[e.type as keyof typeof ErrorCode];
    }
    throw new Error(`no Kafka error code in ${describeError(err)}`, { cause: err });
  }
}

export function errorName(code: number | undefined): string {
  if (code === undefined) return 'success';
  return Object.entries(ErrorCode).find(([, c]) => c === code)?.[0] ?? `error ${code}`;
}

/** Races `p` against a timer so a client that retries forever fails the test instead of hanging it. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
