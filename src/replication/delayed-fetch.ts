/**
 * Kafka's DelayedOperationPurgatory for Fetch (`DelayedFetch`): a Fetch that has less than its
 * min.bytes to return is parked, watched under each topic partition it reads, and completed when
 * an append or a high-watermark move on one of them may let it read more (the `ReplicaManager`
 * calls `checkAndComplete` from each partition log's change notification), or when its max.wait.ms
 * runs out. Completing runs the fetch's read again; with still too little, it is parked again for
 * the time it has left. Never a polling loop: an idle parked fetch costs one timer.
 *
 * Owns only the parked fetches (in memory; a crash drops them with their connections). Shutdown
 * completes every parked fetch at once and makes new ones complete after their first read, so
 * in-flight requests finish promptly. Next issue: acks=all Produces park here too, woken by
 * high-watermark moves.
 */

/** What a fetch's read tells the purgatory: how much it found, and whether a partition failed. */
export interface FetchReadOutcome {
  bytes: number;
  /** A partition error answers at once, as Kafka's fetchMessages does. */
  hasError: boolean;
}

export class DelayedFetchPurgatory {
  /** Topic-partition key -> completions of the fetches parked on it. */
  readonly #watchers = new Map<string, Set<() => void>>();
  /** Per topic-partition key, how often it was checked: a change during a read skips the park. */
  readonly #changes = new Map<string, number>();
  readonly #parked = new Set<() => void>();
  #shuttingDown = false;

  /** Fetches parked now (Kafka's PurgatorySize for Fetch). */
  get size(): number {
    return this.#parked.size;
  }

  /**
   * Kafka's fetchMessages: runs `read`; returns its outcome once it has at least `minBytes`, a
   * partition error, or `maxWaitMs` has passed; meanwhile parks on `keys` and reads again when
   * one of them changes. No keys: nothing could wake it, so the first read answers.
   */
  async fetch<T extends FetchReadOutcome>(
    keys: readonly string[],
    minBytes: number,
    maxWaitMs: number,
    read: () => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + Math.max(0, maxWaitMs);
    for (;;) {
      const before = keys.map((k) => this.#changes.get(k) ?? 0);
      const outcome = await read();
      const remaining = deadline - Date.now();
      if (outcome.bytes >= minBytes || outcome.hasError || remaining <= 0 || keys.length === 0 || this.#shuttingDown)
        return outcome;
      // An append while the read was in flight may be past what it saw: read again, do not park.
      if (keys.some((k, i) => (this.#changes.get(k) ?? 0) !== before[i])) continue;
      await this.#park(keys, remaining);
    }
  }

  #park(keys: readonly string[], timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let done = false;
      const complete = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        for (const k of keys) {
          const set = this.#watchers.get(k);
          if (set === undefined) continue;
          set.delete(complete);
          if (set.size === 0) this.#watchers.delete(k);
        }
        this.#parked.delete(complete);
        resolve();
      };
      const timer = setTimeout(complete, timeoutMs);
      this.#parked.add(complete);
      for (const k of keys) {
        let set = this.#watchers.get(k);
        if (set === undefined) {
          set = new Set();
          this.#watchers.set(k, set);
        }
        set.add(complete);
      }
    });
  }

  /** The partition under `key` changed (an append, a high-watermark move): its parked fetches read again. */
  checkAndComplete(key: string): void {
    this.#changes.set(key, (this.#changes.get(key) ?? 0) + 1);
    const set = this.#watchers.get(key);
    if (set === undefined) return;
    for (const complete of [...set]) complete();
  }

  /** The partition under `key` is gone from this broker: its parked fetches read again (and fail). */
  forget(key: string): void {
    this.checkAndComplete(key);
    this.#changes.delete(key);
  }

  /** Completes every parked fetch and makes new ones answer after their first read. */
  shutdown(): void {
    this.#shuttingDown = true;
    for (const complete of [...this.#parked]) complete();
  }
}
