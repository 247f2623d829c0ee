/**
 * `samsa produce`: one record per line of stdin, like kafka-console-producer, or one per file
 * (--value-file). Lines are bytes: a value is sent as the bytes between newlines (text), or
 * decoded from hex or base64 (--value-format, --key-format) for values with newlines. Records are
 * batched per partition (up to --batch-size bytes or --linger-ms), several Produce requests may
 * be in flight, and retriable errors are retried after a metadata refresh. Keyed records go to
 * the partition Kafka's own clients would pick (murmur2); unkeyed ones stick to one partition per
 * batch, then move on (Kafka's sticky partitioner).
 */
import { readFile } from 'node:fs/promises';
import type { KafkaClient } from '../network/kafka-client.ts';
import { ErrorCode, errorName } from '../protocol/error-codes.ts';
import type { CompressionType } from '../protocol/records/batch-header.ts';
import { buildRecordBatch } from '../protocol/records/builder.ts';
import type { RecordHeader, RecordInput } from '../protocol/records/record.ts';
import {
  acksOption,
  BOOTSTRAP_USAGE,
  bootstrapOption,
  createClient,
  intOption,
  keyValue,
  parseCommandArgs,
  requireOption,
  runCommand,
  sleep,
  UsageError,
  waitForTopic,
} from './cli-common.ts';
import { partitionForKey } from './partitioner.ts';
import { compressionOption, type PartitionBatch, produceBatches, RETRIABLE_PRODUCE_ERRORS } from './produce-request.ts';
import { type BytesFormat, bytesFormatOption, decodeBytes } from './record-format.ts';

export const PRODUCE_USAGE = `Usage: samsa produce --topic T [options] < lines
       samsa produce --topic T --value-file F [--value-file F2]...

Sends one record per line of stdin (lines end at a newline byte; other bytes are sent as they
are), or one record per file.

Options:
${BOOTSTRAP_USAGE}
  --topic T                topic to write to (created if the broker auto-creates topics)
  --key-separator SEP      split each line at the first SEP into key and value
                           (without it records have no key)
  --partition P            write every record to partition P (default: by key, else sticky)
  --header K=V             add this header to every record (repeatable)
  --parse-headers          each line starts with headers 'k1:v1,k2:v2' and a TAB
  --value-format F         text (the line's bytes, the default), hex or base64: how values
                           are written on each line (hex or base64 for values with newlines)
  --key-format F           text (default), hex or base64: how keys are written
  --value-file F           send the whole content of file F as one record (repeatable; stdin
                           is not read)
  --acks -1|0|1|all        acknowledgements to wait for (default -1)
  --compression CODEC      none|gzip|snappy|lz4|zstd (default none)
  --batch-size BYTES       largest batch per partition (default 16384)
  --linger-ms MS           longest wait for a batch to fill (default 5)
  --max-in-flight N        Produce requests in flight (default 5)
  --retries N              retries of a batch after a retriable error (default 5)
  --timeout-ms MS          request timeout (default 30000)`;

const OPTIONS = {
  bootstrap: { type: 'string' },
  topic: { type: 'string' },
  'key-separator': { type: 'string' },
  partition: { type: 'string' },
  header: { type: 'string', multiple: true },
  'parse-headers': { type: 'boolean' },
  'value-format': { type: 'string' },
  'key-format': { type: 'string' },
  'value-file': { type: 'string', multiple: true },
  acks: { type: 'string' },
  compression: { type: 'string' },
  'batch-size': { type: 'string' },
  'linger-ms': { type: 'string' },
  'max-in-flight': { type: 'string' },
  retries: { type: 'string' },
  'timeout-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface ProduceSettings {
  topic: string;
  keySeparator: string | undefined;
  partition: number | undefined;
  headers: RecordHeader[];
  parseHeaders: boolean;
  keyFormat: BytesFormat;
  valueFormat: BytesFormat;
  acks: number;
  compression: CompressionType;
  batchSize: number;
  lingerMs: number;
  maxInFlight: number;
  retries: number;
  timeoutMs: number;
}

export function produceCommand(argv: string[]): Promise<number> {
  return runCommand('produce', PRODUCE_USAGE, async () => {
    const { values } = parseCommandArgs(argv, OPTIONS);
    if (values.help === true) {
      console.log(PRODUCE_USAGE);
      return 0;
    }
    const bootstrap = bootstrapOption(values.bootstrap);
    const keySeparator = values['key-separator'];
    if (keySeparator === '') throw new UsageError('--key-separator must not be empty');
    const settings: ProduceSettings = {
      topic: requireOption(values.topic, 'topic'),
      keySeparator,
      partition: intOption(values.partition, 'partition', { min: 0, max: 0x7fffffff }),
      headers: (values.header ?? []).map((h) => {
        const [key, value] = keyValue('header', h);
        return { key, value: Buffer.from(value) };
      }),
      parseHeaders: values['parse-headers'] === true,
      keyFormat: bytesFormatOption(values['key-format'], 'key-format'),
      valueFormat: bytesFormatOption(values['value-format'], 'value-format'),
      acks: acksOption(values.acks, -1),
      compression: compressionOption(values.compression),
      batchSize: intOption(values['batch-size'], 'batch-size', { min: 1, max: 256 * 1024 * 1024 }) ?? 16384,
      lingerMs: intOption(values['linger-ms'], 'linger-ms', { min: 0, max: 60_000 }) ?? 5,
      maxInFlight: intOption(values['max-in-flight'], 'max-in-flight', { min: 1, max: 1000 }) ?? 5,
      retries: intOption(values.retries, 'retries', { min: 0, max: 1000 }) ?? 5,
      timeoutMs: intOption(values['timeout-ms'], 'timeout-ms', { min: 1 }) ?? 30_000,
    };
    const files = values['value-file'];
    if (files !== undefined) {
      for (const name of ['key-separator', 'parse-headers', 'value-format', 'key-format'] as const) {
        if (values[name] !== undefined) throw new UsageError(`--${name} does not apply to --value-file`);
      }
    }
    const client = createClient(bootstrap, settings.timeoutMs);
    try {
      const records = files === undefined ? lineRecords(process.stdin, settings) : fileRecords(files, settings);
      return await produceRecords(client, settings, records);
    } finally {
      client.close();
    }
  });
}

interface PendingBatch {
  records: RecordInput[];
  bytes: number;
}

/** Thrown for a malformed input line; ends the command with exit code 1. */
class InputLineError extends Error {}

async function produceRecords(
  client: KafkaClient,
  s: ProduceSettings,
  input: AsyncIterable<RecordInput>,
): Promise<number> {
  const topicMetadata = await waitForTopic(client, s.topic, { autoCreate: true });
  const partitionCount = topicMetadata.partitions.length;
  if (s.partition !== undefined && s.partition >= partitionCount) {
    throw new UsageError(`--partition ${s.partition}: topic '${s.topic}' has ${partitionCount} partitions`);
  }

  const pending = new Map<number, PendingBatch>();
  let stickyPartition = Math.floor(Math.random() * partitionCount);
  let inFlight = 0;
  let failed = false;
  let firstError: unknown;
  const waiters: (() => void)[] = [];
  let lingerTimer: NodeJS.Timeout | undefined;

  const sendOne = async (partition: number, records: RecordInput[]): Promise<void> => {
    const batch = await buildRecordBatch({ records, compression: s.compression });
    const batches: PartitionBatch[] = [{ partition, batch }];
    for (let attempt = 0; ; attempt++) {
      const [result] = await produceBatches(client, s.topic, batches, s.acks, s.timeoutMs);
      if (result === undefined || result.errorCode === ErrorCode.NONE) return;
      if (RETRIABLE_PRODUCE_ERRORS.has(result.errorCode) && attempt < s.retries) {
        await sleep(Math.min(100 * 2 ** attempt, 1000));
        await client.metadata([s.topic]).catch(() => undefined);
        continue;
      }
      failed = true;
      console.error(
        `samsa produce: ${records.length} record(s) to ${s.topic}-${partition} failed: ${errorName(result.errorCode)}${result.errorMessage ? `: ${result.errorMessage}` : ''}`,
      );
      return;
    }
  };

  const flushPartition = (partition: number): Promise<void> | undefined => {
    const p = pending.get(partition);
    if (p === undefined || p.records.length === 0) return undefined;
    pending.delete(partition);
    if (s.partition === undefined && partition === stickyPartition && partitionCount > 1) {
      // Kafka's sticky partitioner moves on once a batch is complete.
      stickyPartition = (stickyPartition + 1 + Math.floor(Math.random() * (partitionCount - 1))) % partitionCount;
    }
    inFlight++;
    return sendOne(partition, p.records)
      .catch((err: unknown) => {
        failed = true;
        firstError ??= err;
      })
      .finally(() => {
        inFlight--;
        waiters.shift()?.();
      });
  };

  const tasks = new Set<Promise<void>>();
  const track = (task: Promise<void> | undefined): void => {
    if (task === undefined) return;
    tasks.add(task);
    void task.finally(() => tasks.delete(task));
  };
  const flushAll = (): void => {
    if (lingerTimer !== undefined) clearTimeout(lingerTimer);
    lingerTimer = undefined;
    for (const partition of [...pending.keys()]) track(flushPartition(partition));
  };

  try {
    for await (const record of input) {
      let partition: number;
      if (s.partition !== undefined) partition = s.partition;
      else if (record.key !== null) partition = partitionForKey(record.key, partitionCount);
      else partition = stickyPartition;
      let batch = pending.get(partition);
      if (batch === undefined) {
        batch = { records: [], bytes: 0 };
        pending.set(partition, batch);
      }
      batch.records.push(record);
      batch.bytes += (record.key?.length ?? 0) + (record.value?.length ?? 0) + 16;
      if (batch.bytes >= s.batchSize) {
        while (inFlight >= s.maxInFlight) await new Promise<void>((resolve) => waiters.push(resolve));
        track(flushPartition(partition));
      } else if (lingerTimer === undefined) {
        lingerTimer = setTimeout(flushAll, s.lingerMs);
      }
      if (firstError !== undefined) break;
    }
  } catch (err) {
    if (!(err instanceof InputLineError)) throw err;
    console.error(`samsa produce: ${err.message}`);
    failed = true;
  }
  flushAll();
  while (tasks.size > 0) await Promise.all([...tasks]);
  if (firstError !== undefined) throw firstError;
  return failed ? 1 : 0;
}

/** Lines of a stream as bytes, without their newline; a last line without one counts too. */
export async function* byteLines(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  for await (const data of input) {
    const chunk = typeof data === 'string' ? Buffer.from(data) : data;
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, nl));
      yield pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      pending = [];
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length > 0) yield Buffer.concat(pending);
}

async function* lineRecords(input: NodeJS.ReadableStream, s: ProduceSettings): AsyncGenerator<RecordInput> {
  let lineNumber = 0;
  for await (const line of byteLines(input as AsyncIterable<Buffer>)) {
    lineNumber++;
    yield parseLine(line, lineNumber, s);
  }
}

async function* fileRecords(files: readonly string[], s: ProduceSettings): AsyncGenerator<RecordInput> {
  for (const file of files) {
    let value: Buffer;
    try {
      value = await readFile(file);
    } catch (err) {
      throw new InputLineError(
        `--value-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    yield {
      key: null,
      value,
      headers: s.headers.length > 0 ? s.headers : undefined,
      timestamp: BigInt(Date.now()),
    };
  }
}

function decodeField(bytes: Buffer, format: BytesFormat, what: string, lineNumber: number): Buffer {
  const decoded = decodeBytes(bytes, format);
  if (decoded === undefined) throw new InputLineError(`line ${lineNumber}: the ${what} is not ${format}`);
  return decoded;
}

function parseLine(line: Buffer, lineNumber: number, s: ProduceSettings): RecordInput {
  let rest = line;
  let headers = s.headers;
  if (s.parseHeaders) {
    const tab = rest.indexOf(9);
    if (tab < 0) throw new InputLineError(`line ${lineNumber}: no TAB after the headers (--parse-headers)`);
    const text = rest.subarray(0, tab).toString();
    rest = rest.subarray(tab + 1);
    headers = [...headers];
    if (text !== '') {
      for (const pair of text.split(',')) {
        const colon = pair.indexOf(':');
        if (colon <= 0) throw new InputLineError(`line ${lineNumber}: header '${pair}' is not KEY:VALUE`);
        headers.push({ key: pair.slice(0, colon), value: Buffer.from(pair.slice(colon + 1)) });
      }
    }
  }
  let key: Buffer | null = null;
  if (s.keySeparator !== undefined) {
    const at = rest.indexOf(s.keySeparator);
    if (at < 0) throw new InputLineError(`line ${lineNumber}: no key separator '${s.keySeparator}' found`);
    key = decodeField(rest.subarray(0, at), s.keyFormat, 'key', lineNumber);
    rest = rest.subarray(at + Buffer.byteLength(s.keySeparator));
  }
  return {
    key,
    value: decodeField(rest, s.valueFormat, 'value', lineNumber),
    headers: headers.length > 0 ? headers : undefined,
    timestamp: BigInt(Date.now()),
  };
}
