/**
 * Shared plumbing for the broker integration tests: a raw protocol connection built on the
 * generated codecs (for byte-level precision and for sending malformed input), a broker run as a
 * child process (for SIGTERM / kill -9), kcat as a child process, and random topic names.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type {
  ProduceRequestInput,
  ProduceResponse,
  ProduceResponsePartitionProduceResponse,
} from '../../../src/protocol/messages/000-produce.ts';
import type { FetchRequestInput, FetchResponse } from '../../../src/protocol/messages/001-fetch.ts';
import type { ListOffsetsRequestInput, ListOffsetsResponse } from '../../../src/protocol/messages/002-list-offsets.ts';
import type { MetadataRequestInput, MetadataResponse } from '../../../src/protocol/messages/003-metadata.ts';
import type { ApiVersionsResponse } from '../../../src/protocol/messages/018-api-versions.ts';
import type {
  CreateTopicsRequestInput,
  CreateTopicsResponse,
} from '../../../src/protocol/messages/019-create-topics.ts';
import { apiSpec, requestHeaderVersion, responseHeaderVersion } from '../../../src/protocol/messages/index.ts';
import { writeRequestHeader } from '../../../src/protocol/messages/request-header.ts';
import { readResponseHeader } from '../../../src/protocol/messages/response-header.ts';
import { Reader } from '../../../src/protocol/reader.ts';
import { decodeBatchSync, iterateBatches, type Record as KafkaRecord } from '../../../src/protocol/records/index.ts';
import { ZERO_UUID } from '../../../src/protocol/uuid.ts';
import { Writer } from '../../../src/protocol/writer.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export const ApiKeys = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  FindCoordinator: 10,
  JoinGroup: 11,
  ApiVersions: 18,
  CreateTopics: 19,
  InitProducerId: 22,
} as const;

/** A topic name nobody else uses. */
export function randomTopic(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** Encodes one request frame (size prefix included) with the generated codecs. */
export function encodeRequest(apiKey: number, version: number, correlationId: number, body: unknown): Buffer {
  const spec = apiSpec(apiKey);
  if (spec === undefined) throw new Error(`no codec for API key ${apiKey}`);
  const w = new Writer(256);
  const sizeAt = w.reserveInt32();
  writeRequestHeader(w, requestHeaderVersion(apiKey, version), {
    requestApiKey: apiKey,
    requestApiVersion: version,
    correlationId,
    clientId: 'samsa-it',
  });
  spec.writeRequest(w, version, body as never);
  w.patchInt32(sizeAt, w.length - 4);
  return w.toBuffer();
}

interface Pending {
  apiKey: number;
  version: number;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/**
 * One TCP connection speaking the Kafka protocol through the generated codecs, one request at a
 * time or pipelined. `write` sends arbitrary bytes; `closedByPeer` tells whether the broker
 * closed the connection.
 */
export class RawConnection {
  readonly socket: Socket;
  private buffered: Buffer = Buffer.alloc(0);
  private readonly pending = new Map<number, Pending>();
  private nextCorrelationId = 1;
  private closedByUs = false;
  /** Set when the connection ended without us asking: FIN or reset from the broker. */
  peerClosed = false;
  private readonly closedPromise: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // A reset from the broker is also "closed by the broker".
    socket.on('error', () => {});
    socket.on('end', () => {
      if (!this.closedByUs) this.peerClosed = true;
    });
    this.closedPromise = new Promise((resolve) => {
      socket.once('close', () => {
        if (!this.closedByUs) this.peerClosed = true;
        const err = new Error('connection closed');
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        resolve();
      });
    });
  }

  static async connect(address: string): Promise<RawConnection> {
    const { host, port } = splitHostPort(address);
    const socket = connect({ host, port });
    await once(socket, 'connect');
    return new RawConnection(socket);
  }

  /** Sends a request and resolves with its decoded response body. */
  request<T>(apiKey: number, version: number, body: unknown, timeoutMs = 15_000): Promise<T> {
    const correlationId = this.nextCorrelationId++;
    const frame = encodeRequest(apiKey, version, correlationId, body);
    if (this.socket.destroyed) return Promise.reject(new Error('connection closed'));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        reject(new Error(`no response to API ${apiKey} v${version} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(correlationId, {
        apiKey,
        version,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.socket.write(frame);
    });
  }

  /** Writes raw bytes, bypassing the codecs. */
  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Resolves true once the broker has closed the connection, false if it is still open after `timeoutMs`. */
  async closedByPeer(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const result = await Promise.race([this.closedPromise.then(() => 'closed' as const), timeout]);
    clearTimeout(timer);
    return result === 'closed' && this.peerClosed;
  }

  close(): void {
    this.closedByUs = true;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 4) {
      const size = this.buffered.readInt32BE(0);
      if (this.buffered.length < 4 + size) return;
      const frame = this.buffered.subarray(4, 4 + size);
      this.buffered = this.buffered.subarray(4 + size);
      this.onFrame(frame);
    }
  }

  private onFrame(frame: Buffer): void {
    const correlationId = frame.readInt32BE(0);
    const p = this.pending.get(correlationId);
    if (p === undefined) return;
    this.pending.delete(correlationId);
    try {
      const r = new Reader(frame);
      readResponseHeader(r, responseHeaderVersion(p.apiKey, p.version));
      const body = apiSpec(p.apiKey)!.readResponse(r, p.version);
      assert.equal(r.remaining, 0, `trailing bytes after API ${p.apiKey} v${p.version} response`);
      p.resolve(body);
    } catch (err) {
      p.reject(err as Error);
    }
  }
}

/** A fresh connection, one ApiVersions v3 round trip, closed again: proof the broker serves. */
export async function apiVersionsRoundTrip(address: string): Promise<ApiVersionsResponse> {
  const conn = await RawConnection.connect(address);
  try {
    const res = await conn.request<ApiVersionsResponse>(ApiKeys.ApiVersions, 3, {
      clientSoftwareName: 'samsa-it',
      clientSoftwareVersion: '1.0',
    });
    assert.equal(res.errorCode, 0);
    assert.ok(res.apiKeys.length > 0);
    return res;
  } finally {
    conn.close();
  }
}

/** Whether the broker advertises an API key (e.g. to run consumer-group tests once groups exist). */
export async function brokerSupports(address: string, apiKey: number): Promise<boolean> {
  const res = await apiVersionsRoundTrip(address);
  return res.apiKeys.some((k) => k.apiKey === apiKey);
}

// ------------------------------------------------------------------------------------------------
// Requests through the codecs

/** CreateTopics v7 (which returns topic ids) for one topic; asserts success and returns the topic id. */
export async function createTopic(conn: RawConnection, name: string, numPartitions: number): Promise<string> {
  const res = await conn.request<CreateTopicsResponse>(ApiKeys.CreateTopics, 7, {
    topics: [{ name, numPartitions, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 10_000,
    validateOnly: false,
  } satisfies CreateTopicsRequestInput);
  const t = res.topics[0];
  assert.equal(t?.errorCode, 0, `CreateTopics ${name}: error ${t?.errorCode} ${t?.errorMessage}`);
  return t.topicId;
}

/** Produces one record batch to one partition and returns that partition's response. */
export async function produceBatch(
  conn: RawConnection,
  version: number,
  topic: string,
  partition: number,
  records: Buffer,
  acks = -1,
): Promise<ProduceResponsePartitionProduceResponse> {
  const res = await conn.request<ProduceResponse>(ApiKeys.Produce, version, {
    transactionalId: null,
    acks,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  } satisfies ProduceRequestInput);
  const p = res.responses[0]?.partitionResponses[0];
  assert.ok(p !== undefined, 'Produce response without a partition');
  return p;
}

/** ListOffsets v5: the log end offset (timestamp -1) or the earliest offset (-2). */
export async function listOffset(
  conn: RawConnection,
  topic: string,
  partition: number,
  timestamp = -1n,
): Promise<bigint> {
  const res = await conn.request<ListOffsetsResponse>(ApiKeys.ListOffsets, 5, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp }] }],
  } satisfies ListOffsetsRequestInput);
  const p = res.topics[0]?.partitions[0];
  assert.equal(p?.errorCode, 0, `ListOffsets ${topic}/${partition}: error ${p?.errorCode}`);
  return p.offset;
}

/** Kafka's string form of a topic id (base64url, as Samsa's codecs use) from a dashed-hex UUID. */
export function toKafkaUuid(id: string | undefined): string | undefined {
  if (id === undefined || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return id;
  return Buffer.from(id.replaceAll('-', ''), 'hex').toString('base64url');
}

/** Metadata v12 (topic ids) for the named topics. */
export function metadata(conn: RawConnection, topics: readonly string[]): Promise<MetadataResponse> {
  return conn.request<MetadataResponse>(ApiKeys.Metadata, 12, {
    topics: topics.map((name) => ({ name, topicId: ZERO_UUID })),
    allowAutoTopicCreation: false,
    includeTopicAuthorizedOperations: false,
  } satisfies MetadataRequestInput);
}

/** One Fetch v11 (by name, no wait) of one partition from `offset`; fails the test on an error code. */
export async function fetchPartition(conn: RawConnection, topic: string, partition: number, offset: bigint) {
  const res = await conn.request<FetchResponse>(ApiKeys.Fetch, 11, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 8 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{ topic, partitions: [{ partition, fetchOffset: offset, partitionMaxBytes: 4 << 20 }] }],
    forgottenTopicsData: [],
    rackId: '',
  } satisfies FetchRequestInput);
  const p = res.responses[0]?.partitions[0];
  assert.equal(p?.errorCode, 0, `Fetch ${topic}/${partition}: error ${p?.errorCode}`);
  return p;
}

/** A fetched record with the identity of the batch that carried it. */
export interface FetchedRecord extends KafkaRecord {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
}

/** Reads a partition from `from` to its high watermark with Fetch v11 (by name). */
export async function fetchAll(
  conn: RawConnection,
  topic: string,
  partition: number,
  from = 0n,
): Promise<FetchedRecord[]> {
  const out: FetchedRecord[] = [];
  let next = from;
  for (let round = 0; ; round++) {
    assert.ok(round < 1000, 'fetch made no progress');
    const p = await fetchPartition(conn, topic, partition, next);
    if (next >= p.highWatermark) return out;
    const records = p.records ?? Buffer.alloc(0);
    let progressed = false;
    for (const b of iterateBatches(records, { partialTail: 'stop' })) {
      const batch = decodeBatchSync(records.subarray(b.offset, b.offset + b.size));
      for (const r of batch.records) {
        if (r.offset < next) continue;
        out.push({
          ...r,
          producerId: batch.header.producerId,
          producerEpoch: batch.header.producerEpoch,
          baseSequence: batch.header.baseSequence,
        });
        next = r.offset + 1n;
        progressed = true;
      }
    }
    assert.ok(progressed, `Fetch ${topic}/${partition} at ${next} returned nothing below the high watermark`);
  }
}

// ------------------------------------------------------------------------------------------------
// Child processes

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (an in-process broker must keep serving). */
export function run(
  command: string,
  args: readonly string[],
  options: { input?: string | Buffer; timeoutMs?: number } = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => {});
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Runs kcat against `bootstrap`; fails the test with kcat's stderr when it exits non-zero. */
export async function kcat(
  bootstrap: string,
  args: readonly string[],
  options: { input?: string | Buffer; timeoutMs?: number } = {},
): Promise<string> {
  const res = await run('kcat', ['-b', bootstrap, ...args], options);
  assert.equal(res.code, 0, `kcat ${args.join(' ')} exited with ${res.code ?? res.signal}: ${res.stderr}`);
  return res.stdout;
}

/** One record as `kcat -C -J` prints it. */
export interface KcatRecord {
  topic: string;
  partition: number;
  offset: number;
  tstype: string;
  ts: number;
  key: string | null;
  payload: string | null;
  /** Flat [name, value, name, value, ...] list, absent when the record has none. */
  headers?: (string | null)[];
}

/** Consumes a whole topic from the beginning with kcat (no group) and exits at the end. */
export async function kcatConsumeAll(bootstrap: string, topic: string): Promise<KcatRecord[]> {
  const out = await kcat(bootstrap, ['-C', '-t', topic, '-o', 'beginning', '-e', '-J', '-q'], { timeoutMs: 60_000 });
  return out
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as KcatRecord);
}

export { type BrokerProcess, spawnBroker } from '../../helpers/broker-process.ts';

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
