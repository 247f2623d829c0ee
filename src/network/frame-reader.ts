import { ProtocolError, ProtocolErrorCodes } from '../protocol/errors.ts';
import type { FramePool } from './frame-pool.ts';

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
  private readonly pool: FramePool | undefined;

  constructor(maxFrameBytes: number, pool?: FramePool) {
    this.maxFrameBytes = maxFrameBytes;
    this.pool = pool;
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
    // The frame spans reads: copy exactly its bytes once; later frames' bytes stay where they are
    // (copying the whole backlog would copy pipelined frames again and again).
    this.skip(4);
    const frame = this.pool !== undefined ? this.pool.acquire(size) : Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const chunk = this.chunks[0]!;
      const n = Math.min(chunk.length, size - filled);
      chunk.copy(frame, filled, 0, n);
      filled += n;
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
    }
    this.buffered -= size;
    return frame;
  }

  /** Drops `n` buffered bytes (the size prefix). */
  private skip(n: number): void {
    let left = n;
    while (left > 0) {
      const chunk = this.chunks[0]!;
      if (chunk.length <= left) {
        left -= chunk.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = chunk.subarray(left);
        left = 0;
      }
    }
    this.buffered -= n;
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
