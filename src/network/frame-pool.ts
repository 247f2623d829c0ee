/**
 * Recycled buffers for large request frames. A frame that spans several socket reads must be
 * copied into one buffer; a fresh multi-megabyte allocation costs a page fault per 4 KiB on first
 * touch, which made that copy ~15% of the broker's CPU under produce load. Buffers come in
 * power-of-two size classes and go back to the pool only when the owner of the request says its
 * bytes are no longer referenced (see `ConnectionLimits.recyclable`).
 */
const MIN_CLASS = 16; // 64 KiB
const MAX_CLASS = 24; // 16 MiB

export class FramePool {
  private readonly free: Buffer[][] = [];
  private readonly owned = new WeakSet<ArrayBufferLike>();
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
    if (buf !== undefined) this.pooledBytes -= buf.length;
    else {
      buf = Buffer.allocUnsafeSlow(2 ** cls);
      this.owned.add(buf.buffer);
    }
    return buf.subarray(0, size);
  }

  /** Returns a frame from `acquire`; anything else is ignored. The caller must not use it again. */
  release(frame: Buffer): void {
    if (!this.owned.has(frame.buffer) || frame.byteOffset !== 0) return;
    const whole = Buffer.from(frame.buffer, 0, frame.buffer.byteLength);
    if (this.pooledBytes + whole.length > this.maxPooledBytes) return;
    const cls = Math.log2(whole.length);
    let list = this.free[cls];
    if (list === undefined) {
      list = [];
      this.free[cls] = list;
    }
    list.push(whole);
    this.pooledBytes += whole.length;
  }
}
