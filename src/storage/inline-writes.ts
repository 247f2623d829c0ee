/**
 * When a log append is written with a blocking pwrite on the event loop instead of through
 * libuv's thread pool.
 *
 * A thread-pool write costs a hand-off to a worker thread and a wake-up of the event loop (futex,
 * eventfd, epoll). On the 2-core development VM that hand-off cost far more than the copy into the
 * page cache: at 240 MB/s of produce the broker used 0.9 of a core with pool writes and 0.5 with
 * inline ones, and its maximum produce rate rose from ~425 to ~530 MB/s (bench/RESULTS.md).
 *
 * The risk of an inline write is a write that blocks in the kernel (dirty-page throttling, a
 * journal commit) and so stalls every connection, not only the producer. Two guards: writes above
 * `maxBytes` always go to the pool, and a write that took longer than `slowMs` sends every write
 * to the pool for the next `backoffMs` (stalls come in episodes, such as a writeback burst).
 */
export interface InlineWriteSettings {
  /** Largest write done inline; 0 disables inline writes. */
  maxBytes: number;
  /** An inline write slower than this turns inline writes off for `backoffMs`. */
  slowMs: number;
  backoffMs: number;
}

export const DEFAULT_INLINE_WRITE_SETTINGS: Readonly<InlineWriteSettings> = Object.freeze({
  maxBytes: 1024 * 1024,
  slowMs: 20,
  backoffMs: 2000,
});

export class InlineWritePolicy {
  readonly #settings: InlineWriteSettings;
  readonly #now: () => number;
  #pooledUntil = 0;
  #slowWrites = 0;
  /** Called when a slow write starts a back-off (the broker logs it, at most once a minute). */
  onBackoff: ((elapsedMs: number, slowWrites: number) => void) | undefined;

  constructor(settings: Partial<InlineWriteSettings> = {}, now: () => number = () => performance.now()) {
    this.#settings = { ...DEFAULT_INLINE_WRITE_SETTINGS, ...settings };
    this.#now = now;
  }

  /** Whether a write of `bytes` should be done inline now. */
  allows(bytes: number): boolean {
    return bytes <= this.#settings.maxBytes && this.#now() >= this.#pooledUntil;
  }

  /** Reports how long an inline write took (from `allows` to its return). */
  finished(elapsedMs: number): void {
    if (elapsedMs <= this.#settings.slowMs) return;
    this.#slowWrites++;
    this.#pooledUntil = this.#now() + this.#settings.backoffMs;
    this.onBackoff?.(elapsedMs, this.#slowWrites);
  }

  /** Inline writes that were slow (each began a back-off). */
  get slowWrites(): number {
    return this.#slowWrites;
  }

  /** Runs `write` inline when allowed (returning its result), otherwise returns undefined. */
  runInline<T>(bytes: number, write: () => T): T | undefined {
    if (!this.allows(bytes)) return undefined;
    const start = this.#now();
    try {
      return write();
    } finally {
      this.finished(this.#now() - start);
    }
  }
}
