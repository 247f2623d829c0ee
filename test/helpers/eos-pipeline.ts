/**
 * An exactly-once consume-transform-produce pipeline (issue 15), and the plumbing of the tests
 * that crash it or the broker under it.
 *
 * Run as a program (`node test/helpers/eos-pipeline.ts`, configured through EOS_* environment
 * variables, see `PipelineConfig`), it is a kafkajs application as Kafka's documentation writes
 * one: a consumer in group G reading topic IN with read_committed, and one transactional producer
 * with a fixed transactional id, so a restarted instance fences the previous one (InitProducerId
 * bumps the epoch and aborts its open transaction). Each chunk of a batch (eachBatch, autoCommit
 * off) becomes one transaction: the transformed records go to OUT (value = input value + ':out',
 * key = `partition:offset` of the input record), the group's next offset of the input partition
 * goes in with sendOffsets, and the transaction commits. The producer connects (InitProducerId)
 * before the consumer joins the group, so a transaction the previous instance left committing is
 * complete, and its offsets are in the group, before this instance fetches them.
 *
 * The output records of a transaction go to OUT in one `send` per partition (partition = input
 * offset modulo OUT's partition count). kafkajs 2.2.4 retries a send that spans several partition
 * leaders by resending to every leader without an answer in that call, matched by its broker object
 * (src/producer/sendMessages.js): when a leader dies mid-send and metadata moves its partition to a
 * broker that already answered, that partition's batch is never sent (the transaction commits
 * without it), and when a broker's object is replaced its already written batches are sent again
 * with new sequence numbers (committed twice). Both were seen in txn-coordinator-kill.test.ts with
 * multi-partition sends; with one partition per send a retry resends only that batch, with the same
 * sequence, so the broker recognises a duplicate.
 *
 * Any error ends the process with exit code 3 (after an 'error' line); a supervisor starts it
 * again, as an application would be restarted: kafkajs retries a transaction's requests only in
 * part, and a producer whose commit failed cannot begin another transaction. When the group has
 * committed the input's log end on every partition (given by the test in EOS_IN_END, else read
 * once at start: the input is complete before the pipeline runs) it prints 'done' and exits 0.
 *
 * Progress lines on stdout, one per event: `start`, `offsets end=P:O,... committed=P:O,...` (what
 * it found at start), `ready`, `processing p=P from=O` (first batch), `committing p=P n=N next=O`,
 * `committed p=P next=O total=T`, `done`, `error ...`.
 *
 * Imported, it gives the tests `PipelineSupervisor` (runs it, restarts it, kills it),
 * `readCommitted` (a partition read the way a read_committed consumer reads it, from raw Fetch
 * answers) and `exactlyOnce` (duplicates and missing records of the output).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { ApiKey } from '../../src/network/api-message-types.ts';
import { ErrorCode, KafkaError } from '../../src/protocol/error-codes.ts';
import {
  decodeBatchSync,
  isControl,
  isTransactional,
  iterateBatches,
  readControlRecord,
} from '../../src/protocol/records/index.ts';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

export interface PipelineConfig {
  /** EOS_BOOTSTRAP: `host:port` list, comma-separated. */
  bootstrap: string;
  /** EOS_IN */
  input: string;
  /** EOS_OUT */
  output: string;
  /** EOS_GROUP */
  group: string;
  /** EOS_TXN_ID */
  transactionalId: string;
  /** EOS_TXN_RECORDS: input records per transaction (default 10). */
  recordsPerTxn?: number;
  /** EOS_TXN_TIMEOUT_MS: the producer's transaction timeout (default 10 s). */
  transactionTimeoutMs?: number;
  /** EOS_SESSION_TIMEOUT_MS: the consumer's session timeout (default 6 s, Kafka's minimum). */
  sessionTimeoutMs?: number;
  /** EOS_PAUSE_MS: a pause inside each transaction, after sendOffsets (default 0). */
  pauseMs?: number;
  /**
   * EOS_IN_END (`P:O,...`): the input's end offset per partition, where the pipeline is done. The
   * tests give it (they wrote the input); without it the pipeline asks ListOffsets at start.
   */
  inputEnd?: readonly bigint[];
}

export function pipelineEnv(c: PipelineConfig): Record<string, string> {
  return {
    EOS_BOOTSTRAP: c.bootstrap,
    EOS_IN: c.input,
    EOS_OUT: c.output,
    EOS_GROUP: c.group,
    EOS_TXN_ID: c.transactionalId,
    EOS_TXN_RECORDS: String(c.recordsPerTxn ?? 10),
    EOS_TXN_TIMEOUT_MS: String(c.transactionTimeoutMs ?? 10_000),
    EOS_SESSION_TIMEOUT_MS: String(c.sessionTimeoutMs ?? 6000),
    EOS_PAUSE_MS: String(c.pauseMs ?? 0),
    ...(c.inputEnd === undefined ? {} : { EOS_IN_END: c.inputEnd.map((o, p) => `${p}:${o}`).join(',') }),
  };
}

function configFromEnv(env: NodeJS.ProcessEnv): Required<Omit<PipelineConfig, 'inputEnd'>> & {
  inputEnd: Map<number, bigint> | undefined;
} {
  const need = (k: string): string => {
    const v = env[k];
    if (v === undefined || v === '') throw new Error(`${k} is not set`);
    return v;
  };
  return {
    bootstrap: need('EOS_BOOTSTRAP'),
    input: need('EOS_IN'),
    output: need('EOS_OUT'),
    group: need('EOS_GROUP'),
    transactionalId: need('EOS_TXN_ID'),
    recordsPerTxn: Number(env.EOS_TXN_RECORDS ?? 10),
    transactionTimeoutMs: Number(env.EOS_TXN_TIMEOUT_MS ?? 10_000),
    sessionTimeoutMs: Number(env.EOS_SESSION_TIMEOUT_MS ?? 6000),
    pauseMs: Number(env.EOS_PAUSE_MS ?? 0),
    inputEnd:
      env.EOS_IN_END === undefined
        ? undefined
        : new Map(
            env.EOS_IN_END.split(',').map((e) => {
              const [p, o] = e.split(':');
              return [Number(p), BigInt(o!)] as const;
            }),
          ),
  };
}

/** The output value of an input value. */
export function transformed(value: string): string {
  return `${value}:out`;
}

// ---------------------------------------------------------------------------------------------
// The program.

async function runPipeline(): Promise<void> {
  const c = configFromEnv(process.env);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const fail = (what: string, err: unknown): never => {
    const e = err as { name?: string; type?: string; message?: string };
    say(`error ${what}: ${e?.name ?? ''} ${e?.type ?? ''} ${e?.message ?? String(err)}`.replace(/\s+/g, ' '));
    process.exit(3);
  };
  process.on('unhandledRejection', (err) => fail('unhandled rejection', err));
  process.on('uncaughtException', (err) => fail('uncaught exception', err));
  say(`start pid=${process.pid}`);

  const kafka = new Kafka({
    clientId: c.transactionalId,
    brokers: c.bootstrap.split(','),
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ namespace, log }) =>
        process.stderr.write(`kafkajs ${namespace}: ${log.message} ${log.error ?? ''}\n`),
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
    connectionTimeout: 3000,
    requestTimeout: 10_000,
  });

  // InitProducerId first: it fences the previous instance and waits out (CONCURRENT_TRANSACTIONS)
  // the completion of a transaction it left committing or aborting, offsets included.
  const producer = kafka.producer({
    transactionalId: c.transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: c.transactionTimeoutMs,
  });

  // Startup steps are retried for up to 20 s: a broker that just died may still be named in
  // metadata, and a coordinator may be moving or loading.
  const retrying = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (attempt >= 40) fail(what, err);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };
  await retrying('producer connect', () => producer.connect());
  // The input's end offsets (the pipeline is done when the group has committed them), OUT's
  // partition count, and the group's committed offsets.
  const admin = kafka.admin();
  await retrying('admin connect', () => admin.connect());
  const end = new Map<number, bigint>(c.inputEnd ?? []);
  if (c.inputEnd === undefined)
    for (const o of await retrying('input offsets', () => admin.fetchTopicOffsets(c.input)))
      end.set(o.partition, BigInt(o.high));
  const outPartitions = (await retrying('output metadata', () => admin.fetchTopicMetadata({ topics: [c.output] })))
    .topics[0]!.partitions.length;
  const committed = new Map<number, bigint>();
  for (const t of await retrying('group offsets', () => admin.fetchOffsets({ groupId: c.group, topics: [c.input] })))
    for (const p of t.partitions) committed.set(p.partition, BigInt(p.offset));
  await admin.disconnect().catch(() => undefined);

  const show = (m: Map<number, bigint>) =>
    [...m]
      .sort(([a], [b]) => a - b)
      .map(([p, o]) => `${p}:${o}`)
      .join(',');
  say(`offsets end=${show(end)} committed=${show(committed)}`);
  const finished = () => [...end].every(([p, high]) => (committed.get(p) ?? -1n) >= high);
  const finish = async (consumer?: { disconnect(): Promise<void> }) => {
    say('done');
    // A clean leave so nothing waits for this member's session to expire; bounded.
    await Promise.race([
      Promise.all([consumer?.disconnect(), producer.disconnect()]).catch(() => undefined),
      new Promise((r) => setTimeout(r, 3000)),
    ]);
    process.exit(0);
  };
  if (finished()) await finish();

  const consumer = kafka.consumer({
    groupId: c.group,
    readUncommitted: false,
    sessionTimeout: c.sessionTimeoutMs,
    rebalanceTimeout: Math.max(c.sessionTimeoutMs, 5000),
    heartbeatInterval: Math.max(100, Math.floor(c.sessionTimeoutMs / 5)),
    maxWaitTimeInMs: 100,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => fail('consumer crashed', payload.error));
  await consumer.connect().catch((err) => fail('consumer connect', err));
  await consumer.subscribe({ topics: [c.input], fromBeginning: true }).catch((err) => fail('subscribe', err));

  let total = 0;
  let started = false;
  await consumer
    .run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        const messages = batch.messages;
        if (messages.length === 0) return;
        if (!started) {
          started = true;
          say(`processing p=${batch.partition} from=${messages[0]!.offset}`);
        }
        for (let i = 0; i < messages.length; i += c.recordsPerTxn) {
          if (!isRunning() || isStale()) return;
          const chunk = messages.slice(i, i + c.recordsPerTxn);
          const last = chunk[chunk.length - 1]!.offset;
          const next = (BigInt(last) + 1n).toString();
          try {
            const txn = await producer.transaction();
            // One send per output partition (see the header: kafkajs's retry of a send that spans
            // several leaders can drop or duplicate a batch when a leader moves).
            const byPartition = new Map<number, { key: string; value: string; partition: number }[]>();
            for (const m of chunk) {
              const partition = Number(BigInt(m.offset) % BigInt(outPartitions));
              const list = byPartition.get(partition) ?? [];
              list.push({
                key: `${batch.partition}:${m.offset}`,
                value: transformed(m.value?.toString() ?? ''),
                partition,
              });
              byPartition.set(partition, list);
            }
            for (const messages of byPartition.values()) await txn.send({ topic: c.output, messages });
            await txn.sendOffsets({
              consumerGroupId: c.group,
              topics: [{ topic: c.input, partitions: [{ partition: batch.partition, offset: next }] }],
            });
            if (c.pauseMs > 0) await new Promise((r) => setTimeout(r, c.pauseMs));
            say(`committing p=${batch.partition} n=${chunk.length} next=${next}`);
            await txn.commit();
          } catch (err) {
            fail(`transaction p=${batch.partition} next=${next}`, err);
          }
          total += chunk.length;
          committed.set(batch.partition, BigInt(next));
          say(`committed p=${batch.partition} next=${next} total=${total}`);
          resolveOffset(last);
          await heartbeat();
        }
        if (finished()) void finish(consumer);
      },
    })
    .catch((err) => fail('consumer run', err));
  say('ready');
}

if (import.meta.main) await runPipeline();

// ---------------------------------------------------------------------------------------------
// For the tests.

/** One run of the program, as the supervisor saw it. */
export interface PipelineRun {
  pid: number;
  startedAt: number;
  /** When it printed its first `processing` line. */
  processingAt?: number;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  /** Whether the supervisor killed it (kill -9). */
  killed: boolean;
  /** `error ...` lines it printed. */
  errors: string[];
  /** Transactions it committed (`committed` lines). */
  commits: number;
}

/**
 * Runs the pipeline program and starts it again whenever it exits other than with 0 (killed by
 * the test, or ended on an error); `done()` resolves with the run that exited 0.
 */
export class PipelineSupervisor {
  readonly runs: PipelineRun[] = [];
  readonly #env: Record<string, string>;
  readonly #lineListeners: ((line: string, run: PipelineRun) => void)[] = [];
  #child: ChildProcess | undefined;
  #stopped = false;
  #output = '';
  #resolveDone!: (run: PipelineRun) => void;
  readonly #done: Promise<PipelineRun>;
  #exited: Promise<void> = Promise.resolve();

  constructor(config: PipelineConfig) {
    this.#env = pipelineEnv(config);
    this.#done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  /** The current run. */
  get current(): PipelineRun | undefined {
    return this.runs[this.runs.length - 1];
  }

  /** The tail of everything the runs printed (stdout and stderr), for failure messages. */
  output(chars = 4000): string {
    return this.#output.slice(-chars);
  }

  onLine(listener: (line: string, run: PipelineRun) => void): void {
    this.#lineListeners.push(listener);
  }

  start(): void {
    if (this.#stopped) return;
    const child = spawn(process.execPath, [SELF], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.#env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: PipelineRun = { pid: child.pid ?? -1, startedAt: Date.now(), killed: false, errors: [], commits: 0 };
    this.runs.push(run);
    this.#child = child;
    let pending = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      for (;;) {
        const nl = pending.indexOf('\n');
        if (nl < 0) break;
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        this.#output += `[${run.pid}] ${line}\n`;
        if (line.startsWith('processing') && run.processingAt === undefined) run.processingAt = Date.now();
        else if (line.startsWith('committed ')) run.commits++;
        else if (line.startsWith('error ')) run.errors.push(line);
        for (const l of this.#lineListeners) l(line, run);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.#output += chunk
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => `[${run.pid} stderr] ${l}\n`)
        .join('');
    });
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        run.exit = { code, signal };
        resolve();
        if (code === 0) this.#resolveDone(run);
        else if (!this.#stopped && !run.killed) this.start();
      });
    });
  }

  /** kill -9 of the current run, then (unless `restart` is false) a new run at once. */
  async kill(restart = true): Promise<void> {
    const child = this.#child;
    const run = this.current;
    if (child === undefined || run === undefined || run.exit !== undefined) return;
    run.killed = true;
    child.kill('SIGKILL');
    await this.#exited;
    if (restart) this.start();
  }

  /** Resolves with the run that exited 0. */
  done(): Promise<PipelineRun> {
    return this.#done;
  }

  /** Kills the current run and starts no other. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const child = this.#child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await this.#exited;
  }
}

/**
 * Sends one request (API key, version, body) to the broker that should answer it and resolves with
 * the decoded answer: `(k, v, body) => client.request(k, v, body)` or `client.requestTo(leader, ...)`.
 */
export type RawRequest = (apiKey: number, version: number, body: object) => Promise<unknown>;

/** A record of a partition as a read_committed consumer gets it. */
export interface CommittedRecord {
  partition: number;
  offset: bigint;
  key: string | null;
  value: string | null;
}

export interface CommittedRead {
  records: CommittedRecord[];
  /** Records of aborted transactions the read skipped. */
  aborted: number;
  /** Commit and abort markers passed. */
  markers: number;
  lastStableOffset: bigint;
  highWatermark: bigint;
}

/**
 * Reads one partition from offset 0 to its last stable offset with Fetch v12 isolation_level 1
 * (read_committed) and drops what a Kafka consumer drops: control batches, and the batches of
 * each transaction the answer lists in aborted_transactions, from its first offset up to that
 * producer's abort marker. `request` sends the Fetch to the partition's leader.
 */
export async function readCommitted(request: RawRequest, topic: string, partition: number): Promise<CommittedRead> {
  const out: CommittedRead = { records: [], aborted: 0, markers: 0, lastStableOffset: -1n, highWatermark: -1n };
  let next = 0n;
  const abortedProducers = new Set<bigint>();
  for (let round = 0; round < 10_000; round++) {
    const res = (await request(ApiKey.Fetch, 12, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 8 << 20,
      isolationLevel: 1,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic,
          partitions: [
            {
              partition,
              currentLeaderEpoch: -1,
              fetchOffset: next,
              lastFetchedEpoch: -1,
              logStartOffset: -1n,
              partitionMaxBytes: 1 << 20,
            },
          ],
        },
      ],
      forgottenTopicsData: [],
      rackId: '',
    })) as {
      responses: {
        partitions: {
          errorCode: number;
          highWatermark: bigint;
          lastStableOffset: bigint;
          abortedTransactions: { producerId: bigint; firstOffset: bigint }[] | null;
          records: Buffer | null;
        }[];
      }[];
    };
    const p = res.responses[0]?.partitions[0];
    if (p === undefined) throw new Error(`Fetch ${topic}/${partition}: no partition in the answer`);
    if (p.errorCode !== ErrorCode.NONE)
      throw new Error(`Fetch ${topic}/${partition} at ${next}: ${new KafkaError(p.errorCode).errorName}`);
    out.lastStableOffset = p.lastStableOffset;
    out.highWatermark = p.highWatermark;
    if (next >= p.lastStableOffset) return out;
    const abortedTxns = [...(p.abortedTransactions ?? [])].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1));
    const bytes = p.records ?? Buffer.alloc(0);
    let progressed = false;
    for (const b of iterateBatches(bytes, { partialTail: 'stop' })) {
      const batch = decodeBatchSync(bytes.subarray(b.offset, b.offset + b.size));
      const h = batch.header;
      const lastOffset = h.baseOffset + BigInt(h.lastOffsetDelta);
      if (lastOffset < next) continue;
      if (h.baseOffset >= p.lastStableOffset) break;
      progressed = true;
      next = lastOffset + 1n;
      while (abortedTxns.length > 0 && abortedTxns[0]!.firstOffset <= lastOffset)
        abortedProducers.add(abortedTxns.shift()!.producerId);
      if (isControl(h.attributes)) {
        out.markers++;
        const r = batch.records[0];
        if (r !== undefined && readControlRecord(r).type === 'abort') abortedProducers.delete(h.producerId);
        continue;
      }
      if (isTransactional(h.attributes) && abortedProducers.has(h.producerId)) {
        out.aborted += batch.records.length;
        continue;
      }
      for (const r of batch.records)
        out.records.push({
          partition,
          offset: r.offset,
          key: r.key === null ? null : r.key.toString(),
          value: r.value === null ? null : r.value.toString(),
        });
    }
    if (!progressed) throw new Error(`Fetch ${topic}/${partition} at ${next}: nothing below ${p.lastStableOffset}`);
  }
  throw new Error(`Fetch ${topic}/${partition} made no progress`);
}

export interface ExactlyOnceReport {
  expected: number;
  read: number;
  duplicates: number;
  missing: number;
  /** Output values that are no transformed input value, or whose key names another input record. */
  unexpected: number;
  examples: string[];
}

/**
 * Compares the output (read_committed) with the input: every input record (`partition:offset` ->
 * value) must appear exactly once, transformed, keyed by its identity.
 */
export function exactlyOnce(input: ReadonlyMap<string, string>, output: readonly CommittedRecord[]): ExactlyOnceReport {
  const seen = new Map<string, number>();
  const report: ExactlyOnceReport = {
    expected: input.size,
    read: output.length,
    duplicates: 0,
    missing: 0,
    unexpected: 0,
    examples: [],
  };
  for (const r of output) {
    const key = r.key ?? '';
    const v = input.get(key);
    if (v === undefined || r.value !== transformed(v)) {
      report.unexpected++;
      if (report.examples.length < 10)
        report.examples.push(`unexpected ${key}=${r.value} at ${r.partition}/${r.offset}`);
      continue;
    }
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (n > 1) {
      report.duplicates++;
      if (report.examples.length < 10)
        report.examples.push(`duplicate ${key}=${r.value} at ${r.partition}/${r.offset}`);
    }
  }
  for (const key of input.keys())
    if (!seen.has(key)) {
      report.missing++;
      if (report.examples.length < 10) report.examples.push(`missing ${key}`);
    }
  return report;
}

/** ListOffsets v5 latest offset of one partition: the high watermark (isolation 0) or the LSO (1). */
export async function latestOffset(
  request: RawRequest,
  topic: string,
  partition: number,
  isolationLevel: 0 | 1,
): Promise<bigint> {
  const res = (await request(ApiKey.ListOffsets, 5, {
    replicaId: -1,
    isolationLevel,
    topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp: -1n }] }],
  })) as { topics: { partitions: { errorCode: number; offset: bigint }[] }[] };
  const p = res.topics[0]?.partitions[0];
  if (p === undefined) throw new Error(`ListOffsets ${topic}/${partition}: no partition in the answer`);
  if (p.errorCode !== ErrorCode.NONE)
    throw new Error(`ListOffsets ${topic}/${partition}: ${new KafkaError(p.errorCode).errorName}`);
  return p.offset;
}

/**
 * Every batch of one partition from offset 0 to its high watermark (Fetch v12 with `replicaId`:
 * -1 as a consumer, read_uncommitted; -2 to read a follower's replica), one line each: offsets,
 * producer id/epoch, base sequence, transactional/control flags, and the first and last keys.
 */
export async function describeBatches(
  request: RawRequest,
  topic: string,
  partition: number,
  replicaId = -1,
): Promise<string[]> {
  const lines: string[] = [];
  let next = 0n;
  for (let round = 0; round < 10_000; round++) {
    const res = (await request(ApiKey.Fetch, 12, {
      replicaId,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 8 << 20,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic,
          partitions: [
            {
              partition,
              currentLeaderEpoch: -1,
              fetchOffset: next,
              lastFetchedEpoch: -1,
              logStartOffset: -1n,
              partitionMaxBytes: 1 << 20,
            },
          ],
        },
      ],
      forgottenTopicsData: [],
      rackId: '',
    })) as { responses: { partitions: { errorCode: number; highWatermark: bigint; records: Buffer | null }[] }[] };
    const p = res.responses[0]?.partitions[0];
    if (p === undefined || p.errorCode !== ErrorCode.NONE) {
      lines.push(`Fetch at ${next}: ${p === undefined ? 'no answer' : new KafkaError(p.errorCode).errorName}`);
      return lines;
    }
    if (next >= p.highWatermark) return lines;
    const bytes = p.records ?? Buffer.alloc(0);
    let progressed = false;
    for (const b of iterateBatches(bytes, { partialTail: 'stop' })) {
      const batch = decodeBatchSync(bytes.subarray(b.offset, b.offset + b.size));
      const h = batch.header;
      const lastOffset = h.baseOffset + BigInt(h.lastOffsetDelta);
      if (lastOffset < next) continue;
      progressed = true;
      next = lastOffset + 1n;
      const keys = batch.records.map((r) => r.key?.toString() ?? 'null');
      const kind = isControl(h.attributes)
        ? `control ${batch.records[0] === undefined ? '?' : readControlRecord(batch.records[0]).type}`
        : isTransactional(h.attributes)
          ? 'txn'
          : 'plain';
      lines.push(
        `${h.baseOffset}-${lastOffset} epoch ${h.partitionLeaderEpoch} pid ${h.producerId}/${h.producerEpoch} seq ${h.baseSequence} ${kind} ` +
          `${kind.startsWith('control') ? '' : `keys ${keys[0]}..${keys[keys.length - 1]} (${keys.length})`}`,
      );
    }
    if (!progressed) return lines;
  }
  return lines;
}
