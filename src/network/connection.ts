import type { Socket } from 'node:net';
import type { BufferPool } from '../util/buffer-pool.ts';
import { FrameReader } from './frame-reader.ts';
import { type LogRateLimiter, suppressedField } from './log-limiter.ts';
import type { RequestMetrics } from './request-metrics.ts';

/** The subset of a pino logger the network layer uses. */
export interface NetworkLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ConnectionInfo {
  readonly id: number;
  /** `host:port` of the client. */
  readonly remoteAddress: string;
  /** The client's host alone (log lines a client causes are rate-limited per host). */
  readonly remoteHost: string;
  readonly listener: string;
}

/**
 * Handles one request frame. Returns the encoded response frame (size prefix included) as
 * chunks, or null when the request gets no response (Produce with acks=0). Throwing closes
 * the connection: that is how a malformed request is answered, as in Kafka.
 */
export type FrameHandler = (frame: Buffer, connection: ConnectionInfo) => Promise<Buffer[] | null> | Buffer[] | null;

export interface ConnectionLimits {
  /** socket.request.max.bytes: a bigger frame closes the connection. */
  maxFrameBytes: number;
  /** Stop reading when this many requests await their response (pipelining cap). */
  maxInFlightRequests: number;
  /** Stop reading when requests of this many bytes await their response. */
  maxInFlightBytes: number;
  /** connections.max.idle.ms */
  idleTimeoutMs: number;
  /**
   * samsa.client.log.interval.ms: at most one 'closing connection' line per client host per
   * this many ms, the next one counting those held back (0: every one). Default 10 s.
   */
  clientLogIntervalMs?: number;
  /**
   * Whether a request frame's bytes are unreferenced once its handler has finished, so a pooled
   * frame buffer may be reused (the broker says yes for Produce only).
   */
  recyclable?: (frame: Buffer) => boolean;
}

interface Slot {
  frame: Buffer;
  size: number;
  done: boolean;
  response: Buffer[] | null;
  /** API key (read before the handler may recycle the frame), and performance.now() stamps. */
  apiKey: number;
  readAt: number;
  handledAt: number;
}

/**
 * One client connection: frames in, responses out strictly in request order (clients pipeline
 * several requests and match responses by position as well as correlation id), with reading
 * paused while too many requests or bytes are in flight or the socket's write buffer is full.
 */
export class Connection implements ConnectionInfo {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remoteHost: string;
  readonly listener: string;
  private readonly socket: Socket;
  private readonly frames: FrameReader;
  private readonly slots: Slot[] = [];
  private inFlightBytes = 0;
  /** Handlers still running, even for a client that already went away (shutdown waits for them). */
  private runningHandlers = 0;
  private closed = false;
  /** Set when a malformed request was read: earlier requests still get their responses, then the connection closes. */
  private closingReason: string | undefined;
  private waitingForDrain = false;
  private readonly onClose: (c: Connection) => void;
  private readonly handler: FrameHandler;
  private readonly limits: ConnectionLimits;
  private readonly log: NetworkLogger;
  private readonly pool: BufferPool | undefined;
  private readonly metrics: RequestMetrics | undefined;
  private readonly logLimiter: LogRateLimiter | undefined;

  constructor(
    id: number,
    socket: Socket,
    listener: string,
    handler: FrameHandler,
    limits: ConnectionLimits,
    log: NetworkLogger,
    onClose: (c: Connection) => void,
    pool?: BufferPool,
    metrics?: RequestMetrics,
    logLimiter?: LogRateLimiter,
  ) {
    this.logLimiter = logLimiter;
    this.pool = pool;
    this.metrics = metrics;
    this.id = id;
    this.handler = handler;
    this.limits = limits;
    this.log = log;
    this.socket = socket;
    this.listener = listener;
    this.remoteHost = socket.remoteAddress ?? 'unknown';
    this.remoteAddress = `${this.remoteHost}:${socket.remotePort}`;
    this.frames = new FrameReader(limits.maxFrameBytes, pool);
    this.onClose = onClose;
    socket.setNoDelay(true);
    socket.setTimeout(limits.idleTimeoutMs);
    // A socket adopted with a shared read buffer emits no 'data': its owner calls receive().
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('timeout', () => {
      if (this.slots.length === 0) this.close('idle timeout (connections.max.idle.ms)');
    });
    socket.on('drain', () => {
      this.waitingForDrain = false;
      this.maybeResume();
    });
    socket.on('error', (err) => this.log.debug({ connection: this.id, err }, 'socket error'));
    socket.on('close', () => {
      this.closed = true;
      this.onClose(this);
    });
  }

  get inFlightRequests(): number {
    return this.slots.length;
  }

  /** Bytes read from the socket; `chunk` may be reused by the caller once this returns. */
  receive(chunk: Buffer): void {
    if (this.closed || this.closingReason !== undefined) return;
    this.frames.push(chunk);
    for (;;) {
      let frame: Buffer | undefined;
      try {
        frame = this.frames.next();
      } catch (err) {
        this.closeAfterPending((err as Error).message);
        return;
      }
      if (frame === undefined) break;
      this.dispatch(frame);
      if (this.closed || this.closingReason !== undefined) return;
    }
    this.maybePause();
  }

  private dispatch(frame: Buffer): void {
    const slot: Slot = {
      frame,
      size: frame.length,
      done: false,
      response: null,
      apiKey: frame.length >= 2 ? frame.readInt16BE(0) : -1,
      readAt: this.metrics === undefined ? 0 : performance.now(),
      handledAt: 0,
    };
    this.slots.push(slot);
    this.inFlightBytes += frame.length;
    let result: Promise<Buffer[] | null> | Buffer[] | null;
    try {
      result = this.handler(frame, this);
    } catch (err) {
      // The malformed request gets no response; the ones before it still do (Kafka reads and
      // answers one request at a time, so it answers those before it sees the bad one).
      this.slots.pop();
      this.inFlightBytes -= slot.size;
      this.closeAfterPending(`malformed request: ${(err as Error).message}`);
      return;
    }
    if (result === null || Array.isArray(result)) this.complete(slot, result);
    else {
      this.runningHandlers++;
      result
        .then(
          (response) => this.complete(slot, response),
          (err: unknown) => {
            this.complete(slot, null);
            this.closeAfterPending(`malformed request: ${(err as Error).message}`);
          },
        )
        .finally(() => {
          this.runningHandlers--;
        });
    }
  }

  private complete(slot: Slot, response: Buffer[] | null): void {
    slot.done = true;
    slot.response = response;
    if (this.metrics !== undefined) slot.handledAt = performance.now();
    if (this.pool !== undefined && this.limits.recyclable?.(slot.frame) === true) this.pool.release(slot.frame);
    if (this.closed) return;
    // Flush every finished response at the head of the queue, in request order.
    while (this.slots.length > 0 && this.slots[0]!.done) {
      const head = this.slots.shift()!;
      this.inFlightBytes -= head.size;
      if (head.response !== null) {
        const chunks = head.response;
        // Once written, a response's chunks are no longer referenced: pooled ones (log reads of
        // a Fetch) go back to the pool. Writes complete in order, so the last one's callback
        // says every chunk is out; after a failed write they are left to the GC.
        const pool = this.pool;
        const written =
          pool === undefined
            ? undefined
            : (err?: Error | null) => {
                if (err == null) for (const chunk of chunks) pool.release(chunk);
              };
        let ok = true;
        if (chunks.length === 1) ok = this.socket.write(chunks[0]!, written);
        else {
          this.socket.cork();
          for (let i = 0; i < chunks.length; i++) {
            ok = this.socket.write(chunks[i]!, i === chunks.length - 1 ? written : undefined);
          }
          this.socket.uncork();
        }
        if (!ok) this.waitingForDrain = true;
      }
      if (this.metrics !== undefined) {
        this.metrics.record(head.apiKey, head.handledAt - head.readAt, performance.now() - head.readAt);
      }
    }
    if (this.closingReason !== undefined) {
      if (this.slots.length === 0) this.endGracefully();
      return;
    }
    this.maybeResume();
  }

  /** Stops reading; closes once the responses to the requests read before are written. */
  private closeAfterPending(reason: string): void {
    if (this.closed || this.closingReason !== undefined) return;
    this.closingReason = reason;
    this.socket.pause();
    this.warnClosing(reason);
    if (this.slots.length === 0) this.endGracefully();
  }

  private endGracefully(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
    this.socket.destroySoon();
  }

  private maybePause(): void {
    if (
      this.slots.length >= this.limits.maxInFlightRequests ||
      this.inFlightBytes >= this.limits.maxInFlightBytes ||
      this.waitingForDrain
    ) {
      this.socket.pause();
    }
  }

  private maybeResume(): void {
    if (this.closed) return;
    if (
      this.slots.length < this.limits.maxInFlightRequests &&
      this.inFlightBytes < this.limits.maxInFlightBytes &&
      !this.waitingForDrain &&
      this.socket.isPaused()
    ) {
      this.socket.resume();
    }
  }

  /** Closes this connection only, with one log line saying why. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.warnClosing(reason);
    this.socket.destroy();
  }

  /** One 'closing connection' line, unless this client's host had one within the interval. */
  private warnClosing(reason: string): void {
    const suppressed = this.logLimiter === undefined ? 0 : this.logLimiter.admit(this.remoteHost);
    if (suppressed === undefined) return;
    this.log.warn(
      { connection: this.id, remote: this.remoteAddress, reason, ...suppressedField(suppressed) },
      'closing connection',
    );
  }

  /** Graceful: wait for in-flight responses to be written, then end the socket. */
  async drainAndClose(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.socket.pause();
    while ((this.runningHandlers > 0 || (this.slots.length > 0 && !this.closed)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    this.closed = true;
    this.socket.end();
    this.socket.destroySoon();
  }
}
