/**
 * Named deadlines for the coordinator's timeouts (session, rebalance, join delay, sync,
 * retention). The state machine never sleeps: it schedules a deadline, and its owner calls
 * `expire(now)` when `nextDeadline()` has passed (the broker from one setTimeout; tests after
 * moving a fake clock). Scheduling a name again replaces its deadline.
 *
 * A timer may name the group it belongs to, so its owner can expire the timers of one
 * `__consumer_offsets` partition at a time; and every change (schedule, cancel, expiry) can be
 * journaled, so an operation whose records could not be appended can put the timers back.
 */
export interface DeadlineTimer {
  readonly deadline: number;
  readonly run: () => void;
  /** The group whose state the callback changes; undefined for coordinator-wide timers. */
  readonly group: string | undefined;
}

export class DeadlineTimers {
  readonly #timers = new Map<string, DeadlineTimer>();
  /** Called with a timer's previous value before every change to it (undo logging). */
  journal: ((name: string, previous: DeadlineTimer | undefined) => void) | undefined;

  schedule(name: string, deadline: number, run: () => void, group?: string): void {
    this.journal?.(name, this.#timers.get(name));
    this.#timers.set(name, { deadline, run, group });
  }

  cancel(name: string): void {
    const previous = this.#timers.get(name);
    if (previous === undefined) return;
    this.journal?.(name, previous);
    this.#timers.delete(name);
  }

  /** Puts a timer back as it was (undo); no journaling. */
  restore(name: string, timer: DeadlineTimer | undefined): void {
    if (timer === undefined) this.#timers.delete(name);
    else this.#timers.set(name, timer);
  }

  has(name: string): boolean {
    return this.#timers.has(name);
  }

  deadlineOf(name: string): number | undefined {
    return this.#timers.get(name)?.deadline;
  }

  /** Every scheduled timer by name (tests compare them). */
  entries(): IterableIterator<[string, DeadlineTimer]> {
    return this.#timers.entries();
  }

  /**
   * The earliest deadline (of the timers `filter` accepts, all by default), or undefined when
   * nothing is scheduled.
   */
  nextDeadline(filter?: (timer: DeadlineTimer) => boolean): number | undefined {
    let next: number | undefined;
    for (const t of this.#timers.values()) {
      if ((next === undefined || t.deadline < next) && (filter === undefined || filter(t))) next = t.deadline;
    }
    return next;
  }

  /**
   * The groups with a timer due at `now`, and whether a coordinator-wide timer is due (of the
   * timers `filter` accepts, all by default).
   */
  due(now: number, filter?: (timer: DeadlineTimer) => boolean): { groups: Set<string>; ungrouped: boolean } {
    const groups = new Set<string>();
    let ungrouped = false;
    for (const t of this.#timers.values()) {
      if (t.deadline > now || (filter !== undefined && !filter(t))) continue;
      if (t.group === undefined) ungrouped = true;
      else groups.add(t.group);
    }
    return { groups, ungrouped };
  }

  /**
   * Runs every timer due at `now` that `filter` accepts (all by default), earliest first; a
   * timer a callback schedules at or before `now` runs too. `before` runs ahead of each callback.
   */
  expire(
    now: number,
    options: {
      filter?: ((timer: DeadlineTimer) => boolean) | undefined;
      before?: ((timer: DeadlineTimer) => void) | undefined;
    } = {},
  ): number {
    let ran = 0;
    for (;;) {
      let dueName: string | undefined;
      let due: DeadlineTimer | undefined;
      for (const [name, t] of this.#timers) {
        if (t.deadline <= now && (due === undefined || t.deadline < due.deadline)) {
          if (options.filter !== undefined && !options.filter(t)) continue;
          dueName = name;
          due = t;
        }
      }
      if (due === undefined || dueName === undefined) return ran;
      options.before?.(due);
      this.journal?.(dueName, due);
      this.#timers.delete(dueName);
      due.run();
      ran++;
    }
  }

  clear(): void {
    this.#timers.clear();
  }
}
