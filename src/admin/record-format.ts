/**
 * How `samsa consume` prints a record, as bytes (binary-safe): Kafka's DefaultMessageFormatter
 * with its --print-* flags (the default), a kcat/rpk-style template (--format '%k=%s\n'), or one
 * JSON object per line (--format json). Keys, values and header values are written as their raw
 * bytes (text), or as hex or base64 (--key-format, --value-format). Also the inverse for
 * `samsa produce`: decoding a key or value given as text, hex or base64.
 */
import type { Record } from '../protocol/records/record.ts';
import { UsageError } from './cli-common.ts';

export type BytesFormat = 'text' | 'hex' | 'base64';

export function bytesFormatOption(value: string | undefined, name: string): BytesFormat {
  if (value === undefined || value === 'text') return 'text';
  if (value === 'hex' || value === 'base64') return value;
  throw new UsageError(`--${name}: '${value}' is not text, hex or base64`);
}

/** Bytes as printed: raw for text, else encoded. */
export function encodeBytes(bytes: Buffer, format: BytesFormat): Buffer {
  return format === 'text' ? bytes : Buffer.from(bytes.toString(format));
}

/** Text as given on input, decoded per format; UsageError-free: returns undefined when malformed. */
export function decodeBytes(text: Buffer, format: BytesFormat): Buffer | undefined {
  if (format === 'text') return text;
  const s = text.toString('latin1').trim();
  if (format === 'hex') {
    if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return undefined;
    return Buffer.from(s, 'hex');
  }
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}

export interface RecordContext {
  topic: string;
  partition: number;
  timestampType: 'CreateTime' | 'LogAppendTime';
}

export interface FormatSettings {
  keyFormat: BytesFormat;
  valueFormat: BytesFormat;
}

/** Formats one record into the bytes to print (with its line end where the format has one). */
export type RecordPrinter = (r: Record, ctx: RecordContext) => Buffer;

export interface DefaultFormatFlags {
  printKey: boolean;
  printOffset: boolean;
  printTimestamp: boolean;
  printHeaders: boolean;
  printPartition: boolean;
  separator: string;
}

const NULL = Buffer.from('null');
const NEWLINE = Buffer.from('\n');

/** kafka-console-consumer's DefaultMessageFormatter. */
export function defaultPrinter(flags: DefaultFormatFlags, f: FormatSettings): RecordPrinter {
  const sep = Buffer.from(flags.separator);
  return (r, ctx) => {
    const parts: Buffer[] = [];
    if (flags.printTimestamp) {
      parts.push(Buffer.from(r.timestamp < 0n ? 'NO_TIMESTAMP' : `${ctx.timestampType}:${r.timestamp}`), sep);
    }
    if (flags.printPartition) parts.push(Buffer.from(`Partition:${ctx.partition}`), sep);
    if (flags.printOffset) parts.push(Buffer.from(`Offset:${r.offset}`), sep);
    if (flags.printHeaders) {
      if (r.headers.length === 0) parts.push(Buffer.from('NO_HEADERS'));
      r.headers.forEach((h, i) => {
        if (i > 0) parts.push(Buffer.from(','));
        parts.push(Buffer.from(`${h.key}:`), h.value === null ? NULL : encodeBytes(h.value, f.valueFormat));
      });
      parts.push(sep);
    }
    if (flags.printKey) parts.push(r.key === null ? NULL : encodeBytes(r.key, f.keyFormat), sep);
    parts.push(r.value === null ? NULL : encodeBytes(r.value, f.valueFormat), NEWLINE);
    return Buffer.concat(parts);
  };
}

/** One JSON object per line; text keys and values are decoded as UTF-8 (use hex or base64 for binary). */
export function jsonPrinter(f: FormatSettings): RecordPrinter {
  const enc = (b: Buffer | null, format: BytesFormat) =>
    b === null ? null : format === 'text' ? b.toString('utf8') : b.toString(format);
  return (r, ctx) =>
    Buffer.from(
      `${JSON.stringify({
        topic: ctx.topic,
        partition: ctx.partition,
        offset: Number(r.offset),
        timestamp: Number(r.timestamp),
        timestampType: ctx.timestampType,
        key: enc(r.key, f.keyFormat),
        value: enc(r.value, f.valueFormat),
        headers: r.headers.map((h) => ({ key: h.key, value: enc(h.value, f.valueFormat) })),
      })}\n`,
    );
}

type Piece = Buffer | ((r: Record, ctx: RecordContext) => Buffer);

/**
 * A kcat-style template: %t topic, %p partition, %o offset, %k key, %s or %v value, %T timestamp
 * (ms), %h headers (k=v,k2=v2), %K key length, %S value length (-1 for null), %% a percent sign;
 * \n \t \r \\ escapes. A null key or value prints as nothing.
 */
export function templatePrinter(template: string, f: FormatSettings): RecordPrinter {
  const pieces: Piece[] = [];
  let literal = '';
  const flush = () => {
    if (literal !== '') pieces.push(Buffer.from(literal));
    literal = '';
  };
  const field = (fn: (r: Record, ctx: RecordContext) => Buffer) => {
    flush();
    pieces.push(fn);
  };
  const empty = Buffer.alloc(0);
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    const next = template[i + 1];
    if (c === '\\' && next !== undefined) {
      const escaped = { n: '\n', t: '\t', r: '\r', '\\': '\\' }[next];
      if (escaped === undefined) throw new UsageError(`--format: unknown escape '\\${next}'`);
      literal += escaped;
      i++;
      continue;
    }
    if (c !== '%') {
      literal += c;
      continue;
    }
    i++;
    switch (next) {
      case '%':
        literal += '%';
        break;
      case 't':
        field((_r, ctx) => Buffer.from(ctx.topic));
        break;
      case 'p':
        field((_r, ctx) => Buffer.from(String(ctx.partition)));
        break;
      case 'o':
        field((r) => Buffer.from(String(r.offset)));
        break;
      case 'T':
        field((r) => Buffer.from(String(r.timestamp)));
        break;
      case 'k':
        field((r) => (r.key === null ? empty : encodeBytes(r.key, f.keyFormat)));
        break;
      case 's':
      case 'v':
        field((r) => (r.value === null ? empty : encodeBytes(r.value, f.valueFormat)));
        break;
      case 'K':
        field((r) => Buffer.from(String(r.key === null ? -1 : r.key.length)));
        break;
      case 'S':
        field((r) => Buffer.from(String(r.value === null ? -1 : r.value.length)));
        break;
      case 'h':
        field((r) => {
          const parts: Buffer[] = [];
          r.headers.forEach((h, j) => {
            parts.push(Buffer.from(`${j > 0 ? ',' : ''}${h.key}=`));
            if (h.value !== null) parts.push(encodeBytes(h.value, f.valueFormat));
          });
          return Buffer.concat(parts);
        });
        break;
      default:
        throw new UsageError(
          `--format: unknown field '%${next ?? ''}' (fields: %t %p %o %k %s %v %T %h %K %S %%, or json)`,
        );
    }
  }
  flush();
  return (r, ctx) => Buffer.concat(pieces.map((p) => (typeof p === 'function' ? p(r, ctx) : p)));
}
