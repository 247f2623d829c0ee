/**
 * Transactions benchmark (issue 15): Samsa in its own process (`samsa start` from the sources),
 * clients here.
 *   node bench/transactions.bench.ts [--mb 256] [--seconds 12] [--partitions 3] [--latency-txns 500]
 *     [--client both|rdkafka|kafkajs] [--rounds 3] [--linger-ms 5] [--parts produce,consume,latency]
 * Measures, in one run against one broker (1 KiB values, records round-robin over --partitions):
 *  - produce: transactions of 1, 100 and 1000 records against idempotent non-transactional
 *    produce of the same records (the baseline): MB/s, records/s, commits/s, the ratio, and the
 *    broker's CPU. Each run produces --mb MiB or stops after --seconds (whichever comes first;
 *    1-record transactions are round-trip bound). Clients: node-rdkafka (librdkafka 2.12:
 *    init/begin/commitTransaction; the baseline streams with up to 5 requests in flight) and
 *    kafkajs 2.2.4 (producer.transaction(), send, commit; one request in flight, sends of at
 *    most 1000 records);
 *  - consume: read_committed against read_uncommitted over one topic written as transactions of
 *    100 records, every 10th aborted (aborted records flushed first, so they are in the log):
 *    librdkafka's consumer (assign from offset 0; the client drops aborted records) and Samsa's
 *    own TopicFetcher counting records from batch headers (the broker's side: LSO and
 *    aborted_transactions, no per-record client work). --rounds alternating rounds, medians;
 *  - commit latency: --latency-txns transactions of 10 records, with librdkafka (produce +
 *    flush, i.e. AddPartitionsToTxn + Produce, then commitTransaction, i.e. EndTxn) and over the
 *    wire with Samsa's KafkaClient (AddPartitionsToTxn v3, transactional Produce v9 acks=all,
 *    EndTxn v3, then the next AddPartitionsToTxn retried every ms on CONCURRENT_TRANSACTIONS:
 *    accepted once the markers are written and CompleteCommit is logged).
 * Prints a table. Broker CPU is its user + system time from /proc.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { AbortedTransactionFilter, EARLIEST_TIMESTAMP, TopicFetcher } from '../src/admin/topic-fetcher.ts';
import { ApiKey } from '../src/network/api-message-types.ts';
import { KafkaClient } from '../src/network/kafka-client.ts';
import { ErrorCode, errorName } from '../src/protocol/error-codes.ts';
import { isControl } from '../src/protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../src/protocol/records/builder.ts';
import { readControlRecord } from '../src/protocol/records/control-record.ts';
import { decodeBatch } from '../src/protocol/records/record.ts';
import { asError, connect, disconnect, type KafkaConsumer, type Producer, rdkafka } from '../test/helpers/rdkafka.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const argValue = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : fallback;
};
const TOTAL_MB = Number(argValue('--mb', '256'));
const MAX_SECONDS = Number(argValue('--seconds', '12'));
const PARTITIONS = Number(argValue('--partitions', '3'));
const LATENCY_TXNS = Number(argValue('--latency-txns', '500'));
const LINGER_MS = Number(argValue('--linger-ms', '5'));
const CLIENT_ARG = argValue('--client', 'both');
const CLIENTS = CLIENT_ARG === 'both' ? ['rdkafka', 'kafkajs'] : [CLIENT_ARG];
const ROUNDS = Number(argValue('--rounds', '3'));
const PARTS = new Set(argValue('--parts', 'produce,consume,latency').split(','));
const TXN_SIZES = [1, 100, 1000];
const RECORD_BYTES = 1024;
const MB = 1024 * 1024;
const RECORDS = Math.floor((TOTAL_MB * MB) / RECORD_BYTES);
const VALUE = Buffer.alloc(RECORD_BYTES, 'x');
const CLK_TCK = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number, d = 1) => n.toFixed(d);
const int = (n: number) => Math.round(n).toLocaleString('en-US');
function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}
const lat = (xs: readonly number[]) =>
  `p50 ${fmt(pct(xs, 0.5), 2)} ms, p99 ${fmt(pct(xs, 0.99), 2)} ms, max ${fmt(Math.max(...xs), 2)} ms`;

// ---------------------------------------------------------------------------------------------
// Broker

interface Broker {
  child: ChildProcess;
  bootstrap: string;
}

async function startBroker(dataDir: string): Promise<Broker> {
  // As `samsa start` runs it (bin/samsa.js's flag), from the sources.
  const child = spawn(
    process.execPath,
    [
      '--single-threaded-gc',
      'src/cli.ts',
      'start',
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
      '--http-listen',
      'none',
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const bootstrap = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m !== null) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}: ${out}`)));
  });
  return { child, bootstrap };
}

/** The broker's user + system CPU seconds so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

// ---------------------------------------------------------------------------------------------
// Producers

interface ProduceResult {
  records: number;
  seconds: number;
  transactions: number;
  cpuPerGiB: number;
  cpuMsPerTxn: number;
}

/** A client's producer: idempotent (`txnSize` 0) or transactional. */
interface BenchProducer {
  /** Sends records [from, from + n) of the run (partition = index % PARTITIONS) in one transaction, or none. */
  transaction(from: number, n: number, abort?: boolean): Promise<void>;
  /** Idempotent: sends `n` records as fast as the client allows and waits for them all. */
  stream(n: number): Promise<void>;
  close(): Promise<void>;
}

const QUEUE_FULL = -184;

function rdCall(fn: (cb: (err: unknown) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(asError(err)) : resolve())));
}

class RdkafkaProducer implements BenchProducer {
  private readonly p: Producer;
  private readonly topic: string;
  private failed: Error | undefined;
  private delivered = 0;

  private constructor(p: Producer, topic: string) {
    this.p = p;
    this.topic = topic;
    p.on('delivery-report', (err) => {
      if (err) this.failed ??= asError(err);
      this.delivered++;
    });
  }

  static async create(bootstrap: string, topic: string, transactionalId?: string): Promise<RdkafkaProducer> {
    const { Producer } = rdkafka();
    const p = new Producer(
      {
        'metadata.broker.list': bootstrap,
        'client.id': 'samsa-txn-bench',
        log_level: 3,
        dr_cb: true,
        'enable.idempotence': true,
        'linger.ms': LINGER_MS,
        'batch.size': 1_000_000,
        'queue.buffering.max.messages': 200_000,
        'queue.buffering.max.kbytes': 512 * 1024,
        ...(transactionalId === undefined ? {} : { 'transactional.id': transactionalId }),
      },
      {},
    );
    p.setPollInterval(5);
    await connect(p);
    if (transactionalId !== undefined) await rdCall((cb) => p.initTransactions(30_000, cb));
    return new RdkafkaProducer(p, topic);
  }

  /** produce() with backpressure: waits while librdkafka's queue is full. */
  private async produce(i: number): Promise<void> {
    for (;;) {
      try {
        this.p.produce(this.topic, i % PARTITIONS, VALUE, null, Date.now());
        return;
      } catch (err) {
        if ((err as { code?: number }).code !== QUEUE_FULL) throw asError(err);
        await sleep(1);
      }
    }
  }

  private async produceRange(from: number, n: number): Promise<void> {
    // A full queue yields to the event loop (delivery reports, librdkafka's polls).
    for (let i = from; i < from + n; i++) await this.produce(i);
  }

  async transaction(from: number, n: number, abort = false): Promise<void> {
    await rdCall((cb) => this.p.beginTransaction(cb));
    await this.produceRange(from, n);
    // Aborted records are flushed first so that they reach the log (the abort would purge them).
    if (abort) {
      await rdCall((cb) => this.p.flush(30_000, cb));
      await rdCall((cb) => this.p.abortTransaction(30_000, cb));
    } else await rdCall((cb) => this.p.commitTransaction(30_000, cb));
    if (this.failed !== undefined) throw this.failed;
  }

  /** One transaction timed in parts: produce + flush (AddPartitionsToTxn, Produce), commit (EndTxn). */
  async timedTransaction(from: number, n: number): Promise<{ send: number; commit: number }> {
    const t0 = performance.now();
    await rdCall((cb) => this.p.beginTransaction(cb));
    await this.produceRange(from, n);
    await rdCall((cb) => this.p.flush(30_000, cb));
    const t1 = performance.now();
    await rdCall((cb) => this.p.commitTransaction(30_000, cb));
    const t2 = performance.now();
    if (this.failed !== undefined) throw this.failed;
    return { send: t1 - t0, commit: t2 - t1 };
  }

  async stream(n: number): Promise<void> {
    this.delivered = 0;
    await this.produceRange(0, n);
    await rdCall((cb) => this.p.flush(120_000, cb));
    while (this.delivered < n && this.failed === undefined) await sleep(1);
    if (this.failed !== undefined) throw this.failed;
  }

  close(): Promise<void> {
    return disconnect(this.p);
  }
}

class KafkajsProducer implements BenchProducer {
  private readonly producer: ReturnType<Kafka['producer']>;
  private readonly topic: string;

  private constructor(producer: ReturnType<Kafka['producer']>, topic: string) {
    this.producer = producer;
    this.topic = topic;
  }

  static async create(kafka: Kafka, topic: string, transactionalId?: string): Promise<KafkajsProducer> {
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      ...(transactionalId === undefined ? {} : { transactionalId }),
    });
    await producer.connect();
    return new KafkajsProducer(producer, topic);
  }

  private messages(from: number, n: number) {
    return Array.from({ length: n }, (_, k) => ({ partition: (from + k) % PARTITIONS, value: VALUE }));
  }

  async transaction(from: number, n: number, abort = false): Promise<void> {
    const txn = await this.producer.transaction();
    // Sends of at most 1000 records (one Produce request each).
    for (let i = from; i < from + n; i += 1000)
      await txn.send({ topic: this.topic, messages: this.messages(i, Math.min(1000, from + n - i)) });
    if (abort) await txn.abort();
    else await txn.commit();
  }

  async stream(n: number): Promise<void> {
    // kafkajs's idempotent producer allows one request in flight: sends of 1000 records in turn.
    for (let i = 0; i < n; i += 1000)
      await this.producer.send({ topic: this.topic, acks: -1, messages: this.messages(i, Math.min(1000, n - i)) });
  }

  close(): Promise<void> {
    return this.producer.disconnect();
  }
}

async function makeProducer(
  client: string,
  broker: Broker,
  kafka: Kafka,
  topic: string,
  transactionalId?: string,
): Promise<BenchProducer> {
  return client === 'kafkajs'
    ? KafkajsProducer.create(kafka, topic, transactionalId)
    : RdkafkaProducer.create(broker.bootstrap, topic, transactionalId);
}

/** Transactions of `txnSize` records (0: idempotent, no transactions) until RECORDS or MAX_SECONDS. */
async function produceRun(
  client: string,
  broker: Broker,
  kafka: Kafka,
  topic: string,
  txnSize: number,
): Promise<ProduceResult> {
  const producer = await makeProducer(client, broker, kafka, topic, txnSize > 0 ? `bench-${topic}` : undefined);
  try {
    if (txnSize > 0)
      await producer.transaction(0, 1); // warm: coordinator found, partitions known
    else await producer.stream(100);
    const cpu0 = cpuSeconds(broker.child.pid!);
    const t0 = performance.now();
    const end = t0 + MAX_SECONDS * 1000;
    let records = 0;
    let transactions = 0;
    if (txnSize === 0) {
      await producer.stream(RECORDS);
      records = RECORDS;
    } else {
      while (records < RECORDS && performance.now() < end) {
        const n = Math.min(txnSize, RECORDS - records);
        await producer.transaction(records, n);
        records += n;
        transactions++;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(broker.child.pid!) - cpu0;
    return {
      records,
      seconds,
      transactions,
      cpuPerGiB: cpu / ((records * RECORD_BYTES) / (1024 * MB)),
      cpuMsPerTxn: (cpu * 1000) / transactions,
    };
  } finally {
    await producer.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Consumers

interface ConsumeResult {
  records: number;
  seconds: number;
}

/** librdkafka's consumer, assigned every partition from the start, until `expected` records. */
async function rdkafkaConsume(bootstrap: string, topic: string, isolation: string, expected: number) {
  const { KafkaConsumer } = rdkafka();
  const c: KafkaConsumer = new KafkaConsumer(
    {
      'metadata.broker.list': bootstrap,
      'client.id': 'samsa-txn-bench',
      'group.id': `bench-${isolation}-${Date.now()}`,
      log_level: 3,
      'enable.auto.commit': false,
      'isolation.level': isolation as 'read_committed' | 'read_uncommitted',
      'fetch.wait.max.ms': 100,
    },
    { 'auto.offset.reset': 'earliest' },
  );
  await connect(c);
  try {
    c.setDefaultConsumeTimeout(200);
    c.assign(Array.from({ length: PARTITIONS }, (_, p) => ({ topic, partition: p, offset: 0 })));
    let records = 0;
    const t0 = performance.now();
    let last = t0;
    while (records < expected) {
      const batch = await new Promise<unknown[]>((resolve, reject) =>
        c.consume(10_000, (err, m) => (err ? reject(asError(err)) : resolve(m))),
      );
      if (batch.length > 0) last = performance.now();
      else if (performance.now() - last > 10_000)
        throw new Error(`${isolation}: ${records} of ${expected} records, then nothing for 10 s`);
      records += batch.length;
    }
    return { records, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await disconnect(c);
  }
}

/** Samsa's TopicFetcher: records counted from batch headers, aborted ones dropped as a client would. */
async function fetcherConsume(bootstrap: string, topic: string, isolationLevel: number, expected: number) {
  const client = new KafkaClient({ bootstrap, clientId: 'samsa-txn-bench' });
  try {
    const md = await client.metadata([topic]);
    const t = md.topics.get(topic)!;
    const fetcher = new TopicFetcher(client, t, {
      isolationLevel,
      partitionMaxBytes: 4 * MB,
      maxWaitMs: 100,
      recycleBuffers: true,
      verifyCrc: false,
    });
    const partitions = t.partitions.map((p) => p.partition);
    for (const [p, o] of await fetcher.listOffsets(partitions, EARLIEST_TIMESTAMP)) fetcher.positions.set(p, o);
    let records = 0;
    const t0 = performance.now();
    let last = t0;
    while (records < expected) {
      const fetched = await fetcher.fetch();
      let got = 0;
      for (const f of fetched) {
        const filter = isolationLevel === 1 ? new AbortedTransactionFilter(f.abortedTransactions) : undefined;
        for (const e of f.batches) {
          const control = isControl(e.header.attributes);
          let abortMarker = false;
          if (control && filter !== undefined) {
            const d = await decodeBatch(f.buf.subarray(e.offset, e.offset + e.size), { verifyCrc: false });
            abortMarker = d.records[0] !== undefined && readControlRecord(d.records[0]).type === 'abort';
          }
          if (filter?.skip(e.header, abortMarker) === true || control) continue;
          const skipped = f.fetchOffset > e.header.baseOffset ? Number(f.fetchOffset - e.header.baseOffset) : 0;
          got += Math.max(0, e.header.recordCount - skipped);
        }
      }
      records += got;
      if (got > 0) last = performance.now();
      else if (performance.now() - last > 10_000)
        throw new Error(
          `fetcher isolation ${isolationLevel}: ${records} of ${expected} records, then nothing for 10 s`,
        );
    }
    return { records, seconds: (performance.now() - t0) / 1000 };
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Commit latency over the wire

const RETRY_CODES = new Set<number>([
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.CONCURRENT_TRANSACTIONS,
]);

async function wireLatency(bootstrap: string, pid: number, topic: string, txns: number, perTxn: number) {
  const client = new KafkaClient({ bootstrap, clientId: 'samsa-txn-bench-wire' });
  const transactionalId = `bench-wire-${Date.now()}`;
  try {
    await client.metadata([topic]);
    let init: { producerId: bigint; producerEpoch: number } | undefined;
    for (let i = 0; init === undefined; i++) {
      const r = await client.request(ApiKey.InitProducerId, 4, { transactionalId, transactionTimeoutMs: 60_000 });
      if (r.errorCode === ErrorCode.NONE) init = r;
      else if (!RETRY_CODES.has(r.errorCode) || i > 200) throw new Error(`InitProducerId: ${errorName(r.errorCode)}`);
      else await sleep(50);
    }
    const { producerId, producerEpoch } = init;
    const sequences = new Array<number>(PARTITIONS).fill(0);
    const partitions = Array.from({ length: PARTITIONS }, (_, p) => p);
    const add = async (): Promise<number> => {
      for (let retries = 0; ; retries++) {
        const r = await client.request(ApiKey.AddPartitionsToTxn, 3, {
          v3AndBelowTransactionalId: transactionalId,
          v3AndBelowProducerId: producerId,
          v3AndBelowProducerEpoch: producerEpoch,
          v3AndBelowTopics: [{ name: topic, partitions }],
        });
        const code =
          r.errorCode ||
          (r.resultsByTopicV3AndBelow[0]?.resultsByPartition.find((p) => p.partitionErrorCode !== 0)
            ?.partitionErrorCode ??
            0);
        if (code === ErrorCode.NONE) return retries;
        if (code !== ErrorCode.CONCURRENT_TRANSACTIONS || retries > 10_000)
          throw new Error(`AddPartitionsToTxn: ${errorName(code)}`);
        await sleep(1);
      }
    };
    const addMs: number[] = [];
    const produceMs: number[] = [];
    const endMs: number[] = [];
    const readyMs: number[] = [];
    let retried = 0;
    let retries = 0;
    let endSentAt: number | undefined;
    const cpu0 = cpuSeconds(pid);
    const t0 = performance.now();
    for (let i = 0; i <= txns; i++) {
      const a0 = performance.now();
      const n = await add();
      const a1 = performance.now();
      if (endSentAt !== undefined) {
        readyMs.push(a1 - endSentAt);
        if (n > 0) retried++;
        retries += n;
      }
      if (i === txns) break; // the last AddPartitionsToTxn only closes the previous measurement
      addMs.push(a1 - a0);
      const partitionData = partitions.map((p) => {
        const count = Math.floor(perTxn / PARTITIONS) + (p < perTxn % PARTITIONS ? 1 : 0);
        const records = buildRecordBatchSync({
          records: Array.from({ length: count }, () => ({ key: null, value: VALUE })),
          producerId,
          producerEpoch,
          baseSequence: sequences[p],
          transactional: true,
        });
        sequences[p]! += count;
        return { index: p, records };
      });
      const p0 = performance.now();
      const pr = await client.request(ApiKey.Produce, 9, {
        transactionalId,
        acks: -1,
        timeoutMs: 30_000,
        topicData: [{ name: topic, partitionData }],
      });
      for (const part of pr.responses[0]!.partitionResponses)
        if (part.errorCode !== 0) throw new Error(`Produce: ${errorName(part.errorCode)}`);
      const p1 = performance.now();
      produceMs.push(p1 - p0);
      endSentAt = performance.now();
      const e = await client.request(ApiKey.EndTxn, 3, { transactionalId, producerId, producerEpoch, committed: true });
      if (e.errorCode !== 0) throw new Error(`EndTxn: ${errorName(e.errorCode)}`);
      endMs.push(performance.now() - endSentAt);
    }
    const cycleMs = (performance.now() - t0) / txns;
    const cpuMsPerTxn = ((cpuSeconds(pid) - cpu0) * 1000) / txns;
    return { addMs, produceMs, endMs, readyMs, retried, retries, cycleMs, cpuMsPerTxn };
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------

// kafkajs 2.2.4's request queue sets negative timeouts on Node 24 (harmless; Node warns each time).
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'TimeoutNegativeWarning') console.error(w);
});

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'samsa-bench-txn-'));
  const broker = await startBroker(dataDir);
  // A client crash (a native one included) must not leave the broker running.
  process.once('exit', () => broker.child.kill('SIGKILL'));
  const rows: [string, string][] = [];
  const log = (s: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  try {
    const kafka = new Kafka({
      clientId: 'samsa-txn-bench',
      brokers: [broker.bootstrap],
      logLevel: logLevel.NOTHING,
      retry: { retries: 8, initialRetryTime: 50, maxRetryTime: 1000 },
    });
    const admin = kafka.admin();
    await admin.connect();
    let topicNo = 0;
    const newTopic = async (name: string) => {
      const topic = `${name}-${topicNo++}`;
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
      return topic;
    };
    const mbs = (records: number, seconds: number) => (records * RECORD_BYTES) / MB / seconds;

    if (PARTS.has('produce')) {
      for (const client of CLIENTS) {
        const base = await produceRun(client, broker, kafka, await newTopic(`idem-${client}`), 0);
        const baseMbs = mbs(base.records, base.seconds);
        log(`${client} idempotent: ${fmt(baseMbs)} MB/s`);
        rows.push([
          `${client}: idempotent produce, no transactions (${int(base.records)} records)`,
          `${fmt(baseMbs)} MB/s, ${int(base.records / base.seconds)} records/s, broker CPU ${fmt(base.cpuPerGiB)} s/GiB`,
        ]);
        for (const size of TXN_SIZES) {
          const r = await produceRun(client, broker, kafka, await newTopic(`txn${size}-${client}`), size);
          const m = mbs(r.records, r.seconds);
          log(`${client} transactions of ${size}: ${fmt(m)} MB/s`);
          rows.push([
            `${client}: transactions of ${size} record${size === 1 ? '' : 's'} (${int(r.records)} records, ${fmt(r.seconds)} s)`,
            `${fmt(m, m < 10 ? 2 : 1)} MB/s, ${int(r.records / r.seconds)} records/s, ${int(r.transactions / r.seconds)} commits/s, ` +
              `${fmt(m / baseMbs, 3)}x baseline, broker CPU ${fmt(r.cpuPerGiB)} s/GiB = ${fmt(r.cpuMsPerTxn, 2)} ms/commit`,
          ]);
        }
      }
    }

    if (PARTS.has('consume')) {
      // Transactions of 100 records, every 10th aborted: ~90% committed.
      const topic = await newTopic('mixed');
      const producer = await RdkafkaProducer.create(broker.bootstrap, topic, `bench-${topic}`);
      let committed = 0;
      let aborted = 0;
      const t0 = performance.now();
      for (let i = 0; committed + aborted < RECORDS; i++) {
        const abort = i % 10 === 9;
        await producer.transaction(committed + aborted, 100, abort);
        if (abort) aborted += 100;
        else committed += 100;
      }
      await producer.close();
      log(
        `mixed topic written: ${committed} committed, ${aborted} aborted in ${fmt((performance.now() - t0) / 1000)} s`,
      );
      // Rounds alternate the four readers (page cache and the VM's load even out); medians count.
      const all = committed + aborted;
      const readers: [string, number, () => Promise<ConsumeResult>][] = [
        ['librdkafka read_uncommitted', all, () => rdkafkaConsume(broker.bootstrap, topic, 'read_uncommitted', all)],
        [
          'librdkafka read_committed',
          committed,
          () => rdkafkaConsume(broker.bootstrap, topic, 'read_committed', committed),
        ],
        ['Samsa fetcher read_uncommitted', all, () => fetcherConsume(broker.bootstrap, topic, 0, all)],
        ['Samsa fetcher read_committed', committed, () => fetcherConsume(broker.bootstrap, topic, 1, committed)],
      ];
      const rates = readers.map(() => [] as number[]);
      const cpus = readers.map(() => [] as number[]);
      for (let round = 0; round < ROUNDS; round++) {
        for (const [i, [name, , run]] of readers.entries()) {
          const cpu0 = cpuSeconds(broker.child.pid!);
          const r = await run();
          rates[i]!.push(r.records / r.seconds);
          cpus[i]!.push((cpuSeconds(broker.child.pid!) - cpu0) / ((all * RECORD_BYTES) / (1024 * MB)));
          log(`round ${round + 1}, ${name}: ${fmt(mbs(r.records, r.seconds))} MB/s`);
        }
      }
      const medians = rates.map((xs) => pct(xs, 0.5));
      for (const [i, [name, expected]] of readers.entries()) {
        const m = medians[i]!;
        rows.push([
          `consume ${int(all)} records (10% aborted), ${name} (${int(expected)} records)`,
          `${fmt((m * RECORD_BYTES) / MB)} MB/s, ${int(m)} records/s (median of ${ROUNDS}: ${rates[i]!.map((x) => fmt((x * RECORD_BYTES) / MB)).join(', ')} MB/s), broker CPU ${fmt(pct(cpus[i]!, 0.5), 2)} s/GiB read`,
        ]);
      }
      rows.push([
        'read_committed / read_uncommitted, records/s (librdkafka; fetcher)',
        `${fmt(medians[1]! / medians[0]!, 2)}x; ${fmt(medians[3]! / medians[2]!, 2)}x`,
      ]);
    }

    if (PARTS.has('latency')) {
      const topic = await newTopic('latency');
      const producer = await RdkafkaProducer.create(broker.bootstrap, topic, `bench-${topic}`);
      const send: number[] = [];
      const commit: number[] = [];
      await producer.transaction(0, 10);
      const cpu0 = cpuSeconds(broker.child.pid!);
      const t0 = performance.now();
      for (let i = 0; i < LATENCY_TXNS; i++) {
        const r = await producer.timedTransaction(i * 10, 10);
        send.push(r.send);
        commit.push(r.commit);
      }
      const cycle = (performance.now() - t0) / LATENCY_TXNS;
      const cpuMs = ((cpuSeconds(broker.child.pid!) - cpu0) * 1000) / LATENCY_TXNS;
      await producer.close();
      rows.push([
        `rdkafka, ${LATENCY_TXNS} transactions of 10 records: produce + flush`,
        `${lat(send)} (one transaction every ${fmt(cycle, 2)} ms, broker CPU ${fmt(cpuMs, 2)} ms per transaction)`,
      ]);
      rows.push([`rdkafka, ${LATENCY_TXNS} transactions of 10 records: commitTransaction()`, lat(commit)]);
      const w = await wireLatency(
        broker.bootstrap,
        broker.child.pid!,
        await newTopic('latency-wire'),
        LATENCY_TXNS,
        10,
      );
      rows.push([
        `wire, ${LATENCY_TXNS} transactions of 10 records, one at a time`,
        `one transaction every ${fmt(w.cycleMs, 2)} ms (${int(1000 / w.cycleMs)}/s), broker CPU ${fmt(w.cpuMsPerTxn, 2)} ms per transaction`,
      ]);
      rows.push([`wire: AddPartitionsToTxn`, lat(w.addMs)]);
      rows.push([`wire: transactional Produce (acks=all)`, lat(w.produceMs)]);
      rows.push([`wire: EndTxn (commit) round trip`, lat(w.endMs)]);
      rows.push([
        'wire: EndTxn sent → next AddPartitionsToTxn accepted (markers written)',
        `${lat(w.readyMs)}; ${w.retried} of ${LATENCY_TXNS} got CONCURRENT_TRANSACTIONS first (${w.retries} retries at 1 ms)`,
      ]);
    }
    await admin.disconnect();
  } finally {
    broker.child.kill('SIGTERM');
    await new Promise((r) => broker.child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(
    `${PARTITIONS} partitions, 1 KiB records, up to ${TOTAL_MB} MiB or ${MAX_SECONDS} s per produce run (records/s over the whole run)`,
  );
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
}

await main();
