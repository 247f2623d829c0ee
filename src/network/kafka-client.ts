/**
 * A small Kafka client: enough protocol plumbing for Samsa's command-line tools, its tests and
 * its benchmarks, speaking to any Kafka-compatible broker.
 *
 * - `BrokerConnection`: one TCP connection to one broker. On connect it negotiates versions with
 *   ApiVersions (KIP-511: an UNSUPPORTED_VERSION answer comes in v0 format carrying the broker's
 *   ApiVersions range, and we retry at the highest version both sides know). Requests are
 *   pipelined: each is written at once and matched to its response by correlation id, so many can
 *   be in flight; each has its own timeout. Produce with acks=0 gets no response from a broker,
 *   so it resolves once written, with an empty response.
 * - `KafkaClient`: a bootstrap connection plus one connection per broker id learnt from
 *   Metadata, and the partition leaders from the latest Metadata answer.
 *
 * Per-partition and per-resource errors stay values in the responses, exactly as the broker sent
 * them; `throwIfError` turns one into a KafkaError when the caller wants that. Transport failures
 * (refused connection, timeout, closed socket, undecodable response) reject with
 * KafkaClientError. Imports only the protocol layer.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import type { ApiVersionsResponse } from '../protocol/messages/018-api-versions.ts';
import { apiKeyInfo, requestHeaderVersion, responseHeaderVersion } from '../protocol/messages/api-keys.ts';
import { writeRequestHeader } from '../protocol/messages/request-header.ts';
import { readResponseHeader } from '../protocol/messages/response-header.ts';
import { Reader } from '../protocol/reader.ts';
import { Writer } from '../protocol/writer.ts';
import { ApiKey, type ApiKeyNumber, type RequestOf, type ResponseOf } from './api-message-types.ts';
import { type ApiCodec, loadCodec, loadedCodec } from './codec-loader.ts';

export const KafkaClientErrorCodes = {
  /** The TCP connection could not be established (refused, unreachable, connect timeout). */
  connect: 'ERR_KAFKA_CONNECT',
  /** The connection closed (or failed) with the request still waiting for its response. */
  closed: 'ERR_KAFKA_CONNECTION_CLOSED',
  /** No response within the request timeout. */
  timeout: 'ERR_KAFKA_REQUEST_TIMEOUT',
  /** The broker does not support the API, or no version both sides support. */
  unsupportedVersion: 'ERR_KAFKA_UNSUPPORTED_VERSION',
  /** A response that could not be decoded, or one nobody asked for. */
  protocol: 'ERR_KAFKA_PROTOCOL',
  /** Metadata did not name a usable broker or leader. */
  metadata: 'ERR_KAFKA_METADATA',
} as const;
export type KafkaClientErrorCode = (typeof KafkaClientErrorCodes)[keyof typeof KafkaClientErrorCodes];

/** A transport-level failure; Kafka error codes in responses are KafkaError instead. */
export class KafkaClientError extends Error {
  readonly code: KafkaClientErrorCode;

  constructor(code: KafkaClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KafkaClientError';
    this.code = code;
  }
}

/** Throws KafkaError when `errorCode` is not NONE; `what` says which request/resource failed. */
export function throwIfError(errorCode: number, what: string, errorMessage?: string | null): void {
  if (errorCode === ErrorCode.NONE) return;
  const err = new KafkaError(errorCode);
  throw new KafkaError(errorCode, `${what}: ${err.errorName}: ${errorMessage ?? err.message}`);
}

export interface VersionRange {
  minVersion: number;
  maxVersion: number;
}

export interface ConnectionOptions {
  /** The client id in every request header (default 'samsa'). */
  clientId?: string | undefined;
  /** Per-request timeout in ms (default 30000). Can be overridden per request. */
  requestTimeoutMs?: number | undefined;
  /** TCP connect timeout in ms (default 10000). */
  connectTimeoutMs?: number | undefined;
  /** Sent in ApiVersions v3+ (KIP-511). */
  clientSoftwareName?: string | undefined;
  clientSoftwareVersion?: string | undefined;
  /**
   * Upper bounds on the versions used per API key, below the negotiated maximum
   * (e.g. `{ [ApiKey.Fetch]: 12 }` to fetch by topic name). Explicit versions ignore these.
   */
  maxVersions?: Readonly<Partial<Record<number, number>>> | undefined;
  /**
   * Receive every response into one reused buffer instead of a fresh one. Buffers in a response
   * (Fetch records, for instance) are then views that stay valid only until the next response
   * arrives on this connection: for a connection with one request in flight at a time whose
   * responses are used up before the next request is sent, such as a fetch loop. Saves the page
   * faults and GC of a fresh multi-megabyte buffer per response.
   */
  recycleResponseBuffers?: boolean | undefined;
  /**
   * Aborts `BrokerConnection.connect` (the TCP connect and the ApiVersions exchange): it rejects
   * with ERR_KAFKA_CONNECT and leaves no socket or timer behind. No effect once connected.
   */
  signal?: AbortSignal | undefined;
}

export interface RequestOptions {
  timeoutMs?: number | undefined;
}

interface PendingRequest {
  apiKey: number;
  version: number;
  resolve: (response: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** Responses are rejected above this size; Kafka's fetch.max.bytes default is 50 MiB. */
const MAX_RESPONSE_BYTES = 1024 * 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** The highest version of `apiKey` that our codecs and `broker` both support, or -1. */
export function negotiateVersion(apiKey: number, broker: VersionRange | undefined): number {
  const spec = apiKeyInfo(apiKey);
  if (spec === undefined || broker === undefined) return -1;
  // A version still marked unstable in Kafka's schemas is not for production use.
  const ourMax = spec.latestVersionUnstable ? spec.maxVersion - 1 : spec.maxVersion;
  const max = Math.min(ourMax, broker.maxVersion);
  return max >= Math.max(spec.minVersion, broker.minVersion) ? max : -1;
}

/** Parses `host:port` (IPv6 as `[::1]:9092`). */
export function parseHostPort(address: string, defaultPort = 9092): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(address.trim());
  if (m === null) throw new TypeError(`'${address}' is not HOST:PORT`);
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`'${address}' has an invalid port`);
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * One connection to one broker. Create with `BrokerConnection.connect`, which resolves after the
 * ApiVersions exchange.
 */
export class BrokerConnection {
  readonly host: string;
  readonly port: number;
  private readonly socket: Socket;
  private readonly options: ConnectionOptions;
  private readonly clientId: string;
  private nextCorrelationId = 1;
  private readonly pending = new Map<number, PendingRequest>();
  /** Correlation ids given up on (timed out): their late responses are dropped quietly. */
  private readonly abandoned = new Set<number>();
  /** The response being received: its size field, then its bytes. */
  private readonly sizeBytes = Buffer.alloc(4);
  private sizeFilled = 0;
  private frame: Buffer | undefined;
  private frameFilled = 0;
  private closedError: KafkaClientError | undefined;
  private brokerVersions = new Map<number, VersionRange>();
  private readonly closeListeners: ((err: KafkaClientError) => void)[] = [];

  private constructor(opened: OpenedSocket, host: string, port: number, options: ConnectionOptions) {
    const socket = opened.socket;
    this.socket = socket;
    this.host = host;
    this.port = port;
    this.options = options;
    this.clientId = options.clientId ?? 'samsa';
    socket.setNoDelay(true);
    opened.sink.onBytes = (buf, end) => this.onBytes(buf, end);
    socket.on('error', (err) =>
      this.fail(new KafkaClientError(KafkaClientErrorCodes.closed, this.describe(err), { cause: err })),
    );
    socket.on('close', () =>
      this.fail(new KafkaClientError(KafkaClientErrorCodes.closed, `connection to ${this.address} closed`)),
    );
  }

  get address(): string {
    return `${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** Requests written and still waiting for their response. */
  get inFlight(): number {
    return this.pending.size;
  }

  get isClosed(): boolean {
    return this.closedError !== undefined;
  }

  /** The broker's advertised range per API key, from ApiVersions. */
  get apiVersions(): ReadonlyMap<number, VersionRange> {
    return this.brokerVersions;
  }

  /** Connects and negotiates versions with ApiVersions. */
  static async connect(host: string, port: number, options: ConnectionOptions = {}): Promise<BrokerConnection> {
    const { signal } = options;
    const opened = await openSocket(host, port, options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, signal);
    const conn = new BrokerConnection(opened, host, port, options);
    const onAbort = () => conn.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted === true) conn.close();
      await conn.negotiate();
    } catch (err) {
      conn.close();
      if (signal?.aborted === true)
        throw new KafkaClientError(KafkaClientErrorCodes.connect, `connecting to ${host}:${port} was aborted`);
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return conn;
  }

  /** Called once when the connection closes or fails. */
  onClose(listener: (err: KafkaClientError) => void): void {
    if (this.closedError !== undefined) listener(this.closedError);
    else this.closeListeners.push(listener);
  }

  private async negotiate(): Promise<void> {
    const spec = apiKeyInfo(ApiKey.ApiVersions)!;
    let version = spec.maxVersion;
    for (let attempt = 0; attempt < 3; attempt++) {
      const response = await this.send(ApiKey.ApiVersions, version, {
        clientSoftwareName: this.options.clientSoftwareName ?? 'samsa',
        clientSoftwareVersion: this.options.clientSoftwareVersion ?? '0.1.0',
      });
      if (response.errorCode === ErrorCode.UNSUPPORTED_VERSION) {
        const theirs = response.apiKeys.find((k) => k.apiKey === ApiKey.ApiVersions);
        const next = Math.min(theirs?.maxVersion ?? 0, spec.maxVersion);
        if (next >= version) break;
        version = next;
        continue;
      }
      throwIfError(response.errorCode, `ApiVersions v${version} to ${this.address}`);
      this.brokerVersions = new Map(
        response.apiKeys.map((k) => [k.apiKey, { minVersion: k.minVersion, maxVersion: k.maxVersion }]),
      );
      return;
    }
    throw new KafkaClientError(
      KafkaClientErrorCodes.unsupportedVersion,
      `${this.address} supports no ApiVersions version this client knows`,
    );
  }

  /** The version `request` uses for `apiKey` (negotiated, capped by options.maxVersions), or -1. */
  versionFor(apiKey: number): number {
    const v = negotiateVersion(apiKey, this.brokerVersions.get(apiKey));
    const cap = this.options.maxVersions?.[apiKey];
    if (v < 0 || cap === undefined) return v;
    const spec = apiKeyInfo(apiKey)!;
    const floor = Math.max(spec.minVersion, this.brokerVersions.get(apiKey)!.minVersion);
    return cap >= floor ? Math.min(v, cap) : -1;
  }

  supports(apiKey: number): boolean {
    return this.versionFor(apiKey) >= 0;
  }

  /**
   * Sends one request and resolves with its decoded response. Without a version, the highest
   * negotiated one is used. Requests may be issued without waiting: they are pipelined.
   */
  request<K extends ApiKeyNumber>(apiKey: K, body: RequestOf<K>, options?: RequestOptions): Promise<ResponseOf<K>>;
  request<K extends ApiKeyNumber>(
    apiKey: K,
    version: number | undefined,
    body: RequestOf<K>,
    options?: RequestOptions,
  ): Promise<ResponseOf<K>>;
  request<K extends ApiKeyNumber>(
    apiKey: K,
    a: number | undefined | RequestOf<K>,
    b?: RequestOf<K> | RequestOptions,
    c?: RequestOptions,
  ): Promise<ResponseOf<K>> {
    let version: number | undefined;
    let body: RequestOf<K>;
    let options: RequestOptions | undefined;
    if (typeof a === 'number' || a === undefined) {
      version = a;
      body = b as RequestOf<K>;
      options = c;
    } else {
      body = a;
      options = b as RequestOptions | undefined;
    }
    if (version === undefined) {
      version = this.versionFor(apiKey);
      if (version < 0) {
        const name = apiKeyInfo(apiKey)?.name ?? `API ${apiKey}`;
        const theirs = this.brokerVersions.get(apiKey);
        return Promise.reject(
          new KafkaClientError(
            KafkaClientErrorCodes.unsupportedVersion,
            theirs === undefined
              ? `${this.address} does not support ${name}`
              : `no version of ${name} is supported by both this client and ${this.address} (broker: ${theirs.minVersion}-${theirs.maxVersion})`,
          ),
        );
      }
    }
    return this.send(apiKey, version, body, options);
  }

  /** Set while a request waits for its codec to load; later requests queue behind it. */
  private writeQueue: Promise<void> | undefined;

  /** Encodes and writes one request at an explicit version, in call order. */
  private send<K extends ApiKeyNumber>(
    apiKey: K,
    version: number,
    body: RequestOf<K>,
    options?: RequestOptions,
  ): Promise<ResponseOf<K>> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    const name = apiKeyInfo(apiKey)?.name;
    if (name === undefined) {
      return Promise.reject(
        new KafkaClientError(KafkaClientErrorCodes.unsupportedVersion, `unknown API key ${apiKey}`),
      );
    }
    const codec = loadedCodec(apiKey);
    if (codec !== undefined && this.writeQueue === undefined)
      return this.encodeAndWrite(codec, name, apiKey, version, body, options);
    // The first request of an API loads its codec; requests stay on the wire in call order.
    const loadedInOrder = (this.writeQueue ?? Promise.resolve()).then(() => loadCodec(apiKey));
    const result = loadedInOrder.then((c) => this.encodeAndWrite(c, name, apiKey, version, body, options));
    const written = loadedInOrder.then(
      () => undefined,
      () => undefined,
    );
    this.writeQueue = written;
    void written.then(() => {
      if (this.writeQueue === written) this.writeQueue = undefined;
    });
    return result;
  }

  private encodeAndWrite<K extends ApiKeyNumber>(
    codec: ApiCodec,
    name: string,
    apiKey: K,
    version: number,
    body: RequestOf<K>,
    options?: RequestOptions,
  ): Promise<ResponseOf<K>> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = this.nextCorrelationId === 0x7fffffff ? 1 : this.nextCorrelationId + 1;
    const w = new Writer(256);
    const sizeAt = w.reserveInt32();
    try {
      writeRequestHeader(w, requestHeaderVersion(apiKey, version), {
        requestApiKey: apiKey,
        requestApiVersion: version,
        correlationId,
        clientId: this.clientId,
      });
      codec.writeRequest(w, version, body as never);
    } catch (err) {
      return Promise.reject(err);
    }
    w.patchInt32(sizeAt, w.length - 4);
    const chunks = w.toChunks();

    // A broker sends nothing back for Produce with acks=0.
    if (apiKey === ApiKey.Produce && (body as RequestOf<typeof ApiKey.Produce>).acks === 0) {
      return new Promise((resolve, reject) => {
        this.write(chunks, (err) => {
          if (err !== undefined) reject(err);
          else
            resolve({ responses: [], throttleTimeMs: 0, nodeEndpoints: [] } as ResponseOf<
              typeof ApiKey.Produce
            > as ResponseOf<K>);
        });
      });
    }

    return new Promise<ResponseOf<K>>((resolve, reject) => {
      const timeoutMs = options?.timeoutMs ?? this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
      const pending: PendingRequest = {
        apiKey,
        version,
        resolve: resolve as (response: unknown) => void,
        reject,
        timer: undefined,
      };
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        pending.timer = setTimeout(() => {
          if (this.pending.delete(correlationId)) {
            this.abandoned.add(correlationId);
            reject(
              new KafkaClientError(
                KafkaClientErrorCodes.timeout,
                `${name} v${version} to ${this.address} got no response within ${timeoutMs} ms`,
              ),
            );
          }
        }, timeoutMs);
      }
      this.pending.set(correlationId, pending);
      this.write(chunks);
    });
  }

  private write(chunks: Buffer[], callback?: (err?: Error) => void): void {
    this.socket.cork();
    for (let i = 0; i < chunks.length; i++) {
      if (i === chunks.length - 1 && callback !== undefined) {
        this.socket.write(chunks[i]!, (err) => callback(err ?? undefined));
      } else {
        this.socket.write(chunks[i]!);
      }
    }
    this.socket.uncork();
  }

  /** True when the socket's write buffer is above its high-water mark; wait for `drained()`. */
  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** Resolves when the socket's write buffer has drained (at once if it is not full). */
  drained(): Promise<void> {
    if (!this.socket.writableNeedDrain || this.closedError !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /**
   * Bytes read from the socket into the connection's reusable read buffer (`buf[0..end)`):
   * each response is copied once into a buffer of its exact size, whatever the read sizes.
   */
  private onBytes(buf: Buffer, end: number): void {
    let pos = 0;
    while (pos < end && this.closedError === undefined) {
      if (this.frame === undefined) {
        let size: number;
        if (this.sizeFilled === 0 && end - pos >= 4) {
          size = buf.readInt32BE(pos);
          pos += 4;
        } else {
          const n = Math.min(4 - this.sizeFilled, end - pos);
          buf.copy(this.sizeBytes, this.sizeFilled, pos, pos + n);
          this.sizeFilled += n;
          pos += n;
          if (this.sizeFilled < 4) return;
          this.sizeFilled = 0;
          size = this.sizeBytes.readInt32BE(0);
        }
        if (size < 4 || size > MAX_RESPONSE_BYTES) {
          this.fail(
            new KafkaClientError(KafkaClientErrorCodes.protocol, `${this.address} sent a frame of ${size} bytes`),
          );
          this.socket.destroy();
          return;
        }
        this.frame = this.frameBuffer(size);
        this.frameFilled = 0;
      }
      const n = Math.min(this.frame.length - this.frameFilled, end - pos);
      buf.copy(this.frame, this.frameFilled, pos, pos + n);
      this.frameFilled += n;
      pos += n;
      if (this.frameFilled === this.frame.length) {
        const frame = this.frame;
        this.frame = undefined;
        this.onFrame(frame);
      }
    }
  }

  private recycled: Buffer | undefined;

  private frameBuffer(size: number): Buffer {
    if (this.options.recycleResponseBuffers !== true) return Buffer.allocUnsafe(size);
    if (this.recycled === undefined || this.recycled.length < size) {
      this.recycled = Buffer.allocUnsafe(Math.max(size, 1024 * 1024));
    }
    return this.recycled.subarray(0, size);
  }

  private onFrame(frame: Buffer): void {
    const correlationId = frame.readInt32BE(0);
    const pending = this.pending.get(correlationId);
    if (pending === undefined) {
      if (this.abandoned.delete(correlationId)) return;
      this.fail(
        new KafkaClientError(
          KafkaClientErrorCodes.protocol,
          `${this.address} sent a response with correlation id ${correlationId}, which no request is waiting for`,
        ),
      );
      this.socket.destroy();
      return;
    }
    this.pending.delete(correlationId);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    const codec = loadedCodec(pending.apiKey)!;
    const name = apiKeyInfo(pending.apiKey)!.name;
    try {
      const r = new Reader(frame);
      readResponseHeader(r, responseHeaderVersion(pending.apiKey, pending.version));
      let response: unknown;
      if (
        pending.apiKey === ApiKey.ApiVersions &&
        r.remaining >= 2 &&
        frame.readInt16BE(r.pos) === ErrorCode.UNSUPPORTED_VERSION
      ) {
        // KIP-511: a broker answers an ApiVersions version it does not know in v0 format.
        response = codec.readResponse(r, 0) as ApiVersionsResponse;
      } else {
        response = codec.readResponse(r, pending.version);
      }
      if (r.remaining !== 0) {
        throw new KafkaClientError(
          KafkaClientErrorCodes.protocol,
          `${r.remaining} unexpected bytes after a ${name} v${pending.version} response`,
        );
      }
      pending.resolve(response);
    } catch (err) {
      pending.reject(
        err instanceof KafkaClientError
          ? err
          : new KafkaClientError(
              KafkaClientErrorCodes.protocol,
              `cannot decode the ${name} v${pending.version} response from ${this.address}: ${(err as Error).message}`,
              { cause: err },
            ),
      );
    }
  }

  private describe(err: Error): string {
    return `connection to ${this.address} failed: ${err.message}`;
  }

  private fail(err: KafkaClientError): void {
    if (this.closedError !== undefined) return;
    this.closedError = err;
    for (const p of this.pending.values()) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    for (const listener of this.closeListeners.splice(0)) listener(err);
  }

  /** Closes the connection; requests still in flight reject with ERR_KAFKA_CONNECTION_CLOSED. */
  close(): void {
    this.fail(new KafkaClientError(KafkaClientErrorCodes.closed, `connection to ${this.address} closed by the client`));
    this.socket.destroy();
  }
}

interface OpenedSocket {
  socket: Socket;
  /** Where the socket's reads go; set by the connection (nothing arrives before it sends). */
  sink: { onBytes: (buf: Buffer, end: number) => void };
}

/** Size of each connection's reusable read buffer (`onread`): reads never allocate. */
const READ_BUFFER_BYTES = 256 * 1024;

function openSocket(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<OpenedSocket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new KafkaClientError(KafkaClientErrorCodes.connect, `connecting to ${host}:${port} was aborted`));
      return;
    }
    const sink: OpenedSocket['sink'] = { onBytes: () => {} };
    const socket = netConnect({
      host,
      port,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (bytesWritten, buf) => {
          sink.onBytes(buf as Buffer, bytesWritten);
          return true;
        },
      },
    });
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(
        new KafkaClientError(
          KafkaClientErrorCodes.connect,
          `cannot connect to ${host}:${port}: timed out after ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    const onAbort = () => {
      clearTimeout(timer);
      socket.destroy();
      reject(new KafkaClientError(KafkaClientErrorCodes.connect, `connecting to ${host}:${port} was aborted`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const onError = (err: Error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(
        new KafkaClientError(KafkaClientErrorCodes.connect, `cannot connect to ${host}:${port}: ${err.message}`, {
          cause: err,
        }),
      );
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      resolve({ socket, sink });
    });
  });
}

export interface BrokerMetadata {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

export interface PartitionMetadata {
  partition: number;
  errorCode: number;
  leaderId: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
}

export interface TopicMetadata {
  name: string;
  topicId: string;
  errorCode: number;
  isInternal: boolean;
  /** Sorted by partition index. */
  partitions: PartitionMetadata[];
}

export interface ClusterMetadata {
  clusterId: string | null;
  controllerId: number;
  brokers: Map<number, BrokerMetadata>;
  topics: Map<string, TopicMetadata>;
}

export interface KafkaClientOptions extends ConnectionOptions {
  /** One or more `host:port` addresses; the first that answers is used. */
  bootstrap: string | readonly string[];
}

export interface MetadataOptions {
  /** Ask the broker to create missing topics (auto.create.topics.enable). Default false. */
  allowAutoTopicCreation?: boolean | undefined;
}

/**
 * A bootstrap connection plus one connection per broker id. `request` goes to the bootstrap
 * broker (any broker can answer Metadata, admin requests in a single-node cluster, etc.);
 * `requestTo(nodeId, ...)` goes to a given broker, e.g. a partition's leader.
 */
export class KafkaClient {
  private readonly options: KafkaClientOptions;
  private readonly bootstrapAddresses: { host: string; port: number }[];
  private bootstrapConnection: Promise<BrokerConnection> | undefined;
  private readonly nodeConnections = new Map<number, Promise<BrokerConnection>>();
  private readonly dedicated = new Set<BrokerConnection>();
  private closed = false;
  /** From the latest Metadata response. */
  brokers = new Map<number, BrokerMetadata>();
  readonly topics = new Map<string, TopicMetadata>();
  clusterId: string | null = null;
  controllerId = -1;

  constructor(options: KafkaClientOptions) {
    this.options = options;
    const list = typeof options.bootstrap === 'string' ? options.bootstrap.split(',') : options.bootstrap;
    this.bootstrapAddresses = list.map((a) => parseHostPort(a));
    if (this.bootstrapAddresses.length === 0) throw new TypeError('no bootstrap address');
  }

  /** Connects to the first bootstrap address that answers (done lazily by every request too). */
  async connect(): Promise<BrokerConnection> {
    if (this.closed) throw new KafkaClientError(KafkaClientErrorCodes.closed, 'client is closed');
    const existing = this.bootstrapConnection;
    if (existing !== undefined) {
      const conn = await existing.catch(() => undefined);
      if (conn !== undefined && !conn.isClosed) return conn;
    }
    const attempt = this.connectBootstrap();
    this.bootstrapConnection = attempt;
    attempt.catch(() => {
      if (this.bootstrapConnection === attempt) this.bootstrapConnection = undefined;
    });
    return attempt;
  }

  private async connectBootstrap(): Promise<BrokerConnection> {
    let lastError: unknown;
    for (const { host, port } of this.bootstrapAddresses) {
      try {
        return await BrokerConnection.connect(host, port, this.options);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  /** A connection to broker `nodeId` (known from Metadata), opened on first use. */
  async connection(nodeId: number): Promise<BrokerConnection> {
    if (this.closed) throw new KafkaClientError(KafkaClientErrorCodes.closed, 'client is closed');
    const existing = this.nodeConnections.get(nodeId);
    if (existing !== undefined) {
      const conn = await existing.catch(() => undefined);
      if (conn !== undefined && !conn.isClosed) return conn;
      if (this.nodeConnections.get(nodeId) === existing) this.nodeConnections.delete(nodeId);
    }
    const broker = this.brokers.get(nodeId);
    if (broker === undefined) {
      throw new KafkaClientError(KafkaClientErrorCodes.metadata, `broker ${nodeId} is not in the cluster metadata`);
    }
    const attempt = BrokerConnection.connect(broker.host, broker.port, this.options);
    this.nodeConnections.set(nodeId, attempt);
    attempt.catch(() => {
      if (this.nodeConnections.get(nodeId) === attempt) this.nodeConnections.delete(nodeId);
    });
    return attempt;
  }

  /**
   * A new connection to broker `nodeId` that nobody else uses, with `options` on top of the
   * client's (e.g. recycleResponseBuffers for a fetch loop). Closed by `close()` at the latest.
   */
  async dedicatedConnection(nodeId: number, options: Partial<ConnectionOptions> = {}): Promise<BrokerConnection> {
    if (this.closed) throw new KafkaClientError(KafkaClientErrorCodes.closed, 'client is closed');
    const broker = this.brokers.get(nodeId);
    if (broker === undefined) {
      throw new KafkaClientError(KafkaClientErrorCodes.metadata, `broker ${nodeId} is not in the cluster metadata`);
    }
    const conn = await BrokerConnection.connect(broker.host, broker.port, { ...this.options, ...options });
    if (this.closed) {
      conn.close();
      throw new KafkaClientError(KafkaClientErrorCodes.closed, 'client is closed');
    }
    this.dedicated.add(conn);
    conn.onClose(() => this.dedicated.delete(conn));
    return conn;
  }

  /** Sends a request to the bootstrap broker. */
  request<K extends ApiKeyNumber>(apiKey: K, body: RequestOf<K>, options?: RequestOptions): Promise<ResponseOf<K>>;
  request<K extends ApiKeyNumber>(
    apiKey: K,
    version: number | undefined,
    body: RequestOf<K>,
    options?: RequestOptions,
  ): Promise<ResponseOf<K>>;
  async request<K extends ApiKeyNumber>(
    apiKey: K,
    a: number | undefined | RequestOf<K>,
    b?: RequestOf<K> | RequestOptions,
    c?: RequestOptions,
  ): Promise<ResponseOf<K>> {
    const conn = await this.connect();
    if (typeof a === 'number' || a === undefined) return conn.request(apiKey, a, b as RequestOf<K>, c);
    return conn.request(apiKey, a, b as RequestOptions | undefined);
  }

  /** Sends a request to broker `nodeId`. */
  async requestTo<K extends ApiKeyNumber>(
    nodeId: number,
    apiKey: K,
    body: RequestOf<K>,
    options?: RequestOptions & { version?: number | undefined },
  ): Promise<ResponseOf<K>> {
    const conn = await this.connection(nodeId);
    return conn.request(apiKey, options?.version, body, options);
  }

  /**
   * Fetches metadata for `topics` (all topics when null) and records brokers and leaders.
   * Topics that come back with an error are kept in the result with their error code.
   */
  async metadata(topics: readonly string[] | null, options: MetadataOptions = {}): Promise<ClusterMetadata> {
    const conn = await this.connect();
    const version = conn.versionFor(ApiKey.Metadata);
    // Metadata v0 has no way to say "all topics" except an empty list.
    const requestTopics = topics === null ? (version === 0 ? [] : null) : topics.map((name) => ({ name }));
    const response = await conn.request(ApiKey.Metadata, {
      topics: requestTopics,
      allowAutoTopicCreation: options.allowAutoTopicCreation ?? false,
    });
    const brokers = new Map<number, BrokerMetadata>();
    for (const b of response.brokers)
      brokers.set(b.nodeId, { nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack });
    // Connections to brokers whose address changed are closed and reopened on next use.
    for (const [nodeId, broker] of brokers) {
      const old = this.brokers.get(nodeId);
      if (old !== undefined && (old.host !== broker.host || old.port !== broker.port)) {
        const conn = this.nodeConnections.get(nodeId);
        this.nodeConnections.delete(nodeId);
        conn?.then((c) => c.close()).catch(() => {});
      }
    }
    this.brokers = brokers;
    this.clusterId = response.clusterId;
    this.controllerId = response.controllerId;
    const result = new Map<string, TopicMetadata>();
    for (const t of response.topics) {
      const topic: TopicMetadata = {
        name: t.name ?? '',
        topicId: t.topicId,
        errorCode: t.errorCode,
        isInternal: t.isInternal,
        partitions: t.partitions
          .map((p) => ({
            partition: p.partitionIndex,
            errorCode: p.errorCode,
            leaderId: p.leaderId,
            leaderEpoch: p.leaderEpoch,
            replicas: p.replicaNodes,
            isr: p.isrNodes,
            offlineReplicas: p.offlineReplicas,
          }))
          .sort((x, y) => x.partition - y.partition),
      };
      result.set(topic.name, topic);
      if (t.errorCode === ErrorCode.NONE) this.topics.set(topic.name, topic);
      else this.topics.delete(topic.name);
    }
    return { clusterId: response.clusterId, controllerId: response.controllerId, brokers, topics: result };
  }

  /** The leader of a partition per the latest metadata, or -1 when unknown. */
  leaderOf(topic: string, partition: number): number {
    const p = this.topics.get(topic)?.partitions.find((x) => x.partition === partition);
    return p?.leaderId ?? -1;
  }

  /** Closes every connection; pending requests reject with ERR_KAFKA_CONNECTION_CLOSED. */
  close(): void {
    this.closed = true;
    const all = [this.bootstrapConnection, ...this.nodeConnections.values()];
    this.bootstrapConnection = undefined;
    this.nodeConnections.clear();
    for (const p of all) p?.then((c) => c.close()).catch(() => {});
    for (const c of [...this.dedicated]) c.close();
  }
}
