/**
 * Rate limit for log lines a client can cause at will (a connection closed for a malformed
 * request, a request failing with an unexpected error): at most one line per key (the client's
 * address) per interval. The next line let through says how many were held back since the last
 * one, so nothing goes uncounted; a fuzzer sending 193,000 bad frames used to write 193,000 lines.
 */
export class LogRateLimiter {
  private readonly intervalMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  /** Per key: until when further lines are held back, and how many were. Oldest first. */
  private readonly entries = new Map<string, { until: number; suppressed: number }>();

  /** `intervalMs` 0 lets every line through; at most `maxKeys` addresses are remembered. */
  constructor(intervalMs: number, maxKeys = 10_000, now: () => number = Date.now) {
    this.intervalMs = intervalMs;
    this.maxKeys = maxKeys;
    this.now = now;
  }

  /**
   * Whether to log a line for `key`: undefined to hold it back (it is counted), otherwise the
   * number of lines held back since the last one logged for that key.
   */
  admit(key: string): number | undefined {
    if (this.intervalMs <= 0) return 0;
    const now = this.now();
    const entry = this.entries.get(key);
    if (entry !== undefined && now < entry.until) {
      entry.suppressed++;
      return undefined;
    }
    const suppressed = entry?.suppressed ?? 0;
    // Re-inserted, so the map stays ordered by the last line logged.
    this.entries.delete(key);
    this.entries.set(key, { until: now + this.intervalMs, suppressed: 0 });
    if (this.entries.size > this.maxKeys) {
      // Forget the addresses logged longest ago (their held-back counts go with them).
      for (const k of this.entries.keys()) {
        this.entries.delete(k);
        if (this.entries.size <= this.maxKeys) break;
      }
    }
    return suppressed;
  }
}

/** The fields to add to a line let through: the count held back, when there was one. */
export function suppressedField(suppressed: number): { suppressed?: number } {
  return suppressed > 0 ? { suppressed } : {};
}
