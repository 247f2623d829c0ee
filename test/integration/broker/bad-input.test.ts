// Malformed input closes only the connection that sent it. For each case a raw socket sends the
// bad bytes and the test asserts that the broker closed that socket, while other clients - a
// kafkajs admin, a raw connection opened before the case, and a fresh raw connection - get
// answers before and after. Cases: garbage (an HTTP request, junk after a valid size, frames
// shorter than a header, a negative size), a frame of length 2^31-1, truncated frames (the client
// closes / the client hangs until connections.max.idle.ms), an unknown API key, an unsupported
// version, and bodies that do not match their version (bytes after a valid body are ignored, as
// Kafka ignores them: trailing-bytes.test.ts).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kafka, type Admin as KafkajsAdmin, logLevel } from 'kafkajs';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import type { MetadataResponse } from '../../../src/protocol/messages/003-metadata.ts';
import type { ApiVersionsResponse } from '../../../src/protocol/messages/018-api-versions.ts';
import { readApiVersionsResponse } from '../../../src/protocol/messages/018-api-versions.ts';
import { apiSpec } from '../../../src/protocol/messages/index.ts';
import { writeRequestHeader } from '../../../src/protocol/messages/request-header.ts';
import { Reader } from '../../../src/protocol/reader.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/index.ts';
import { Writer } from '../../../src/protocol/writer.ts';
import { ApiKeys, apiVersionsRoundTrip, encodeRequest, RawConnection, randomTopic } from './helpers.ts';

let broker: RunningBroker;
let kafka: Kafka;
let admin: KafkajsAdmin;
/** A connection opened before any bad input, used after each case: it must be unaffected. */
let bystander: RawConnection;
const topic = randomTopic('bad-input');

before(async () => {
  // Every case logs one 'closing connection' warning by design; keep the test output quiet.
  broker = await startBroker({ logLevel: 'error' });
  kafka = new Kafka({ clientId: 'samsa-it', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  bystander = await RawConnection.connect(broker.bootstrap);
});

after(async () => {
  bystander.close();
  await admin.disconnect();
  await broker.close();
});

/** Other clients are served: kafkajs metadata, the long-lived raw connection, a fresh connection. */
async function assertOthersServed(when: string): Promise<void> {
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.equal(md.topics[0]?.name, topic, `kafkajs metadata ${when}`);
  const res = await bystander.request<MetadataResponse>(ApiKeys.Metadata, 1, { topics: [{ name: topic }] }, 5000);
  assert.equal(res.topics[0]?.errorCode, 0, `bystander metadata ${when}`);
  await apiVersionsRoundTrip(broker.bootstrap);
}

/**
 * Runs one bad-input case: other clients work, `send` writes the bad bytes on a fresh socket, the
 * broker closes that socket within `closeWithinMs`, other clients still work.
 */
async function badInputCase(
  name: string,
  send: (conn: RawConnection) => void | Promise<void>,
  closeWithinMs = 2000,
): Promise<void> {
  await assertOthersServed(`before ${name}`);
  const conn = await RawConnection.connect(broker.bootstrap);
  try {
    await send(conn);
    assert.ok(await conn.closedByPeer(closeWithinMs), `${name}: the broker did not close the connection`);
  } finally {
    conn.close();
  }
  await assertOthersServed(`after ${name}`);
}

/** A frame: int32 size then `payload`. */
function frame(payload: Buffer): Buffer {
  const size = Buffer.alloc(4);
  size.writeInt32BE(payload.length);
  return Buffer.concat([size, payload]);
}

/** A request header (v1 unless given) followed by `body`, framed. */
function requestFrame(apiKey: number, version: number, body: Buffer, headerVersion = 1): Buffer {
  const w = new Writer(64);
  writeRequestHeader(w, headerVersion, {
    requestApiKey: apiKey,
    requestApiVersion: version,
    correlationId: 77,
    clientId: 'bad-input',
  });
  return frame(Buffer.concat([w.toBuffer(), body]));
}

/** The body of a request encoded at `version` (no size, no header). */
function encodeBody(apiKey: number, version: number, body: unknown): Buffer {
  const w = new Writer(256);
  apiSpec(apiKey)!.writeRequest(w, version, body as never);
  return w.toBuffer();
}

// ------------------------------------------------------------------------------------------------

test('garbage bytes close only that connection', async (t) => {
  await t.test('an HTTP request on the Kafka port ("GET " read as a 1.2 GB size)', () =>
    badInputCase('HTTP request', (c) => c.write(Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'))),
  );
  await t.test('a valid size followed by 0xff bytes (API key -1)', () =>
    badInputCase('0xff junk', (c) => c.write(frame(Buffer.alloc(40, 0xff)))),
  );
  await t.test('random bytes behind a valid size with an impossible API key', () =>
    badInputCase('random frame', (c) => {
      const junk = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff));
      junk.writeInt16BE(0x7abc, 0);
      c.write(frame(junk));
    }),
  );
  await t.test('a frame shorter than any request header (3 bytes)', () =>
    badInputCase('3-byte frame', (c) => c.write(frame(Buffer.from([0, 18, 0])))),
  );
  await t.test('an empty frame (size 0)', () => badInputCase('empty frame', (c) => c.write(frame(Buffer.alloc(0)))));
  await t.test('a negative size', () =>
    badInputCase('negative size', (c) => c.write(Buffer.from([0xff, 0xff, 0xff, 0xfe, 1, 2, 3]))),
  );
});

test('a frame of length 2^31-1 is refused before anything is buffered', async () => {
  await badInputCase('2^31-1 frame', async (c) => {
    const head = Buffer.alloc(4);
    head.writeInt32BE(0x7fffffff);
    c.write(head);
    // Keep sending: the broker must close at once rather than buffer towards 2 GiB.
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 8 && !c.socket.destroyed; i++) {
      if (!c.socket.write(chunk)) break;
      await new Promise((r) => setImmediate(r));
    }
  });
});

test('truncated frames', async (t) => {
  await t.test('size 100, 10 bytes sent, then the client closes: only that connection goes', async () => {
    await assertOthersServed('before truncated close');
    const conn = await RawConnection.connect(broker.bootstrap);
    const partial = requestFrame(ApiKeys.ApiVersions, 0, Buffer.alloc(0));
    const head = Buffer.alloc(4);
    head.writeInt32BE(100);
    conn.write(Buffer.concat([head, partial.subarray(4, 10)]));
    await new Promise((r) => setTimeout(r, 50));
    // Half-close: the broker must answer our FIN with its own, not hang on to the socket.
    conn.socket.end();
    assert.ok(await conn.closedByPeer(2000), 'the broker kept a half-closed connection with a truncated frame');
    conn.close();
    await assertOthersServed('after truncated close');
  });

  await t.test('a frame that arrives in pieces is reassembled and answered', async () => {
    const conn = await RawConnection.connect(broker.bootstrap);
    try {
      const whole = encodeRequest(ApiKeys.ApiVersions, 0, 5, {});
      const { promise, resolve } = Promise.withResolvers<Buffer>();
      conn.socket.on('data', (d: Buffer) => resolve(d));
      for (let i = 0; i < whole.length; i += 3) {
        conn.write(whole.subarray(i, i + 3));
        await new Promise((r) => setTimeout(r, 5));
      }
      const response = await promise;
      assert.ok(response.length > 8);
      assert.equal(response.readInt32BE(4), 5, 'correlation id');
    } finally {
      conn.close();
    }
  });

  await t.test('size 100, 10 bytes sent, then silence: held open, closed at connections.max.idle.ms', async (t2) => {
    // A broker of its own, so the short idle timeout does not touch the other tests' clients.
    const idleBroker = await startBroker({ overrides: { 'connections.max.idle.ms': '600' }, logLevel: 'error' });
    t2.after(() => idleBroker.close());
    const conn = await RawConnection.connect(idleBroker.bootstrap);
    t2.after(() => conn.close());
    const head = Buffer.alloc(4);
    head.writeInt32BE(100);
    conn.write(Buffer.concat([head, Buffer.alloc(6)]));
    const started = performance.now();
    // Kafka waits for the rest of a frame; the connection is still open a little later...
    assert.equal(await conn.closedByPeer(200), false, 'closed before the idle timeout');
    // ...and is closed once idle for connections.max.idle.ms.
    assert.ok(await conn.closedByPeer(3000), 'a stalled partial frame was never timed out');
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 550, `closed after ${elapsed.toFixed(0)} ms, before connections.max.idle.ms`);
    await apiVersionsRoundTrip(idleBroker.bootstrap);
    await assertOthersServed('after stalled frame');
  });
});

test('an unknown API key closes the connection; an unsupported version too, except ApiVersions (KIP-511)', async (t) => {
  await t.test('API key 999', () =>
    badInputCase('unknown API key', (c) => c.write(requestFrame(999, 0, Buffer.alloc(8)))),
  );
  await t.test('API key 32767 with a flexible header', () =>
    badInputCase('unknown API key 32767', (c) => c.write(requestFrame(32767, 3, Buffer.alloc(0), 2))),
  );
  await t.test('a known API that Samsa does not serve (LeaderAndIsr, key 4, controller-only)', () =>
    badInputCase('LeaderAndIsr', (c) => c.write(requestFrame(4, 0, Buffer.alloc(16)))),
  );
  await t.test('Metadata v99', () =>
    badInputCase('Metadata v99', (c) => c.write(requestFrame(ApiKeys.Metadata, 99, Buffer.from([0, 0, 0, 0])))),
  );
  await t.test('ApiVersions v99 is answered in v0 format with UNSUPPORTED_VERSION, connection kept', async () => {
    const conn = await RawConnection.connect(broker.bootstrap);
    try {
      const { promise, resolve } = Promise.withResolvers<Buffer>();
      let got = Buffer.alloc(0);
      conn.socket.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length >= 4 && got.length >= 4 + got.readInt32BE(0)) resolve(got);
      });
      conn.write(requestFrame(ApiKeys.ApiVersions, 99, Buffer.from([0, 0, 0]), 2));
      const response = await promise;
      const r = new Reader(response.subarray(4));
      assert.equal(r.int32(), 77, 'correlation id (response header v0)');
      const body: ApiVersionsResponse = readApiVersionsResponse(r, 0);
      assert.equal(body.errorCode, ErrorCode.UNSUPPORTED_VERSION);
      const range = body.apiKeys.find((k) => k.apiKey === ApiKeys.ApiVersions);
      assert.ok(range !== undefined && range.minVersion === 0 && range.maxVersion >= 3);
      // The connection stays usable: the client retries at a version both sides know.
      const retry = await conn.request<ApiVersionsResponse>(ApiKeys.ApiVersions, 3, {
        clientSoftwareName: 'x',
        clientSoftwareVersion: '1',
      });
      assert.equal(retry.errorCode, 0);
      assert.equal(conn.peerClosed, false);
    } finally {
      conn.close();
    }
  });
});

test('a request whose body does not match its version closes only that connection', async (t) => {
  // (A Metadata v1 body labelled v9 is no longer a case: Kafka reads its first byte as a null
  // topic array, then three flags and an empty tagged-field section, and ignores the rest.)
  await t.test('a Produce v3 body labelled v9 (flexible: null transactional id read as a varint length)', () =>
    badInputCase('Produce v3 body as v9', (c) =>
      c.write(
        requestFrame(
          ApiKeys.Produce,
          9,
          encodeBody(ApiKeys.Produce, 3, {
            transactionalId: null,
            acks: 1,
            timeoutMs: 1000,
            topicData: [{ name: topic, partitionData: [{ index: 0, records: null }] }],
          }),
          2,
        ),
      ),
    ),
  );
  await t.test('a Metadata v12 body labelled v1', () =>
    badInputCase('Metadata v12 body as v1', (c) =>
      c.write(
        requestFrame(
          ApiKeys.Metadata,
          1,
          encodeBody(ApiKeys.Metadata, 12, {
            topics: [{ name: topic, topicId: 'AAAAAAAAAAAAAAAAAAAAAA' }],
            allowAutoTopicCreation: false,
            includeTopicAuthorizedOperations: false,
          }),
        ),
      ),
    ),
  );
  // A valid body followed by more bytes is not malformed: Kafka ignores them (trailing-bytes.test.ts).
  await t.test('a CreateTopics v4 body labelled v5', () =>
    badInputCase('CreateTopics v4 body as v5', (c) =>
      c.write(
        requestFrame(
          ApiKeys.CreateTopics,
          5,
          encodeBody(ApiKeys.CreateTopics, 4, {
            topics: [{ name: randomTopic('never'), numPartitions: 1, replicationFactor: 1 }],
            timeoutMs: 1000,
          }),
          2,
        ),
      ),
    ),
  );
  await t.test('a Produce v3 whose records field claims more bytes than the frame holds', () =>
    badInputCase('Produce records overrun', (c) => {
      const records = buildRecordBatchSync({ records: [{ key: null, value: Buffer.from('x') }] });
      const body = encodeBody(ApiKeys.Produce, 3, {
        transactionalId: null,
        acks: 1,
        timeoutMs: 1000,
        topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
      });
      // The int32 length of the records bytes sits right before them at the end of the body.
      body.writeInt32BE(records.length + 1000, body.length - records.length - 4);
      c.write(requestFrame(ApiKeys.Produce, 3, body));
    }),
  );
  // Nothing from the bad requests was applied.
  const offsets = await admin.fetchTopicOffsets(topic);
  assert.equal(offsets[0]?.high, '0');
});

// Regression: the socket used to be destroyed as soon as the bad frame was parsed, dropping the
// response to an earlier request whose handler is async (Metadata). Kafka reads one request at
// a time per connection, so it answers the first and then closes.
test('a valid request pipelined ahead of a malformed one is still answered before the close', async () => {
  const conn = await RawConnection.connect(broker.bootstrap);
  try {
    const answered = conn.request<MetadataResponse>(ApiKeys.Metadata, 1, { topics: [{ name: topic }] }, 3000);
    conn.write(requestFrame(999, 0, Buffer.alloc(4)));
    const res = await answered;
    assert.equal(res.topics[0]?.name, topic);
    assert.ok(await conn.closedByPeer(2000));
  } finally {
    conn.close();
  }
});

test('a storm of bad connections does not disturb a producing client', async (t) => {
  const producer = kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  const bad = async (i: number): Promise<void> => {
    const conn = await RawConnection.connect(broker.bootstrap);
    try {
      conn.write(i % 2 === 0 ? Buffer.from('garbage garbage garbage') : requestFrame(999, 0, Buffer.alloc(4)));
      assert.ok(await conn.closedByPeer(3000), `bad connection ${i} left open`);
    } finally {
      conn.close();
    }
  };
  const produce = async (): Promise<void> => {
    for (let i = 0; i < 30; i++) {
      const [ack] = await producer.send({ topic, acks: -1, messages: [{ value: `m${i}` }] });
      assert.equal(ack?.errorCode, 0);
    }
  };
  await Promise.all([produce(), ...Array.from({ length: 30 }, (_, i) => bad(i))]);
  const offsets = await admin.fetchTopicOffsets(topic);
  assert.equal(offsets[0]?.high, '30');
});
