import type { Socket } from 'node:net';
import type { BufferPool } from '../util/buffer-pool.ts';
import { FrameReader } from './frame-reader.ts';
import { type LogRateLimiter, suppressedField } from './log-limiter.ts';
import type { NetworkMemory } from './network-memory.ts';
import type { RequestMetrics } from './request-metrics.ts';

/** The subset of a pino logger the network layer uses. */
export interface NetworkLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** How a client named itself: the client id of its first request, its software from ApiVersions v3+ (KIP-511). */
export interface ClientIdentity {
  clientId: string | null;
  softwareName?: string;
  softwareVersion?: string;
}

export interface ConnectionInfo {
  readonly id: number;
  /** `host:port` of the client. */
  readonly remoteAddress: string;
  /** The client's host alone (log lines a client causes are rate-limited per host). */
  readonly remoteHost: string;
  readonly listener: string;
  /** Set by the dispatcher at the first request (for the connection's debug lines). */
  client?: ClientIdentity | undefined;
}

/** The client's identity as log fields. */
export function clientFields(client: ClientIdentity | undefined): object {
  if (client === undefined) return {};
  return {
    clientId: client.clientId,
    ...(client.softwareName === undefined ? {} : { clientSoftwareName: client.softwareName }),
    ...(client.softwareVersion === undefined ? {} : { clientSoftwareVersion: client.softwareVersion }),
  };
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
  /** No further request is read while this many await their response (pipelining cap). */
  maxInFlightRequests: number;
  /** No further request is read while requests of this many bytes await their response. */
  maxInFlightBytes: number;
  /** connections.max.idle.ms */
  idleTimeoutMs: number;
  /**
   * samsa.client.log.interval.ms: at most one 'closing connection' line per client host per
   * this many ms, the next one counting those held back (0: every one). Default 10 s.
   */
  clientLogIntervalMs?: number;
  /**
   * queued.max.request.bytes: no connection reads a new frame while the broker holds this many
   * request bytes (Kafka's memory pool; below zero: no bound).
   */
  queuedMaxRequestBytes?: number;
  /**
   * samsa.queued.max.response.bytes: no connection dispatches a request while the broker holds
   * this many bytes of responses not yet written (below zero: no bound).
   */
  queuedMaxResponseBytes?: number;
  /**
   * Whether a request frame's bytes are unreferenced once its handler has finished, so a pooled
   * frame buffer may be reused (the broker says yes for Produce only).
   */
  recyclable?: (frame: Buffer) => boolean;
  /**
   * Requests read as Kafka reads every request: while one is in flight, nothing further is read
   * from its connection. The broker says yes for Fetch, whose response is as large as the client
   * asks: pipelined Fetches would otherwise each hold a response in memory.
   */
  exclusive?: (apiKey: number) => boolean;
}

/** What a connection shares with its server. */
export interface ConnectionContext {
  readonly handler: FrameHandler;
  readonly limits: ConnectionLimits;
  readonly log: NetworkLogger;
  readonly onClose: (c: Connection) => void;
  readonly pool?: BufferPool | undefined;
  readonly metrics?: RequestMetrics | undefined;
  readonly logLimiter?: LogRateLimiter | undefined;
  /** The broker-wide bounds; every byte this connection holds is counted there. */
  readonly memory?: NetworkMemory | undefined;
}

interface Slot {
  frame: Buffer;
  size: number;
  done: boolean;
  response: Buffer[] | null;
  /** Bytes of `response`, counted from the handler's end until the socket has taken them. */
  responseBytes: number;
  exclusive: boolean;
  /** API key (read before the handler may recycle the frame), and performance.now() stamps. */
  apiKey: number;
  readAt: number;
  handledAt: number;
}

/**
 * One client connection: frames in, responses out strictly in request order (clients pipeline
 * several requests and match responses by position as well as correlation id).
 *
 * Before each frame it checks its bounds, and at one it stops: the bytes already read stay
 * buffered, unparsed, and the socket is paused until the bound clears. The bounds: requests in
 * flight and their bytes; an exclusive request (Fetch) in flight; the socket's write buffer
 * full (the client is not reading its responses); the broker-wide request and response bytes
 * (NetworkMemory). Every byte held (frames, unparsed bytes, responses not yet written) is
 * counted in NetworkMemory and given back when the connection closes.
 */
export class Connection implements ConnectionInfo {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remoteHost: string;
  readonly listener: string;
  client: ClientIdentity | undefined;
  private readonly socket: Socket;
  private readonly frames: FrameReader;
  private readonly slots: Slot[] = [];
  private inFlightBytes = 0;
  /** Exclusive requests (Fetch) whose handler has not finished. */
  private exclusiveInFlight = 0;
  /** Bytes of responses finished and not yet taken by the socket (queued or being written). */
  private unwrittenBytes = 0;
  /** What this connection has added to the broker-wide counters. */
  private countedRequestBytes = 0;
  private countedBufferedBytes = 0;
  private countedResponseBytes = 0;
  /** The socket is gone and everything it held has been given back. */
  private released = false;
  /** Handlers still running, even for a client that already went away (shutdown waits for them). */
  private runningHandlers = 0;
  private closed = false;
  /** Shutting down: nothing more is read. */
  private stopped = false;
  /** Set when a malformed request was read: earlier requests still get their responses, then the connection closes. */
  private closingReason: string | undefined;
  private waitingForDrain = false;
  /** Stopped at a bound with bytes left unparsed; pump() goes on once it clears. */
  private parked = false;
  private waitingForMemory = false;
  private pumping = false;
  private readonly context: ConnectionContext;
  private readonly limits: ConnectionLimits;
  private readonly resumeFromMemory = () => {
    this.waitingForMemory = false;
    this.pump();
  };

  constructor(id: number, socket: Socket, listener: string, context: ConnectionContext) {
    this.id = id;
    this.context = context;
    this.limits = context.limits;
    this.socket = socket;
    this.listener = listener;
    this.remoteHost = socket.remoteAddress ?? 'unknown';
    this.remoteAddress = `${this.remoteHost}:${socket.remotePort}`;
    this.frames = new FrameReader(context.limits.maxFrameBytes, context.pool);
    socket.setNoDelay(true);
    socket.setTimeout(context.limits.idleTimeoutMs);
    // A socket adopted with a shared read buffer emits no 'data': its owner calls receive().
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('timeout', () => {
      // Ending, and the client has not taken the last responses in all that time: cut it off.
      if (this.closed) this.socket.destroy();
      else if (this.slots.length === 0) this.close('idle timeout (connections.max.idle.ms)');
    });
    socket.on('drain', () => {
      this.waitingForDrain = false;
      if (this.parked) this.pump();
    });
    socket.on('error', (err) => context.log.debug({ connection: this.id, err }, 'socket error'));
    const openedAt = performance.now();
    context.log.debug({ connection: id, remote: this.remoteAddress, listener }, 'connection opened');
    socket.on('close', () => {
      this.closed = true;
      this.releaseAll();
      context.onClose(this);
      context.log.debug(
        {
          connection: id,
          remote: this.remoteAddress,
          listener,
          ...clientFields(this.client),
          durationMs: Math.round(performance.now() - openedAt),
        },
        'connection closed',
      );
    });
  }

  get inFlightRequests(): number {
    return this.slots.length;
  }

  /** Whether reading is stopped at one of the bounds. */
  get paused(): boolean {
    return this.parked;
  }

  /** Bytes read from the socket; `chunk` may be reused by the caller once this returns. */
  receive(chunk: Buffer): void {
    if (this.closed || this.stopped || this.closingReason !== undefined) return;
    this.frames.push(chunk);
    this.pump();
  }

  /** Why no further frame may be read now, or undefined. */
  private blocked(): string | undefined {
    if (this.slots.length >= this.limits.maxInFlightRequests) return 'requests in flight';
    if (this.inFlightBytes >= this.limits.maxInFlightBytes) return 'request bytes in flight';
    if (this.exclusiveInFlight > 0) return 'exclusive request in flight';
    if (this.waitingForDrain) return 'socket write buffer full';
    const memory = this.context.memory;
    if (memory !== undefined) {
      // A frame being filled goes on (its memory is taken; stopping it could only deadlock).
      if (memory.requestsFull && this.frames.atFrameBoundary) return 'broker request memory';
      if (memory.responsesFull) return 'broker response memory';
    }
    return undefined;
  }

  /** Reads and dispatches buffered frames until they run out or a bound is reached. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.closed || this.stopped || this.closingReason !== undefined) {
          this.frames.retain();
          return;
        }
        const reason = this.blocked();
        if (reason !== undefined) {
          this.park(reason);
          return;
        }
        let frame: Buffer | undefined;
        try {
          frame = this.frames.next();
        } catch (err) {
          this.closeAfterPending((err as Error).message);
          return;
        }
        if (frame === undefined) break;
        this.dispatch(frame);
      }
      // Every byte read so far is taken: read on.
      this.parked = false;
      if (this.waitingForMemory) {
        this.waitingForMemory = false;
        this.context.memory?.cancel(this.resumeFromMemory);
      }
      if (this.socket.isPaused()) this.socket.resume();
    } finally {
      this.pumping = false;
      this.syncAccounting();
    }
  }

  /** Stops reading at a bound: the unparsed bytes are copied out of the shared read buffer. */
  private park(reason: string): void {
    this.frames.retain();
    this.parked = true;
    this.socket.pause();
    if (reason.startsWith('broker') && !this.waitingForMemory) {
      this.waitingForMemory = true;
      this.context.memory!.wait(this.resumeFromMemory);
    }
  }

  private dispatch(frame: Buffer): void {
    const apiKey = frame.length >= 2 ? frame.readInt16BE(0) : -1;
    const slot: Slot = {
      frame,
      size: frame.length,
      done: false,
      response: null,
      responseBytes: 0,
      exclusive: this.limits.exclusive?.(apiKey) === true,
      apiKey,
      readAt: this.context.metrics === undefined ? 0 : performance.now(),
      handledAt: 0,
    };
    this.slots.push(slot);
    this.inFlightBytes += frame.length;
    if (slot.exclusive) this.exclusiveInFlight++;
    let result: Promise<Buffer[] | null> | Buffer[] | null;
    try {
      result = this.context.handler(frame, this);
    } catch (err) {
      // The malformed request gets no response; the ones before it still do (Kafka reads and
      // answers one request at a time, so it answers those before it sees the bad one).
      this.slots.pop();
      this.inFlightBytes -= slot.size;
      if (slot.exclusive) this.exclusiveInFlight--;
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
    if (slot.exclusive) this.exclusiveInFlight--;
    const metrics = this.context.metrics;
    if (metrics !== undefined) slot.handledAt = performance.now();
    const pool = this.context.pool;
    if (pool !== undefined && this.limits.recyclable?.(slot.frame) === true) pool.release(slot.frame);
    if (this.closed) {
      // Nobody to answer: the request's memory is given back now that its handler is done.
      const at = this.slots.indexOf(slot);
      if (at >= 0) {
        this.slots.splice(at, 1);
        this.inFlightBytes -= slot.size;
      }
      this.syncAccounting();
      return;
    }
    slot.response = response;
    if (response !== null) {
      for (const chunk of response) slot.responseBytes += chunk.length;
      this.unwrittenBytes += slot.responseBytes;
    }
    // Flush every finished response at the head of the queue, in request order.
    while (this.slots.length > 0 && this.slots[0]!.done) {
      const head = this.slots.shift()!;
      this.inFlightBytes -= head.size;
      if (head.response !== null) this.write(head.response, head.responseBytes);
      head.response = null;
      if (metrics !== undefined) {
        metrics.record(head.apiKey, head.handledAt - head.readAt, performance.now() - head.readAt);
      }
    }
    this.syncAccounting();
    if (this.closingReason !== undefined) {
      if (this.slots.length === 0) this.endGracefully();
      return;
    }
    if (this.parked) this.pump();
  }

  /** Hands a response to the socket; its bytes stay counted until the socket has written them. */
  private write(chunks: Buffer[], bytes: number): void {
    // Once written, a response's chunks are no longer referenced: pooled ones (log reads of a
    // Fetch) go back to the pool. Writes complete in order, so the last one's callback says
    // every chunk is out; after a failed write they are left to the GC.
    const pool = this.context.pool;
    const written = (err?: Error | null) => {
      if (pool !== undefined && err == null) for (const chunk of chunks) pool.release(chunk);
      if (this.released) return; // releaseAll() has already given these bytes back
      this.unwrittenBytes -= bytes;
      this.syncAccounting();
      if (this.parked) this.pump();
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

  /** Brings the broker-wide counters up to date with what this connection holds. */
  private syncAccounting(): void {
    const memory = this.context.memory;
    if (memory === undefined) return;
    const requestBytes = this.inFlightBytes + this.frames.partialFrameBytes;
    const bufferedBytes = this.frames.retainedBytes;
    const responseBytes = this.unwrittenBytes;
    if (
      requestBytes === this.countedRequestBytes &&
      bufferedBytes === this.countedBufferedBytes &&
      responseBytes === this.countedResponseBytes
    ) {
      return;
    }
    memory.add(
      requestBytes - this.countedRequestBytes,
      bufferedBytes - this.countedBufferedBytes,
      responseBytes - this.countedResponseBytes,
    );
    this.countedRequestBytes = requestBytes;
    this.countedBufferedBytes = bufferedBytes;
    this.countedResponseBytes = responseBytes;
  }

  /**
   * The socket is gone: unparsed bytes, answered requests and unwritten responses are dropped
   * and their bytes given back. Requests whose handler still runs stay counted until it ends.
   */
  private releaseAll(): void {
    this.released = true;
    this.frames.release();
    for (let i = this.slots.length - 1; i >= 0; i--) {
      const slot = this.slots[i]!;
      if (!slot.done) continue;
      this.slots.splice(i, 1);
      this.inFlightBytes -= slot.size;
      slot.response = null;
    }
    this.unwrittenBytes = 0;
    this.parked = false;
    if (this.waitingForMemory) {
      this.waitingForMemory = false;
      this.context.memory?.cancel(this.resumeFromMemory);
    }
    this.syncAccounting();
  }

  /** Stops reading; closes once the responses to the requests read before are written. */
  private closeAfterPending(reason: string): void {
    if (this.closed || this.closingReason !== undefined) return;
    this.closingReason = reason;
    this.socket.pause();
    this.frames.release();
    this.warnClosing(reason);
    if (this.slots.length === 0) this.endGracefully();
  }

  private endGracefully(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
    this.socket.destroySoon();
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
    const limiter = this.context.logLimiter;
    const suppressed = limiter === undefined ? 0 : limiter.admit(this.remoteHost);
    if (suppressed === undefined) return;
    this.context.log.warn(
      { connection: this.id, remote: this.remoteAddress, reason, ...suppressedField(suppressed) },
      'closing connection',
    );
  }

  /**
   * Graceful: wait (up to timeoutMs) for in-flight requests to be answered and their responses
   * written, then end the socket; a client that does not read them is cut off at the deadline.
   */
  async drainAndClose(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.stopped = true;
    this.socket.pause();
    while (
      (this.runningHandlers > 0 || (!this.closed && (this.slots.length > 0 || this.unwrittenBytes > 0))) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 5));
    }
    if (this.socket.destroyed) return;
    if (this.unwrittenBytes > 0 || this.slots.length > 0) {
      this.socket.destroy();
      return;
    }
    this.closed = true;
    this.socket.end();
    this.socket.destroySoon();
  }
}
