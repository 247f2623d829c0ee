/**
 * `samsa consume`: prints a topic's records to stdout, like kafka-console-consumer (its
 * DefaultMessageFormatter and --print-* flags), kcat -C (-e, -o, -f) and rpk topic consume.
 * Without --group it reads partitions with Fetch directly, from the beginning, the end (default),
 * an offset, N records before the end, or a time; with --group it is a member of a KIP-848
 * consumer group that gets partitions from the coordinator and commits what it printed. It exits
 * after --max-messages, at the end of every partition (--exit-at-end), after --timeout-ms without
 * a record, or on Ctrl-C / SIGTERM, printing "Processed a total of N messages" on stderr as
 * Kafka's tool does. Output is bytes: keys and values are printed raw, or as hex or base64.
 */

import { type KafkaClient, KafkaClientError } from '../network/kafka-client.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
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
import { type GroupMembership, type GroupProtocol, joinConsumerGroup } from './group-member.ts';
import {
  bytesFormatOption,
  defaultPrinter,
  jsonPrinter,
  type RecordPrinter,
  templatePrinter,
} from './record-format.ts';
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
  --group G                read as a member of consumer group G: partitions come from the
                           group's coordinator, and the offsets printed are committed
  --group-protocol P       consumer (KIP-848, the default where the broker has it) or classic
                           (JoinGroup/SyncGroup, range assignor; also used to join a classic
                           group that has members)
  --from-beginning         start at each partition's earliest offset
  --offset WHERE           where to start (default: latest, i.e. only new records):
                           N (an offset), -N (N records before the end), earliest, latest,
                           @TIME (the first record at or after TIME: ISO-8601 or epoch ms);
                           with --group only for partitions without a committed offset
  --partition P            read only partition P (default: every partition)
  --max-messages N         exit after N records
  --exit-at-end            exit once every partition is read to its end (kcat -e)
  --timeout-ms MS          exit when no record arrives for MS milliseconds
  --format FORMAT          json (one object per line: topic, partition, offset, timestamp,
                           timestampType, key, value, headers[]: key, value), or a template:
                           %t topic, %p partition, %o offset, %k key, %s or %v value,
                           %T timestamp (ms), %h headers (k=v,...), %K / %S key / value length,
                           %% percent; \\n \\t \\r \\\\ escapes (e.g. '%p:%o %k=%s\\n')
  --value-format F         text (raw bytes, the default), hex or base64 for values and headers
  --key-format F           text (raw bytes, the default), hex or base64 for keys
  Without --format, Kafka's layout:
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
  group: { type: 'string' },
  'group-protocol': { type: 'string' },
  'from-beginning': { type: 'boolean' },
  offset: { type: 'string' },
  partition: { type: 'string' },
  'max-messages': { type: 'string' },
  'exit-at-end': { type: 'boolean', short: 'e' },
  'timeout-ms': { type: 'string' },
  format: { type: 'string' },
  'value-format': { type: 'string' },
  'key-format': { type: 'string' },
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

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values'];

/** Where to start reading a partition. */
export type StartSpec =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'offset'; offset: bigint }
  | { kind: 'back'; count: bigint }
  | { kind: 'time'; ms: bigint };

export interface ConsumeSettings {
  topic: string;
  group: string | undefined;
  groupProtocol: GroupProtocol | undefined;
  start: StartSpec;
  partition: number | undefined;
  maxMessages: number | undefined;
  exitAtEnd: boolean;
  idleTimeoutMs: number | undefined;
  printer: RecordPrinter;
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
    const settings = consumeSettings(values);
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

function startOption(values: Values): StartSpec {
  const offset = values.offset;
  if (values['from-beginning'] === true) {
    if (offset !== undefined) throw new UsageError('--from-beginning and --offset exclude each other');
    return { kind: 'earliest' };
  }
  if (offset === undefined || offset === 'latest' || offset === 'end') return { kind: 'latest' };
  if (offset === 'earliest' || offset === 'beginning') return { kind: 'earliest' };
  if (offset.startsWith('@')) {
    const text = offset.slice(1);
    const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
    if (Number.isNaN(ms)) throw new UsageError(`--offset: '${text}' is not a time (ISO-8601 or epoch milliseconds)`);
    return { kind: 'time', ms: BigInt(ms) };
  }
  if (offset.startsWith('-')) return { kind: 'back', count: BigInt(-intOption(offset, 'offset', { max: -1 })!) };
  return { kind: 'offset', offset: BigInt(intOption(offset, 'offset', { min: 0 })!) };
}

function consumeSettings(values: Values): ConsumeSettings {
  const start = startOption(values);
  const group = values.group;
  if (group !== undefined) {
    if (group === '') throw new UsageError('--group must not be empty');
    if (values.partition !== undefined) throw new UsageError('--partition and --group exclude each other');
    if (start.kind === 'offset') throw new UsageError('--offset N and --group exclude each other');
  }
  const groupProtocol = values['group-protocol'];
  if (groupProtocol !== undefined) {
    if (group === undefined) throw new UsageError('--group-protocol needs --group');
    if (groupProtocol !== 'consumer' && groupProtocol !== 'classic') {
      throw new UsageError(`--group-protocol: '${groupProtocol}' is not consumer or classic`);
    }
  }
  const isolation = values['isolation-level'] ?? 'read_uncommitted';
  if (isolation !== 'read_uncommitted' && isolation !== 'read_committed') {
    throw new UsageError(`--isolation-level: '${isolation}' is not read_uncommitted or read_committed`);
  }
  const formats = {
    keyFormat: bytesFormatOption(values['key-format'], 'key-format'),
    valueFormat: bytesFormatOption(values['value-format'], 'value-format'),
  };
  const printFlags = ['print-key', 'print-offset', 'print-timestamp', 'print-headers', 'print-partition', 'separator'];
  let printer: RecordPrinter;
  if (values.format !== undefined) {
    const clash = printFlags.find((f) => values[f as keyof Values] !== undefined);
    if (clash !== undefined) throw new UsageError(`--${clash} and --format exclude each other`);
    printer = values.format === 'json' ? jsonPrinter(formats) : templatePrinter(values.format, formats);
  } else {
    printer = defaultPrinter(
      {
        printKey: values['print-key'] === true,
        printOffset: values['print-offset'] === true,
        printTimestamp: values['print-timestamp'] === true,
        printHeaders: values['print-headers'] === true,
        printPartition: values['print-partition'] === true,
        separator: values.separator ?? '\t',
      },
      formats,
    );
  }
  return {
    topic: requireOption(values.topic, 'topic'),
    group,
    groupProtocol,
    start,
    partition: intOption(values.partition, 'partition', { min: 0, max: 0x7fffffff }),
    maxMessages: intOption(values['max-messages'], 'max-messages', { min: 1 }),
    exitAtEnd: values['exit-at-end'] === true,
    idleTimeoutMs: intOption(values['timeout-ms'], 'timeout-ms', { min: 1 }),
    printer,
    isolationLevel: isolation === 'read_committed' ? IsolationLevel.readCommitted : IsolationLevel.readUncommitted,
    maxWaitMs: intOption(values['max-wait-ms'], 'max-wait-ms', { min: 0, max: 60_000 }) ?? 500,
    partitionMaxBytes: intOption(values['fetch-max-bytes'], 'fetch-max-bytes', { min: 1 }) ?? 1024 * 1024,
  };
}

/** The offsets to start `partitions` at, per `start`. */
async function startPositions(
  fetcher: TopicFetcher,
  partitions: readonly number[],
  start: StartSpec,
): Promise<Map<number, bigint>> {
  if (partitions.length === 0) return new Map();
  switch (start.kind) {
    case 'offset':
      return new Map(partitions.map((p) => [p, start.offset]));
    case 'earliest':
      return fetcher.listOffsets(partitions, EARLIEST_TIMESTAMP);
    case 'latest':
      return fetcher.listOffsets(partitions, LATEST_TIMESTAMP);
    case 'back': {
      const lo = await fetcher.listOffsets(partitions, EARLIEST_TIMESTAMP);
      const hi = await fetcher.listOffsets(partitions, LATEST_TIMESTAMP);
      return new Map(
        partitions.map((p) => {
          const from = hi.get(p)! - start.count;
          return [p, from > lo.get(p)! ? from : lo.get(p)!];
        }),
      );
    }
    case 'time': {
      const at = await fetcher.listOffsets(partitions, start.ms);
      // -1: no record at or after that time, so the end.
      const missing = partitions.filter((p) => (at.get(p) ?? -1n) < 0n);
      const ends = await fetcher.listOffsets(missing, LATEST_TIMESTAMP);
      for (const p of missing) at.set(p, ends.get(p)!);
      return at;
    }
  }
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
  const fetcher = new TopicFetcher(client, topic, {
    isolationLevel: s.isolationLevel,
    maxWaitMs: s.maxWaitMs,
    partitionMaxBytes: s.partitionMaxBytes,
  });
  fetcher.resetTo = s.start.kind === 'earliest' ? 'earliest' : 'latest';
  /** Per partition read: the offset after the last record printed (what a group commits). */
  const next = new Map<number, bigint>();
  const highWatermarks = new Map<number, bigint>();
  let member: GroupMembership | undefined;
  if (s.group !== undefined) {
    const prepare = (m: GroupMembership) => {
      m.onAssignment = async ({ added, revoked }) => {
        if (revoked.length > 0) {
          await m.commit(new Map(revoked.filter((p) => next.has(p)).map((p) => [p, next.get(p)!])));
          for (const p of revoked) {
            fetcher.positions.delete(p);
            next.delete(p);
            highWatermarks.delete(p);
          }
        }
        if (added.length > 0) {
          const committed = await m.committed(added);
          const starts = await startPositions(
            fetcher,
            added.filter((p) => !committed.has(p)),
            s.start,
          );
          for (const p of added) {
            const at = committed.get(p) ?? starts.get(p)!;
            fetcher.positions.set(p, at);
            next.set(p, at);
          }
        }
      };
    };
    member = await joinConsumerGroup(client, s.group, topic, s.groupProtocol, prepare);
    await member.waitForAssignment(15_000);
  } else {
    const partitions = s.partition === undefined ? all : [s.partition];
    for (const [p, offset] of await startPositions(fetcher, partitions, s.start)) {
      fetcher.positions.set(p, offset);
      next.set(p, offset);
    }
  }
  // A member commits every assigned partition's position once, as Kafka's consumer does.
  const committed = member === undefined ? new Map(next) : new Map<number, bigint>();
  const commit = async () => {
    if (member === undefined) return;
    const changed = new Map([...next].filter(([p, o]) => committed.get(p) !== o));
    if (changed.size === 0) return;
    await member.commit(changed);
    for (const [p, o] of changed) committed.set(p, o);
  };
  const atEnd = () => {
    const reading = member === undefined ? [...fetcher.positions.keys()] : [...member.assigned];
    return reading.every((p) => {
      const hw = highWatermarks.get(p);
      return hw !== undefined && (fetcher.positions.get(p) ?? -1n) >= hw;
    });
  };

  let count = 0;
  let lastRecordAt = Date.now();
  // Closing the client makes an in-flight long poll reject at once instead of waiting it out; a
  // group member lets it finish (at most --max-wait-ms) so that it can commit and leave.
  const onAbort = () => {
    if (member === undefined) client.close();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    while (!signal.aborted && !out.closed) {
      if (member?.failure !== undefined) throw member.failure;
      if (s.idleTimeoutMs !== undefined && Date.now() - lastRecordAt >= s.idleTimeoutMs) break;
      let fetched: Awaited<ReturnType<TopicFetcher['fetch']>>;
      try {
        fetched = await fetcher.fetch();
      } catch (err) {
        if (signal.aborted && err instanceof KafkaClientError) break;
        throw err;
      }
      if (signal.aborted) break;
      for (const f of fetched) {
        if (member !== undefined && !member.assigned.has(f.partition)) continue;
        // A read_committed reader ends at the last stable offset (open transactions stay unread).
        const readCommitted = s.isolationLevel === IsolationLevel.readCommitted && f.lastStableOffset >= 0n;
        highWatermarks.set(f.partition, readCommitted ? f.lastStableOffset : f.highWatermark);
        const filter =
          s.isolationLevel === IsolationLevel.readCommitted
            ? new AbortedTransactionFilter(f.abortedTransactions)
            : undefined;
        const ctx = { topic: s.topic, partition: f.partition, timestampType: 'CreateTime' as const };
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
          const recordCtx = {
            ...ctx,
            timestampType:
              timestampTypeOf(entry.header.attributes) === 1 ? ('LogAppendTime' as const) : ctx.timestampType,
          };
          for (const r of records) {
            if (r.offset < f.fetchOffset) continue;
            const wait = out.write(s.printer(r, recordCtx));
            if (wait !== undefined) await wait;
            count++;
            next.set(f.partition, r.offset + 1n);
            progress(count);
            lastRecordAt = Date.now();
            if (s.maxMessages !== undefined && count >= s.maxMessages) {
              await out.flush();
              return count;
            }
          }
        }
        // Past every batch of this response (control batches included).
        const position = fetcher.positions.get(f.partition);
        if (position !== undefined && position > (next.get(f.partition) ?? -1n)) next.set(f.partition, position);
      }
      // Records of this round reach the terminal before the next long poll, and are committed.
      await out.flush();
      await commit();
      if (s.exitAtEnd && atEnd()) break;
      if (s.exitAtEnd && fetcher.failing.size > 0) {
        // The end cannot be reached: say so rather than retry for ever.
        const partitions = [...fetcher.failing].sort((a, b) => a - b).join(',');
        throw new KafkaError(
          ErrorCode.KAFKA_STORAGE_ERROR,
          `${s.topic} partition(s) ${partitions}: KAFKA_STORAGE_ERROR: the leader cannot read its log (see the broker's log)`,
        );
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (member !== undefined) {
      await out.flush();
      await commit().catch(() => {});
      await member.leave();
    }
  }
  return count;
}
