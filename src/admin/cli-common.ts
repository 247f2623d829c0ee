/**
 * What the client commands (`samsa topic|produce|consume|perf|group|cluster`) share: argument
 * parsing with usage errors (one line, exit code 2), the --bootstrap option (with Kafka's
 * --bootstrap-server and kcat's -b as aliases, and SAMSA_BROKERS when none is given), --format
 * json, error reporting (a Kafka or connection error is one line on stderr and exit code 1),
 * waiting for a topic's metadata, and a stdout writer that honours backpressure.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import {
  KafkaClient,
  KafkaClientError,
  KafkaClientErrorCodes,
  parseHostPort,
  type TopicMetadata,
} from '../network/kafka-client.ts';
import { ErrorCode, errorName, KafkaError } from '../protocol/error-codes.ts';
import { ProtocolError } from '../protocol/errors.ts';

export const DEFAULT_BOOTSTRAP = '127.0.0.1:9092';

/** The environment variable naming the brokers when no --bootstrap is given (like rpk's RPK_BROKERS). */
export const BROKERS_ENV = 'SAMSA_BROKERS';

export const BOOTSTRAP_USAGE = `  -b, --bootstrap HOST:PORT
                           broker(s) to connect to first, comma-separated (alias --bootstrap-server;
                           default $${BROKERS_ENV}, else ${DEFAULT_BOOTSTRAP})`;

export const FORMAT_USAGE = `  --format text|json       output format (default text; json: one document on stdout)`;

/** Bad command-line input: one line naming the problem and the --help to read, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** util.parseArgs with strict checking; its errors become UsageError. */
export function parseCommandArgs<T extends Options>(argv: string[], options: T, allowPositionals = false) {
  // Kafka's tools take `--throughput -1` and `--acks -1`; util.parseArgs only takes `--acks=-1`.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = bootstrapAlias(argv[i]!, options);
    const next = argv[i + 1];
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      args.push(`${arg}=${next}`);
      i++;
    } else {
      args.push(arg);
    }
  }
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      // Node adds sentences on '--', positionals and dashes: one line is kept.
      throw new UsageError(
        (err as Error).message
          .replace(/\. To specify a positional.*$/s, '')
          .replace(/\nDid you forget[^\n]*/, '')
          .replace(/\n/g, ' '),
      );
    }
    throw err;
  }
}

/**
 * Kafka's tools spell it --bootstrap-server, kcat and rpk take -b: both name --bootstrap, for
 * every command that has it.
 */
function bootstrapAlias(arg: string, options: Options): string {
  if (options.bootstrap === undefined) return arg;
  if (arg === '-b' || arg === '--bootstrap-server') return '--bootstrap';
  if (arg.startsWith('--bootstrap-server=')) return `--bootstrap=${arg.slice('--bootstrap-server='.length)}`;
  // -bHOST:PORT and -b=HOST:PORT, as getopt takes them.
  if (arg.startsWith('-b') && arg.length > 2 && !arg.startsWith('--'))
    return `--bootstrap=${arg.slice(2).replace(/^=/, '')}`;
  return arg;
}

/** An integer option: undefined when absent, UsageError when malformed or out of range. */
export function intOption(
  value: string | undefined,
  name: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`--${name}: '${value}' is not an integer`);
  const n = Number(value);
  const min = range.min ?? Number.MIN_SAFE_INTEGER;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (n < min || n > max) throw new UsageError(`--${name}: ${n} is outside ${min}..${max}`);
  return n;
}

export function requireOption<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new UsageError(`--${name} is required`);
  return value;
}

/** --acks: -1 (or 'all'), 0 or 1. */
export function acksOption(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (value === 'all') return -1;
  const acks = intOption(value, 'acks', { min: -1, max: 1 })!;
  return acks;
}

/** --bootstrap, else $SAMSA_BROKERS, else 127.0.0.1:9092; UsageError when malformed. */
export function bootstrapOption(value: string | undefined): string {
  const fromEnv = process.env[BROKERS_ENV]?.trim();
  const source = value !== undefined ? '--bootstrap' : fromEnv ? BROKERS_ENV : '--bootstrap';
  const bootstrap = value ?? (fromEnv || DEFAULT_BOOTSTRAP);
  for (const a of bootstrap.split(',')) {
    try {
      parseHostPort(a);
    } catch (err) {
      throw new UsageError(`${source}: ${(err as Error).message}`);
    }
  }
  return bootstrap;
}

export type OutputFormat = 'text' | 'json';

/** --format text|json. */
export function formatOption(value: string | undefined): OutputFormat {
  if (value === undefined || value === 'text') return 'text';
  if (value === 'json') return 'json';
  throw new UsageError(`--format: '${value}' is not text or json`);
}

/**
 * Prints one JSON document on stdout. Offsets and sizes (bigint) become numbers while they are
 * exact (below 2^53), strings beyond.
 */
export function printJson(value: unknown): void {
  console.log(
    JSON.stringify(
      value,
      (_key, v: unknown) =>
        typeof v === 'bigint'
          ? v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
            ? Number(v)
            : v.toString()
          : v,
      2,
    ),
  );
}

/** Prints rows as aligned columns, like Kafka's tools. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join(' ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  console.log(out.join('\n'));
}

/** Splits `KEY=VALUE`; UsageError naming the option otherwise. */
export function keyValue(option: string, text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new UsageError(`--${option}: '${text}' is not KEY=VALUE`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

export function createClient(bootstrap: string, requestTimeoutMs?: number): KafkaClient {
  return new KafkaClient({ bootstrap, clientId: 'samsa-cli', requestTimeoutMs, clientSoftwareName: 'samsa-cli' });
}

/**
 * Runs a command body. UsageError -> one line on stderr naming the --help to read, exit code 2.
 * Kafka, connection and protocol errors -> one line on stderr, exit code 1.
 */
export async function runCommand(command: string, _usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`samsa ${command}: ${err.message} (see 'samsa ${command} --help')`);
      return 2;
    }
    if (err instanceof KafkaError || err instanceof KafkaClientError || err instanceof ProtocolError) {
      console.error(`samsa ${command}: ${err.message}${hint(err)}`);
      return 1;
    }
    throw err;
  }
}

/** What to do about the commonest errors, appended to their line. */
function hint(err: Error): string {
  if (err instanceof KafkaClientError && err.code === KafkaClientErrorCodes.connect) {
    return ` (is a broker listening there? name one with -b HOST:PORT or ${BROKERS_ENV})`;
  }
  if (
    err instanceof KafkaError &&
    err.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION &&
    /^topic '[^']*': /.test(err.message)
  ) {
    return ` (no such topic: 'samsa topic list' shows them)`;
  }
  return '';
}

/** Errors worth retrying while a topic is being created or a leader elected. */
const TRANSIENT_TOPIC_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
]);

/**
 * Metadata for one topic once every partition has a leader. With `autoCreate`, asks the broker
 * to create it (auto.create.topics.enable). Throws KafkaError when it does not appear in time.
 */
export async function waitForTopic(
  client: KafkaClient,
  topic: string,
  options: { autoCreate?: boolean; timeoutMs?: number } = {},
): Promise<TopicMetadata> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let lastError: number = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    const md = await client.metadata([topic], { allowAutoTopicCreation: options.autoCreate ?? false });
    const t = md.topics.get(topic);
    if (t !== undefined) {
      lastError = t.errorCode;
      if (t.errorCode === ErrorCode.NONE) {
        const leaderless = t.partitions.find((p) => p.leaderId < 0 || p.errorCode === ErrorCode.LEADER_NOT_AVAILABLE);
        if (t.partitions.length > 0 && leaderless === undefined) return t;
        lastError = ErrorCode.LEADER_NOT_AVAILABLE;
      } else if (!TRANSIENT_TOPIC_ERRORS.has(t.errorCode)) {
        throw new KafkaError(t.errorCode, `topic '${topic}': ${errorName(t.errorCode)}`);
      }
      // Without auto-creation an unknown topic will not appear by waiting.
      if (t.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION && options.autoCreate !== true) break;
    }
    if (Date.now() + delay > deadline) break;
    await sleep(delay);
  }
  throw new KafkaError(lastError, `topic '${topic}': ${errorName(lastError)}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Buffers output (text or bytes) for stdout and writes it in large pieces, waiting for 'drain'
 * when the pipe is full. `closed` turns true when the reader went away (EPIPE, e.g. `| head`).
 */
export class OutputWriter {
  private parts: Buffer[] = [];
  private size = 0;
  closed = false;
  private readonly stream: NodeJS.WritableStream;

  constructor(stream: NodeJS.WritableStream = process.stdout) {
    this.stream = stream;
    stream.on('error', () => {
      this.closed = true;
    });
  }

  /** Queues output; returns a promise only when the caller should wait (buffer flushed into a full pipe). */
  write(data: string | Buffer): Promise<void> | undefined {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    this.parts.push(buf);
    this.size += buf.length;
    if (this.size >= 64 * 1024) return this.flush();
    return undefined;
  }

  async flush(): Promise<void> {
    if (this.parts.length === 0 || this.closed) {
      this.parts = [];
      this.size = 0;
      return;
    }
    const data = Buffer.concat(this.parts);
    this.parts = [];
    this.size = 0;
    const ok = this.stream.write(data);
    if (!ok && !this.closed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.stream.off('drain', done);
          this.stream.off('error', done);
          this.stream.off('close', done);
          resolve();
        };
        this.stream.on('drain', done);
        this.stream.on('error', done);
        this.stream.on('close', done);
      });
    }
  }
}
