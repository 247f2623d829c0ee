/**
 * Decoder fuzz: random and mutated batches must fail with ProtocolError and nothing else (no
 * RangeError, no TypeError from a native codec), must not hang, and must not allocate wildly.
 * Deterministic: set FUZZ_SEED / FUZZ_ITERATIONS to reproduce or to run longer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from '../../../../src/protocol/errors.ts';
import {
  batchSizeAt,
  buildControlBatch,
  buildRecordBatchSync,
  Compression,
  type CompressionType,
  compressSync,
  decodeRecords,
  decodeRecordsSync,
  decompress,
  decompressSync,
  iterateBatches,
  readBatchHeader,
  readControlRecord,
  setLogAppendTime,
  verifyBatchCrc,
} from '../../../../src/protocol/records/index.ts';
import { fixCrc, prng, withPayload } from './helpers.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_250_601);
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 4000);
const MAX_DECOMPRESSED = 1024 * 1024;

const rand = prng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

const codecs: CompressionType[] = [
  Compression.none,
  Compression.gzip,
  Compression.snappy,
  Compression.lz4,
  Compression.zstd,
];

function randomBytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}

function sampleRecords() {
  const count = int(6);
  return Array.from({ length: count }, (_, i) => ({
    key: rand() < 0.3 ? null : randomBytes(int(20)),
    value: rand() < 0.2 ? null : randomBytes(int(300)),
    timestamp: 1_700_000_000_000n + BigInt(int(100_000) - 50_000),
    headers:
      rand() < 0.5
        ? Array.from({ length: int(4) }, () => ({
            key: `h${int(1000)}`,
            value: rand() < 0.2 ? null : randomBytes(int(10)),
          }))
        : undefined,
    offsetDelta: i,
  }));
}

const bases: { codec: CompressionType; batch: Buffer; plain: Buffer }[] = [];
for (let i = 0; i < 40; i++) {
  const codec = codecs[i % codecs.length]!;
  const records = sampleRecords();
  const batch = buildRecordBatchSync({ records, compression: codec, baseOffset: BigInt(int(1000)) });
  const plain = buildRecordBatchSync({ records }).subarray(61);
  bases.push({ codec, batch, plain });
}
bases.push({
  codec: Compression.none,
  batch: buildControlBatch({ type: 'abort', producerId: 1n, producerEpoch: 1, coordinatorEpoch: 1, timestamp: 1n }),
  plain: Buffer.alloc(0),
});

const INTERESTING_INT32 = [0, 1, -1, -2, 48, 49, 60, 61, 0x7f, 0x80, 0xffff, 0x7fffffff, -0x80000000, 0x40000000];

/** Zig-zag varint bytes of v (signed 32-bit). */
function varint(v: number): Buffer {
  let u = ((v << 1) ^ (v >> 31)) >>> 0;
  const out: number[] = [];
  while (u >= 0x80) {
    out.push((u & 0x7f) | 0x80);
    u >>>= 7;
  }
  out.push(u);
  return Buffer.from(out);
}

function mutateBytes(input: Buffer, start: number): Buffer {
  let buf = Buffer.from(input);
  const kind = int(7);
  switch (kind) {
    case 0: // bit flips
      for (let n = 1 + int(4); n > 0 && buf.length > start; n--) {
        const at = start + int(buf.length - start);
        buf[at]! ^= 1 << int(8);
      }
      return buf;
    case 1: // truncation
      return buf.subarray(0, int(buf.length + 1));
    case 2: // a random varint (often a length) written over the records
      if (buf.length > start) {
        const v = varint(rand() < 0.5 ? pick(INTERESTING_INT32) : int(2 ** 31) - 2 ** 30);
        const at = start + int(buf.length - start);
        buf = Buffer.concat([buf.subarray(0, at), v, buf.subarray(Math.min(buf.length, at + v.length))]);
      }
      return buf;
    case 3: // inserted bytes
      {
        const at = int(buf.length + 1);
        return Buffer.concat([buf.subarray(0, at), randomBytes(1 + int(8)), buf.subarray(at)]);
      }
    case 4: // deleted bytes
      {
        const at = int(buf.length + 1);
        return Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1 + int(8))]);
      }
    case 5: // trailing garbage
      return Buffer.concat([buf, randomBytes(1 + int(20))]);
    default: // an interesting int32 at a random 4-byte position
      if (buf.length >= 4) buf.writeInt32BE(pick(INTERESTING_INT32), int(buf.length - 3));
      return buf;
  }
}

const HEADER_INT32_FIELDS = [8, 12, 23, 53, 57];

function mutate(): Buffer {
  const base = pick(bases);
  const roll = rand();
  if (roll < 0.08) {
    // Entirely random bytes, sometimes with a plausible magic and length.
    const buf = randomBytes(int(200));
    if (buf.length > 16 && rand() < 0.5) buf[16] = 2;
    if (buf.length > 12 && rand() < 0.5) buf.writeInt32BE(buf.length - 12, 8);
    return buf;
  }
  if (roll < 0.25) {
    // A header field set to an interesting value.
    const buf = Buffer.from(base.batch);
    if (rand() < 0.5) buf.writeInt32BE(pick(INTERESTING_INT32), pick(HEADER_INT32_FIELDS));
    else buf.writeInt16BE(int(0x10000) - 0x8000, 21); // attributes
    return buf;
  }
  if (roll < 0.45 && base.codec !== Compression.none) {
    // Mutated records compressed correctly: the codec succeeds and the record parser sees garbage.
    return withPayload(base.batch, compressSync(base.codec, mutateBytes(base.plain, 0)));
  }
  if (roll < 0.55 && base.codec !== Compression.none) {
    // A damaged compressed payload inside a batch with a valid CRC.
    return withPayload(base.batch, mutateBytes(base.batch.subarray(61), 0));
  }
  return mutateBytes(base.batch, rand() < 0.7 ? 21 : 0);
}

function onlyProtocolErrors(what: string, buf: Buffer, fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (!(err instanceof ProtocolError)) {
      assert.fail(`${what} threw ${String((err as Error)?.stack ?? err)} for ${buf.toString('hex')} (seed ${SEED})`);
    }
    return false;
  }
}

async function onlyProtocolRejections(what: string, buf: Buffer, fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (!(err instanceof ProtocolError)) {
      assert.fail(`${what} threw ${String((err as Error)?.stack ?? err)} for ${buf.toString('hex')} (seed ${SEED})`);
    }
    return false;
  }
}

test('mutated and random batches raise only ProtocolError', { timeout: 120_000 }, async (t) => {
  const rssBefore = process.memoryUsage().rss;
  let decoded = 0;
  let deepFailures = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    const buf = mutate();
    // Half the time make the CRC right so the walk and the decoder get past the checksum.
    if (rand() < 0.5 && buf.length >= 61) {
      const size = 12 + buf.readInt32BE(8);
      if (size >= 61 && size <= buf.length) fixCrc(buf);
    }
    onlyProtocolErrors('readBatchHeader', buf, () => readBatchHeader(buf));
    onlyProtocolErrors('batchSizeAt', buf, () => batchSizeAt(buf, 0));
    onlyProtocolErrors('verifyBatchCrc', buf, () => verifyBatchCrc(buf));
    onlyProtocolErrors('iterateBatches', buf, () => [...iterateBatches(buf)]);
    onlyProtocolErrors('iterateBatches(stop)', buf, () => [
      ...iterateBatches(buf, { partialTail: 'stop', verifyCrc: false }),
    ]);
    onlyProtocolErrors('setLogAppendTime', buf, () => setLogAppendTime(Buffer.from(buf), 0, 1n));
    let records: ReturnType<typeof decodeRecordsSync> = [];
    const okSync = onlyProtocolErrors('decodeRecordsSync', buf, () => {
      records = decodeRecordsSync(buf, { verifyCrc: false, maxDecompressedSize: MAX_DECOMPRESSED });
    });
    for (const r of records) onlyProtocolErrors('readControlRecord', buf, () => readControlRecord(r));
    const okAsync = await onlyProtocolRejections('decodeRecords', buf, () =>
      decodeRecords(buf, { verifyCrc: false, maxDecompressedSize: MAX_DECOMPRESSED }),
    );
    assert.equal(okSync, okAsync, `sync and async decoders disagree on ${buf.toString('hex')} (seed ${SEED})`);
    if (okSync) decoded++;
    else deepFailures++;
  }
  const rssGrowth = process.memoryUsage().rss - rssBefore;
  t.diagnostic(`seed ${SEED}: ${ITERATIONS} inputs, ${decoded} decoded, ${deepFailures} rejected`);
  t.diagnostic(`rss growth ${(rssGrowth / 1024 / 1024).toFixed(1)} MiB`);
  assert.ok(decoded > 0 && deepFailures > 0, 'the fuzz exercises both outcomes');
  assert.ok(rssGrowth < 512 * 1024 * 1024, `rss grew by ${rssGrowth} bytes`);
});

test('random and mutated compressed payloads raise only ProtocolError from every codec', {
  timeout: 120_000,
}, async () => {
  const samples = bases.filter((b) => b.codec !== Compression.none).map((b) => b.batch.subarray(61));
  for (let i = 0; i < ITERATIONS / 2; i++) {
    const codec = pick(codecs.slice(1));
    const input = rand() < 0.2 ? randomBytes(int(100)) : mutateBytes(compressSync(codec, pick(samples)), 0);
    onlyProtocolErrors(`decompressSync(${codec})`, input, () => decompressSync(codec, input, MAX_DECOMPRESSED));
    await onlyProtocolRejections(`decompress(${codec})`, input, () => decompress(codec, input, MAX_DECOMPRESSED));
  }
});
