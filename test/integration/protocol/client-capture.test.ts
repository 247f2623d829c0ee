// Bytes captured from real clients: a plain TCP listener (no broker) lets kafkajs and kcat
// (librdkafka) connect, records every frame they send, and answers ApiVersions and Metadata with
// our own generated codecs. The test then asserts that the captured requests decode to what each
// client is known to send, and that re-encoding the decoded values gives back the exact bytes the
// client wrote. That the clients accept our responses (kafkajs returns the topic metadata, kcat
// prints it) checks the response encoders against real decoders too.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { type MetadataRequest, writeMetadataResponse } from '../../../src/protocol/messages/003-metadata.ts';
import { type ApiVersionsRequest, writeApiVersionsResponse } from '../../../src/protocol/messages/018-api-versions.ts';
import { apiSpec, requestHeaderVersion, responseHeaderVersion } from '../../../src/protocol/messages/index.ts';
import {
  type RequestHeader,
  readRequestHeader,
  writeRequestHeader,
} from '../../../src/protocol/messages/request-header.ts';
import { writeResponseHeader } from '../../../src/protocol/messages/response-header.ts';
import { Reader } from '../../../src/protocol/reader.ts';
import { Writer } from '../../../src/protocol/writer.ts';

const execFileAsync = promisify(execFile);

const API_VERSIONS = 18;
const METADATA = 3;

/** One request as the client sent it: the frame (without the size prefix) and its decoding. */
interface CapturedRequest {
  connection: number;
  frame: Buffer;
  header: RequestHeader;
  headerVersion: number;
  body: unknown;
}

/** What the listener advertises: ranges a Kafka 3.x broker would, capped where our test needs. */
const ADVERTISED = [
  { apiKey: 0, minVersion: 0, maxVersion: 9 },
  { apiKey: 1, minVersion: 0, maxVersion: 12 },
  { apiKey: 2, minVersion: 0, maxVersion: 7 },
  { apiKey: METADATA, minVersion: 0, maxVersion: 12 },
  { apiKey: API_VERSIONS, minVersion: 0, maxVersion: 3 },
];

const TOPIC = 'orders';
const CLUSTER_ID = 'samsa-capture-test';

/**
 * A listener that decodes requests with our codecs and answers ApiVersions and Metadata. Any
 * other request is captured but not answered (the test never needs one).
 */
async function startCaptureListener(t: TestContext): Promise<{ port: number; captured: CapturedRequest[] }> {
  const captured: CapturedRequest[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let port = 0;

  const respond = (socket: net.Socket, req: CapturedRequest): void => {
    const { requestApiKey: apiKey, requestApiVersion: version, correlationId } = req.header;
    const w = new Writer(256);
    writeResponseHeader(w, responseHeaderVersion(apiKey, version), { correlationId });
    if (apiKey === API_VERSIONS) {
      writeApiVersionsResponse(w, version, { errorCode: 0, apiKeys: ADVERTISED, throttleTimeMs: 0 });
    } else if (apiKey === METADATA) {
      const requested = (req.body as MetadataRequest).topics;
      const names = requested === null || requested.length === 0 ? [TOPIC] : requested.map((x) => x.name ?? TOPIC);
      writeMetadataResponse(w, version, {
        brokers: [{ nodeId: 0, host: '127.0.0.1', port, rack: null }],
        clusterId: CLUSTER_ID,
        controllerId: 0,
        topics: names.map((name) => ({
          errorCode: 0,
          name,
          isInternal: false,
          partitions: [
            {
              errorCode: 0,
              partitionIndex: 0,
              leaderId: 0,
              leaderEpoch: 0,
              replicaNodes: [0],
              isrNodes: [0],
              offlineReplicas: [],
            },
          ],
        })),
      });
    } else {
      return;
    }
    const payload = w.toBuffer();
    const size = Buffer.alloc(4);
    size.writeInt32BE(payload.length);
    socket.write(Buffer.concat([size, payload]));
  };

  const onFrame = (socket: net.Socket, connection: number, frame: Buffer): void => {
    const apiKey = frame.readInt16BE(0);
    const version = frame.readInt16BE(2);
    const spec = apiSpec(apiKey);
    assert.ok(spec, `client sent unknown API key ${apiKey}`);
    const headerVersion = requestHeaderVersion(apiKey, version);
    const r = new Reader(frame);
    const header = readRequestHeader(r, headerVersion);
    const body = spec.readRequest(r, version);
    assert.equal(r.remaining, 0, `${spec.name} v${version}: ${r.remaining} bytes left after decoding`);
    const req = { connection, frame, header, headerVersion, body };
    captured.push(req);
    respond(socket, req);
  };

  const server = net.createServer((socket) => {
    const connection = connections++;
    sockets.add(socket);
    let pending = Buffer.alloc(0);
    socket.on('error', () => {}); // clients hang up abruptly when they disconnect
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const size = pending.readInt32BE(0);
        if (pending.length < 4 + size) break;
        const frame = pending.subarray(4, 4 + size);
        pending = pending.subarray(4 + size);
        try {
          onFrame(socket, connection, frame);
        } catch (err) {
          // Recorded so the test fails with the decoding error rather than a client timeout.
          captured.push({ connection, frame, header: undefined as never, headerVersion: -1, body: err });
          socket.destroy();
          return;
        }
      }
    });
  });
  server.on('error', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port, captured };
}

/** Asserts that every captured frame decoded, and that re-encoding it gives the client's exact bytes. */
function assertReencodes(captured: readonly CapturedRequest[]): void {
  for (const req of captured) {
    assert.ok(!(req.body instanceof Error), `decoding failed: ${String(req.body)}`);
    const { requestApiKey: apiKey, requestApiVersion: version } = req.header;
    const w = new Writer(64);
    writeRequestHeader(w, req.headerVersion, req.header);
    apiSpec(apiKey)!.writeRequest(w, version, req.body as never);
    assert.deepStrictEqual(w.toBuffer(), req.frame, `API ${apiKey} v${version}: re-encoding differs from the client`);
  }
}

test('kafkajs 2.2.4: ApiVersions v2 then Metadata, decoded with our codecs', async (t) => {
  const { port, captured } = await startCaptureListener(t);
  const kafka = new Kafka({
    clientId: 'samsa-capture',
    brokers: [`127.0.0.1:${port}`],
    retry: { retries: 0 },
    connectionTimeout: 3000,
    requestTimeout: 5000,
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  const metadata = await admin.fetchTopicMetadata({ topics: [TOPIC] });
  await admin.disconnect();

  // kafkajs accepted our ApiVersions and Metadata responses.
  assert.deepStrictEqual(
    metadata.topics.map((x) => x.name),
    [TOPIC],
  );
  assert.equal(metadata.topics[0]!.partitions[0]!.leader, 0);

  assertReencodes(captured);
  const first = captured[0]!;
  // kafkajs tries its newest ApiVersions (v2) first; v2 is not flexible, so header v1, empty body.
  assert.deepStrictEqual(first.header, {
    requestApiKey: API_VERSIONS,
    requestApiVersion: 2,
    correlationId: 0,
    clientId: 'samsa-capture',
  });
  assert.equal(first.headerVersion, 1);
  assert.deepStrictEqual(first.body as ApiVersionsRequest, { clientSoftwareName: '', clientSoftwareVersion: '' });
  assert.equal(first.frame.length, 2 + 2 + 4 + 2 + 'samsa-capture'.length, 'header v1 only, no body bytes');

  const metadataRequests = captured.filter((x) => x.header.requestApiKey === METADATA);
  assert.ok(metadataRequests.length >= 1, 'kafkajs sent Metadata');
  for (const req of metadataRequests) {
    // kafkajs 2.2.4 speaks Metadata up to v6; our listener advertised 0-12, so it picks v6.
    assert.equal(req.header.requestApiVersion, 6);
    assert.equal(req.header.clientId, 'samsa-capture');
    assert.equal(req.headerVersion, 1);
  }
  for (const req of metadataRequests) {
    // The admin client never asks the broker to auto-create the topics it looks up.
    assert.deepStrictEqual(req.body as MetadataRequest, {
      topics: [{ topicId: 'AAAAAAAAAAAAAAAAAAAAAA', name: TOPIC }],
      allowAutoTopicCreation: false,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    });
  }

  // Correlation ids increase by one per request on each connection.
  for (const connection of new Set(captured.map((x) => x.connection))) {
    const ids = captured.filter((x) => x.connection === connection).map((x) => x.header.correlationId);
    for (let i = 1; i < ids.length; i++) assert.equal(ids[i], ids[i - 1]! + 1, `correlation ids ${ids.join(',')}`);
  }
});

async function kcatVersion(): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync('kcat', ['-V'], { timeout: 10_000 });
    return `${stdout}${stderr}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      // Not a skip: CI installs Debian's kcat package (.ci/run), so a missing kcat is a broken setup.
      assert.fail('kcat is not installed: apt-get install -y kcat');
    }
    throw err;
  }
}

test('kcat (librdkafka): ApiVersions v3 with header v2, then Metadata for all topics', async (t) => {
  const version = await kcatVersion();
  const { port, captured } = await startCaptureListener(t);
  const { stdout } = await execFileAsync('kcat', ['-b', `127.0.0.1:${port}`, '-L', '-m', '10'], {
    timeout: 30_000,
  });

  // kcat printed what our Metadata response said.
  assert.match(stdout, /1 brokers:/);
  assert.match(stdout, new RegExp(`broker 0 at 127\\.0\\.0\\.1:${port}`));
  assert.match(stdout, /topic "orders" with 1 partitions:/);
  assert.match(stdout, /partition 0, leader 0, replicas: 0, isrs: 0/);

  assertReencodes(captured);
  // librdkafka may open another connection once Metadata names broker 0; assert on the bootstrap one.
  const bootstrap = captured.filter((x) => x.connection === 0);
  const apiVersions = bootstrap[0]!;
  assert.equal(apiVersions.header.requestApiKey, API_VERSIONS);
  assert.equal(apiVersions.header.requestApiVersion, 3);
  assert.equal(apiVersions.headerVersion, 2, 'flexible ApiVersions v3 uses request header v2');
  assert.equal(apiVersions.header.clientId, 'rdkafka');
  const body = apiVersions.body as ApiVersionsRequest;
  assert.equal(body.clientSoftwareName, 'librdkafka');
  assert.match(body.clientSoftwareVersion, /^\d+\.\d+\.\d+/);
  const librdkafkaVersion = /librdkafka ([\d.]+)/.exec(version)?.[1];
  if (librdkafkaVersion !== undefined) assert.ok(body.clientSoftwareVersion.startsWith(librdkafkaVersion));

  const metadataRequests = bootstrap.filter((x) => x.header.requestApiKey === METADATA);
  assert.ok(metadataRequests.length >= 1, 'kcat sent Metadata');
  for (const req of metadataRequests) {
    if (body.clientSoftwareVersion === '2.0.2') {
      // librdkafka 2.0.2 (Debian 12's kcat) speaks Metadata up to v4; we advertised 0-12.
      assert.equal(req.header.requestApiVersion, 4);
    } else {
      assert.ok(req.header.requestApiVersion >= 4 && req.header.requestApiVersion <= 12);
    }
    assert.equal(req.headerVersion, req.header.requestApiVersion >= 9 ? 2 : 1);
    assert.equal(req.header.clientId, 'rdkafka');
  }
  // librdkafka first refreshes brokers only (an empty topic list, no auto-creation) ...
  assert.deepStrictEqual(metadataRequests[0]!.body as MetadataRequest, {
    topics: [],
    allowAutoTopicCreation: false,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  });
  // ... then -L asks for every topic: a null topic array (v1+).
  assert.deepStrictEqual(metadataRequests.at(-1)!.body as MetadataRequest, {
    topics: null,
    allowAutoTopicCreation: true,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  });
  for (let i = 1; i < bootstrap.length; i++) {
    assert.equal(bootstrap[i]!.header.correlationId, bootstrap[i - 1]!.header.correlationId + 1);
  }
});
