// The replica fetcher's state machine (Kafka's ReplicaFetcherThread) against a small leader that
// speaks just enough Kafka over TCP (ApiVersions, Fetch, ListOffsets) with the project's codecs.
// The leader's "records" are JSON lists of {offset, epoch}: the fetcher never looks inside record
// batches, and the follower handle below checks every append continues its log exactly.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import type { TopicMetadata } from '../../../src/metadata/metadata-store.ts';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import type {
  FetchRequest,
  FetchResponseInput,
  FetchResponsePartitionDataInput,
} from '../../../src/protocol/messages/001-fetch.ts';
import type { ListOffsetsRequest, ListOffsetsResponseInput } from '../../../src/protocol/messages/002-list-offsets.ts';
import { apiSpec, requestHeaderVersion, responseHeaderVersion } from '../../../src/protocol/messages/index.ts';
import { readRequestHeader } from '../../../src/protocol/messages/request-header.ts';
import { writeResponseHeader } from '../../../src/protocol/messages/response-header.ts';
import { Reader } from '../../../src/protocol/reader.ts';
import { randomUuid } from '../../../src/protocol/uuid.ts';
import { Writer } from '../../../src/protocol/writer.ts';
import {
  type FollowerPartitionHandle,
  ReplicaFetcherManager,
  type ReplicaFetcherOptions,
} from '../../../src/replication/replica-fetcher.ts';

const FOLLOWER_ID = 7;

interface Entry {
  offset: bigint;
  epoch: number;
}

function encodeEntries(entries: readonly Entry[]): Buffer {
  return Buffer.from(JSON.stringify(entries.map((e) => [String(e.offset), e.epoch])));
}

function decodeEntries(records: Buffer): Entry[] {
  if (records.length === 0) return [];
  return (JSON.parse(records.toString()) as [string, number][]).map(([o, epoch]) => ({ offset: BigInt(o), epoch }));
}

/** Kafka's LeaderEpochFileCache.endOffsetFor over a list of entries (see src/storage/leader-epoch-cache.ts). */
function endOffsetForEpoch(entries: readonly Entry[], logEnd: bigint, epoch: number) {
  if (entries.length === 0 || epoch < 0) return { epoch: -1, endOffset: -1n };
  if (epoch === entries.at(-1)!.epoch) return { epoch, endOffset: logEnd };
  const higher = entries.find((e) => e.epoch > epoch);
  if (higher === undefined) return { epoch: -1, endOffset: -1n };
  const floor = entries.filter((e) => e.offset < higher.offset && e.epoch <= epoch).at(-1);
  return { epoch: floor?.epoch ?? epoch, endOffset: higher.offset };
}

function topicMeta(name: string, partitions = 4): TopicMetadata {
  return {
    name,
    topicId: randomUuid(),
    partitions,
    replicationFactor: 2,
    configs: {},
    leaderEpochs: Array.from({ length: partitions }, () => 0),
  };
}

interface LeaderPartition {
  topic: TopicMetadata;
  partition: number;
  logStart: bigint;
  entries: Entry[];
  /** Defaults to the log end. */
  highWatermark?: bigint;
  /** Answered instead of data while set. */
  error?: number;
  /** Kafka's Partition.fetchRecords compares epochs first; false: only offsets are checked. */
  checkDivergence: boolean;
}

interface FetchSeen {
  request: FetchRequest;
  version: number;
  socket: Socket;
  /** Partitions named, as `topic-partition@fetchOffset`. */
  partitions: string[];
}

/**
 * A leader broker: a real TCP server answering ApiVersions, Fetch (parked up to maxWaitMs while
 * nothing is new, as a broker's purgatory) and ListOffsets from its in-memory partitions.
 */
class FakeLeader {
  readonly partitions = new Map<string, LeaderPartition>();
  readonly fetches: FetchSeen[] = [];
  readonly listOffsets: ListOffsetsRequest[] = [];
  connections = 0;
  private server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<() => void>();
  port = 0;
  /** Fetches being answered now, per socket (the fetcher sends one at a time). */
  readonly inFlight = new Map<Socket, number>();
  maxInFlight = 0;

  private readonly fetchMaxVersion: number;

  constructor(fetchMaxVersion: number) {
    this.fetchMaxVersion = fetchMaxVersion;
    this.server = this.newServer();
  }

  private newServer(): Server {
    return createServer((socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      let buf = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
          const frame = buf.subarray(4, 4 + buf.readInt32BE(0));
          buf = buf.subarray(4 + frame.length);
          this.onFrame(socket, frame);
        }
      });
    });
  }

  async listen(port = 0): Promise<void> {
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    const address = this.server.address();
    assert.ok(address !== null && typeof address === 'object');
    this.port = address.port;
  }

  /** Drops every connection and stops listening (a leader that died). */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const w of this.waiters) w();
    const closed = once(this.server, 'close');
    this.server.close();
    await closed;
    this.server = this.newServer();
  }

  add(p: Omit<LeaderPartition, 'checkDivergence'> & { checkDivergence?: boolean }): LeaderPartition {
    const full = { checkDivergence: true, ...p };
    this.partitions.set(`${p.topic.name}-${p.partition}`, full);
    return full;
  }

  /** Appends `count` entries at `epoch` and wakes parked fetches. */
  append(topic: string, partition: number, epoch: number, count: number): void {
    const p = this.partitions.get(`${topic}-${partition}`)!;
    for (let i = 0; i < count; i++) p.entries.push({ offset: logEnd(p), epoch });
    this.wakeAll();
  }

  wakeAll(): void {
    for (const w of [...this.waiters]) w();
  }

  private respond(socket: Socket, apiKey: number, version: number, correlationId: number, body: unknown): void {
    const w = new Writer();
    const at = w.reserveInt32();
    writeResponseHeader(w, responseHeaderVersion(apiKey, version), { correlationId });
    apiSpec(apiKey)!.writeResponse(w, version, body as never);
    w.patchInt32(at, w.length - 4);
    if (!socket.destroyed) socket.write(w.toBuffer());
  }

  private onFrame(socket: Socket, frame: Buffer): void {
    const apiKey = frame.readInt16BE(0);
    const version = frame.readInt16BE(2);
    const r = new Reader(frame);
    const { correlationId } = readRequestHeader(r, requestHeaderVersion(apiKey, version));
    const body = apiSpec(apiKey)!.readRequest(r, version);
    if (apiKey === ApiKey.ApiVersions) {
      this.respond(socket, apiKey, version, correlationId, {
        errorCode: 0,
        apiKeys: [
          { apiKey: ApiKey.Fetch, minVersion: 0, maxVersion: this.fetchMaxVersion },
          { apiKey: ApiKey.ListOffsets, minVersion: 0, maxVersion: 10 },
          { apiKey: ApiKey.ApiVersions, minVersion: 0, maxVersion: 4 },
        ],
      });
    } else if (apiKey === ApiKey.Fetch) {
      void this.onFetch(socket, version, correlationId, body as FetchRequest);
    } else if (apiKey === ApiKey.ListOffsets) {
      const request = body as ListOffsetsRequest;
      this.listOffsets.push(request);
      const response: ListOffsetsResponseInput = {
        topics: request.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((q) => {
            const p = this.partitions.get(`${t.name}-${q.partitionIndex}`);
            if (p === undefined)
              return { partitionIndex: q.partitionIndex, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
            const offset = q.timestamp === -2n ? p.logStart : logEnd(p);
            return { partitionIndex: q.partitionIndex, errorCode: 0, timestamp: -1n, offset, leaderEpoch: 0 };
          }),
        })),
      };
      this.respond(socket, apiKey, version, correlationId, response);
    } else {
      socket.destroy();
    }
  }

  private async onFetch(socket: Socket, version: number, correlationId: number, request: FetchRequest): Promise<void> {
    const byId = version >= 13;
    const named = request.topics.flatMap((t) =>
      t.partitions.map((q) => {
        const topic = [...this.partitions.values()].find((p) =>
          byId ? p.topic.topicId === t.topicId : p.topic.name === t.topic,
        )?.topic;
        return { t, q, p: topic === undefined ? undefined : this.partitions.get(`${topic.name}-${q.partition}`) };
      }),
    );
    this.fetches.push({
      request,
      version,
      socket,
      partitions: named.map(({ t, q, p }) => `${p?.topic.name ?? t.topic}-${q.partition}@${q.fetchOffset}`),
    });
    const inFlight = (this.inFlight.get(socket) ?? 0) + 1;
    this.inFlight.set(socket, inFlight);
    this.maxInFlight = Math.max(this.maxInFlight, inFlight);
    const read = () => {
      let bytes = 0;
      let error = false;
      const data = named.map(({ q, p }): FetchResponsePartitionDataInput & { topicKey: string } => {
        const topicKey = byId ? (p?.topic.topicId ?? '') : (p?.topic.name ?? '');
        const base = { topicKey, partitionIndex: q.partition };
        if (p === undefined) {
          error = true;
          return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, highWatermark: -1n };
        }
        const offsets = { highWatermark: p.highWatermark ?? logEnd(p), logStartOffset: p.logStart };
        if (p.error !== undefined) {
          error = true;
          return { ...base, ...offsets, errorCode: p.error };
        }
        if (p.checkDivergence && q.lastFetchedEpoch >= 0) {
          const eo = endOffsetForEpoch(p.entries, logEnd(p), q.lastFetchedEpoch);
          if (eo.epoch < q.lastFetchedEpoch || eo.endOffset < q.fetchOffset) {
            error = true; // answers at once, as a broker does
            return { ...base, ...offsets, errorCode: 0, divergingEpoch: eo, records: Buffer.alloc(0) };
          }
        }
        if (q.fetchOffset < p.logStart || q.fetchOffset > logEnd(p)) {
          error = true;
          return { ...base, ...offsets, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE };
        }
        // A few entries per response, so that catching up takes several Fetches.
        const entries = p.entries.filter((e) => e.offset >= q.fetchOffset).slice(0, 3);
        const records = entries.length === 0 ? Buffer.alloc(0) : encodeEntries(entries);
        bytes += records.length;
        return { ...base, ...offsets, errorCode: 0, records };
      });
      return { bytes, error, data };
    };
    let outcome = read();
    if (outcome.bytes < request.minBytes && !outcome.error) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, request.maxWaitMs);
        this.waiters.add(done);
      });
      outcome = read();
    }
    this.inFlight.set(socket, inFlight - 1);
    const topics = new Map<string, { topic: string; topicId: string; partitions: FetchResponsePartitionDataInput[] }>();
    for (const { topicKey, ...d } of outcome.data) {
      let entry = topics.get(topicKey);
      if (entry === undefined) {
        const p = [...this.partitions.values()].find((x) => (byId ? x.topic.topicId : x.topic.name) === topicKey);
        entry = { topic: p?.topic.name ?? '', topicId: p?.topic.topicId ?? '', partitions: [] };
        topics.set(topicKey, entry);
      }
      entry.partitions.push(d);
    }
    const response: FetchResponseInput = { errorCode: 0, sessionId: 0, responses: [...topics.values()] };
    this.respond(socket, ApiKey.Fetch, version, correlationId, response);
  }
}

function logEnd(p: { logStart: bigint; entries: readonly Entry[] }): bigint {
  return p.entries.at(-1) === undefined ? p.logStart : p.entries.at(-1)!.offset + 1n;
}

/** A follower's log, kept the way a Partition would through the handle. */
class FollowerLog implements FollowerPartitionHandle {
  readonly topic: TopicMetadata;
  readonly partition: number;
  readonly leaderId: number;
  readonly leaderEpoch: number;
  logStart = 0n;
  entries: Entry[] = [];
  highWatermark = 0n;
  removed = false;
  appending = false;
  /** Every call, in order: `append@<first offset>+<count>`, `truncate@<offset>`, `start@<offset>`. */
  readonly calls: string[] = [];
  appendDelayMs = 0;
  /** The next appends throw this many times (a disk error). */
  failAppends = 0;

  constructor(topic: TopicMetadata, partition: number, leaderId: number, leaderEpoch = 0) {
    this.topic = topic;
    this.partition = partition;
    this.leaderId = leaderId;
    this.leaderEpoch = leaderEpoch;
  }

  fetchOffset(): bigint {
    return logEnd(this);
  }

  lastFetchedEpoch(): number {
    return this.entries.at(-1)?.epoch ?? -1;
  }

  endOffsetForEpoch(epoch: number) {
    return endOffsetForEpoch(this.entries, logEnd(this), epoch);
  }

  async append(records: Buffer, leaderHighWatermark: bigint, _leaderLogStartOffset: bigint): Promise<void> {
    assert.equal(this.appending, false, 'appends of one partition never overlap');
    this.appending = true;
    try {
      if (this.appendDelayMs > 0) await new Promise((r) => setTimeout(r, this.appendDelayMs));
      if (this.failAppends > 0) {
        this.failAppends--;
        throw new Error('disk full');
      }
      const entries = decodeEntries(records);
      if (entries.length > 0) {
        assert.equal(entries[0]!.offset, logEnd(this), 'an append continues the log');
        this.calls.push(`append@${entries[0]!.offset}+${entries.length}`);
      }
      this.entries.push(...entries);
      this.highWatermark = leaderHighWatermark < logEnd(this) ? leaderHighWatermark : logEnd(this);
    } finally {
      this.appending = false;
    }
  }

  async truncateTo(offset: bigint): Promise<void> {
    this.calls.push(`truncate@${offset}`);
    this.entries = this.entries.filter((e) => e.offset < offset);
    if (this.highWatermark > offset) this.highWatermark = offset;
  }

  async truncateFullyAndStartAt(offset: bigint): Promise<void> {
    this.calls.push(`start@${offset}`);
    this.entries = [];
    this.logStart = offset;
    this.highWatermark = offset;
  }
}

interface Logged {
  level: 'info' | 'warn' | 'debug';
  message: string;
}

async function leader(t: TestContext, fetchMaxVersion = 17): Promise<FakeLeader> {
  const l = new FakeLeader(fetchMaxVersion);
  await l.listen();
  t.after(() => l.stop());
  return l;
}

function manager(
  t: TestContext,
  leaders: Record<number, FakeLeader>,
  options: Partial<ReplicaFetcherOptions> = {},
): { fetchers: ReplicaFetcherManager; logged: Logged[] } {
  const logged: Logged[] = [];
  const fetchers = new ReplicaFetcherManager({
    nodeId: FOLLOWER_ID,
    brokerEndpoint: (id) => (leaders[id] === undefined ? undefined : { host: '127.0.0.1', port: leaders[id].port }),
    logger: {
      info: (_o, message) => logged.push({ level: 'info', message }),
      warn: (_o, message) => logged.push({ level: 'warn', message }),
      debug: (_o, message) => logged.push({ level: 'debug', message }),
    },
    maxWaitMs: 100,
    backoffMs: 150,
    ...options,
  });
  t.after(() => fetchers.close());
  return { fetchers, logged };
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function sameLog(follower: FollowerLog, p: LeaderPartition): boolean {
  return (
    follower.logStart <= p.logStart &&
    JSON.stringify(follower.entries.filter((e) => e.offset >= p.logStart).map((e) => [String(e.offset), e.epoch])) ===
      JSON.stringify(p.entries.map((e) => [String(e.offset), e.epoch]))
  );
}

test('one Fetch per leader carries all the partitions followed from it, as a replica, sessionless', async (t) => {
  const a = await leader(t);
  const b = await leader(t);
  const topic = topicMeta('orders');
  const other = topicMeta('payments');
  const pa0 = a.add({ topic, partition: 0, logStart: 0n, entries: [] });
  const pa1 = a.add({ topic: other, partition: 1, logStart: 0n, entries: [] });
  const pb2 = b.add({ topic, partition: 2, logStart: 0n, entries: [] });
  a.append('orders', 0, 0, 5);
  a.append('payments', 1, 0, 4);
  b.append('orders', 2, 0, 7);
  const { fetchers } = manager(t, { 1: a, 2: b });
  const f0 = new FollowerLog(topic, 0, 1, 0);
  const f1 = new FollowerLog(other, 1, 1, 0);
  const f2 = new FollowerLog(topic, 2, 2, 0);
  fetchers.addPartitions([f0, f1, f2]);
  assert.deepEqual(
    [...fetchers.fetcherPartitionCounts()],
    [
      [1, 2],
      [2, 1],
    ],
  );
  await waitFor('the followers to catch up', () => sameLog(f0, pa0) && sameLog(f1, pa1) && sameLog(f2, pb2));
  assert.equal(f0.highWatermark, 5n);
  assert.equal(f2.highWatermark, 7n);

  const first = a.fetches[0]!;
  assert.equal(first.version, 17);
  assert.deepEqual(first.partitions.sort(), ['orders-0@0', 'payments-1@0']);
  assert.equal(first.request.replicaState.replicaId, FOLLOWER_ID);
  assert.equal(first.request.replicaState.replicaEpoch, -1n);
  assert.equal(first.request.sessionId, 0);
  assert.equal(first.request.sessionEpoch, -1);
  assert.equal(first.request.isolationLevel, 0);
  assert.equal(first.request.maxWaitMs, 100);
  assert.equal(first.request.topics.find((x) => x.topicId === topic.topicId)?.partitions[0]?.currentLeaderEpoch, 0);
  assert.ok(b.fetches.every((f) => f.partitions.length === 1 && f.partitions[0]!.startsWith('orders-2@')));
  assert.equal(a.connections, 1);
  assert.equal(a.maxInFlight, 1, 'one Fetch in flight per fetcher');

  // New records reach the follower through the parked Fetch.
  a.append('orders', 0, 0, 2);
  await waitFor('the new records', () => sameLog(f0, pa0));
  assert.equal(f0.highWatermark, 7n);
});

test('below v15 the replica id goes in replicaId; below v13 topics go by name', async (t) => {
  const a = await leader(t, 12);
  const topic = topicMeta('old');
  const p = a.add({ topic, partition: 0, logStart: 0n, entries: [] });
  a.append('old', 0, 0, 3);
  const { fetchers } = manager(t, { 1: a });
  const f = new FollowerLog(topic, 0, 1);
  fetchers.addPartitions([f]);
  await waitFor('the follower to catch up', () => sameLog(f, p));
  assert.equal(a.fetches[0]!.version, 12);
  assert.equal(a.fetches[0]!.request.replicaId, FOLLOWER_ID);
  assert.equal(a.fetches[0]!.request.topics[0]!.topic, 'old');
});

test('appends are in order, each awaited before the next Fetch', async (t) => {
  const a = await leader(t);
  const topic = topicMeta('ordered');
  const p = a.add({ topic, partition: 0, logStart: 0n, entries: [] });
  a.append('ordered', 0, 0, 20);
  const { fetchers } = manager(t, { 1: a });
  const f = new FollowerLog(topic, 0, 1);
  f.appendDelayMs = 15;
  // Every Fetch arrives with the previous append finished: the fetch offset is the log end.
  const seenWhileAppending: string[] = [];
  const push = a.fetches.push.bind(a.fetches);
  a.fetches.push = (...items: FetchSeen[]) => {
    if (f.appending) seenWhileAppending.push(items[0]!.partitions.join());
    return push(...items);
  };
  fetchers.addPartitions([f]);
  await waitFor('the follower to catch up', () => sameLog(f, p));
  assert.deepEqual(seenWhileAppending, []);
  assert.deepEqual(f.calls, [
    'append@0+3',
    'append@3+3',
    'append@6+3',
    'append@9+3',
    'append@12+3',
    'append@15+3',
    'append@18+2',
  ]);
  assert.deepEqual(
    a.fetches.slice(0, 7).map((x) => x.partitions[0]),
    ['ordered-0@0', 'ordered-0@3', 'ordered-0@6', 'ordered-0@9', 'ordered-0@12', 'ordered-0@15', 'ordered-0@18'],
  );
});

test('a diverging epoch truncates the follower where the logs agree, then it fetches the rest', async (t) => {
  const a = await leader(t);
  const topic = topicMeta('diverge');
  // The leader started epoch 1 at offset 3; the follower kept 3 more records of epoch 0 it never
  // saw committed.
  const p = a.add({ topic, partition: 0, logStart: 0n, entries: [] });
  a.append('diverge', 0, 0, 3);
  a.append('diverge', 0, 1, 2);
  const { fetchers } = manager(t, { 1: a });
  const f = new FollowerLog(topic, 0, 1, 1);
  for (let i = 0n; i < 6n; i++) f.entries.push({ offset: i, epoch: 0 });
  fetchers.addPartitions([f]);
  await waitFor('the follower to match the leader', () => sameLog(f, p) && f.entries.length === 5);
  assert.deepEqual(f.calls, ['truncate@3', 'append@3+2']);
  const fetch = a.fetches[0]!.request.topics[0]!.partitions[0]!;
  assert.equal(fetch.lastFetchedEpoch, 0);
  assert.equal(fetch.currentLeaderEpoch, 1);
});

test('an epoch the leader never had is truncated to the follower end of the epoch they share (unclean election)', async (t) => {
  const a = await leader(t);
  const topic = topicMeta('unclean');
  // Follower: epoch 0 at 0-1, epoch 2 at 2-3. Leader: epoch 0 at 0-3, epoch 3 at 4. The leader's
  // answer for epoch 2 is epoch 0 ending at 4; the follower's epoch 0 ends at 2, so it keeps 0-1.
  const p = a.add({ topic, partition: 0, logStart: 0n, entries: [] });
  a.append('unclean', 0, 0, 4);
  a.append('unclean', 0, 3, 1);
  const { fetchers } = manager(t, { 1: a });
  const f = new FollowerLog(topic, 0, 1, 3);
  f.entries.push(
    { offset: 0n, epoch: 0 },
    { offset: 1n, epoch: 0 },
    { offset: 2n, epoch: 2 },
    { offset: 3n, epoch: 2 },
  );
  fetchers.addPartitions([f]);
  await waitFor('the follower to match the leader', () => sameLog(f, p));
  assert.deepEqual(f.calls, ['truncate@2', 'append@2+3']);
});

test('OFFSET_OUT_OF_RANGE with the leader end below ours truncates to it', async (t) => {
  const a = await leader(t);
  const topic = topicMeta('behind');
  const p = a.add({ topic, partition: 0, logStart: 0n, entries: [], checkDivergence: false });
  a.append('behind', 0, 0, 5);
  const { fetchers, logged } = manager(t, { 1: a });
  const f = new FollowerLog(topic, 0, 1);
  for (let i = 0n; i < 8n; i++) f.entries.push({ offset: i, epoch: 0 });
  fetchers.addPartitions([f]);
  await waitFor('the truncation', () => f.calls.includes('truncate@5'));
  a.append('behind', 0, 0, 2);
  await waitFor('the follower to match the leader', () => sameLog(f, p) && f.entries.length === 7);
  assert.deepEqual(f.calls, ['truncate@5', 'append@5+2']);
  const asked = a.listOffsets[0]!;
  assert.equal(asked.replicaId, FOLLOWER_ID);
  assert.equal(asked.topics[0]!.partitions[0]!.timestamp, -1n);
  assert.ok(logged.some((l) => l.level === 'warn' && /truncating to 5, the leader's log end/.test(l.message)));
});

test('OFFSET_OUT_OF_RANGE with our end below the leader log start starts the log there', async (t) => {
  const a = await leader(t);
  const topic = topicMeta('retention');
  const p = a.add({ topic, partition: 0, logStart: 10n, entries: [] });
  a.append('retention', 0, 0, 5);
  const { fetchers } = manager(t, { 1: a });
  const f = new FollowerLog(topic, 0, 1);
  for (let i = 0n; i < 3n; i++) f.entries.push({ offset: i, epoch: 0 });
  fetchers.addPartitions([f]);
  await waitFor('the follower to match the leader', () => f.logStart === 10n && sameLog(f, p));
  assert.deepEqual(f.calls, ['start@10', 'append@10+3', 'append@13+2']);
  assert.deepEqual(
    a.listOffsets.map((r) => r.topics[0]!.partitions[0]!.timestamp),
    [-1n, -2n],
  );
});

test('NOT_LEADER_OR_FOLLOWER backs the partition off without spinning; the others go on', async (t) => {
  const a = await leader(t);
  const topic = topicMeta('moved');
  a.add({ topic, partition: 0, logStart: 0n, entries: [], error: ErrorCode.NOT_LEADER_OR_FOLLOWER });
  const healthy = a.add({ topic, partition: 1, logStart: 0n, entries: [] });
  const { fetchers, logged } = manager(t, { 1: a }, { backoffMs: 200, maxWaitMs: 100 });
  const moved = new FollowerLog(topic, 0, 1);
  const f = new FollowerLog(topic, 1, 1);
  fetchers.addPartitions([moved, f]);
  const started = Date.now();
  const cpu = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 1000));
  a.append('moved', 1, 0, 2);
  await waitFor('the healthy partition', () => sameLog(f, healthy) && f.entries.length === 2);
  const elapsed = Date.now() - started;
  const withMoved = a.fetches.filter((x) => x.partitions.some((q) => q.startsWith('moved-0@'))).length;
  // Once per backoff (200 ms), never more.
  assert.ok(withMoved <= Math.ceil(elapsed / 200) + 1, `${withMoved} fetches of the moved partition in ${elapsed} ms`);
  assert.ok(withMoved >= 3, `${withMoved}`);
  // The others long-poll (100 ms): a handful of Fetches, not thousands.
  assert.ok(a.fetches.length <= Math.ceil(elapsed / 100) * 2 + 4, `${a.fetches.length} fetches in ${elapsed} ms`);
  const used = process.cpuUsage(cpu);
  assert.ok(used.user + used.system < 500_000, `CPU ${used.user + used.system} µs`);
  assert.equal(logged.filter((l) => l.level === 'warn' && /NOT_LEADER_OR_FOLLOWER/.test(l.message)).length, 1);
});

test('the fetcher reconnects after the leader goes away, retrying once per backoff', async (t) => {
  const a = await leader(t);
  const topic = topicMeta('reconnect');
  const p = a.add({ topic, partition: 0, logStart: 0n, entries: [] });
  a.append('reconnect', 0, 0, 2);
  const { fetchers, logged } = manager(t, { 1: a }, { backoffMs: 100 });
  const f = new FollowerLog(topic, 0, 1);
  fetchers.addPartitions([f]);
  await waitFor('the first records', () => sameLog(f, p));
  const port = a.port;
  await a.stop();
  const connectionsBefore = a.connections;
  await new Promise((r) => setTimeout(r, 600));
  a.append('reconnect', 0, 0, 3);
  await a.listen(port);
  await waitFor('the records after the outage', () => sameLog(f, p) && f.entries.length === 5);
  assert.equal(a.connections, connectionsBefore + 1);
  assert.deepEqual(f.calls, ['append@0+2', 'append@2+3']);
  const warnings = logged.filter((l) => l.level === 'warn');
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.match(warnings[0]!.message, /retrying every 100 ms/);
  assert.ok(logged.some((l) => l.level === 'info' && /fetching from broker 1 again/.test(l.message)));
  // Refused connections during the outage: about one per backoff (600 ms / 100 ms), not a spin.
  const retries = logged.filter((l) => l.level === 'debug' && /cannot connect/.test(l.message)).length;
  assert.ok(retries <= 8, `${retries} retries`);
});

test('a failed append is logged once and retried after the backoff', async (t) => {
  const a = await leader(t);
  const topic = topicMeta('diskfull');
  const p = a.add({ topic, partition: 0, logStart: 0n, entries: [] });
  a.append('diskfull', 0, 0, 2);
  const { fetchers, logged } = manager(t, { 1: a }, { backoffMs: 100 });
  const f = new FollowerLog(topic, 0, 1);
  f.failAppends = 3;
  fetchers.addPartitions([f]);
  await waitFor('the records', () => sameLog(f, p));
  assert.equal(logged.filter((l) => l.level === 'warn' && /disk full/.test(l.message)).length, 1);
  assert.ok(logged.some((l) => l.level === 'info' && /fetching again/.test(l.message)));
});

test('a partition moves with its new handle, stops when removed, and idle fetchers close', async (t) => {
  const a = await leader(t);
  const b = await leader(t);
  const topic = topicMeta('moving');
  const pa = a.add({ topic, partition: 0, logStart: 0n, entries: [] });
  const pb = b.add({ topic, partition: 0, logStart: 0n, entries: [] });
  a.append('moving', 0, 0, 2);
  b.append('moving', 0, 0, 2);
  b.append('moving', 0, 1, 2);
  const { fetchers } = manager(t, { 1: a, 2: b });
  const first = new FollowerLog(topic, 0, 1, 0);
  fetchers.addPartitions([first]);
  await waitFor('leader 1 records', () => sameLog(first, pa));
  // Broker 2 leads now, at epoch 1: a new handle over the same log.
  const second = Object.assign(new FollowerLog(topic, 0, 2, 1), { entries: first.entries });
  first.removed = true;
  fetchers.addPartitions([second]);
  assert.deepEqual([...fetchers.fetcherPartitionCounts()], [[2, 1]]);
  await waitFor('leader 2 records', () => sameLog(second, pb));
  fetchers.removePartitions([{ topic: 'moving', partition: 0 }]);
  assert.equal(fetchers.fetcherPartitionCounts().size, 0);
  await new Promise((r) => setTimeout(r, 50));
  const fetchesAfter = b.fetches.length;
  b.append('moving', 0, 1, 1);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(b.fetches.length, fetchesAfter);
  assert.equal(second.entries.length, 4);
});

test('close waits for an append in progress and stops fetching', async (t) => {
  const a = await leader(t);
  const topic = topicMeta('closing');
  a.add({ topic, partition: 0, logStart: 0n, entries: [] });
  a.append('closing', 0, 0, 1);
  const { fetchers } = manager(t, { 1: a });
  const f = new FollowerLog(topic, 0, 1);
  f.appendDelayMs = 200;
  fetchers.addPartitions([f]);
  await waitFor('the append to start', () => f.appending);
  await fetchers.close();
  assert.equal(f.appending, false);
  assert.deepEqual(f.calls, ['append@0+1']);
  const after = a.fetches.length;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(a.fetches.length, after);
});

test('a leader that is not live is retried once per backoff, quietly', async (t) => {
  const topic = topicMeta('nowhere');
  const { fetchers, logged } = manager(t, {}, { backoffMs: 100 });
  fetchers.addPartitions([new FollowerLog(topic, 0, 9)]);
  await new Promise((r) => setTimeout(r, 450));
  assert.equal(logged.filter((l) => l.level === 'warn').length, 1);
  const retries = logged.filter((l) => l.level === 'debug').length;
  assert.ok(retries >= 2 && retries <= 5, `${retries}`);
});

test('close does not wait for a connection attempt to a leader that never answers', async (t) => {
  const sockets = new Set<Socket>();
  const closed: Socket[] = [];
  const silent = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => closed.push(s));
    // Reads and drops the ApiVersions request, answering nothing.
    s.resume();
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const address = silent.address();
  assert.ok(address !== null && typeof address === 'object');
  const fetchers = new ReplicaFetcherManager({
    nodeId: FOLLOWER_ID,
    brokerEndpoint: () => ({ host: '127.0.0.1', port: address.port }),
    logger: { info: () => {}, warn: () => {} },
  });
  fetchers.addPartitions([new FollowerLog(topicMeta('silent'), 0, 1)]);
  await waitFor('the connection', () => sockets.size === 1);
  const started = Date.now();
  await fetchers.close();
  assert.ok(Date.now() - started < 500, `close took ${Date.now() - started} ms`);
  // The attempt is aborted, not left to its 30 s timeout (which would hold a stopping broker).
  await waitFor('the abandoned connection to close', () => closed.length === 1, 1000);
});
