import { ProtocolError, ProtocolErrorCodes } from './errors.ts';
import type { UnknownTaggedField } from './reader.ts';
import { uuidToBytes } from './uuid.ts';

/** Buffers at least this large are appended by reference instead of copied. */
export const ZERO_COPY_THRESHOLD = 4096;

/**
 * Growable big-endian encoder. Small values go into a scratch buffer; large byte arrays (record
 * batches read from disk, for instance) are kept by reference so a Fetch response is written
 * to the socket with writev and never copied. `toChunks()` gives the pieces, `toBuffer()` one buffer.
 */
export class Writer {
  private chunks: Buffer[] = [];
  private buf: Buffer;
  private pos = 0;
  private start = 0;
  private total = 0;

  constructor(initialSize = 1024) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.total + this.pos - this.start;
  }

  private ensure(n: number): void {
    if (this.buf.length - this.pos >= n) return;
    this.flushScratch();
    this.buf = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2, 1024));
    this.pos = 0;
    this.start = 0;
  }

  private flushScratch(): void {
    if (this.pos > this.start) {
      this.chunks.push(this.buf.subarray(this.start, this.pos));
      this.total += this.pos - this.start;
      this.start = this.pos;
    }
  }

  int8(v: number): void {
    this.ensure(1);
    this.buf.writeInt8(v, this.pos);
    this.pos += 1;
  }

  bool(v: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  int16(v: number): void {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
  }

  uint16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }

  int32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
  }

  uint32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  int64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigInt64BE(v, this.pos);
    this.pos += 8;
  }

  float64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
  }

  uuid(v: string): void {
    this.raw(uuidToBytes(v));
  }

  uvarint(v: number): void {
    this.ensure(5);
    let u = v >>> 0;
    while (u >= 0x80) {
      this.buf[this.pos++] = (u & 0x7f) | 0x80;
      u >>>= 7;
    }
    this.buf[this.pos++] = u;
  }

  varint(v: number): void {
    this.uvarint((v << 1) ^ (v >> 31));
  }

  uvarlong(v: bigint): void {
    this.ensure(10);
    let u = BigInt.asUintN(64, v);
    while (u >= 0x80n) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  varlong(v: bigint): void {
    const z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    this.uvarlong(z);
  }

  string(v: string): void {
    const n = Buffer.byteLength(v);
    if (n > 0x7fff) throw new ProtocolError(ProtocolErrorCodes.unencodable, `string of ${n} bytes is too long`);
    this.int16(n);
    this.utf8(v, n);
  }

  nullableString(v: string | null): void {
    if (v === null) this.int16(-1);
    else this.string(v);
  }

  compactString(v: string): void {
    const n = Buffer.byteLength(v);
    this.uvarint(n + 1);
    this.utf8(v, n);
  }

  compactNullableString(v: string | null): void {
    if (v === null) this.uvarint(0);
    else this.compactString(v);
  }

  private utf8(v: string, n: number): void {
    this.ensure(n);
    this.pos += this.buf.write(v, this.pos, n, 'utf8');
  }

  bytes(v: Uint8Array): void {
    this.int32(v.length);
    this.raw(v);
  }

  nullableBytes(v: Uint8Array | null): void {
    if (v === null) this.int32(-1);
    else this.bytes(v);
  }

  compactBytes(v: Uint8Array): void {
    this.uvarint(v.length + 1);
    this.raw(v);
  }

  compactNullableBytes(v: Uint8Array | null): void {
    if (v === null) this.uvarint(0);
    else this.compactBytes(v);
  }

  /** Appends bytes as they are; large ones by reference (the caller must not mutate them). */
  raw(v: Uint8Array): void {
    if (v.length >= ZERO_COPY_THRESHOLD) {
      this.flushScratch();
      this.chunks.push(Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.length));
      this.total += v.length;
      return;
    }
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  arrayLength(n: number): void {
    this.int32(n);
  }

  compactArrayLength(n: number): void {
    this.uvarint(n + 1);
  }

  /** Reserves 4 bytes for an int32 filled in later with `patchInt32` (frame sizes, batch lengths). */
  reserveInt32(): number {
    this.ensure(4);
    const at = this.length;
    this.pos += 4;
    return at;
  }

  /** Writes an int32 at an absolute position previously reserved in this writer. */
  patchInt32(at: number, v: number): void {
    let base = 0;
    for (const c of this.chunks) {
      if (at < base + c.length) {
        if (at + 4 > base + c.length) break;
        c.writeInt32BE(v, at - base);
        return;
      }
      base += c.length;
    }
    const local = at - this.total + this.start;
    if (local >= this.start && local + 4 <= this.pos) {
      this.buf.writeInt32BE(v, local);
      return;
    }
    throw new ProtocolError(ProtocolErrorCodes.unencodable, `cannot patch int32 at ${at}`);
  }

  /** Writes a tagged-field section: the known fields (pre-encoded, sorted by tag) merged with unknown ones. */
  taggedFields(known: UnknownTaggedField[] | null, unknown: readonly UnknownTaggedField[] | undefined): void {
    const all = unknown === undefined || unknown.length === 0 ? (known ?? []) : [...(known ?? []), ...unknown];
    if (known !== null && unknown !== undefined && unknown.length > 0) all.sort((a, b) => a.tag - b.tag);
    this.uvarint(all.length);
    for (const f of all) {
      this.uvarint(f.tag);
      this.uvarint(f.data.length);
      this.raw(f.data);
    }
  }

  /** The encoded bytes as a list of buffers (no copy of large pieces). */
  toChunks(): Buffer[] {
    this.flushScratch();
    return this.chunks;
  }

  toBuffer(): Buffer {
    const chunks = this.toChunks();
    if (chunks.length === 1) return chunks[0]!;
    return Buffer.concat(chunks, this.total);
  }
}
