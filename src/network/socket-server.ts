import { createServer, type Server, type Socket } from 'node:net';
import { sharedBufferPool } from '../util/buffer-pool.ts';
import { Connection, type ConnectionLimits, type FrameHandler, type NetworkLogger } from './connection.ts';
import { LogRateLimiter } from './log-limiter.ts';
import { NetworkMemory } from './network-memory.ts';
import { RequestMetrics } from './request-metrics.ts';
import { adoptWithSharedReadBuffer } from './shared-read-buffer.ts';

/** Every connection's socket reads land here (a read is consumed before the next one starts). */
const READ_BUFFER_BYTES = 256 * 1024;

export interface ListenAddress {
  host: string;
  port: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxFrameBytes: 104857600, // socket.request.max.bytes
  maxInFlightRequests: 100,
  maxInFlightBytes: 128 * 1024 * 1024,
  idleTimeoutMs: 600000, // connections.max.idle.ms
  clientLogIntervalMs: 10000, // samsa.client.log.interval.ms
  queuedMaxRequestBytes: 256 * 1024 * 1024, // queued.max.request.bytes (Kafka: -1, no bound)
  queuedMaxResponseBytes: 256 * 1024 * 1024, // samsa.queued.max.response.bytes
};

/** What the network layer holds for clients now (broker.networkStats()). */
export interface NetworkStats {
  connections: number;
  /** Bytes of request frames being read, or read and not yet answered (queued.max.request.bytes). */
  requestBytes: number;
  /** Bytes read from sockets and not yet parsed, kept by connections paused at a bound. */
  bufferedBytes: number;
  /** Bytes of responses not yet written to their sockets (samsa.queued.max.response.bytes). */
  responseBytes: number;
  /** Requests read and not yet answered. */
  inFlightRequests: number;
  /** Connections not reading because a bound is reached (a Fetch in flight is one). */
  pausedConnections: number;
}

/**
 * Accepts Kafka client connections on one or more listeners and hands each frame to the
 * request handler. Owns the connections: `close()` stops accepting, lets in-flight requests
 * finish, then closes every connection.
 */
export class SocketServer {
  private readonly servers: Server[] = [];
  private readonly connections = new Set<Connection>();
  private nextConnectionId = 1;
  private readonly handler: FrameHandler;
  private readonly limits: ConnectionLimits;
  private readonly log: NetworkLogger;
  /** Shared by all connections: large request frames reuse buffers instead of page-faulting new ones. */
  private readonly pool = sharedBufferPool;
  /** Per-API request timings of every connection. */
  readonly requestMetrics = new RequestMetrics();
  private readonly readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  /** 'closing connection' lines, per client host. */
  private readonly closeLogLimiter: LogRateLimiter;
  /** Broker-wide request and response bytes, and their bounds. */
  private readonly memory: NetworkMemory;

  constructor(handler: FrameHandler, limits: ConnectionLimits, log: NetworkLogger) {
    this.handler = handler;
    this.limits = limits;
    this.log = log;
    this.closeLogLimiter = new LogRateLimiter(limits.clientLogIntervalMs ?? 10000);
    this.memory = new NetworkMemory(limits.queuedMaxRequestBytes ?? -1, limits.queuedMaxResponseBytes ?? -1);
  }

  stats(): NetworkStats {
    let inFlightRequests = 0;
    let pausedConnections = 0;
    for (const c of this.connections) {
      inFlightRequests += c.inFlightRequests;
      if (c.paused) pausedConnections++;
    }
    return {
      connections: this.connections.size,
      requestBytes: this.memory.requestBytes,
      bufferedBytes: this.memory.bufferedBytes,
      responseBytes: this.memory.responseBytes,
      inFlightRequests,
      pausedConnections,
    };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Listens on every address; resolves with the bound addresses (port 0 becomes the real port). */
  async listen(addresses: ListenAddress[]): Promise<ListenAddress[]> {
    const bound: ListenAddress[] = [];
    for (const address of addresses) {
      // The bound port once listening (port 0 is given one): what connections name as their listener.
      let listener = `${address.host}:${address.port}`;
      // Paused, so that nothing is read before the socket is adopted with the shared buffer.
      const server = createServer({ noDelay: true, pauseOnConnect: true }, (accepted) =>
        this.accept(accepted, listener),
      );
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(address.port, address.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      // Only once it listens: a failure to listen (port in use) is the caller's one-line error,
      // not also a logged stack trace.
      server.on('error', (err) => this.log.warn({ err }, 'listener error'));
      const info = server.address();
      if (info === null || typeof info === 'string') throw new Error('listener has no address');
      listener = `${address.host}:${info.port}`;
      bound.push({ host: address.host, port: info.port });
      this.servers.push(server);
    }
    return bound;
  }

  private accept(accepted: Socket, listener: string): void {
    let connection: Connection | undefined;
    // No bytes arrive before the connection exists: reads are delivered from a later I/O phase.
    const { socket } = adoptWithSharedReadBuffer(accepted, this.readBuffer, (chunk) => connection?.receive(chunk));
    connection = new Connection(this.nextConnectionId++, socket, listener, {
      handler: this.handler,
      limits: this.limits,
      log: this.log,
      onClose: (c) => this.connections.delete(c),
      pool: this.pool,
      metrics: this.requestMetrics,
      logLimiter: this.closeLogLimiter,
      memory: this.memory,
    });
    this.connections.add(connection);
  }

  /** Stops accepting, finishes in-flight requests (up to timeoutMs), closes connections. */
  async close(timeoutMs = 10000): Promise<void> {
    const closing = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    await Promise.all([...this.connections].map((c) => c.drainAndClose(timeoutMs)));
    await Promise.all(closing);
  }
}
