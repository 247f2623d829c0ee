import { ProtocolError, ProtocolErrorCodes } from './errors.ts';
import { uuidFromBytes } from './uuid.ts';

/** A raw tagged field the decoder did not know; kept so re-encoding preserves it. */
export interface UnknownTaggedField {
  tag: number;
  data: Buffer;
}

/**
 * Bounds-checked cursor over one Kafka frame. Every read checks the remaining bytes first and
 * raises ProtocolError (never RangeError); every length prefix is compared with what remains
 * before any allocation, so a 2 GB length in a 100-byte frame fails at once.
 * Bytes, records and unknown tagged fields are returned as views into the frame (zero copy).
 */
export class Reader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): void {
    if (this.end - this.pos < n) {
      throw new ProtocolError(
        ProtocolErrorCodes.truncated,
        `need ${n} bytes at offset ${this.pos}, ${this.end - this.pos} remain`,
      );
    }
  }

  int8(): number {
    this.need(1);
    return this.buf.readInt8(this.pos++);
  }

  bool(): boolean {
    this.need(1);
    return this.buf[this.pos++] !== 0;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  uint16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  float64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  uuid(): string {
    this.need(16);
    const v = uuidFromBytes(this.buf, this.pos);
    this.pos += 16;
    return v;
  }

  /** Unsigned LEB128, at most 5 bytes (a Java int). */
  uvarint(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.end) throw new ProtocolError(ProtocolErrorCodes.truncated, 'truncated varint');
      const b = this.buf[this.pos++]!;
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
    throw new ProtocolError(ProtocolErrorCodes.invalid, 'varint longer than 5 bytes');
  }

  /** Zig-zag signed varint (32-bit). */
  varint(): number {
    const u = this.uvarint();
    return (u >>> 1) ^ -(u & 1);
  }

  /** Unsigned LEB128 up to 10 bytes, as bigint. */
  uvarlong(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtocolError(ProtocolErrorCodes.truncated, 'truncated varlong');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
    throw new ProtocolError(ProtocolErrorCodes.invalid, 'varlong longer than 10 bytes');
  }

  /** Zig-zag signed varlong (64-bit). */
  varlong(): bigint {
    const u = this.uvarlong();
    return BigInt.asIntN(64, (u >> 1n) ^ -(u & 1n));
  }

  /** Checks a length prefix against the remaining bytes before anything is allocated. */
  private length(n: number, what: string): number {
    if (n > this.end - this.pos) {
      throw new ProtocolError(
        ProtocolErrorCodes.truncated,
        `${what} length ${n} exceeds the ${this.end - this.pos} bytes remaining`,
      );
    }
    return n;
  }

  private stringOfLength(n: number): string {
    this.length(n, 'string');
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  private bytesOfLength(n: number): Buffer {
    this.length(n, 'bytes');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  string(): string {
    const n = this.int16();
    if (n < 0) throw new ProtocolError(ProtocolErrorCodes.invalid, `non-nullable string has length ${n}`);
    return this.stringOfLength(n);
  }

  /** Any negative length is null, as in Kafka's generated readers (not only -1). */
  nullableString(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    return this.stringOfLength(n);
  }

  compactString(): string {
    const n = this.uvarint() - 1;
    if (n < 0) throw new ProtocolError(ProtocolErrorCodes.invalid, 'non-nullable compact string is null');
    return this.stringOfLength(n);
  }

  compactNullableString(): string | null {
    const n = this.uvarint() - 1;
    if (n === -1) return null;
    return this.stringOfLength(n);
  }

  bytes(): Buffer {
    const n = this.int32();
    if (n < 0) throw new ProtocolError(ProtocolErrorCodes.invalid, `non-nullable bytes has length ${n}`);
    return this.bytesOfLength(n);
  }

  /** Any negative length is null, as in Kafka's generated readers (not only -1). */
  nullableBytes(): Buffer | null {
    const n = this.int32();
    if (n < 0) return null;
    return this.bytesOfLength(n);
  }

  compactBytes(): Buffer {
    const n = this.uvarint() - 1;
    if (n < 0) throw new ProtocolError(ProtocolErrorCodes.invalid, 'non-nullable compact bytes is null');
    return this.bytesOfLength(n);
  }

  compactNullableBytes(): Buffer | null {
    const n = this.uvarint() - 1;
    if (n === -1) return null;
    return this.bytesOfLength(n);
  }

  /** Raw bytes of a known size (used by record batches and tagged fields). */
  raw(n: number): Buffer {
    return this.bytesOfLength(n);
  }

  /**
   * Array length prefix. Like Kafka's own generated code, a count larger than the bytes that
   * remain is rejected, which bounds allocation by the frame size.
   */
  arrayLength(nullable: boolean): number {
    const n = this.int32();
    return this.checkCount(n, nullable);
  }

  compactArrayLength(nullable: boolean): number {
    const n = this.uvarint() - 1;
    return this.checkCount(n, nullable);
  }

  /** Any negative count is null (-1), as in Kafka's generated readers; refused if not nullable. */
  private checkCount(n: number, nullable: boolean): number {
    if (n < 0) {
      if (!nullable) throw new ProtocolError(ProtocolErrorCodes.invalid, `non-nullable array has length ${n}`);
      return -1;
    }
    return this.length(n, 'array');
  }

  /**
   * Reads a tagged-field section, calling `known` for each tag; returns the tags it declined
   * (returned false for) as unknown fields, or undefined when there were none.
   */
  taggedFields(known: ((tag: number, r: Reader) => boolean) | null): UnknownTaggedField[] | undefined {
    const count = this.uvarint();
    this.length(count, 'tagged fields');
    let unknown: UnknownTaggedField[] | undefined;
    // Writers put tags in ascending order, but Kafka's generated readers do not check it (a
    // repeated known tag overwrites the earlier one), so neither do we; unknown ones are kept in
    // tag order, the order they are written back in.
    let lastTag = -1;
    let sorted = true;
    for (let i = 0; i < count; i++) {
      const tag = this.uvarint();
      if (tag <= lastTag) sorted = false;
      lastTag = tag;
      const size = this.uvarint();
      const start = this.pos;
      const data = this.raw(size);
      if (known !== null) {
        const sub = new Reader(this.buf, start, start + size);
        if (known(tag, sub)) {
          if (sub.pos !== sub.end) {
            throw new ProtocolError(
              ProtocolErrorCodes.invalid,
              `tagged field ${tag} has ${sub.end - sub.pos} extra bytes`,
            );
          }
          continue;
        }
      }
      unknown ??= [];
      unknown.push({ tag, data });
    }
    if (!sorted && unknown !== undefined) unknown.sort((a, b) => a.tag - b.tag);
    return unknown;
  }
}
