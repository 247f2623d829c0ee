/**
 * Direct-to-buffer zig-zag varint/varlong helpers for the record format. The general Writer and
 * Reader classes work through a cursor object; the batch builder instead sizes every record
 * first and writes into one exact allocation, which needs size functions and positional writes.
 * Reads are bounded by an explicit `end` and raise ProtocolError, never RangeError.
 */
import { ProtocolError, ProtocolErrorCodes } from '../errors.ts';

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

/** Bytes of the zig-zag varint encoding of a signed 32-bit integer. */
export function sizeOfVarint(value: number): number {
  let u = ((value << 1) ^ (value >> 31)) >>> 0;
  let n = 1;
  while (u >= 0x80) {
    u >>>= 7;
    n++;
  }
  return n;
}

export function writeVarint(buf: Buffer, pos: number, value: number): number {
  let u = ((value << 1) ^ (value >> 31)) >>> 0;
  while (u >= 0x80) {
    buf[pos++] = (u & 0x7f) | 0x80;
    u >>>= 7;
  }
  buf[pos++] = u;
  return pos;
}

function zigzag64(value: bigint): bigint {
  return BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
}

/** Bytes of the zig-zag varlong encoding; int32-range values (the usual timestamp deltas) skip bigint math. */
export function sizeOfVarlong(value: bigint): number {
  if (value >= INT32_MIN && value <= INT32_MAX) return sizeOfVarint(Number(value));
  let u = zigzag64(value);
  let n = 1;
  while (u >= 0x80n) {
    u >>= 7n;
    n++;
  }
  return n;
}

export function writeVarlong(buf: Buffer, pos: number, value: bigint): number {
  // For values in int32 range the 64-bit zig-zag value equals the 32-bit one, so the bytes match.
  if (value >= INT32_MIN && value <= INT32_MAX) return writeVarint(buf, pos, Number(value));
  let u = zigzag64(value);
  while (u >= 0x80n) {
    buf[pos++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  buf[pos++] = Number(u);
  return pos;
}

/** A bounded cursor over one record region; only what the record format needs. */
export class VarintCursor {
  readonly buf: Buffer;
  pos: number;
  end: number;

  constructor(buf: Buffer, pos: number, end: number) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /** Zig-zag varint, at most 5 bytes, as Kafka's ByteUtils.readVarint. */
  varint(): number {
    let u = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) throw new ProtocolError(ProtocolErrorCodes.truncated, 'truncated varint in record');
      const b = this.buf[this.pos++]!;
      u |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return (u >>> 1) ^ -(u & 1);
    }
    throw new ProtocolError(ProtocolErrorCodes.invalid, 'varint longer than 5 bytes in record');
  }

  /** Zig-zag varlong, at most 10 bytes. Accumulates in a double while exact (< 2^49), then in bigint. */
  varlong(): bigint {
    let u = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      if (this.pos >= this.end) throw new ProtocolError(ProtocolErrorCodes.truncated, 'truncated varlong in record');
      const b = this.buf[this.pos++]!;
      u += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return BigInt(u % 2 === 0 ? u / 2 : -(u + 1) / 2);
      scale *= 128;
    }
    let big = BigInt(u);
    let shift = 49n;
    for (let i = 7; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtocolError(ProtocolErrorCodes.truncated, 'truncated varlong in record');
      const b = this.buf[this.pos++]!;
      big |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        big = BigInt.asUintN(64, big);
        return BigInt.asIntN(64, (big >> 1n) ^ -(big & 1n));
      }
      shift += 7n;
    }
    throw new ProtocolError(ProtocolErrorCodes.invalid, 'varlong longer than 10 bytes in record');
  }

  int8(): number {
    if (this.pos >= this.end) throw new ProtocolError(ProtocolErrorCodes.truncated, 'truncated record attributes');
    return this.buf.readInt8(this.pos++);
  }

  /** A view of the next `n` bytes, after checking they lie within the record. */
  bytes(n: number, what: string): Buffer {
    if (n > this.end - this.pos) {
      throw new ProtocolError(
        ProtocolErrorCodes.truncated,
        `record ${what} of ${n} bytes exceeds the ${this.end - this.pos} bytes remaining`,
      );
    }
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}
