/**
 * `samsa consume`: prints a topic's records to stdout, like kafka-console-consumer with its
 * DefaultMessageFormatter. It reads partitions with Fetch directly (no consumer group), from the
 * beginning, the end (default) or a given offset, and exits after --max-messages, after
 * --timeout-ms without a record, or on Ctrl-C / SIGTERM, printing "Processed a total of N
 * messages" on stderr as Kafka's tool does.
 */

import { type KafkaClient, KafkaClientError } from '../network/kafka-client.ts';
import { isControl, timestampTypeOf } from '../protocol/records/batch-header.ts';
import { readControlRecord } from '../protocol/records/control-record.ts';
import { decodeBatch } from '../protocol/records/record.ts';
import {
  BOOTSTRAP_USAGE,
  bootstrapOption,
  createClient,
  intOption,
  OutputWriter,
  parseCommandArgs,
  requireOption,
  runCommand,
  UsageError,
  waitForTopic,
} from './cli-common.ts';
import {
  AbortedTransactionFilter,
  EARLIEST_TIMESTAMP,
  IsolationLevel,
  LATEST_TIMESTAMP,
  TopicFetcher,
} from './topic-fetcher.ts';

export const CONSUME_USAGE = `Usage: samsa consume --topic T [options]

Prints records as they arrive; Ctrl-C to stop.

Options:
${BOOTSTRAP_USAGE}
  --topic T                topic to read
  --from-beginning         start at each partition's earliest offset
  --offset N|earliest|latest
                           start at offset N (default: latest, i.e. only new records)
  --partition P            read only partition P (default: every partition)
  --max-messages N         exit after N records
  --timeout-ms MS          exit when no record arrives for MS milliseconds
  --print-key              print the key before the value
  --print-offset           print Offset:N
  --print-timestamp        print CreateTime:T or LogAppendTime:T
  --print-headers          print headers as k1:v1,k2:v2 (NO_HEADERS when none)
  --print-partition        print Partition:P
  --separator SEP          between printed fields (default TAB)
  --isolation-level L      read_uncommitted (default) or read_committed
  --max-wait-ms MS         Fetch long-poll time (default 500)
  --fetch-max-bytes BYTES  per-partition Fetch limit (default 1048576)`;

const OPTIONS = {
  bootstrap: { type: 'string' },
  topic: { type: 'string' },
  'from-beginning': { type: 'boolean' },
  offset: { type: 'string' },
  partition: { type: 'string' },
  'max-messages': { type: 'string' },
  'timeout-ms': { type: 'string' },
  'print-key': { type: 'boolean' },
  'print-offset': { type: 'boolean' },
  'print-timestamp': { type: 'boolean' },
  'print-headers': { type: 'boolean' },
  'print-partition': { type: 'boolean' },
  separator: { type: 'string' },
  'isolation-level': { type: 'string' },
  'max-wait-ms': { type: 'string' },
  'fetch-max-bytes': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ConsumeSettings {
  topic: string;
  start: 'earliest' | 'latest' | bigint;
  partition: number | undefined;
  maxMessages: number | undefined;
  idleTimeoutMs: number | undefined;
  printKey: boolean;
  printOffset: boolean;
  printTimestamp: boolean;
  printHeaders: boolean;
  printPartition: boolean;
  separator: string;
  isolationLevel: number;
  maxWaitMs: number;
  partitionMaxBytes: number;
}

export function consumeCommand(argv: string[]): Promise<number> {
  return runCommand('consume', CONSUME_USAGE, async () => {
    const { values } = parseCommandArgs(argv, OPTIONS);
    if (values.help === true) {
      console.log(CONSUME_USAGE);
      return 0;
    }
    const bootstrap = bootstrapOption(values.bootstrap);
    let start: ConsumeSettings['start'] = 'latest';
    if (values['from-beginning'] === true) {
      if (values.offset !== undefined) throw new UsageError('--from-beginning and --offset exclude each other');
      start = 'earliest';
    } else if (values.offset === 'earliest' || values.offset === 'latest') {
      start = values.offset;
    } else if (values.offset !== undefined) {
      start = BigInt(intOption(values.offset, 'offset', { min: 0 })!);
    }
    const isolation = values['isolation-level'] ?? 'read_uncommitted';
    if (isolation !== 'read_uncommitted' && isolation !== 'read_committed') {
      throw new UsageError(`--isolation-level: '${isolation}' is not read_uncommitted or read_committed`);
    }
    const settings: ConsumeSettings = {
      topic: requireOption(values.topic, 'topic'),
      start,
      partition: intOption(values.partition, 'partition', { min: 0, max: 0x7fffffff }),
      maxMessages: intOption(values['max-messages'], 'max-messages', { min: 1 }),
      idleTimeoutMs: intOption(values['timeout-ms'], 'timeout-ms', { min: 1 }),
      printKey: values['print-key'] === true,
      printOffset: values['print-offset'] === true,
      printTimestamp: values['print-timestamp'] === true,
      printHeaders: values['print-headers'] === true,
      printPartition: values['print-partition'] === true,
      separator: values.separator ?? '\t',
      isolationLevel: isolation === 'read_committed' ? IsolationLevel.readCommitted : IsolationLevel.readUncommitted,
      maxWaitMs: intOption(values['max-wait-ms'], 'max-wait-ms', { min: 0, max: 60_000 }) ?? 500,
      partitionMaxBytes: intOption(values['fetch-max-bytes'], 'fetch-max-bytes', { min: 1 }) ?? 1024 * 1024,
    };
    const client = createClient(bootstrap);
    const out = new OutputWriter();
    let consumed = 0;
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      consumed = await consume(client, settings, out, stop.signal, (n) => {
        consumed = n;
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      client.close();
      await out.flush();
      console.error(`Processed a total of ${consumed} messages`);
    }
    return 0;
  });
}

/** Consumes until done; resolves with the number of records printed. */
export async function consume(
  client: KafkaClient,
  s: ConsumeSettings,
  out: OutputWriter,
  signal: AbortSignal,
  progress: (count: number) => void = () => {},
): Promise<number> {
  const topic = await waitForTopic(client, s.topic);
  const all = topic.partitions.map((p) => p.partition);
  if (s.partition !== undefined && !all.includes(s.partition)) {
    throw new UsageError(`--partition ${s.partition}: topic '${s.topic}' has partitions 0..${all.length - 1}`);
  }
  const partitions = s.partition === undefined ? all : [s.partition];
  const fetcher = new TopicFetcher(client, topic, {
    isolationLevel: s.isolationLevel,
    maxWaitMs: s.maxWaitMs,
    partitionMaxBytes: s.partitionMaxBytes,
  });
  fetcher.resetTo = s.start === 'earliest' ? 'earliest' : 'latest';
  if (typeof s.start === 'bigint') {
    for (const p of partitions) fetcher.positions.set(p, s.start);
  } else {
    const offsets = await fetcher.listOffsets(
      partitions,
      s.start === 'earliest' ? EARLIEST_TIMESTAMP : LATEST_TIMESTAMP,
    );
    for (const [p, offset] of offsets) fetcher.positions.set(p, offset);
  }

  const sep = s.separator;
  let count = 0;
  let lastRecordAt = Date.now();
  // Closing the client makes an in-flight long poll reject at once instead of waiting it out.
  const onAbort = () => client.close();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    while (!signal.aborted && !out.closed) {
      if (s.idleTimeoutMs !== undefined && Date.now() - lastRecordAt >= s.idleTimeoutMs) break;
      let fetched: Awaited<ReturnType<TopicFetcher['fetch']>>;
      try {
        fetched = await fetcher.fetch();
      } catch (err) {
        if (signal.aborted && err instanceof KafkaClientError) break;
        throw err;
      }
      for (const f of fetched) {
        const filter =
          s.isolationLevel === IsolationLevel.readCommitted
            ? new AbortedTransactionFilter(f.abortedTransactions)
            : undefined;
        for (const entry of f.batches) {
          const batchBuf = f.buf.subarray(entry.offset, entry.offset + entry.size);
          const control = isControl(entry.header.attributes);
          if (control || filter !== undefined) {
            let abortMarker = false;
            if (control) {
              const decoded = await decodeBatch(batchBuf, { verifyCrc: false });
              const first = decoded.records[0];
              abortMarker = first !== undefined && readControlRecord(first).type === 'abort';
            }
            if (filter?.skip(entry.header, abortMarker) === true || control) continue;
          }
          const { records } = await decodeBatch(batchBuf, { verifyCrc: false });
          const timestampLabel = timestampTypeOf(entry.header.attributes) === 1 ? 'LogAppendTime' : 'CreateTime';
          for (const r of records) {
            if (r.offset < f.fetchOffset) continue;
            let line = '';
            if (s.printTimestamp)
              line += r.timestamp < 0n ? `NO_TIMESTAMP${sep}` : `${timestampLabel}:${r.timestamp}${sep}`;
            if (s.printPartition) line += `Partition:${f.partition}${sep}`;
            if (s.printOffset) line += `Offset:${r.offset}${sep}`;
            if (s.printHeaders) {
              line +=
                r.headers.length === 0
                  ? 'NO_HEADERS'
                  : r.headers.map((h) => `${h.key}:${h.value === null ? 'null' : h.value.toString()}`).join(',');
              line += sep;
            }
            if (s.printKey) line += `${r.key === null ? 'null' : r.key.toString()}${sep}`;
            line += r.value === null ? 'null' : r.value.toString();
            const wait = out.write(`${line}\n`);
            if (wait !== undefined) await wait;
            count++;
            progress(count);
            lastRecordAt = Date.now();
            if (s.maxMessages !== undefined && count >= s.maxMessages) return count;
          }
        }
      }
      // Records of this round reach the terminal before the next long poll.
      await out.flush();
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  return count;
}
