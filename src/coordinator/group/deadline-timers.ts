/**
 * Named deadlines for the coordinator's timeouts (session, rebalance, join delay, sync,
 * retention). The state machine never sleeps: it schedules a deadline, and its owner calls
 * `expire(now)` when `nextDeadline()` has passed (the broker from one setTimeout; tests after
 * moving a fake clock). Scheduling a name again replaces its deadline.
 */
export class DeadlineTimers {
  readonly #timers = new Map<string, { deadline: number; run: () => void }>();

  schedule(name: string, deadline: number, run: () => void): void {
    this.#timers.set(name, { deadline, run });
  }

  cancel(name: string): void {
    this.#timers.delete(name);
  }

  has(name: string): boolean {
    return this.#timers.has(name);
  }

  deadlineOf(name: string): number | undefined {
    return this.#timers.get(name)?.deadline;
  }

  /** The earliest deadline, or undefined when nothing is scheduled. */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    for (const t of this.#timers.values()) if (next === undefined || t.deadline < next) next = t.deadline;
    return next;
  }

  /** Runs every timer due at `now`, earliest first; a timer a callback schedules at or before `now` runs too. */
  expire(now: number): number {
    let ran = 0;
    for (;;) {
      let dueName: string | undefined;
      let due: { deadline: number; run: () => void } | undefined;
      for (const [name, t] of this.#timers) {
        if (t.deadline <= now && (due === undefined || t.deadline < due.deadline)) {
          dueName = name;
          due = t;
        }
      }
      if (due === undefined || dueName === undefined) return ran;
      this.#timers.delete(dueName);
      due.run();
      ran++;
    }
  }

  clear(): void {
    this.#timers.clear();
  }
}
