/**
 * Record batch compression codecs, as selected by attribute bits 0-2 (KIP-98 numbering):
 * 1 gzip (node:zlib), 2 snappy (xerial-framed like Java, raw accepted on read), 3 lz4 (LZ4 frame
 * format), 4 zstd (node:zlib, Node >= 23.8). Every codec has a sync and an async form; the async
 * forms run on the libuv / napi thread pool and are what the broker should use for large batches.
 *
 * Decompression is always bounded by `maxSize` (default 64 MiB): a compression bomb fails with
 * ProtocolError(compression) instead of exhausting memory. Every library failure is wrapped in a
 * ProtocolError(compression) whose `cause` is the original error.
 */
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { ProtocolError, ProtocolErrorCodes } from '../errors.ts';
import { Compression, type CompressionType } from './batch-header.ts';

// The native snappy and lz4 addons are loaded on first use: a broker stores batches as produced
// and rarely needs them, and loading them up front costs start-up time and memory.
const requireNative = createRequire(import.meta.url);
let snappyModule: typeof import('snappy') | undefined;
let lz4Module: typeof import('lz4-napi') | undefined;
function snappyLib(): typeof import('snappy') {
  snappyModule ??= requireNative('snappy') as typeof import('snappy');
  return snappyModule;
}
function lz4Lib(): typeof import('lz4-napi') {
  lz4Module ??= requireNative('lz4-napi') as typeof import('lz4-napi');
  return lz4Module;
}

export const DEFAULT_MAX_DECOMPRESSED_SIZE = 64 * 1024 * 1024;

const CODEC_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

export function compressionName(codec: number): string {
  return CODEC_NAMES[codec] ?? `codec ${codec}`;
}

const gzipAsync = promisify(zlib.gzip);
const gunzipAsync = promisify(zlib.gunzip);
const zstdCompressAsync = promisify(zlib.zstdCompress);
const zstdDecompressAsync = promisify(zlib.zstdDecompress);

function failure(codec: CompressionType, action: string, cause: unknown, maxSize?: number): ProtocolError {
  if (cause instanceof ProtocolError) return cause;
  const name = compressionName(codec);
  if ((cause as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE') {
    return new ProtocolError(
      ProtocolErrorCodes.compression,
      `${name} ${action}: output exceeds the ${maxSize}-byte limit`,
      { cause },
    );
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  return new ProtocolError(ProtocolErrorCodes.compression, `${name} ${action} failed: ${message}`, { cause });
}

function tooLarge(codec: CompressionType, size: number, maxSize: number): ProtocolError {
  return new ProtocolError(
    ProtocolErrorCodes.compression,
    `${compressionName(codec)} decompression: output of ${size} bytes exceeds the ${maxSize}-byte limit`,
  );
}

function unknownCodec(codec: number): ProtocolError {
  return new ProtocolError(ProtocolErrorCodes.compression, `unknown compression codec id ${codec}`);
}

// ---------------------------------------------------------------------------------------------
// Snappy. Java's snappy-java SnappyOutputStream (what Kafka uses) writes the "xerial" framing:
//   magic 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00, int32 version (1), int32 compatible version (1),
//   then blocks of [int32 compressed length][raw snappy block], each block <= 32 KiB uncompressed.
// Its SnappyInputStream falls back to raw snappy when the magic is absent, and so do we: some
// clients (older kafka-python, some Go clients) send raw snappy.

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_SIZE = 16;
const XERIAL_VERSION = 1;
const XERIAL_COMPATIBLE_VERSION = 1;
const XERIAL_BLOCK_SIZE = 32 * 1024;

function isXerial(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER_SIZE && XERIAL_MAGIC.equals(data.subarray(0, XERIAL_MAGIC.length));
}

function xerialHeader(): Buffer {
  const header = Buffer.allocUnsafe(XERIAL_HEADER_SIZE);
  XERIAL_MAGIC.copy(header, 0);
  header.writeInt32BE(XERIAL_VERSION, 8);
  header.writeInt32BE(XERIAL_COMPATIBLE_VERSION, 12);
  return header;
}

function xerialFrame(blocks: Buffer[]): Buffer {
  const parts: Buffer[] = [xerialHeader()];
  for (const block of blocks) {
    const length = Buffer.allocUnsafe(4);
    length.writeInt32BE(block.length, 0);
    parts.push(length, block);
  }
  return Buffer.concat(parts);
}

function snappyChunks(data: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += XERIAL_BLOCK_SIZE) chunks.push(data.subarray(i, i + XERIAL_BLOCK_SIZE));
  return chunks;
}

/** The uncompressed length a raw snappy block declares in its varint preamble. */
function snappyDeclaredLength(block: Buffer): number {
  let result = 0;
  for (let i = 0; i < 5; i++) {
    if (i >= block.length) break;
    const b = block[i]!;
    result += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return result;
  }
  throw new ProtocolError(ProtocolErrorCodes.compression, 'snappy block has a malformed length preamble');
}

/** Splits snappy input into raw blocks, checking declared sizes against maxSize before any work. */
function snappyBlocks(data: Buffer, maxSize: number): Buffer[] {
  if (!isXerial(data)) {
    const declared = snappyDeclaredLength(data);
    if (declared > maxSize) throw tooLarge(Compression.snappy, declared, maxSize);
    return [data];
  }
  const blocks: Buffer[] = [];
  let total = 0;
  let pos = XERIAL_HEADER_SIZE;
  while (pos < data.length) {
    if (data.length - pos < 4) {
      throw new ProtocolError(ProtocolErrorCodes.compression, `xerial snappy block length truncated at ${pos}`);
    }
    const length = data.readInt32BE(pos);
    pos += 4;
    if (length < 0 || length > data.length - pos) {
      throw new ProtocolError(
        ProtocolErrorCodes.compression,
        `xerial snappy block of ${length} bytes at ${pos - 4} exceeds the ${data.length - pos} bytes remaining`,
      );
    }
    const block = data.subarray(pos, pos + length);
    pos += length;
    total += snappyDeclaredLength(block);
    if (total > maxSize) throw tooLarge(Compression.snappy, total, maxSize);
    blocks.push(block);
  }
  return blocks;
}

function asBuffer(v: string | Buffer): Buffer {
  return typeof v === 'string' ? Buffer.from(v) : v;
}

function snappyDecompressSync(data: Buffer, maxSize: number): Buffer {
  const blocks = snappyBlocks(data, maxSize);
  const out = blocks.map((b) => asBuffer(snappyLib().uncompressSync(b, { asBuffer: true })));
  return out.length === 1 ? out[0]! : Buffer.concat(out);
}

async function snappyDecompressAsync(data: Buffer, maxSize: number): Promise<Buffer> {
  const blocks = snappyBlocks(data, maxSize);
  const out = await Promise.all(blocks.map(async (b) => asBuffer(await snappyLib().uncompress(b, { asBuffer: true }))));
  return out.length === 1 ? out[0]! : Buffer.concat(out);
}

// ---------------------------------------------------------------------------------------------
// LZ4 frame format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md), which Java's
// KafkaLZ4BlockOutputStream, librdkafka and kafkajs all write for magic 2. lz4-napi's
// compressFrame writes independent blocks (FLG 0x60), which Java's reader requires.
// The native decoder has no output limit, so the frame is walked first: each block's output is
// at most the frame's block maximum size, and at most 256x its compressed size (LZ4's worst-case
// ratio is below 255:1). Like Java, one frame is read and anything after its EndMark is ignored.

const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_MAX_SIZES = [0, 0, 0, 0, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024] as const;
const LZ4_UNCOMPRESSED_BLOCK = 0x80000000;

function lz4Error(message: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCodes.compression, `lz4 frame: ${message}`);
}

/**
 * Validates the frame structure and returns [frame length, upper bound of its decompressed size,
 * block maximum size].
 */
function lz4FrameBound(data: Buffer): [number, number, number] {
  if (data.length < 7) throw lz4Error(`${data.length} bytes are too few for a frame`);
  if (data.readUInt32LE(0) !== LZ4_MAGIC) throw lz4Error('bad magic (not an LZ4 frame)');
  const flg = data[4]!;
  const bd = data[5]!;
  if (flg >> 6 !== 1) throw lz4Error(`unsupported version ${flg >> 6}`);
  const blockChecksum = (flg & 0x10) !== 0;
  const contentSize = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  const dictId = (flg & 0x01) !== 0;
  const blockMax = LZ4_BLOCK_MAX_SIZES[(bd >> 4) & 0x07] ?? 0;
  if (blockMax === 0) throw lz4Error(`invalid block maximum size id ${(bd >> 4) & 0x07}`);
  let pos = 6 + (contentSize ? 8 : 0) + (dictId ? 4 : 0) + 1;
  let bound = 0;
  for (;;) {
    if (data.length - pos < 4) throw lz4Error('truncated before EndMark');
    const word = data.readUInt32LE(pos);
    pos += 4;
    if (word === 0) break;
    const size = (word & ~LZ4_UNCOMPRESSED_BLOCK) >>> 0;
    const uncompressed = (word & LZ4_UNCOMPRESSED_BLOCK) !== 0;
    if (size > blockMax) throw lz4Error(`block of ${size} bytes exceeds the frame's ${blockMax}-byte maximum`);
    const trailer = blockChecksum ? 4 : 0;
    if (data.length - pos < size + trailer) throw lz4Error(`block of ${size} bytes truncated`);
    pos += size + trailer;
    bound += uncompressed ? size : Math.min(blockMax, size * 256);
  }
  if (contentChecksum) {
    if (data.length - pos < 4) throw lz4Error('truncated content checksum');
    pos += 4;
  }
  return [pos, bound, blockMax];
}

/**
 * The frame to hand to the native decoder. The bound is exact for full blocks and overestimates
 * only short ones (normally just the last), so one block of slack is allowed here and the real
 * size is checked after decoding: memory stays within maxSize + one block (<= 4 MiB).
 */
function lz4Frame(data: Buffer, maxSize: number): Buffer {
  const [length, bound, blockMax] = lz4FrameBound(data);
  if (bound > maxSize + blockMax) {
    throw new ProtocolError(
      ProtocolErrorCodes.compression,
      `lz4 decompression: frame may expand to ${bound} bytes, over the ${maxSize}-byte limit`,
    );
  }
  return length === data.length ? data : data.subarray(0, length);
}

// ---------------------------------------------------------------------------------------------

export function compressSync(codec: CompressionType, data: Buffer): Buffer {
  try {
    switch (codec) {
      case Compression.none:
        return data;
      case Compression.gzip:
        return zlib.gzipSync(data);
      case Compression.snappy:
        return xerialFrame(snappyChunks(data).map((c) => snappyLib().compressSync(c)));
      case Compression.lz4:
        return lz4Lib().compressFrameSync(data);
      case Compression.zstd:
        return zlib.zstdCompressSync(data);
      default:
        throw unknownCodec(codec);
    }
  } catch (cause) {
    throw failure(codec, 'compression', cause);
  }
}

export async function compress(codec: CompressionType, data: Buffer): Promise<Buffer> {
  try {
    switch (codec) {
      case Compression.none:
        return data;
      case Compression.gzip:
        return await gzipAsync(data);
      case Compression.snappy:
        return xerialFrame(await Promise.all(snappyChunks(data).map((c) => snappyLib().compress(c))));
      case Compression.lz4:
        return await lz4Lib().compressFrame(data);
      case Compression.zstd:
        return await zstdCompressAsync(data);
      default:
        throw unknownCodec(codec);
    }
  } catch (cause) {
    throw failure(codec, 'compression', cause);
  }
}

function checkSize(codec: CompressionType, out: Buffer, maxSize: number): Buffer {
  if (out.length > maxSize) throw tooLarge(codec, out.length, maxSize);
  return out;
}

export function decompressSync(
  codec: CompressionType,
  data: Buffer,
  maxSize: number = DEFAULT_MAX_DECOMPRESSED_SIZE,
): Buffer {
  try {
    switch (codec) {
      case Compression.none:
        return checkSize(codec, data, maxSize);
      case Compression.gzip:
        return checkSize(codec, zlib.gunzipSync(data, { maxOutputLength: Math.max(1, maxSize) }), maxSize);
      case Compression.snappy:
        return checkSize(codec, snappyDecompressSync(data, maxSize), maxSize);
      case Compression.lz4:
        return checkSize(codec, lz4Lib().decompressFrameSync(lz4Frame(data, maxSize)), maxSize);
      case Compression.zstd:
        return checkSize(codec, zlib.zstdDecompressSync(data, { maxOutputLength: Math.max(1, maxSize) }), maxSize);
      default:
        throw unknownCodec(codec);
    }
  } catch (cause) {
    throw failure(codec, 'decompression', cause, maxSize);
  }
}

export async function decompress(
  codec: CompressionType,
  data: Buffer,
  maxSize: number = DEFAULT_MAX_DECOMPRESSED_SIZE,
): Promise<Buffer> {
  try {
    switch (codec) {
      case Compression.none:
        return checkSize(codec, data, maxSize);
      case Compression.gzip:
        return checkSize(codec, await gunzipAsync(data, { maxOutputLength: Math.max(1, maxSize) }), maxSize);
      case Compression.snappy:
        return checkSize(codec, await snappyDecompressAsync(data, maxSize), maxSize);
      case Compression.lz4:
        return checkSize(codec, await lz4Lib().decompressFrame(lz4Frame(data, maxSize)), maxSize);
      case Compression.zstd:
        return checkSize(codec, await zstdDecompressAsync(data, { maxOutputLength: Math.max(1, maxSize) }), maxSize);
      default:
        throw unknownCodec(codec);
    }
  } catch (cause) {
    throw failure(codec, 'decompression', cause, maxSize);
  }
}
