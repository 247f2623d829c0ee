/**
 * The broker-wide bound on memory held for clients' requests and responses.
 *
 * Requests: Kafka's `queued.max.request.bytes` memory pool. Kafka takes a request's memory from
 * the pool when it has read the frame's size and reads no new frame on any connection while the
 * pool is empty; the pool is not strict, so one frame may take it past its bound. Here the
 * bytes counted against the bound are those of frames being filled and of frames read and not
 * yet answered. Bytes read from a socket but not yet parsed (a paused connection keeps what its
 * last read brought, at most one read of 256 KiB) are counted apart, as `bufferedBytes`:
 * counting them against the bound could keep paused connections waiting on each other for ever.
 *
 * Responses: Kafka writes Fetch data from the log files to the socket without holding it in
 * memory (zero copy); Samsa holds every response in memory until the socket has taken it. So
 * `samsa.queued.max.response.bytes` bounds the bytes of responses built and not yet written:
 * past it, no connection dispatches another request until clients have read enough.
 *
 * A bound below zero means none. Connections register while they wait and are woken (on a
 * later turn of the event loop) once the counters are back under both bounds.
 */
export class NetworkMemory {
  readonly maxRequestBytes: number;
  readonly maxResponseBytes: number;
  requestBytes = 0;
  bufferedBytes = 0;
  responseBytes = 0;
  private readonly waiters = new Set<() => void>();
  private wakeScheduled = false;

  constructor(maxRequestBytes = -1, maxResponseBytes = -1) {
    this.maxRequestBytes = maxRequestBytes;
    this.maxResponseBytes = maxResponseBytes;
  }

  /** No new frame may be read (Kafka: the pool is out of memory). */
  get requestsFull(): boolean {
    return this.maxRequestBytes >= 0 && this.requestBytes >= this.maxRequestBytes;
  }

  /** No request may be dispatched: too many response bytes wait for their clients. */
  get responsesFull(): boolean {
    return this.maxResponseBytes >= 0 && this.responseBytes >= this.maxResponseBytes;
  }

  /** Adds (or with negative deltas, releases) held bytes. */
  add(requestDelta: number, bufferedDelta: number, responseDelta: number): void {
    this.requestBytes += requestDelta;
    this.bufferedBytes += bufferedDelta;
    this.responseBytes += responseDelta;
    if ((requestDelta < 0 || responseDelta < 0) && this.waiters.size > 0) this.scheduleWake();
  }

  /** Calls `resume` once memory has been released and both counters are under their bounds. */
  wait(resume: () => void): void {
    this.waiters.add(resume);
  }

  /** A connection that closes stops waiting. */
  cancel(resume: () => void): void {
    this.waiters.delete(resume);
  }

  private scheduleWake(): void {
    if (this.wakeScheduled || this.requestsFull || this.responsesFull) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      // Oldest waiter first; each one may fill the pool again and wait anew.
      for (const resume of [...this.waiters]) {
        if (this.requestsFull || this.responsesFull) break;
        this.waiters.delete(resume);
        resume();
      }
    });
  }
}
