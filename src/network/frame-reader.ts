import { ProtocolError, ProtocolErrorCodes } from '../protocol/errors.ts';
import type { BufferPool } from '../util/buffer-pool.ts';

const EMPTY = Buffer.alloc(0);
/** Frames at least this big come from the pool (when there is one); smaller ones from Node's slab. */
const POOLED_FRAME_BYTES = 16 * 1024;

/**
 * Splits a TCP byte stream into Kafka frames (int32 size + payload), copying each frame's bytes
 * once into a buffer of its own. It never keeps a pushed chunk: once next() has returned
 * undefined, the caller may reuse the chunk's memory. That is what lets the broker read every
 * socket into one shared buffer (see socket-server.ts) instead of a fresh 64 KiB allocation per
 * read, whose churn made V8 run a full GC every ~250 ms under produce load.
 *
 * A size above `maxFrameBytes` (Kafka's socket.request.max.bytes) or below zero is a
 * ProtocolError: the caller closes that connection before anything is allocated for it.
 *
 * A caller that stops taking frames before the chunk is drained (a connection at one of its
 * bounds) calls retain(): the rest of the chunk is copied into a buffer of the reader's own, and
 * the next frames come from there once the caller goes on.
 */
export class FrameReader {
  private readonly maxFrameBytes: number;
  private readonly pool: BufferPool | undefined;
  /** The chunk being read and how far. */
  private chunk: Buffer = EMPTY;
  private pos = 0;
  /** Whether `chunk` is the reader's own copy (retain()) rather than the caller's buffer. */
  private owned = false;
  /** A size field split across chunks. */
  private readonly sizeField = Buffer.alloc(4);
  private sizeFieldFilled = 0;
  /** The frame being filled, once its size is known. */
  private partial: Buffer | undefined;
  private partialFilled = 0;

  constructor(maxFrameBytes: number, pool?: BufferPool) {
    this.maxFrameBytes = maxFrameBytes;
    this.pool = pool;
  }

  /** Bytes received that are not yet part of a returned frame. */
  get bufferedBytes(): number {
    return this.chunk.length - this.pos + this.sizeFieldFilled + this.partialFilled;
  }

  /** Bytes of the frame being filled (allocated when its size was read). */
  get partialFrameBytes(): number {
    return this.partial?.length ?? 0;
  }

  /** Bytes kept by retain(), not yet parsed. */
  get retainedBytes(): number {
    return this.owned ? this.chunk.length : 0;
  }

  /** Whether the next byte starts a new frame (no frame or size field is half read). */
  get atFrameBoundary(): boolean {
    return this.partial === undefined && this.sizeFieldFilled === 0;
  }

  /**
   * Reads `chunk`; call next() until it returns undefined before pushing again or reusing the
   * chunk, or call retain(). Bytes pushed after retain() are appended to the retained ones.
   */
  push(chunk: Buffer): void {
    if (this.pos < this.chunk.length) {
      if (!this.owned) throw new Error('FrameReader: the previous chunk was not drained');
      this.chunk = Buffer.concat([this.chunk.subarray(this.pos), chunk]);
      this.pos = 0;
      return;
    }
    this.chunk = chunk;
    this.pos = 0;
  }

  /** Copies the bytes of the chunk not yet read, so the caller may reuse the chunk now. */
  retain(): void {
    if (this.owned) return;
    if (this.pos >= this.chunk.length) {
      this.drained();
      return;
    }
    this.chunk = Buffer.from(this.chunk.subarray(this.pos));
    this.pos = 0;
    this.owned = true;
  }

  /** Drops every byte held (the connection closed); a frame being filled goes back to the pool. */
  release(): void {
    if (this.partial !== undefined) this.pool?.release(this.partial);
    this.partial = undefined;
    this.partialFilled = 0;
    this.sizeFieldFilled = 0;
    this.drained();
  }

  /** The next complete frame's payload, or undefined if more bytes are needed. */
  next(): Buffer | undefined {
    const chunk = this.chunk;
    if (this.partial === undefined) {
      const size = this.readSize();
      if (size === undefined) return this.drained();
      if (size < 0 || size > this.maxFrameBytes) {
        throw new ProtocolError(
          ProtocolErrorCodes.invalid,
          `frame size ${size} is outside 0..${this.maxFrameBytes} (socket.request.max.bytes)`,
        );
      }
      this.partial = this.allocate(size);
      this.partialFilled = 0;
    }
    const frame = this.partial;
    const n = Math.min(frame.length - this.partialFilled, chunk.length - this.pos);
    chunk.copy(frame, this.partialFilled, this.pos, this.pos + n);
    this.pos += n;
    this.partialFilled += n;
    if (this.partialFilled < frame.length) return this.drained();
    this.partial = undefined;
    this.partialFilled = 0;
    return frame;
  }

  /** The next size field, or undefined when the chunk ends inside it (its bytes are kept). */
  private readSize(): number | undefined {
    const chunk = this.chunk;
    if (this.sizeFieldFilled === 0 && chunk.length - this.pos >= 4) {
      const size = chunk.readInt32BE(this.pos);
      this.pos += 4;
      return size;
    }
    const n = Math.min(4 - this.sizeFieldFilled, chunk.length - this.pos);
    chunk.copy(this.sizeField, this.sizeFieldFilled, this.pos, this.pos + n);
    this.pos += n;
    this.sizeFieldFilled += n;
    if (this.sizeFieldFilled < 4) return undefined;
    this.sizeFieldFilled = 0;
    return this.sizeField.readInt32BE(0);
  }

  /** Every byte of the chunk has been copied out: drop it so its memory can be reused. */
  private drained(): undefined {
    this.chunk = EMPTY;
    this.pos = 0;
    this.owned = false;
    return undefined;
  }

  private allocate(size: number): Buffer {
    if (this.pool !== undefined && size >= POOLED_FRAME_BYTES) return this.pool.acquire(size);
    return Buffer.allocUnsafe(size);
  }
}
