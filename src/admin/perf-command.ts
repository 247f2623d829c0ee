/**
 * `samsa perf produce|consume`: load generators in the manner of Kafka's
 * kafka-producer-perf-test and kafka-consumer-perf-test, built to saturate a broker.
 *
 * perf produce keeps up to --max-in-flight Produce requests outstanding (pipelined on one
 * connection per leader); each request carries one batch per partition of one random payload
 * repeated (PerfBatchFactory: records encoded once, a fresh header and CRC per batch). With --throughput R, record i is due at start + i/R and its latency runs from
 * that moment to its acknowledgement, so time spent waiting for a free in-flight slot counts
 * (no coordinated omission); unthrottled, latency runs from when its request was built.
 * Percentiles come from a histogram of every record, not a sample.
 *
 * perf consume reads the topic from the beginning with Fetch (no group), one request per leader
 * at a time, and prints Kafka's CSV summary.
 */
import { randomInt } from 'node:crypto';
import { ApiKey } from '../network/api-message-types.ts';
import type { KafkaClient } from '../network/kafka-client.ts';
import { ErrorCode, errorName } from '../protocol/error-codes.ts';
import type { CompressionType } from '../protocol/records/batch-header.ts';
import { isControl } from '../protocol/records/batch-header.ts';
import { decodeBatch } from '../protocol/records/record.ts';
import { LatencyHistogram } from '../util/latency-histogram.ts';
import {
  acksOption,
  BOOTSTRAP_USAGE,
  bootstrapOption,
  createClient,
  intOption,
  parseCommandArgs,
  requireOption,
  runCommand,
  sleep,
  UsageError,
  waitForTopic,
} from './cli-common.ts';
import { PerfBatchFactory } from './perf-batches.ts';
import { compressionOption, type PartitionBatch, produceBatches } from './produce-request.ts';
import { printLine, progress } from './progress.ts';
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, TopicFetcher } from './topic-fetcher.ts';

export const PERF_PRODUCE_USAGE = `Usage: samsa perf produce --topic T --num-records N --record-size S [options]

Options:
${BOOTSTRAP_USAGE}
  --topic T                topic to write to
  --num-records N          records to send
  --record-size S          value size in bytes (one random payload, no key)
  --throughput R           target records/sec; -1 for as fast as possible (default -1)
  --acks -1|0|1|all        acknowledgements to wait for (default -1)
  --batch-size BYTES       largest batch per partition and request (default 65536)
  --max-in-flight N        Produce requests outstanding per run (default 5)
  --partitions P           create the topic with P partitions if it does not exist
  --compression CODEC      none|gzip|snappy|lz4|zstd (default none)
  --reporting-interval MS  progress line interval (default 5000)
  --timeout-ms MS          request timeout (default 30000)
  --warmup-records N       leave the first N records out of the steady-state latency line`;

export const PERF_CONSUME_USAGE = `Usage: samsa perf consume --topic T --messages N [options]

Options:
${BOOTSTRAP_USAGE}
  --topic T                topic to read from its beginning
  --messages N             records to consume
  --from-latest            start at the end instead (for a concurrent producer)
  --fetch-size BYTES       per-partition Fetch limit (default 1048576)
  --decode                 decode records and count key+value bytes (default: count batch bytes)
  --timeout-ms MS          give up after MS without a record (default 10000)
  --reporting-interval MS  progress line interval (default 5000)`;

export const PERF_USAGE = `Usage: samsa perf produce|consume [options]

${PERF_PRODUCE_USAGE}

${PERF_CONSUME_USAGE}`;

const MB = 1024 * 1024;

export function perfCommand(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  switch (action) {
    case 'produce':
      return runCommand('perf produce', PERF_PRODUCE_USAGE, () => perfProduce(rest));
    case 'consume':
      return runCommand('perf consume', PERF_CONSUME_USAGE, () => perfConsume(rest));
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(PERF_USAGE);
      return Promise.resolve(action === undefined ? 2 : 0);
    default:
      console.error(`samsa perf: unknown action '${action}' (see 'samsa perf --help')`);
      return Promise.resolve(2);
  }
}

const PRODUCE_OPTIONS = {
  bootstrap: { type: 'string' },
  topic: { type: 'string' },
  'num-records': { type: 'string' },
  'record-size': { type: 'string' },
  throughput: { type: 'string' },
  acks: { type: 'string' },
  'batch-size': { type: 'string' },
  'max-in-flight': { type: 'string' },
  partitions: { type: 'string' },
  compression: { type: 'string' },
  'reporting-interval': { type: 'string' },
  'timeout-ms': { type: 'string' },
  'warmup-records': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface PerfProduceSettings {
  topic: string;
  numRecords: number;
  recordSize: number;
  throughput: number;
  acks: number;
  batchSize: number;
  maxInFlight: number;
  partitions: number | undefined;
  compression: CompressionType;
  reportingIntervalMs: number;
  timeoutMs: number;
  /** The first records are sent but left out of the steady-state latency figures (KIP-1052). */
  warmupRecords: number;
}

async function perfProduce(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, PRODUCE_OPTIONS);
  if (values.help === true) {
    console.log(PERF_PRODUCE_USAGE);
    return 0;
  }
  const bootstrap = bootstrapOption(values.bootstrap);
  const throughput = intOption(values.throughput, 'throughput', { min: -1 }) ?? -1;
  if (throughput === 0) throw new UsageError('--throughput must be positive, or -1 for unthrottled');
  const s: PerfProduceSettings = {
    topic: requireOption(values.topic, 'topic'),
    numRecords: requireOption(intOption(values['num-records'], 'num-records', { min: 1 }), 'num-records'),
    recordSize: requireOption(intOption(values['record-size'], 'record-size', { min: 0, max: 64 * MB }), 'record-size'),
    throughput,
    warmupRecords: intOption(values['warmup-records'], 'warmup-records', { min: 0 }) ?? 0,
    acks: acksOption(values.acks, -1),
    batchSize: intOption(values['batch-size'], 'batch-size', { min: 1, max: 256 * MB }) ?? 65536,
    maxInFlight: intOption(values['max-in-flight'], 'max-in-flight', { min: 1, max: 10_000 }) ?? 5,
    partitions: intOption(values.partitions, 'partitions', { min: 1, max: 100_000 }),
    compression: compressionOption(values.compression),
    reportingIntervalMs: intOption(values['reporting-interval'], 'reporting-interval', { min: 1 }) ?? 5000,
    timeoutMs: intOption(values['timeout-ms'], 'timeout-ms', { min: 1 }) ?? 30_000,
  };
  const client = createClient(bootstrap, s.timeoutMs);
  try {
    return await runPerfProduce(client, s, printLine);
  } finally {
    client.close();
  }
}

/** Creates the topic with `partitions` partitions unless it exists. */
async function ensureTopic(client: KafkaClient, topic: string, partitions: number, timeoutMs: number): Promise<void> {
  const conn = await client.connect();
  const response = await conn.request(ApiKey.CreateTopics, {
    topics: [
      {
        name: topic,
        numPartitions: partitions,
        replicationFactor: conn.versionFor(ApiKey.CreateTopics) >= 4 ? -1 : 1,
        assignments: [],
        configs: [],
      },
    ],
    timeoutMs,
    validateOnly: false,
  });
  const result = response.topics[0];
  if (
    result !== undefined &&
    result.errorCode !== ErrorCode.NONE &&
    result.errorCode !== ErrorCode.TOPIC_ALREADY_EXISTS
  ) {
    throw new UsageError(
      `cannot create topic '${topic}': ${errorName(result.errorCode)}${result.errorMessage ? `: ${result.errorMessage}` : ''}`,
    );
  }
}

/** Approximate encoded size of an unkeyed record of `valueSize` bytes, for batch sizing. */
function recordOverhead(valueSize: number): number {
  return 1 + 1 + 1 + 5 + 1 + (valueSize < 64 ? 1 : valueSize < 8192 ? 2 : 3) + 1;
}

function formatNumber(n: number, digits: number): string {
  return n.toFixed(digits);
}

/** Runs the produce load; `print` receives each progress line and the summary. Exit code. */
export async function runPerfProduce(
  client: KafkaClient,
  s: PerfProduceSettings,
  print: (line: string) => void,
): Promise<number> {
  if (s.partitions !== undefined) await ensureTopic(client, s.topic, s.partitions, s.timeoutMs);
  const topic = await waitForTopic(client, s.topic, { autoCreate: true, timeoutMs: 30_000 });
  const partitions = topic.partitions.map((p) => p.partition);
  if (s.partitions !== undefined && partitions.length !== s.partitions) {
    print(`Topic ${s.topic} exists with ${partitions.length} partitions; using them all.`);
  }

  // Kafka's perf test sends one random payload of upper-case letters over and over.
  const payload = Buffer.allocUnsafe(s.recordSize);
  for (let i = 0; i < payload.length; i++) payload[i] = 65 + randomInt(26);
  const recordsPerBatch = Math.max(1, Math.floor((s.batchSize - 61) / (s.recordSize + recordOverhead(s.recordSize))));
  const recordsPerRequest = recordsPerBatch * partitions.length;
  const batches = new PerfBatchFactory(payload, recordsPerBatch, s.compression);

  const histogram = new LatencyHistogram();
  const steady = new LatencyHistogram();
  let windowCount = 0;
  let windowLatencySum = 0;
  let windowMax = 0;
  let windowStart = performance.now();
  let acked = 0;
  let failed = 0;
  let errorsShown = 0;
  let sent = 0;
  let inFlight = 0;
  let lastAck = 0;
  let fatal: unknown;
  const slotWaiters: (() => void)[] = [];
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);

  const start = performance.now();
  const msPerRecord = s.throughput > 0 ? 1000 / s.throughput : 0;

  const report = setInterval(() => {
    const now = performance.now();
    const elapsed = (now - windowStart) / 1000;
    print(
      `${windowCount} records sent, ${formatNumber(windowCount / elapsed, 1)} records/sec (${formatNumber((windowCount * s.recordSize) / MB / elapsed, 2)} MB/sec), ${formatNumber(windowCount === 0 ? 0 : windowLatencySum / windowCount, 1)} ms avg latency, ${formatNumber(windowMax, 1)} ms max latency.`,
    );
    windowStart = now;
    windowCount = 0;
    windowLatencySum = 0;
    windowMax = 0;
  }, s.reportingIntervalMs);
  // On a terminal: a progress bar on stderr.
  const shown = progress(`perf produce ${s.topic}`);
  shown.update(0, s.numRecords, true);
  const showing = shown.active ? setInterval(() => shown.update(acked, s.numRecords), 250) : undefined;

  const recordLatency = (ms: number, n: number, firstIndex: number): void => {
    histogram.record(ms, n);
    const steadyCount = Math.min(n, firstIndex + n - s.warmupRecords);
    if (steadyCount > 0) steady.record(ms, steadyCount);
    windowCount += n;
    windowLatencySum += ms * n;
    if (ms > windowMax) windowMax = ms;
  };

  const sendRequest = async (plan: { partition: number; count: number }[], firstIndex: number, sentAt: number) => {
    const request: PartitionBatch[] = [];
    const timestamp = BigInt(Date.now());
    for (const p of plan) request.push({ partition: p.partition, batch: await batches.build(p.count, timestamp) });
    const results = await produceBatches(client, s.topic, request, s.acks, s.timeoutMs);
    const ackAt = performance.now();
    // Answered (or failed without a transport error): the request's bytes were written, so its
    // buffers can be reused. A timed-out request may still be queued on the socket: not reused.
    if (
      !results.some((r) => r.errorCode === ErrorCode.REQUEST_TIMED_OUT || r.errorCode === ErrorCode.NETWORK_EXCEPTION)
    ) {
      for (const b of request) batches.release(b.batch);
    }
    lastAck = ackAt;
    const byPartition = new Map(results.map((r) => [r.partition, r]));
    let index = firstIndex;
    for (const p of plan) {
      const r = byPartition.get(p.partition);
      if (r === undefined || r.errorCode !== ErrorCode.NONE) {
        failed += p.count;
        if (errorsShown++ < 5) {
          const name = r === undefined ? 'no response' : errorName(r.errorCode);
          console.error(
            `samsa perf: ${p.count} records to ${s.topic}-${p.partition} failed: ${name}${r?.errorMessage ? `: ${r.errorMessage}` : ''}`,
          );
        }
        if (
          r !== undefined &&
          (r.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER || r.errorCode === ErrorCode.LEADER_NOT_AVAILABLE)
        ) {
          await client.metadata([s.topic]).catch(() => undefined);
        }
        index += p.count;
        continue;
      }
      acked += p.count;
      if (msPerRecord > 0) {
        for (let j = 0; j < p.count; j++, index++) recordLatency(ackAt - (start + index * msPerRecord), 1, index);
      } else {
        recordLatency(ackAt - sentAt, p.count, index);
        index += p.count;
      }
    }
  };

  let nextPartition = 0;
  try {
    while (sent < s.numRecords && !stop.signal.aborted && fatal === undefined) {
      if (inFlight >= s.maxInFlight) {
        await new Promise<void>((resolve) => slotWaiters.push(resolve));
        continue;
      }
      let count = Math.min(s.numRecords - sent, recordsPerRequest);
      if (msPerRecord > 0) {
        const elapsed = performance.now() - start;
        // Record i is due at start + i * msPerRecord.
        const due = Math.floor(elapsed / msPerRecord) + 1 - sent;
        if (due <= 0) {
          await sleep(Math.max(1, sent * msPerRecord - elapsed));
          continue;
        }
        count = Math.min(count, due);
      }
      const plan: { partition: number; count: number }[] = [];
      for (let left = count; left > 0; ) {
        const n = Math.min(left, recordsPerBatch);
        plan.push({ partition: partitions[nextPartition]!, count: n });
        nextPartition = (nextPartition + 1) % partitions.length;
        left -= n;
      }
      const firstIndex = sent;
      sent += count;
      inFlight++;
      sendRequest(plan, firstIndex, performance.now())
        .catch((err: unknown) => {
          fatal ??= err;
        })
        .finally(() => {
          inFlight--;
          slotWaiters.shift()?.();
        });
    }
    while (inFlight > 0) await new Promise<void>((resolve) => slotWaiters.push(resolve));
  } finally {
    clearInterval(report);
    clearInterval(showing);
    shown.end();
    process.off('SIGINT', onSignal);
  }
  if (fatal !== undefined) throw fatal;

  const elapsedSec = Math.max(1e-9, ((lastAck || performance.now()) - start) / 1000);
  print(
    `${acked} records sent, ${formatNumber(acked / elapsedSec, 1)} records/sec (${formatNumber((acked * s.recordSize) / MB / elapsedSec, 2)} MB/sec), ` +
      `${formatNumber(histogram.meanMs, 2)} ms avg latency, ${formatNumber(histogram.maxMs, 2)} ms max latency, ` +
      `${formatNumber(histogram.percentileMs(0.5), 2)} ms 50th, ${formatNumber(histogram.percentileMs(0.95), 2)} ms 95th, ` +
      `${formatNumber(histogram.percentileMs(0.99), 2)} ms 99th, ${formatNumber(histogram.percentileMs(0.999), 2)} ms 99.9th.`,
  );
  if (s.warmupRecords > 0 && s.warmupRecords < acked) {
    const n = acked - s.warmupRecords;
    print(
      `steady state (after ${s.warmupRecords} warm-up records): ${n} records, ` +
        `${formatNumber(steady.meanMs, 2)} ms avg latency, ${formatNumber(steady.maxMs, 2)} ms max latency, ` +
        `${formatNumber(steady.percentileMs(0.5), 2)} ms 50th, ${formatNumber(steady.percentileMs(0.95), 2)} ms 95th, ` +
        `${formatNumber(steady.percentileMs(0.99), 2)} ms 99th, ${formatNumber(steady.percentileMs(0.999), 2)} ms 99.9th.`,
    );
  }
  if (failed > 0) {
    console.error(`samsa perf: ${failed} records failed`);
    return 1;
  }
  return 0;
}

const CONSUME_OPTIONS = {
  bootstrap: { type: 'string' },
  topic: { type: 'string' },
  messages: { type: 'string' },
  'from-latest': { type: 'boolean' },
  'fetch-size': { type: 'string' },
  decode: { type: 'boolean' },
  'timeout-ms': { type: 'string' },
  'reporting-interval': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface PerfConsumeSettings {
  topic: string;
  messages: number;
  fromLatest: boolean;
  fetchSize: number;
  decode: boolean;
  timeoutMs: number;
  reportingIntervalMs: number;
}

async function perfConsume(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, CONSUME_OPTIONS);
  if (values.help === true) {
    console.log(PERF_CONSUME_USAGE);
    return 0;
  }
  const bootstrap = bootstrapOption(values.bootstrap);
  const s: PerfConsumeSettings = {
    topic: requireOption(values.topic, 'topic'),
    messages: requireOption(intOption(values.messages, 'messages', { min: 1 }), 'messages'),
    fromLatest: values['from-latest'] === true,
    fetchSize: intOption(values['fetch-size'], 'fetch-size', { min: 1 }) ?? 1024 * 1024,
    decode: values.decode === true,
    timeoutMs: intOption(values['timeout-ms'], 'timeout-ms', { min: 1 }) ?? 10_000,
    reportingIntervalMs: intOption(values['reporting-interval'], 'reporting-interval', { min: 1 }) ?? 5000,
  };
  const client = createClient(bootstrap);
  try {
    return await runPerfConsume(client, s, printLine);
  } finally {
    client.close();
  }
}

/** Kafka's perf-tool date format, `yyyy-MM-dd HH:mm:ss:SSS` in local time. */
function formatDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}:${p(d.getMilliseconds(), 3)}`;
}

export async function runPerfConsume(
  client: KafkaClient,
  s: PerfConsumeSettings,
  print: (line: string) => void,
): Promise<number> {
  const startWall = Date.now();
  const topic = await waitForTopic(client, s.topic, { timeoutMs: 30_000 });
  const partitions = topic.partitions.map((p) => p.partition);
  // Every fetch is counted before the next one is sent, so its receive buffer can be reused.
  const fetcher = new TopicFetcher(client, topic, {
    partitionMaxBytes: s.fetchSize,
    maxWaitMs: 500,
    recycleBuffers: true,
  });
  fetcher.resetTo = s.fromLatest ? 'latest' : 'earliest';
  const offsets = await fetcher.listOffsets(partitions, s.fromLatest ? LATEST_TIMESTAMP : EARLIEST_TIMESTAMP);
  for (const [p, offset] of offsets) fetcher.positions.set(p, offset);

  let records = 0;
  let bytes = 0;
  let windowRecords = 0;
  let windowBytes = 0;
  const fetchStart = performance.now();
  let windowStart = fetchStart;
  let lastRecordAt = fetchStart;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  const report = setInterval(() => {
    const now = performance.now();
    const elapsed = (now - windowStart) / 1000;
    print(
      `${windowRecords} records consumed, ${formatNumber(windowRecords / elapsed, 1)} records/sec (${formatNumber(windowBytes / MB / elapsed, 2)} MB/sec).`,
    );
    windowStart = now;
    windowRecords = 0;
    windowBytes = 0;
  }, s.reportingIntervalMs);
  // On a terminal: a progress bar on stderr.
  const shown = progress(`perf consume ${s.topic}`);
  shown.update(0, s.messages, true);
  const showing = shown.active ? setInterval(() => shown.update(records, s.messages), 250) : undefined;

  let timedOut = false;
  try {
    while (records < s.messages && !stop.signal.aborted) {
      if (performance.now() - lastRecordAt > s.timeoutMs) {
        timedOut = true;
        break;
      }
      const fetched = await fetcher.fetch();
      for (const f of fetched) {
        for (const entry of f.batches) {
          if (isControl(entry.header.attributes)) continue;
          let n = 0;
          let b = 0;
          if (s.decode) {
            const decoded = await decodeBatch(f.buf.subarray(entry.offset, entry.offset + entry.size), {
              verifyCrc: false,
            });
            for (const r of decoded.records) {
              if (r.offset < f.fetchOffset) continue;
              n++;
              b += (r.key?.length ?? 0) + (r.value?.length ?? 0);
            }
          } else {
            // Records below the fetch offset (the start of the first batch) were counted before.
            const skipped =
              f.fetchOffset > entry.header.baseOffset ? Number(f.fetchOffset - entry.header.baseOffset) : 0;
            n = Math.max(0, entry.header.recordCount - skipped);
            b = n === 0 ? 0 : entry.size;
          }
          records += n;
          bytes += b;
          windowRecords += n;
          windowBytes += b;
        }
      }
      if (fetched.some((f) => f.batches.length > 0)) lastRecordAt = performance.now();
    }
  } finally {
    clearInterval(report);
    clearInterval(showing);
    shown.end();
    process.off('SIGINT', onSignal);
  }
  const fetchMs = Math.max(1, performance.now() - fetchStart);
  const endWall = Date.now();
  const totalSec = Math.max(0.001, (endWall - startWall) / 1000);
  const mb = bytes / MB;
  if (timedOut) {
    console.error(
      `WARNING: Exiting before consuming the expected number of messages: timeout (${s.timeoutMs} ms) exceeded.`,
    );
  }
  print(
    'start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec',
  );
  print(
    `${formatDate(startWall)}, ${formatDate(endWall)}, ${formatNumber(mb, 4)}, ${formatNumber(mb / totalSec, 4)}, ${records}, ${formatNumber(records / totalSec, 4)}, 0, ${Math.round(fetchMs)}, ${formatNumber(mb / (fetchMs / 1000), 4)}, ${formatNumber(records / (fetchMs / 1000), 4)}`,
  );
  return timedOut ? 1 : 0;
}
