/**
 * Recycled large buffers: request frames (network) and log reads for Fetch responses (storage).
 * A fresh multi-megabyte allocation costs a page fault per 4 KiB on first touch, which made the
 * copy of request frames ~15% of the broker's CPU under produce load, and every such buffer is V8
 * external memory, whose churn (hundreds of MB/s) forces full mark-compact GCs every few hundred
 * milliseconds. Buffers come in power-of-two size classes and go back to the pool only when their
 * last user says their bytes are no longer referenced: a Produce request once handled (see
 * `ConnectionLimits.recyclable`), a response chunk once written to the socket.
 */
const MIN_CLASS = 12; // 4 KiB
const MAX_CLASS = 24; // 16 MiB

export class BufferPool {
  private readonly free: Buffer[][] = [];
  private readonly owned = new WeakSet<ArrayBufferLike>();
  /** Owned buffers now in the free lists: a second release of one is ignored. */
  private readonly idle = new WeakSet<ArrayBufferLike>();
  private pooledBytes = 0;
  private readonly maxPooledBytes: number;

  constructor(maxPooledBytes = 64 * 1024 * 1024) {
    this.maxPooledBytes = maxPooledBytes;
  }

  /** A buffer of exactly `size` bytes (a view of a pooled one when the size has a class). */
  acquire(size: number): Buffer {
    const cls = Math.max(MIN_CLASS, Math.ceil(Math.log2(Math.max(size, 1))));
    if (cls > MAX_CLASS) return Buffer.allocUnsafeSlow(size);
    const list = this.free[cls];
    let buf = list?.pop();
    if (buf !== undefined) {
      this.pooledBytes -= buf.length;
      this.idle.delete(buf.buffer);
    } else {
      buf = Buffer.allocUnsafeSlow(2 ** cls);
      this.owned.add(buf.buffer);
    }
    return buf.subarray(0, size);
  }

  /** Returns a frame from `acquire`; anything else is ignored. The caller must not use it again. */
  release(frame: Buffer): void {
    if (!this.owned.has(frame.buffer) || frame.byteOffset !== 0 || this.idle.has(frame.buffer)) return;
    const whole = Buffer.from(frame.buffer, 0, frame.buffer.byteLength);
    if (this.pooledBytes + whole.length > this.maxPooledBytes) return;
    const cls = Math.log2(whole.length);
    let list = this.free[cls];
    if (list === undefined) {
      list = [];
      this.free[cls] = list;
    }
    list.push(whole);
    this.idle.add(whole.buffer);
    this.pooledBytes += whole.length;
  }
}

/** The broker process's pool, shared by its connections' frames and its log reads. */
export const sharedBufferPool = new BufferPool(128 * 1024 * 1024);
