// Decoder fuzz: for every API key x version x request/response (and every header and versioned
// data type), valid encodings are truncated at every length, bit-flipped, overwritten with huge or
// negative length fields, spliced, and replaced with random bytes. Decoding may succeed or throw
// ProtocolError; any other exception (RangeError, TypeError, a giant allocation failing...) fails
// the test. A value that does decode must re-encode, and decode again to the same value.
//
// The PRNG is seeded: a failure prints the seed, the message, the version and the input bytes.
// Reproduce with FUZZ_SEED=<seed>; widen the search with FUZZ_ROUNDS=<n> (default 1).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from '../../../src/protocol/errors.ts';
import { API_SPECS, DATA_SPECS, requestHeaderVersion } from '../../../src/protocol/messages/index.ts';
import { readRequestHeader, writeRequestHeader } from '../../../src/protocol/messages/request-header.ts';
import { Reader } from '../../../src/protocol/reader.ts';
import { Writer } from '../../../src/protocol/writer.ts';
import { SAMPLES } from './messages/samples.generated.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5a45a) >>> 0;
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 1);
/** A single decode slower than this is reported: decoding is linear in the frame size. */
const SLOW_DECODE_MS = 250;

/** mulberry32: small, fast, good enough to drive mutations reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Read = (r: Reader, version: number) => unknown;
type Write = (w: Writer, version: number, message: never) => void;

interface Target {
  label: string;
  version: number;
  read: Read;
  write: Write;
  /** Valid encodings to mutate. */
  seeds: Buffer[];
}

function encode(write: Write, version: number, value: unknown): Buffer {
  const w = new Writer(64);
  write(w, version, value as never);
  return w.toBuffer();
}

function targets(): Target[] {
  const out: Target[] = [];
  const add = (label: string, version: number, read: Read, write: Write, values: unknown[]): void => {
    const seeds = values.map((v) => encode(write, version, v));
    seeds.push(encode(write, version, {}));
    out.push({ label, version, read, write, seeds });
  };
  for (const spec of API_SPECS) {
    for (let v = spec.minVersion; v <= spec.maxVersion; v++) {
      for (const kind of ['request', 'response'] as const) {
        const values = SAMPLES.filter((s) => s.id === spec.apiKey && s.kind === kind && s.version === v).map(
          (s) => s.value,
        );
        const [read, write] =
          kind === 'request' ? [spec.readRequest, spec.writeRequest] : [spec.readResponse, spec.writeResponse];
        add(`${spec.name}${kind === 'request' ? 'Request' : 'Response'}`, v, read, write, values);
      }
    }
  }
  for (const [name, spec] of Object.entries(DATA_SPECS)) {
    for (let v = spec.minVersion; v <= spec.maxVersion; v++) {
      const values = SAMPLES.filter((s) => s.id === name && s.version === v).map((s) => s.value);
      add(name, v, spec.read, spec.write, values);
    }
  }
  return out;
}

/** Byte patterns that stress length and count fields: huge, negative, over-long varints. */
const HOSTILE = [
  [0x7f, 0xff, 0xff, 0xff], // int32 max: a 2 GB length
  [0xff, 0xff, 0xff, 0xff], // int32 -1: null
  [0xff, 0xff, 0xff, 0xfe], // int32 -2
  [0x80, 0x00, 0x00, 0x00], // int32 min
  [0x00, 0x10, 0x00, 0x00], // 1 MiB
  [0x7f, 0xff], // int16 max
  [0xff, 0xff], // int16 -1
  [0x80, 0x00], // int16 min
  [0xff, 0xff, 0xff, 0xff, 0x0f], // uvarint 0xffffffff
  [0xfe, 0xff, 0xff, 0xff, 0x0f], // uvarint 0xfffffffe
  [0xff, 0xff, 0xff, 0xff, 0x7f], // uvarint with bits beyond 32
  [0x80, 0x80, 0x80, 0x80, 0x80, 0x01], // uvarint longer than 5 bytes
  [0xff, 0xff, 0xff, 0x07], // uvarint 2^31 - 1
  [0x80, 0x80, 0x80, 0x80, 0x08], // uvarint 2^31
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // varlong max
  [0x00], // empty / zero
  [0x01],
];

interface Stats {
  decodes: number;
  decoded: number;
  slowest: number;
  slowestLabel: string;
}

function hexOf(b: Buffer): string {
  return b.length > 256 ? `${b.subarray(0, 256).toString('hex')}... (${b.length} bytes)` : b.toString('hex');
}

function timeDecode(target: Target, input: Buffer): number {
  const start = performance.now();
  try {
    target.read(new Reader(input), target.version);
  } catch {
    // only the time matters here
  }
  return performance.now() - start;
}

/** Decodes `input`; fails on anything but success or ProtocolError, and re-checks successes. */
function check(target: Target, input: Buffer, how: string, stats: Stats): boolean {
  const where = `${target.label} v${target.version} [${how}] seed=${SEED} input=${hexOf(input)}`;
  const r = new Reader(input);
  const start = performance.now();
  let value: unknown;
  try {
    value = target.read(r, target.version);
  } catch (err) {
    if (err instanceof ProtocolError) return false;
    assert.fail(`${where}: decoder threw ${(err as Error)?.stack ?? String(err)}`);
  } finally {
    let ms = performance.now() - start;
    // A garbage-collection pause can land in any decode: time a slow one again before blaming it.
    for (let retry = 0; retry < 3 && ms > SLOW_DECODE_MS / 5; retry++) ms = Math.min(ms, timeDecode(target, input));
    stats.decodes++;
    if (ms > stats.slowest) {
      stats.slowest = ms;
      stats.slowestLabel = where;
    }
  }
  stats.decoded++;
  // Whatever decodes must encode, and decode back to itself: nothing the decoder accepts is a value
  // the encoder cannot write (a handler echoing a field back must never crash).
  let again: Buffer;
  try {
    again = encode(target.write, target.version, value);
  } catch (err) {
    assert.fail(`${where}: re-encoding a decoded value threw ${(err as Error)?.stack ?? String(err)}`);
  }
  const r2 = new Reader(again);
  assert.deepStrictEqual(target.read(r2, target.version), value, `${where}: re-decoded value differs`);
  assert.equal(r2.remaining, 0, `${where}: re-encoded value has trailing bytes`);
  return true;
}

/** Mutations per valid encoding, per kind (x4 kinds, + splices). */
const PER_KIND = 64;

function mutations(seed: Buffer, rand: () => number, perKind = PER_KIND): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  const n = seed.length;
  const pos = (): number => Math.floor(rand() * n);
  if (n === 0) return out;
  for (let i = 0; i < perKind; i++) {
    const b = Buffer.from(seed);
    const flips = 1 + Math.floor(rand() * 3);
    for (let f = 0; f < flips; f++) {
      const p = pos();
      b[p] = b[p]! ^ (1 << Math.floor(rand() * 8));
    }
    out.push([`bit flips`, b]);
  }
  for (let i = 0; i < perKind; i++) {
    const b = Buffer.from(seed);
    b[pos()] = [0x00, 0xff, 0x80, 0x7f, 0x01, Math.floor(rand() * 256)][Math.floor(rand() * 6)]!;
    out.push([`byte overwrite`, b]);
  }
  for (let i = 0; i < 2 * perKind; i++) {
    const pattern = HOSTILE[Math.floor(rand() * HOSTILE.length)]!;
    const p = pos();
    if (rand() < 0.5) {
      const b = Buffer.from(seed);
      for (let k = 0; k < pattern.length && p + k < n; k++) b[p + k] = pattern[k]!;
      out.push([`hostile overwrite at ${p}`, b]);
    } else {
      out.push([
        `hostile insert at ${p}`,
        Buffer.concat([seed.subarray(0, p), Buffer.from(pattern), seed.subarray(p)]),
      ]);
    }
  }
  for (let i = 0; i < perKind / 2; i++) {
    const a = pos();
    const len = 1 + Math.floor(rand() * Math.min(16, n - a));
    if (rand() < 0.5) {
      out.push([`delete ${a}+${len}`, Buffer.concat([seed.subarray(0, a), seed.subarray(a + len)])]);
    } else {
      const slice = seed.subarray(a, a + len);
      out.push([`duplicate ${a}+${len}`, Buffer.concat([seed.subarray(0, a + len), slice, seed.subarray(a + len)])]);
    }
  }
  return out;
}

/** Random bytes; `small` biases them toward 0..3 so counts and lengths look plausible. */
function randomBytes(rand: () => number, length: number, small: boolean): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    b[i] = small && rand() < 0.75 ? Math.floor(rand() * 4) : Math.floor(rand() * 256);
  }
  return b;
}

test('decoders throw only ProtocolError on truncated, mutated and random input', { timeout: 120_000 }, () => {
  const rand = prng(SEED);
  const all = targets();
  assert.ok(all.length > 700, `only ${all.length} message versions`);
  const stats: Stats = { decodes: 0, decoded: 0, slowest: 0, slowestLabel: '' };
  const perApi = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of all) {
      const before = stats.decodes;
      for (const seed of target.seeds) {
        assert.ok(
          check(target, seed, 'valid', stats),
          `${target.label} v${target.version}: a valid encoding must decode`,
        );
        // A prefix of a valid encoding makes the decoder take the same path and run out of bytes.
        for (let len = 0; len < seed.length; len++) {
          assert.equal(
            check(target, seed.subarray(0, len), `truncated to ${len}`, stats),
            false,
            `${target.label} v${target.version}: truncation to ${len} of ${seed.length} bytes decoded`,
          );
        }
        for (const [how, input] of mutations(seed, rand)) check(target, input, how, stats);
      }
      for (let i = 0; i < 128; i++) {
        const input = randomBytes(rand, Math.floor(rand() * 96), i % 2 === 0);
        check(target, input, 'random bytes', stats);
      }
      perApi.set(target.label, (perApi.get(target.label) ?? 0) + stats.decodes - before);
    }
  }
  assert.ok(stats.slowest < SLOW_DECODE_MS, `slowest decode ${stats.slowest.toFixed(1)} ms: ${stats.slowestLabel}`);
  const fewest = Math.min(...perApi.values());
  assert.ok(fewest >= 1000, `a message was fuzzed only ${fewest} times`);
  // Enough inputs get past the first fields to exercise the decoders' inner paths.
  assert.ok(stats.decoded > stats.decodes / 50, `only ${stats.decoded} of ${stats.decodes} inputs decoded`);
  console.log(
    `decode fuzz: seed ${SEED}, ${all.length} message versions, ${stats.decodes} decodes (${stats.decoded} succeeded), ` +
      `fewest per message ${fewest}, slowest ${stats.slowest.toFixed(2)} ms`,
  );
});

test('request header and whole-frame decoding throw only ProtocolError', { timeout: 60_000 }, () => {
  const rand = prng(SEED ^ 0x9e3779b9);
  const header: Target = {
    label: 'RequestHeader',
    version: 0,
    read: readRequestHeader,
    write: writeRequestHeader as Write,
    seeds: [],
  };
  const stats: Stats = { decodes: 0, decoded: 0, slowest: 0, slowestLabel: '' };
  const seeds = [
    { requestApiKey: 18, requestApiVersion: 3, correlationId: 1, clientId: 'rdkafka' },
    { requestApiKey: 3, requestApiVersion: 12, correlationId: 0x7fffffff, clientId: null },
    { requestApiKey: 0, requestApiVersion: 9, correlationId: -1, clientId: 'é'.repeat(40) },
    {
      requestApiKey: 1,
      requestApiVersion: 12,
      correlationId: 7,
      clientId: '',
      _unknownTaggedFields: [{ tag: 3, data: Buffer.from('tag') }],
    },
  ];
  for (let version = 0; version <= 2; version++) {
    const target = { ...header, version, seeds: seeds.map((s) => encode(header.write, version, s)) };
    for (const seed of target.seeds) {
      assert.ok(check(target, seed, 'valid', stats));
      for (let len = 0; len < seed.length; len++) {
        assert.equal(check(target, seed.subarray(0, len), `truncated to ${len}`, stats), false);
      }
      for (let round = 0; round < 5 * ROUNDS; round++) {
        for (const [how, input] of mutations(seed, rand)) check(target, input, how, stats);
      }
    }
    for (let i = 0; i < 2000 * ROUNDS; i++)
      check(target, randomBytes(rand, Math.floor(rand() * 48), i % 2 === 0), 'random', stats);
  }

  // Whole frames the way a broker reads them: API key and version from the first four bytes,
  // then the header version Kafka uses for them, then the body. Unknown keys and versions are
  // the caller's to reject; the decoders must still only raise ProtocolError.
  const frame: Target = {
    label: 'request frame',
    version: 0,
    read: (r) => {
      const apiKey = r.buf.readInt16BE(r.pos);
      const apiVersion = r.buf.readInt16BE(r.pos + 2);
      const h = readRequestHeader(r, requestHeaderVersion(apiKey, apiVersion));
      const spec = API_SPECS.find((s) => s.apiKey === h.requestApiKey);
      if (spec === undefined) return { header: h };
      return { header: h, body: spec.readRequest(r, h.requestApiVersion) };
    },
    write: (w, _v, m: never) => {
      const { header: h, body } = m as { header: Parameters<typeof writeRequestHeader>[2]; body?: unknown };
      const apiKey = h.requestApiKey ?? 0;
      const apiVersion = h.requestApiVersion ?? 0;
      writeRequestHeader(w, requestHeaderVersion(apiKey, apiVersion), h);
      const spec = API_SPECS.find((s) => s.apiKey === apiKey);
      if (spec !== undefined && body !== undefined) spec.writeRequest(w, apiVersion, body as never);
    },
    seeds: [],
  };
  for (const spec of API_SPECS) {
    const header = { requestApiKey: spec.apiKey, requestApiVersion: spec.maxVersion, correlationId: 9, clientId: 'c' };
    const sample = SAMPLES.find((s) => s.id === spec.apiKey && s.kind === 'request' && s.version === spec.maxVersion);
    const seed = encode(frame.write, 0, { header, body: sample?.value ?? {} });
    // Frames shorter than four bytes are rejected before decoding (the size prefix says so).
    const guarded: Target = {
      ...frame,
      read: (r, v) => {
        if (r.remaining < 4) throw new ProtocolError('ERR_PROTOCOL_TRUNCATED', 'frame shorter than its header');
        return frame.read(r, v);
      },
    };
    assert.ok(check(guarded, seed, 'valid frame', stats));
    for (const [how, input] of mutations(seed, rand, 4 * PER_KIND)) check(guarded, input, how, stats);
  }
  assert.ok(stats.slowest < SLOW_DECODE_MS, `slowest decode ${stats.slowest.toFixed(1)} ms: ${stats.slowestLabel}`);
  assert.ok(stats.decodes > 20_000, `only ${stats.decodes} header decodes`);
});

test('a 2 GB length or count in a 100-byte frame fails fast, before any allocation', () => {
  const [produce, fetch, metadata] = [API_SPECS[0]!, API_SPECS[1]!, API_SPECS[3]!];
  const apiVersions = API_SPECS[18]!;
  const cases: Array<{ label: string; version: number; read: Read; bytes: string; error: RegExp }> = [
    {
      // transactional_id null, acks 1, timeout 1000, 1 topic "t", 1 partition 0, records length 0x7fffffff
      label: 'Produce v3 records',
      version: 3,
      read: produce.readRequest,
      bytes: 'ffff 0001 000003e8 00000001 000174 00000001 00000000 7fffffff',
      error: /bytes length 2147483647 exceeds/,
    },
    {
      // flexible: COMPACT_RECORDS length uvarint 0xffffffff
      label: 'Produce v9 records',
      version: 9,
      read: produce.readRequest,
      bytes: '00 0001 000003e8 02 0274 02 00000000 ffffffff0f',
      error: /bytes length 4294967294 exceeds/,
    },
    {
      label: 'Metadata v1 topic count',
      version: 1,
      read: metadata.readRequest,
      bytes: '7fffffff',
      error: /array length 2147483647 exceeds/,
    },
    {
      label: 'Metadata v12 topic count',
      version: 12,
      read: metadata.readRequest,
      bytes: 'feffffff0f',
      error: /array length 4294967293 exceeds/,
    },
    {
      // empty topics, allow_auto_topic_creation, include_topic_authorized_operations, 0xffffffff tagged fields
      label: 'Metadata v12 tagged field count',
      version: 12,
      read: metadata.readRequest,
      bytes: '01 01 00 ffffffff0f',
      error: /tagged fields length 4294967295 exceeds/,
    },
    {
      // one tagged field: tag 5, size 0xffffffff
      label: 'Metadata v12 tagged field size',
      version: 12,
      read: metadata.readRequest,
      bytes: '01 01 00 01 05 ffffffff0f',
      error: /bytes length 4294967295 exceeds/,
    },
    {
      label: 'ApiVersions v3 string length',
      version: 3,
      read: apiVersions.readRequest,
      bytes: 'ffffffff0f',
      error: /string length 4294967294 exceeds/,
    },
    {
      label: 'ApiVersions v3 varint longer than 5 bytes',
      version: 3,
      read: apiVersions.readRequest,
      bytes: '808080808001',
      error: /varint longer than 5 bytes/,
    },
    {
      label: 'ApiVersions v0 response api key count',
      version: 0,
      read: apiVersions.readResponse,
      bytes: '0000 7fffffff',
      error: /array length 2147483647 exceeds/,
    },
    {
      // throttle 0, 1 topic "t", 1 partition 0, error 0, hw 0, lso 0, aborted null, records length 0x7fffffff
      label: 'Fetch v4 response records',
      version: 4,
      read: fetch.readResponse,
      bytes: '00000000 00000001 000174 00000001 00000000 0000 0000000000000000 0000000000000000 ffffffff 7fffffff',
      error: /bytes length 2147483647 exceeds/,
    },
  ];
  for (const { label, version, read, bytes, error } of cases) {
    const frame = Buffer.from(`${bytes}${'00'.repeat(80)}`.replace(/\s+/g, ''), 'hex');
    const memoryBefore = process.memoryUsage().arrayBuffers;
    const start = performance.now();
    assert.throws(
      () => read(new Reader(frame), version),
      (err) => err instanceof ProtocolError && error.test(err.message),
      label,
    );
    assert.ok(performance.now() - start < 50, `${label}: took ${performance.now() - start} ms`);
    assert.ok(process.memoryUsage().arrayBuffers - memoryBefore < 1 << 20, `${label}: allocated`);
  }
});
