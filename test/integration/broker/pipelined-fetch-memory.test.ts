// Issue 11 item 17: pipelined Fetches that are never read took the broker from 82 MB to 1.45 GB
// RSS. A whole socket read (256 KiB, ~2,500 small Fetch requests) was dispatched before the
// in-flight cap was looked at, and response bytes were not counted: every Fetch's response sat in
// memory behind a socket the client never read. Kafka reads one request at a time per connection
// (it mutes the channel while a request is in flight) and bounds request memory by a pool
// (queued.max.request.bytes). Here raw sockets pipeline requests and never read; the broker's own
// counters (broker.networkStats()) must stay within the bounds, other clients must be served, and
// everything must be released once the sockets close. RSS figures: bench/pipelined-fetch.bench.ts.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import type { FetchRequestInput } from '../../../src/protocol/messages/001-fetch.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/index.ts';
import {
  ApiKeys,
  apiVersionsRoundTrip,
  createTopic,
  encodeRequest,
  fetchPartition,
  produceBatch,
  RawConnection,
  randomTopic,
  spawnBroker,
  splitHostPort,
  waitFor,
} from './helpers.ts';

const RECORD_BYTES = 128 * 1024;
const BATCHES = 8;

/** A topic of BATCHES batches of one 128 KiB record each. */
async function topicWithData(bootstrap: string): Promise<string> {
  const topic = randomTopic('pipelined');
  const conn = await RawConnection.connect(bootstrap);
  try {
    await createTopic(conn, topic, 1);
    for (let i = 0; i < BATCHES; i++) {
      const batch = buildRecordBatchSync({ records: [{ key: null, value: Buffer.alloc(RECORD_BYTES, i) }] });
      const p = await produceBatch(conn, 9, topic, 0, batch);
      assert.equal(p.errorCode, 0);
    }
  } finally {
    conn.close();
  }
  return topic;
}

/** `count` Fetch v11 requests for one 128 KiB batch each (no wait), as one buffer. */
function pipelinedFetches(topic: string, count: number): Buffer {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    frames.push(
      encodeRequest(ApiKeys.Fetch, 11, i, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: RECORD_BYTES,
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [{ topic, partitions: [{ partition: 0, fetchOffset: BigInt(i % BATCHES), partitionMaxBytes: 1 }] }],
        forgottenTopicsData: [],
        rackId: '',
      } satisfies FetchRequestInput),
    );
  }
  return Buffer.concat(frames);
}

/** A client that writes `bytes` and never reads a byte of what comes back. */
async function neverReading(bootstrap: string, bytes: Buffer): Promise<Socket> {
  const { host, port } = splitHostPort(bootstrap);
  const socket = connect({ host, port });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.pause();
  socket.write(bytes);
  return socket;
}

function fetchesHandled(broker: RunningBroker): number {
  return broker.requestMetrics.apis().find((a) => a.apiKey === ApiKeys.Fetch)?.requests ?? 0;
}

/**
 * Polls the broker's counters until `settled` says the clients' bytes have all been taken in
 * (or a counter has passed its bound, which fails the test below), returning the highest values.
 */
async function watch(broker: RunningBroker, over: (s: ReturnType<RunningBroker['networkStats']>) => boolean) {
  const peak = { requestBytes: 0, responseBytes: 0 };
  let stable = 0;
  let last = -1;
  await waitFor(
    () => {
      const s = broker.networkStats();
      peak.requestBytes = Math.max(peak.requestBytes, s.requestBytes);
      peak.responseBytes = Math.max(peak.responseBytes, s.responseBytes);
      if (over(s)) return true;
      // Settled: nothing new handled over 25 polls while the clients still have bytes unread.
      const handled = fetchesHandled(broker);
      stable = handled === last ? stable + 1 : 0;
      last = handled;
      return stable >= 25 && s.pausedConnections > 0;
    },
    60_000,
    'the broker to stop taking in requests',
  );
  return peak;
}

async function released(broker: RunningBroker, connections: number): Promise<void> {
  await waitFor(
    () => {
      const s = broker.networkStats();
      return s.connections === connections && s.requestBytes === 0 && s.responseBytes === 0 && s.inFlightRequests === 0;
    },
    20_000,
    `counters back to zero (now ${JSON.stringify(broker.networkStats())})`,
  );
}

test('pipelined Fetches never read: a connection holds about one response, others are served, all is released on close', async (t) => {
  const broker = await startBroker();
  const sockets: Socket[] = [];
  // Clients first: a broker does not wait for sockets nobody reads.
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await broker.close();
  });
  const topic = await topicWithData(broker.bootstrap);
  const COUNT = 1000;
  const attacker = await neverReading(broker.bootstrap, pipelinedFetches(topic, COUNT));
  sockets.push(attacker);
  // Per connection: one Fetch in flight at a time (as Kafka reads one request at a time), and
  // nothing more read while the socket holds unwritten bytes beyond its buffer: about one
  // response (128 KiB) plus the socket's high-water mark. 1 MiB leaves room for both.
  const BOUND = 1024 * 1024;
  const peak = await watch(broker, (s) => s.responseBytes > BOUND);
  assert.ok(peak.responseBytes <= BOUND, `${peak.responseBytes} response bytes held for one connection`);
  const handled = fetchesHandled(broker);
  t.diagnostic(`peak ${peak.responseBytes} response bytes, ${handled} of ${COUNT} Fetches handled`);
  assert.ok(handled < COUNT, `all ${COUNT} pipelined Fetches were handled for a client that reads nothing`);

  // Other clients are served meanwhile, Fetch included.
  const bystander = await RawConnection.connect(broker.bootstrap);
  const p = await fetchPartition(bystander, topic, 0, 0n);
  assert.ok((p.records?.length ?? 0) > RECORD_BYTES);
  await apiVersionsRoundTrip(broker.bootstrap);
  bystander.close();

  attacker.destroy();
  await released(broker, 0);
});

test('the broker-wide bounds: queued.max.request.bytes over partial frames, samsa.queued.max.response.bytes over unread responses', async (t) => {
  const MAX_REQUEST = 4 * 1024 * 1024;
  const MAX_RESPONSE = 512 * 1024;
  const broker = await startBroker({
    overrides: {
      'queued.max.request.bytes': String(MAX_REQUEST),
      'samsa.queued.max.response.bytes': String(MAX_RESPONSE),
    },
  });
  const sockets: Socket[] = [];
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await broker.close();
  });
  const topic = await topicWithData(broker.bootstrap);

  // Requests: six clients each announce a 2 MiB frame, send 1 KiB of it and stall. Kafka takes a
  // frame's memory from its pool when it reads the size, and reads no new frame while the pool
  // is empty: the first frames get memory (the pool may go past its bound by one frame), the
  // others wait, unread.
  const FRAME = 2 * 1024 * 1024;
  const stalled: Socket[] = [];
  for (let i = 0; i < 6; i++) {
    const head = Buffer.alloc(4 + 1024);
    head.writeInt32BE(FRAME, 0);
    stalled.push(await neverReading(broker.bootstrap, head));
  }
  sockets.push(...stalled);
  await waitFor(() => broker.networkStats().connections === 6, 10_000, 'six connections');
  // Two frames fit under the bound (at 0 and at 2 MiB); at 4 MiB the other four wait.
  await waitFor(
    () => broker.networkStats().pausedConnections === 4 || broker.networkStats().requestBytes > MAX_REQUEST + FRAME,
    10_000,
    'connections to wait for the request pool',
  );
  const requests = broker.networkStats();
  t.diagnostic(`six stalled 2 MiB frames: ${JSON.stringify(requests)}`);
  assert.ok(
    requests.requestBytes <= MAX_REQUEST + FRAME + 6 * 4096,
    `${requests.requestBytes} request bytes held for six stalled 2 MiB frames (bound ${MAX_REQUEST})`,
  );
  // A client that comes now waits too (Kafka mutes every channel while its pool is empty), and
  // is served once the stalled clients are gone and their memory is back.
  const waiting = await RawConnection.connect(broker.bootstrap);
  const answered = waiting.request(ApiKeys.ApiVersions, 0, {}, 30_000);
  await waitFor(() => broker.networkStats().pausedConnections === 5, 10_000, 'the new client to wait');
  for (const s of stalled) s.destroy();
  await answered;
  waiting.close();
  await released(broker, 0);

  // Responses: four clients pipeline Fetches and never read.
  const COUNT = 500;
  const attackers = await Promise.all(
    Array.from({ length: 4 }, () => neverReading(broker.bootstrap, pipelinedFetches(topic, COUNT))),
  );
  sockets.push(...attackers);
  // Past the bound no connection dispatches another request; those already in flight may each
  // add one response (128 KiB) and the socket buffer's worth.
  const BOUND = MAX_RESPONSE + 4 * (RECORD_BYTES + 128 * 1024);
  const peak = await watch(broker, (s) => s.responseBytes > BOUND);
  t.diagnostic(
    `four clients not reading: peak ${peak.responseBytes} response bytes, ${fetchesHandled(broker)} Fetches handled`,
  );
  assert.ok(peak.responseBytes <= BOUND, `${peak.responseBytes} response bytes held (bound ${MAX_RESPONSE})`);
  for (const a of attackers) a.destroy();
  await released(broker, 0);
  // With the memory back, clients are served again.
  const conn = await RawConnection.connect(broker.bootstrap);
  const p = await fetchPartition(conn, topic, 0, 0n);
  assert.ok((p.records?.length ?? 0) > RECORD_BYTES);
  conn.close();
});

test('SIGTERM stops a broker whose client never reads its responses (the process used to stay up for ever)', {
  timeout: 120_000,
}, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-unread-'));
  const broker = await spawnBroker(dataDir);
  const sockets: Socket[] = [];
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await broker.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });
  const topic = await topicWithData(broker.bootstrap);
  sockets.push(await neverReading(broker.bootstrap, pipelinedFetches(topic, 200)));
  // Let the broker answer what it will before the client's socket fills up.
  await new Promise((r) => setTimeout(r, 1000));
  // The broker gives in-flight requests 10 s to be answered and written, then closes.
  const exit = await broker.stop('SIGTERM');
  assert.equal(exit.code, 0, broker.stderr());
});
