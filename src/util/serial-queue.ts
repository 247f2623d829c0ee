/**
 * Runs async tasks one at a time, in submission order. The owner of a piece of mutable state (a
 * partition log, a group) pushes every mutation through its queue so interleaved async I/O can
 * never reorder them. A failing task rejects its own promise only; the queue carries on.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  /** Tasks submitted and not yet settled (including the running one). */
  get pending(): number {
    return this.#pending;
  }

  run<T>(task: () => Promise<T> | T): Promise<T> {
    this.#pending++;
    const result = this.#tail.then(task);
    const settle = (): void => {
      this.#pending--;
    };
    // The chain continues whether the task resolved or rejected; the rejection is delivered
    // through `result` to the caller.
    this.#tail = result.then(settle, settle);
    return result;
  }

  /** Resolves once every task submitted so far has settled. */
  async idle(): Promise<void> {
    await this.#tail;
  }
}
