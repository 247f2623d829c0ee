import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import * as snappy from 'snappy';
import { ProtocolErrorCodes } from '../../../../src/protocol/errors.ts';
import {
  Compression,
  type CompressionType,
  compress,
  compressSync,
  decompress,
  decompressSync,
} from '../../../../src/protocol/records/index.ts';
import { assertProtocolError, assertRejectsProtocolError } from './helpers.ts';

const codecs: [string, CompressionType][] = [
  ['gzip', Compression.gzip],
  ['snappy', Compression.snappy],
  ['lz4', Compression.lz4],
  ['zstd', Compression.zstd],
];

const text = Buffer.from('a fairly compressible sentence, repeated. '.repeat(5000));
const random = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 2654435761) >>> 24));

for (const [name, codec] of codecs) {
  test(`${name}: sync and async round trips, incl. empty and incompressible input`, async () => {
    for (const input of [text, random, Buffer.alloc(0), Buffer.from('x')]) {
      const a = compressSync(codec, input);
      const b = await compress(codec, input);
      assert.deepEqual(decompressSync(codec, a), input);
      assert.deepEqual(await decompress(codec, b), input);
      assert.deepEqual(decompressSync(codec, b), input); // sync and async outputs are interchangeable
    }
  });

  test(`${name}: output over maxSize is a ProtocolError(compression)`, async () => {
    const packed = compressSync(codec, text);
    assertProtocolError(() => decompressSync(codec, packed, 1000), ProtocolErrorCodes.compression, /limit/);
    await assertRejectsProtocolError(() => decompress(codec, packed, 1000), ProtocolErrorCodes.compression, /limit/);
    assert.equal(decompressSync(codec, packed, text.length).length, text.length); // exactly at the limit is fine
  });

  test(`${name}: garbage input is a ProtocolError(compression) with a cause`, async () => {
    for (const junk of [Buffer.alloc(0), Buffer.from('not compressed at all'), Buffer.alloc(64, 0xff)]) {
      const err = assertProtocolError(() => decompressSync(codec, junk), ProtocolErrorCodes.compression);
      void err;
      await assertRejectsProtocolError(() => decompress(codec, junk), ProtocolErrorCodes.compression);
    }
    const truncated = compressSync(codec, text);
    assertProtocolError(
      () => decompressSync(codec, truncated.subarray(0, truncated.length >> 1)),
      ProtocolErrorCodes.compression,
    );
  });
}

test('gzip bomb stops at the default 64 MiB limit', async () => {
  const bomb = zlib.gzipSync(Buffer.alloc(80 * 1024 * 1024), { level: 9 });
  assert.ok(bomb.length < 200_000);
  assertProtocolError(() => decompressSync(Compression.gzip, bomb), ProtocolErrorCodes.compression, /67108864/);
  await assertRejectsProtocolError(() => decompress(Compression.gzip, bomb), ProtocolErrorCodes.compression);
});

test('zstd and lz4 bombs are refused before inflating', async () => {
  const zeros = Buffer.alloc(80 * 1024 * 1024);
  for (const codec of [Compression.zstd, Compression.lz4] as const) {
    const bomb = compressSync(codec, zeros);
    assertProtocolError(() => decompressSync(codec, bomb), ProtocolErrorCodes.compression, /limit/);
    await assertRejectsProtocolError(() => decompress(codec, bomb), ProtocolErrorCodes.compression, /limit/);
  }
});

test('snappy writes xerial framing like Java (magic, versions 1/1, 32 KiB blocks)', () => {
  const packed = compressSync(Compression.snappy, text);
  assert.deepEqual(packed.subarray(0, 8), Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]));
  assert.equal(packed.readInt32BE(8), 1);
  assert.equal(packed.readInt32BE(12), 1);
  // First block: [int32 length][raw snappy of the first 32 KiB].
  const firstLength = packed.readInt32BE(16);
  const first = packed.subarray(20, 20 + firstLength);
  assert.deepEqual(snappy.uncompressSync(first, { asBuffer: true }), text.subarray(0, 32 * 1024));
});

test('snappy accepts raw (unframed) input on read', async () => {
  const raw = snappy.compressSync(text);
  assert.deepEqual(decompressSync(Compression.snappy, raw), text);
  assert.deepEqual(await decompress(Compression.snappy, raw), text);
  // A raw block declaring more than the limit is refused from its preamble alone.
  assertProtocolError(() => decompressSync(Compression.snappy, raw, 1000), ProtocolErrorCodes.compression, /limit/);
});

test('snappy xerial: a block length past the end is rejected', () => {
  const packed = Buffer.from(compressSync(Compression.snappy, text));
  packed.writeInt32BE(0x7fffffff, 16);
  assertProtocolError(() => decompressSync(Compression.snappy, packed), ProtocolErrorCodes.compression);
  packed.writeInt32BE(-5, 16);
  assertProtocolError(() => decompressSync(Compression.snappy, packed), ProtocolErrorCodes.compression);
});

test('lz4 writes a frame with independent blocks (what Java KafkaLZ4BlockInputStream requires)', () => {
  const packed = compressSync(Compression.lz4, text);
  assert.equal(packed.readUInt32LE(0), 0x184d2204);
  const flg = packed[4]!;
  assert.equal(flg >> 6, 1, 'frame version 01');
  assert.equal(flg & 0x20, 0x20, 'block independence');
  assert.ok([4, 5, 6, 7].includes((packed[5]! >> 4) & 7), 'block max size id 4..7');
});

test('lz4: bytes after the frame EndMark are ignored, like Java', () => {
  const packed = compressSync(Compression.lz4, text);
  assert.deepEqual(decompressSync(Compression.lz4, Buffer.concat([packed, Buffer.from('trailing')])), text);
});

test('none passes data through', async () => {
  assert.equal(compressSync(Compression.none, text), text);
  assert.equal(await decompress(Compression.none, text), text);
});

test('unknown codec ids are a ProtocolError(compression)', async () => {
  assertProtocolError(() => compressSync(5 as CompressionType, text), ProtocolErrorCodes.compression);
  await assertRejectsProtocolError(() => decompress(7 as CompressionType, text), ProtocolErrorCodes.compression);
});
