import { ProtocolError, ProtocolErrorCodes } from '../protocol/errors.ts';

/**
 * Splits a TCP byte stream into Kafka frames (int32 size + payload). Chunks are kept by
 * reference until a frame is complete, so a 1 MiB produce request costs one copy at most.
 * A size above `maxFrameBytes` (Kafka's socket.request.max.bytes) or below zero is a
 * ProtocolError: the caller closes that connection before allocating anything.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly maxFrameBytes: number;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete frame's payload, or undefined if more bytes are needed. */
  next(): Buffer | undefined {
    if (this.buffered < 4) return undefined;
    const size = this.peekSize();
    if (size < 0 || size > this.maxFrameBytes) {
      throw new ProtocolError(
        ProtocolErrorCodes.invalid,
        `frame size ${size} is outside 0..${this.maxFrameBytes} (socket.request.max.bytes)`,
      );
    }
    if (this.buffered < 4 + size) return undefined;
    const first = this.chunks[0]!;
    if (first.length >= 4 + size) {
      // Common case: the whole frame sits in the first chunk.
      const frame = first.subarray(4, 4 + size);
      if (first.length === 4 + size) this.chunks.shift();
      else this.chunks[0] = first.subarray(4 + size);
      this.buffered -= 4 + size;
      return frame;
    }
    const all = Buffer.concat(this.chunks, this.buffered);
    const frame = all.subarray(4, 4 + size);
    const rest = all.subarray(4 + size);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return frame;
  }

  private peekSize(): number {
    let first = this.chunks[0]!;
    if (first.length < 4) {
      // Rare: the size field itself is split across reads; merge what we have.
      first = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [first];
    }
    return first.readInt32BE(0);
  }
}
