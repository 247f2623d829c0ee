import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import {
  BrokerConnection,
  KafkaClient,
  KafkaClientError,
  KafkaClientErrorCodes,
  negotiateVersion,
  parseHostPort,
} from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { apiSpec, requestHeaderVersion, responseHeaderVersion } from '../../../src/protocol/messages/index.ts';
import { readRequestHeader } from '../../../src/protocol/messages/request-header.ts';
import { writeResponseHeader } from '../../../src/protocol/messages/response-header.ts';
import { Reader } from '../../../src/protocol/reader.ts';
import { Writer } from '../../../src/protocol/writer.ts';

interface FakeRequest {
  apiKey: number;
  version: number;
  correlationId: number;
  body: unknown;
  socket: Socket;
}

/** Encodes a response frame as a broker would; `asVersion` overrides the body version (KIP-511). */
function encodeResponse(
  req: FakeRequest,
  body: unknown,
  asVersion = req.version,
  correlationId = req.correlationId,
): Buffer {
  const w = new Writer();
  const at = w.reserveInt32();
  writeResponseHeader(w, responseHeaderVersion(req.apiKey, req.version), { correlationId });
  apiSpec(req.apiKey)!.writeResponse(w, asVersion, body as never);
  w.patchInt32(at, w.length - 4);
  return w.toBuffer();
}

const DEFAULT_VERSIONS: { apiKey: number; minVersion: number; maxVersion: number }[] = [
  { apiKey: ApiKey.Produce, minVersion: 3, maxVersion: 7 },
  { apiKey: ApiKey.Metadata, minVersion: 0, maxVersion: 5 },
  { apiKey: ApiKey.ApiVersions, minVersion: 0, maxVersion: 4 },
];

/**
 * A scripted broker: answers ApiVersions with `versions` (unless `answerApiVersions` is false) and
 * hands every other request to `onRequest`, which replies by writing to `req.socket`.
 */
async function fakeBroker(
  t: TestContext,
  onRequest: (req: FakeRequest) => void,
  versions = DEFAULT_VERSIONS,
  answerApiVersions = true,
): Promise<{ port: number; server: Server; requests: FakeRequest[] }> {
  const requests: FakeRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
        const frame = buf.subarray(4, 4 + buf.readInt32BE(0));
        buf = buf.subarray(4 + frame.length);
        const apiKey = frame.readInt16BE(0);
        const version = frame.readInt16BE(2);
        const r = new Reader(frame);
        const header = readRequestHeader(r, requestHeaderVersion(apiKey, version));
        const req: FakeRequest = {
          apiKey,
          version,
          correlationId: header.correlationId,
          body: apiSpec(apiKey)!.readRequest(r, version),
          socket,
        };
        requests.push(req);
        if (apiKey === ApiKey.ApiVersions && answerApiVersions) {
          socket.write(encodeResponse(req, { errorCode: 0, apiKeys: versions }));
          continue;
        }
        onRequest(req);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { port: address.port, server, requests };
}

test('negotiates the highest version both sides support, capped by the codecs', async (t) => {
  const { port } = await fakeBroker(t, () => {}, [
    { apiKey: ApiKey.Produce, minVersion: 3, maxVersion: 99 },
    { apiKey: ApiKey.Metadata, minVersion: 0, maxVersion: 5 },
    { apiKey: ApiKey.ApiVersions, minVersion: 0, maxVersion: 4 },
  ]);
  const conn = await BrokerConnection.connect('127.0.0.1', port);
  t.after(() => conn.close());
  assert.equal(conn.versionFor(ApiKey.Produce), apiSpec(ApiKey.Produce)!.maxVersion);
  assert.equal(conn.versionFor(ApiKey.Metadata), 5);
  assert.equal(conn.versionFor(ApiKey.Fetch), -1);
  assert.equal(conn.supports(ApiKey.Fetch), false);
  await assert.rejects(conn.request(ApiKey.Fetch, {}), (err: unknown) => {
    assert.ok(err instanceof KafkaClientError);
    assert.equal(err.code, KafkaClientErrorCodes.unsupportedVersion);
    assert.match(err.message, /does not support Fetch/);
    return true;
  });
});

test('negotiateVersion: no overlap gives -1', () => {
  assert.equal(negotiateVersion(ApiKey.Produce, { minVersion: 50, maxVersion: 60 }), -1);
  assert.equal(negotiateVersion(ApiKey.Produce, { minVersion: 0, maxVersion: 2 }), 2);
  assert.equal(negotiateVersion(9999, { minVersion: 0, maxVersion: 2 }), -1);
  assert.equal(negotiateVersion(ApiKey.Produce, undefined), -1);
});

test('maxVersions caps the negotiated version', async (t) => {
  const { port } = await fakeBroker(t, () => {});
  const conn = await BrokerConnection.connect('127.0.0.1', port, { maxVersions: { [ApiKey.Metadata]: 1 } });
  t.after(() => conn.close());
  assert.equal(conn.versionFor(ApiKey.Metadata), 1);
});

test('KIP-511: an UNSUPPORTED_VERSION answer in v0 format makes the client retry ApiVersions lower', async (t) => {
  const seen: number[] = [];
  // This broker knows ApiVersions 0-2 only.
  const { port } = await fakeBroker(
    t,
    (req) => {
      if (req.apiKey !== ApiKey.ApiVersions) return;
      seen.push(req.version);
      const unsupported = {
        errorCode: ErrorCode.UNSUPPORTED_VERSION,
        apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 2 }],
      };
      req.socket.write(
        req.version > 2
          ? encodeResponse(req, unsupported, 0)
          : encodeResponse(req, { errorCode: 0, apiKeys: DEFAULT_VERSIONS }),
      );
    },
    DEFAULT_VERSIONS,
    false,
  );
  const conn = await BrokerConnection.connect('127.0.0.1', port);
  t.after(() => conn.close());
  assert.deepEqual(seen, [4, 2]);
  assert.equal(conn.versionFor(ApiKey.Produce), 7);
});

test('pipelined requests are matched to their responses by correlation id, whatever the order', async (t) => {
  const held: FakeRequest[] = [];
  const { port } = await fakeBroker(t, (req) => {
    held.push(req);
    if (held.length === 3) {
      // Everything arrived before any answer: the client pipelines. Answer in reverse order.
      for (const r of [...held].reverse()) {
        r.socket.write(encodeResponse(r, { clusterId: `answer-${r.correlationId}`, brokers: [], topics: [] }));
      }
    }
  });
  const conn = await BrokerConnection.connect('127.0.0.1', port);
  t.after(() => conn.close());
  // The broker answers only once all three are in: a client waiting for each answer would hang.
  const promises = [1, 2, 3].map(() => conn.request(ApiKey.Metadata, { topics: [] }));
  const responses = await Promise.all(promises);
  const ids = held.map((r) => r.correlationId);
  assert.equal(new Set(ids).size, 3);
  assert.deepEqual(
    responses.map((r) => r.clusterId),
    ids.map((id) => `answer-${id}`),
  );
  assert.equal(conn.inFlight, 0);
});

test('responses split anywhere, or several in one read, are reassembled', async (t) => {
  const held: FakeRequest[] = [];
  // About 600 KB: larger than the client's read buffer.
  const bigTopics = Array.from({ length: 20 }, (_, i) => ({ name: `${i}`.padEnd(30_000, 'x') }));
  const { port } = await fakeBroker(t, (req) => {
    held.push(req);
    if (held.length < 3) return;
    const bytes = Buffer.concat(
      held.map((r, i) => encodeResponse(r, { clusterId: `c${i}`, brokers: [], topics: i === 1 ? bigTopics : [] })),
    );
    // Cut inside the first size field, then in odd places, with pauses so reads see the pieces.
    const cuts = [2, 3, 7, 100, 70_000, bytes.length - 5, bytes.length];
    let from = 0;
    const sendNext = (i: number) => {
      if (i >= cuts.length) return;
      req.socket.write(bytes.subarray(from, cuts[i]));
      from = cuts[i]!;
      setTimeout(() => sendNext(i + 1), 5);
    };
    sendNext(0);
  });
  const conn = await BrokerConnection.connect('127.0.0.1', port);
  t.after(() => conn.close());
  const responses = await Promise.all([1, 2, 3].map(() => conn.request(ApiKey.Metadata, { topics: [] })));
  assert.deepEqual(
    responses.map((r) => r.clusterId),
    ['c0', 'c1', 'c2'],
  );
  assert.deepEqual(
    responses[1]!.topics.map((x) => x.name),
    bigTopics.map((x) => x.name),
  );
});

test('requests reach the wire in call order even while a codec loads', async (t) => {
  const { port, requests } = await fakeBroker(
    t,
    (req) => {
      if (req.apiKey === ApiKey.Metadata) req.socket.write(encodeResponse(req, { brokers: [], topics: [] }));
      else req.socket.write(encodeResponse(req, { errorCode: 0 }));
    },
    [...DEFAULT_VERSIONS, { apiKey: ApiKey.DescribeCluster, minVersion: 0, maxVersion: 1 }],
  );
  const conn = await BrokerConnection.connect('127.0.0.1', port);
  t.after(() => conn.close());
  // DescribeCluster's codec is loaded by this first call; Metadata's may already be loaded.
  await Promise.all([
    conn.request(ApiKey.DescribeCluster, {}),
    conn.request(ApiKey.Metadata, { topics: [] }),
    conn.request(ApiKey.DescribeCluster, {}),
  ]);
  assert.deepEqual(
    requests.filter((r) => r.apiKey !== ApiKey.ApiVersions).map((r) => r.apiKey),
    [ApiKey.DescribeCluster, ApiKey.Metadata, ApiKey.DescribeCluster],
  );
  const ids = requests.filter((r) => r.apiKey !== ApiKey.ApiVersions).map((r) => r.correlationId);
  assert.deepEqual(
    ids,
    [...ids].sort((a, b) => a - b),
  );
});

test('explicit versions are used as given', async (t) => {
  const { port, requests } = await fakeBroker(t, (req) => {
    req.socket.write(encodeResponse(req, { brokers: [], topics: [] }));
  });
  const conn = await BrokerConnection.connect('127.0.0.1', port);
  t.after(() => conn.close());
  await conn.request(ApiKey.Metadata, 1, { topics: null });
  await conn.request(ApiKey.Metadata, { topics: null });
  assert.deepEqual(
    requests.filter((r) => r.apiKey === ApiKey.Metadata).map((r) => r.version),
    [1, 5],
  );
});

test('a request without an answer times out; its late answer is dropped and the connection keeps working', async (t) => {
  let first: FakeRequest | undefined;
  const { port } = await fakeBroker(t, (req) => {
    if (first === undefined) {
      first = req;
      return;
    }
    req.socket.write(encodeResponse(first, { clusterId: 'late', brokers: [], topics: [] }));
    req.socket.write(encodeResponse(req, { clusterId: 'second', brokers: [], topics: [] }));
  });
  const conn = await BrokerConnection.connect('127.0.0.1', port);
  t.after(() => conn.close());
  await assert.rejects(conn.request(ApiKey.Metadata, { topics: [] }, { timeoutMs: 50 }), (err: unknown) => {
    assert.ok(err instanceof KafkaClientError);
    assert.equal(err.code, KafkaClientErrorCodes.timeout);
    return true;
  });
  const second = await conn.request(ApiKey.Metadata, { topics: [] });
  assert.equal(second.clusterId, 'second');
  assert.equal(conn.isClosed, false);
});

test('a closed connection rejects every pending request', async (t) => {
  let count = 0;
  const { port } = await fakeBroker(t, (req) => {
    if (++count === 2) req.socket.destroy();
  });
  const conn = await BrokerConnection.connect('127.0.0.1', port);
  const a = conn.request(ApiKey.Metadata, { topics: [] });
  const b = conn.request(ApiKey.Metadata, { topics: [] });
  for (const p of [a, b]) {
    await assert.rejects(
      p,
      (err: unknown) => err instanceof KafkaClientError && err.code === KafkaClientErrorCodes.closed,
    );
  }
  assert.equal(conn.isClosed, true);
  await assert.rejects(conn.request(ApiKey.Metadata, { topics: [] }), { code: KafkaClientErrorCodes.closed });
});

test('a response nobody asked for fails the connection', async (t) => {
  const { port } = await fakeBroker(t, (req) => {
    req.socket.write(encodeResponse(req, { brokers: [], topics: [] }, req.version, 424242));
  });
  const conn = await BrokerConnection.connect('127.0.0.1', port);
  await assert.rejects(conn.request(ApiKey.Metadata, { topics: [] }), { code: KafkaClientErrorCodes.protocol });
});

test('an undecodable response rejects that request', async (t) => {
  const { port } = await fakeBroker(t, (req) => {
    const w = new Writer();
    w.int32(6);
    w.int32(req.correlationId);
    w.int16(7);
    req.socket.write(w.toBuffer());
  });
  const conn = await BrokerConnection.connect('127.0.0.1', port);
  t.after(() => conn.close());
  await assert.rejects(conn.request(ApiKey.Metadata, { topics: [] }), { code: KafkaClientErrorCodes.protocol });
});

test('Produce with acks=0 resolves once written: the broker sends nothing back', async (t) => {
  const { port, requests } = await fakeBroker(t, () => {});
  const conn = await BrokerConnection.connect('127.0.0.1', port);
  t.after(() => conn.close());
  const response = await conn.request(ApiKey.Produce, { acks: 0, timeoutMs: 1000, topicData: [] });
  assert.deepEqual(response.responses, []);
  assert.equal(conn.inFlight, 0);
  while (!requests.some((r) => r.apiKey === ApiKey.Produce)) await new Promise((r) => setTimeout(r, 5));
});

test('connect errors are KafkaClientError(ERR_KAFKA_CONNECT)', async (t) => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  const client = new KafkaClient({ bootstrap: `127.0.0.1:${port}` });
  t.after(() => client.close());
  await assert.rejects(client.metadata(null), { code: KafkaClientErrorCodes.connect });
});

test('KafkaClient keeps a connection per broker id and finds partition leaders', async (t) => {
  const second = await fakeBroker(t, (req) => {
    req.socket.write(
      encodeResponse(req, { responses: [{ name: 't', partitionResponses: [{ index: 1, baseOffset: 7n }] }] }),
    );
  });
  const first = await fakeBroker(t, (req) => {
    req.socket.write(
      encodeResponse(req, {
        clusterId: 'c',
        controllerId: 1,
        brokers: [
          { nodeId: 1, host: '127.0.0.1', port: 0 },
          { nodeId: 2, host: '127.0.0.1', port: second.port },
        ],
        topics: [
          {
            name: 't',
            partitions: [
              { partitionIndex: 1, leaderId: 2, replicaNodes: [2], isrNodes: [2] },
              { partitionIndex: 0, leaderId: 1, replicaNodes: [1], isrNodes: [1] },
            ],
          },
          { name: 'missing', errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION },
        ],
      }),
    );
  });
  const client = new KafkaClient({ bootstrap: `127.0.0.1:${first.port}` });
  t.after(() => client.close());
  const md = await client.metadata(['t', 'missing']);
  assert.equal(md.clusterId, 'c');
  assert.deepEqual(
    md.topics.get('t')!.partitions.map((p) => p.partition),
    [0, 1],
  );
  assert.equal(md.topics.get('missing')!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal(client.leaderOf('t', 1), 2);
  assert.equal(client.leaderOf('t', 0), 1);
  assert.equal(client.leaderOf('t', 5), -1);
  const response = await client.requestTo(2, ApiKey.Produce, {
    acks: 1,
    timeoutMs: 1000,
    topicData: [{ name: 't', partitionData: [{ index: 1, records: null }] }],
  });
  assert.equal(response.responses[0]!.partitionResponses[0]!.baseOffset, 7n);
  assert.ok(second.requests.some((r) => r.apiKey === ApiKey.Produce));
  assert.ok(!first.requests.some((r) => r.apiKey === ApiKey.Produce));
  await assert.rejects(client.requestTo(9, ApiKey.Metadata, {}), { code: KafkaClientErrorCodes.metadata });
});

test('parseHostPort', () => {
  assert.deepEqual(parseHostPort('localhost:9093'), { host: 'localhost', port: 9093 });
  assert.deepEqual(parseHostPort('[::1]:9092'), { host: '::1', port: 9092 });
  assert.deepEqual(parseHostPort('broker'), { host: 'broker', port: 9092 });
  assert.throws(() => parseHostPort('a:b:c'));
  assert.throws(() => parseHostPort('host:70000'));
});

test('an aborted connect rejects with ERR_KAFKA_CONNECT and closes its socket', async (t) => {
  // ApiVersions is never answered: the connection waits in its negotiation until aborted.
  const { port, requests } = await fakeBroker(t, () => {}, DEFAULT_VERSIONS, false);
  const controller = new AbortController();
  const attempt = BrokerConnection.connect('127.0.0.1', port, { signal: controller.signal });
  while (requests.length === 0) await new Promise((r) => setTimeout(r, 5));
  controller.abort();
  await assert.rejects(attempt, (err: unknown) => {
    assert.ok(err instanceof KafkaClientError);
    assert.equal(err.code, KafkaClientErrorCodes.connect);
    assert.match(err.message, /aborted/);
    return true;
  });
  await once(requests[0]!.socket, 'close');
  await assert.rejects(BrokerConnection.connect('127.0.0.1', port, { signal: controller.signal }), /aborted/);
});
