// Golden bytes: messages encoded by hand from the Kafka protocol specification
// (https://kafka.apache.org/protocol, "Protocol Primitive Types", "Headers", the per-API BNF, and
// https://kafka.apache.org/documentation/#recordbatch for record batches), written out here byte by
// byte. The generated codecs must produce exactly these bytes and decode them to the values shown.
//
// Nothing below is produced by the code under test: every byte was written from the spec, and the
// record batch CRC-32C values were computed with a separate bitwise Python implementation
// (reflected polynomial 0x82F63B78) and are re-checked here with a table-driven CRC written in
// this file, independent of the native @node-rs/crc32 binding the broker uses.
//
// Notation: each `hex(...)` argument is one wire field, its comment says which one.
// Primitive reminders: int16/int32/int64 big-endian; STRING = int16 length + UTF-8;
// NULLABLE_STRING length -1 = null; COMPACT_STRING = uvarint(length + 1) + UTF-8 (0 = null);
// ARRAY = int32 count (-1 = null); COMPACT_ARRAY = uvarint(count + 1) (0 = null);
// tagged fields = uvarint count, then per field uvarint tag, uvarint size, data.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ProduceRequest,
  readProduceRequest,
  writeProduceRequest,
} from '../../../src/protocol/messages/000-produce.ts';
import {
  type FetchRequest,
  type FetchResponse,
  readFetchRequest,
  readFetchResponse,
  writeFetchRequest,
  writeFetchResponse,
} from '../../../src/protocol/messages/001-fetch.ts';
import {
  type MetadataRequest,
  type MetadataResponse,
  readMetadataRequest,
  readMetadataResponse,
  writeMetadataRequest,
  writeMetadataResponse,
} from '../../../src/protocol/messages/003-metadata.ts';
import {
  type ApiVersionsRequest,
  type ApiVersionsResponse,
  readApiVersionsRequest,
  readApiVersionsResponse,
  writeApiVersionsRequest,
  writeApiVersionsResponse,
} from '../../../src/protocol/messages/018-api-versions.ts';
import { requestHeaderVersion, responseHeaderVersion } from '../../../src/protocol/messages/index.ts';
import {
  type RequestHeader,
  readRequestHeader,
  writeRequestHeader,
} from '../../../src/protocol/messages/request-header.ts';
import { readResponseHeader, writeResponseHeader } from '../../../src/protocol/messages/response-header.ts';
import { Reader } from '../../../src/protocol/reader.ts';
import { readBatchHeader, verifyBatchCrc } from '../../../src/protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { crc32c as nativeCrc32c } from '../../../src/protocol/records/crc32c.ts';
import { decodeRecordsSync } from '../../../src/protocol/records/record.ts';
import { ZERO_UUID } from '../../../src/protocol/uuid.ts';
import { Writer } from '../../../src/protocol/writer.ts';

/** Concatenates hex fields (whitespace ignored) into one buffer. */
function hex(...fields: string[]): Buffer {
  const digits = fields.join('').replace(/\s+/g, '');
  assert.match(digits, /^(?:[0-9a-f]{2})*$/, 'golden hex must be whole lowercase bytes');
  return Buffer.from(digits, 'hex');
}

type Write<T> = (w: Writer, version: number, message: T) => void;
type Read<T> = (r: Reader, version: number) => T;

/** Asserts the codec encodes `value` to exactly `bytes` and decodes `bytes` back to `value`. */
function assertGoldenBody<T>(bytes: Buffer, version: number, write: Write<T>, read: Read<T>, value: T): void {
  const w = new Writer(16);
  write(w, version, value);
  assert.deepStrictEqual(w.toBuffer(), bytes, 'encoded bytes differ from the golden bytes');
  const r = new Reader(bytes);
  assert.deepStrictEqual(read(r, version), value);
  assert.equal(r.remaining, 0, 'decoder left bytes unread');
}

/** Same for a request frame (header + body, without the int32 size prefix). */
function assertGoldenRequest<T>(frame: Buffer, header: RequestHeader, write: Write<T>, read: Read<T>, body: T): void {
  const headerVersion = requestHeaderVersion(header.requestApiKey, header.requestApiVersion);
  const w = new Writer(16);
  writeRequestHeader(w, headerVersion, header);
  write(w, header.requestApiVersion, body);
  assert.deepStrictEqual(w.toBuffer(), frame, 'encoded request frame differs from the golden bytes');
  const r = new Reader(frame);
  assert.deepStrictEqual(readRequestHeader(r, headerVersion), header);
  assert.deepStrictEqual(read(r, header.requestApiVersion), body);
  assert.equal(r.remaining, 0, 'decoder left bytes unread');
}

/** Same for a response frame (header + body). */
function assertGoldenResponse<T>(
  frame: Buffer,
  apiKey: number,
  version: number,
  correlationId: number,
  write: Write<T>,
  read: Read<T>,
  body: T,
): void {
  const headerVersion = responseHeaderVersion(apiKey, version);
  const w = new Writer(16);
  writeResponseHeader(w, headerVersion, { correlationId });
  write(w, version, body);
  assert.deepStrictEqual(w.toBuffer(), frame, 'encoded response frame differs from the golden bytes');
  const r = new Reader(frame);
  assert.deepStrictEqual(readResponseHeader(r, headerVersion), { correlationId });
  assert.deepStrictEqual(read(r, version), body);
  assert.equal(r.remaining, 0, 'decoder left bytes unread');
}

// --------------------------------------------------------------------------------------------
// CRC-32C, table-driven (Castagnoli, reflected 0x82F63B78), independent of the native binding.

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function tableCrc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of data) crc = CRC32C_TABLE[(crc ^ b) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// --------------------------------------------------------------------------------------------
// Record batches (magic 2), by hand.

/** Header fields that are not covered by the CRC: the broker rewrites them in place. */
function batchPrefix(baseOffset: string, batchLength: string, partitionLeaderEpoch: string): string {
  return baseOffset + batchLength + partitionLeaderEpoch;
}

/**
 * Batch A: two uncompressed records from a non-idempotent producer.
 *   record 0: key "k1", value "hello", timestamp base+0, no headers
 *   record 1: key null, value "world", timestamp base+5, header h=v
 * Everything from `attributes` on is covered by the CRC.
 */
const BATCH_A_CRC = 0x4469c88d;
const BATCH_A_BODY = hex(
  '02', // magic 2
  '44 69 c8 8d', // crc (CRC-32C of everything after this field)
  '00 00', // attributes: no compression, CreateTime, not transactional, not control
  '00 00 00 01', // lastOffsetDelta 1
  '00 00 01 8b cf e5 68 00', // baseTimestamp 1700000000000
  '00 00 01 8b cf e5 68 05', // maxTimestamp 1700000000005
  'ff ff ff ff ff ff ff ff', // producerId -1
  'ff ff', // producerEpoch -1
  'ff ff ff ff', // baseSequence -1
  '00 00 00 02', // records count 2
  // record 0
  '1a', // length varint: zigzag(13)
  '00', // attributes
  '00', // timestampDelta varlong 0
  '00', // offsetDelta varint 0
  '04', // keyLength zigzag(2)
  '6b 31', // key "k1"
  '0a', // valueLength zigzag(5)
  '68 65 6c 6c 6f', // value "hello"
  '00', // headers count 0
  // record 1
  '1e', // length zigzag(15)
  '00', // attributes
  '0a', // timestampDelta zigzag(5)
  '02', // offsetDelta zigzag(1)
  '01', // keyLength zigzag(-1): null key
  '0a', // valueLength zigzag(5)
  '77 6f 72 6c 64', // value "world"
  '02', // headers count zigzag(1)
  '02', // header key length zigzag(1)
  '68', // header key "h"
  '02', // header value length zigzag(1)
  '76', // header value "v"
);
/** As the producer sends it: baseOffset 0, partitionLeaderEpoch -1. */
const BATCH_A = Buffer.concat([
  hex(batchPrefix('00 00 00 00 00 00 00 00', '00 00 00 4f', 'ff ff ff ff')), // baseOffset 0, batchLength 79, epoch -1
  BATCH_A_BODY,
]);
/** As a broker returns it from the log: baseOffset 42, partitionLeaderEpoch 0, same CRC. */
const BATCH_A_AT_42 = Buffer.concat([
  hex(batchPrefix('00 00 00 00 00 00 00 2a', '00 00 00 4f', '00 00 00 00')), // baseOffset 42, batchLength 79, epoch 0
  BATCH_A_BODY,
]);

/**
 * Batch B: one record from an idempotent producer (producerId 4242, epoch 3, sequence 0):
 * key null, value "samsa", header "trace" with a null value.
 */
const BATCH_B_CRC = 0xf79c0e6c;
const BATCH_B_BODY = hex(
  '02', // magic 2
  'f7 9c 0e 6c', // crc
  '00 00', // attributes
  '00 00 00 00', // lastOffsetDelta 0
  '00 00 01 8b cf e5 6b e8', // baseTimestamp 1700000001000
  '00 00 01 8b cf e5 6b e8', // maxTimestamp 1700000001000
  '00 00 00 00 00 00 10 92', // producerId 4242
  '00 03', // producerEpoch 3
  '00 00 00 00', // baseSequence 0
  '00 00 00 01', // records count 1
  '24', // record length zigzag(18)
  '00', // attributes
  '00', // timestampDelta 0
  '00', // offsetDelta 0
  '01', // keyLength zigzag(-1): null key
  '0a', // valueLength zigzag(5)
  '73 61 6d 73 61', // value "samsa"
  '02', // headers count zigzag(1)
  '0a', // header key length zigzag(5)
  '74 72 61 63 65', // header key "trace"
  '01', // header value length zigzag(-1): null
);
const BATCH_B = Buffer.concat([
  hex(batchPrefix('00 00 00 00 00 00 00 00', '00 00 00 44', 'ff ff ff ff')), // baseOffset 0, batchLength 68, epoch -1
  BATCH_B_BODY,
]);
const BATCH_B_AT_100 = Buffer.concat([
  hex(batchPrefix('00 00 00 00 00 00 00 64', '00 00 00 44', '00 00 00 05')), // baseOffset 100, batchLength 68, epoch 5
  BATCH_B_BODY,
]);

test('hand-built record batches: lengths and CRC-32C agree with independent implementations', () => {
  assert.equal(tableCrc32c(Buffer.from('123456789')), 0xe3069283, 'CRC-32C check value');
  for (const [batch, crc, length] of [
    [BATCH_A, BATCH_A_CRC, 79],
    [BATCH_A_AT_42, BATCH_A_CRC, 79],
    [BATCH_B, BATCH_B_CRC, 68],
    [BATCH_B_AT_100, BATCH_B_CRC, 68],
  ] as const) {
    assert.equal(batch.readInt32BE(8), length, 'batchLength');
    assert.equal(batch.length, 12 + length, 'batch size = 12 + batchLength');
    assert.equal(batch.readUInt32BE(17), crc, 'stored CRC');
    const covered = batch.subarray(21); // attributes .. end
    assert.equal(tableCrc32c(covered), crc, 'table-driven CRC-32C');
    assert.equal(nativeCrc32c(covered), crc, 'native CRC-32C');
  }
});

test('the record batch layer builds and reads the hand-built batches exactly', () => {
  // Built from the same inputs, the builder must produce the spec's bytes, CRC included.
  const built = buildRecordBatchSync({
    records: [
      { key: Buffer.from('k1'), value: Buffer.from('hello'), timestamp: 1700000000000n },
      {
        key: null,
        value: Buffer.from('world'),
        headers: [{ key: 'h', value: Buffer.from('v') }],
        timestamp: 1700000000005n,
      },
    ],
  });
  assert.deepStrictEqual(built, BATCH_A);
  const idempotent = buildRecordBatchSync({
    records: [
      { key: null, value: Buffer.from('samsa'), headers: [{ key: 'trace', value: null }], timestamp: 1700000001000n },
    ],
    producerId: 4242n,
    producerEpoch: 3,
    baseSequence: 0,
  });
  assert.deepStrictEqual(idempotent, BATCH_B);

  // Rewriting baseOffset and partitionLeaderEpoch leaves the CRC valid: neither is covered.
  assert.ok(verifyBatchCrc(BATCH_A_AT_42));
  assert.ok(verifyBatchCrc(BATCH_B_AT_100));
  const header = readBatchHeader(BATCH_A_AT_42);
  assert.equal(header.baseOffset, 42n);
  assert.equal(header.partitionLeaderEpoch, 0);
  assert.equal(header.crc, BATCH_A_CRC);
  assert.equal(header.lastOffsetDelta, 1);
  assert.equal(header.producerId, -1n);
  assert.equal(header.recordCount, 2);
  const records = decodeRecordsSync(BATCH_A_AT_42);
  assert.deepStrictEqual(
    records.map((r) => ({
      offset: r.offset,
      timestamp: r.timestamp,
      key: r.key?.toString() ?? null,
      value: r.value?.toString() ?? null,
      headers: r.headers.map((h) => [h.key, h.value?.toString() ?? null]),
    })),
    [
      { offset: 42n, timestamp: 1700000000000n, key: 'k1', value: 'hello', headers: [] },
      { offset: 43n, timestamp: 1700000000005n, key: null, value: 'world', headers: [['h', 'v']] },
    ],
  );
  const [record] = decodeRecordsSync(BATCH_B_AT_100);
  assert.equal(record?.offset, 100n);
  assert.deepStrictEqual(record?.headers, [{ key: 'trace', value: null }]);

  // One flipped bit in the CRC-covered part is detected.
  const corrupt = Buffer.from(BATCH_A);
  corrupt[corrupt.length - 1]! ^= 0x01;
  assert.equal(verifyBatchCrc(corrupt), false);
  assert.equal(tableCrc32c(corrupt.subarray(21)) === BATCH_A_CRC, false);
});

// --------------------------------------------------------------------------------------------
// ApiVersions (API key 18)

test('ApiVersions v0 request: header v1 and an empty body', () => {
  assert.equal(requestHeaderVersion(18, 0), 1);
  const frame = hex(
    '00 12', // request_api_key 18
    '00 00', // request_api_version 0
    '00 00 00 01', // correlation_id 1
    '00 05 73 61 6d 73 61', // client_id "samsa" (NULLABLE_STRING)
    // ApiVersions v0 request has no fields
  );
  const header: RequestHeader = { requestApiKey: 18, requestApiVersion: 0, correlationId: 1, clientId: 'samsa' };
  const body: ApiVersionsRequest = { clientSoftwareName: '', clientSoftwareVersion: '' };
  assertGoldenRequest(frame, header, writeApiVersionsRequest, readApiVersionsRequest, body);
});

test('ApiVersions v0 response', () => {
  assert.equal(responseHeaderVersion(18, 0), 0);
  const frame = hex(
    '00 00 00 01', // response header v0: correlation_id 1
    '00 00', // error_code 0
    '00 00 00 03', // api_keys: ARRAY of 3
    '00 00 00 00 00 0b', // api_key 0 (Produce), min 0, max 11
    '00 01 00 00 00 11', // api_key 1 (Fetch), min 0, max 17
    '00 12 00 00 00 04', // api_key 18 (ApiVersions), min 0, max 4
  );
  const body: ApiVersionsResponse = {
    errorCode: 0,
    apiKeys: [
      { apiKey: 0, minVersion: 0, maxVersion: 11 },
      { apiKey: 1, minVersion: 0, maxVersion: 17 },
      { apiKey: 18, minVersion: 0, maxVersion: 4 },
    ],
    throttleTimeMs: 0,
    supportedFeatures: [],
    finalizedFeaturesEpoch: -1n,
    finalizedFeatures: [],
    zkMigrationReady: false,
  };
  assertGoldenResponse(frame, 18, 0, 1, writeApiVersionsResponse, readApiVersionsResponse, body);
});

test('ApiVersions v0 response with UNSUPPORTED_VERSION, as sent to a client asking for a newer version (KIP-511)', () => {
  const bytes = hex(
    '00 23', // error_code 35 UNSUPPORTED_VERSION
    '00 00 00 01', // api_keys: ARRAY of 1
    '00 12 00 00 00 04', // ApiVersions 0..4
  );
  const body: ApiVersionsResponse = {
    errorCode: 35,
    apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 4 }],
    throttleTimeMs: 0,
    supportedFeatures: [],
    finalizedFeaturesEpoch: -1n,
    finalizedFeatures: [],
    zkMigrationReady: false,
  };
  assertGoldenBody(bytes, 0, writeApiVersionsResponse, readApiVersionsResponse, body);
});

test('ApiVersions v3 request: header v2 (client_id stays a non-compact string) and compact strings', () => {
  assert.equal(requestHeaderVersion(18, 3), 2);
  const frame = hex(
    '00 12', // request_api_key 18
    '00 03', // request_api_version 3
    '00 00 00 02', // correlation_id 2
    '00 07 72 64 6b 61 66 6b 61', // client_id "rdkafka": NULLABLE_STRING even in header v2
    '00', // header tagged fields: none
    '0b 6c 69 62 72 64 6b 61 66 6b 61', // client_software_name COMPACT_STRING "librdkafka" (10 + 1)
    '06 32 2e 30 2e 32', // client_software_version COMPACT_STRING "2.0.2" (5 + 1)
    '00', // body tagged fields: none
  );
  const header: RequestHeader = { requestApiKey: 18, requestApiVersion: 3, correlationId: 2, clientId: 'rdkafka' };
  const body: ApiVersionsRequest = { clientSoftwareName: 'librdkafka', clientSoftwareVersion: '2.0.2' };
  assertGoldenRequest(frame, header, writeApiVersionsRequest, readApiVersionsRequest, body);
});

test('ApiVersions v3 response: response header v0 (no tagged fields) and tagged body fields', () => {
  assert.equal(responseHeaderVersion(18, 3), 0, 'ApiVersions responses always use header v0');
  const frame = hex(
    '00 00 00 02', // response header v0: correlation_id 2 — no tagged-field byte
    '00 00', // error_code 0
    '04', // api_keys: COMPACT_ARRAY of 3
    '00 00 00 00 00 0b 00', // Produce 0..11, tagged fields none
    '00 03 00 00 00 0c 00', // Metadata 0..12, tagged fields none
    '00 12 00 00 00 04 00', // ApiVersions 0..4, tagged fields none
    '00 00 00 0a', // throttle_time_ms 10
    '02', // tagged fields: 2
    '00 14', // tag 0 (SupportedFeatures), 20 bytes:
    '02', //   COMPACT_ARRAY of 1
    '0e 6b 72 61 66 74 2e 76 65 72 73 69 6f 6e', //   name "kraft.version" (13 + 1)
    '00 00', //   min_version 0
    '00 01', //   max_version 1
    '00', //   tagged fields none
    '01 08', // tag 1 (FinalizedFeaturesEpoch), 8 bytes:
    '00 00 00 00 00 00 00 05', //   5
  );
  const body: ApiVersionsResponse = {
    errorCode: 0,
    apiKeys: [
      { apiKey: 0, minVersion: 0, maxVersion: 11 },
      { apiKey: 3, minVersion: 0, maxVersion: 12 },
      { apiKey: 18, minVersion: 0, maxVersion: 4 },
    ],
    throttleTimeMs: 10,
    supportedFeatures: [{ name: 'kraft.version', minVersion: 0, maxVersion: 1 }],
    finalizedFeaturesEpoch: 5n,
    finalizedFeatures: [],
    zkMigrationReady: false,
  };
  assertGoldenResponse(frame, 18, 3, 2, writeApiVersionsResponse, readApiVersionsResponse, body);
});

// --------------------------------------------------------------------------------------------
// Metadata (API key 3)

test('Metadata v1 request: two topic names, and null meaning all topics', () => {
  assert.equal(requestHeaderVersion(3, 1), 1);
  const frame = hex(
    '00 03', // request_api_key 3
    '00 01', // request_api_version 1
    '00 00 00 03', // correlation_id 3
    '00 05 73 61 6d 73 61', // client_id "samsa"
    '00 00 00 02', // topics: ARRAY of 2
    '00 06 6f 72 64 65 72 73', // name "orders"
    '00 08 70 61 79 6d 65 6e 74 73', // name "payments"
  );
  const header: RequestHeader = { requestApiKey: 3, requestApiVersion: 1, correlationId: 3, clientId: 'samsa' };
  const body: MetadataRequest = {
    topics: [
      { topicId: ZERO_UUID, name: 'orders' },
      { topicId: ZERO_UUID, name: 'payments' },
    ],
    allowAutoTopicCreation: true,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  };
  assertGoldenRequest(frame, header, writeMetadataRequest, readMetadataRequest, body);

  const allTopics = hex('ff ff ff ff'); // topics: null ARRAY (nullable from v1) = every topic
  assertGoldenBody(allTopics, 1, writeMetadataRequest, readMetadataRequest, { ...body, topics: null });
});

test('Metadata v1 response', () => {
  const bytes = hex(
    '00 00 00 02', // brokers: ARRAY of 2
    '00 00 00 01', // node_id 1
    '00 09 6c 6f 63 61 6c 68 6f 73 74', // host "localhost"
    '00 00 23 84', // port 9092
    'ff ff', // rack null
    '00 00 00 02', // node_id 2
    '00 09 6c 6f 63 61 6c 68 6f 73 74', // host "localhost"
    '00 00 23 85', // port 9093
    '00 02 72 31', // rack "r1"
    '00 00 00 01', // controller_id 1
    '00 00 00 01', // topics: ARRAY of 1
    '00 00', // error_code 0
    '00 06 6f 72 64 65 72 73', // name "orders"
    '00', // is_internal false
    '00 00 00 02', // partitions: ARRAY of 2
    '00 00', //   error_code 0
    '00 00 00 00', //   partition_index 0
    '00 00 00 01', //   leader_id 1
    '00 00 00 02 00 00 00 01 00 00 00 02', //   replica_nodes [1, 2]
    '00 00 00 01 00 00 00 01', //   isr_nodes [1]
    '00 09', //   error_code 9 REPLICA_NOT_AVAILABLE
    '00 00 00 01', //   partition_index 1
    '00 00 00 02', //   leader_id 2
    '00 00 00 02 00 00 00 02 00 00 00 01', //   replica_nodes [2, 1]
    '00 00 00 01 00 00 00 02', //   isr_nodes [2]
  );
  const body: MetadataResponse = {
    throttleTimeMs: 0,
    brokers: [
      { nodeId: 1, host: 'localhost', port: 9092, rack: null },
      { nodeId: 2, host: 'localhost', port: 9093, rack: 'r1' },
    ],
    clusterId: null,
    controllerId: 1,
    topics: [
      {
        errorCode: 0,
        name: 'orders',
        topicId: ZERO_UUID,
        isInternal: false,
        partitions: [
          {
            errorCode: 0,
            partitionIndex: 0,
            leaderId: 1,
            leaderEpoch: -1,
            replicaNodes: [1, 2],
            isrNodes: [1],
            offlineReplicas: [],
          },
          {
            errorCode: 9,
            partitionIndex: 1,
            leaderId: 2,
            leaderEpoch: -1,
            replicaNodes: [2, 1],
            isrNodes: [2],
            offlineReplicas: [],
          },
        ],
        topicAuthorizedOperations: -2147483648,
      },
    ],
    clusterAuthorizedOperations: -2147483648,
  };
  assert.equal(responseHeaderVersion(3, 1), 0);
  assertGoldenBody(bytes, 1, writeMetadataResponse, readMetadataResponse, body);
});

/** 01 23 45 67 89 ab cd ef fe dc ba 98 76 54 32 10 as Kafka's base64url string form. */
const TOPIC_ID = 'ASNFZ4mrze_-3LqYdlQyEA';
const TOPIC_ID_HEX = '01 23 45 67 89 ab cd ef fe dc ba 98 76 54 32 10';

test('Metadata v12 request: header v2, topic ids and a null topic name', () => {
  assert.equal(requestHeaderVersion(3, 12), 2);
  const frame = hex(
    '00 03', // request_api_key 3
    '00 0c', // request_api_version 12
    '00 00 00 04', // correlation_id 4
    '00 05 73 61 6d 73 61', // client_id "samsa"
    '00', // header tagged fields
    '03', // topics: COMPACT_ARRAY of 2
    '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00', //   topic_id zero (lookup by name)
    '07 6f 72 64 65 72 73', //   name "orders"
    '00', //   tagged fields
    TOPIC_ID_HEX, //   topic_id (lookup by id)
    '00', //   name null (COMPACT_NULLABLE_STRING)
    '00', //   tagged fields
    '00', // allow_auto_topic_creation false
    '01', // include_topic_authorized_operations true
    '00', // tagged fields
  );
  const header: RequestHeader = { requestApiKey: 3, requestApiVersion: 12, correlationId: 4, clientId: 'samsa' };
  const body: MetadataRequest = {
    topics: [
      { topicId: ZERO_UUID, name: 'orders' },
      { topicId: TOPIC_ID, name: null },
    ],
    allowAutoTopicCreation: false,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: true,
  };
  assertGoldenRequest(frame, header, writeMetadataRequest, readMetadataRequest, body);
});

test('Metadata v12 response: response header v1', () => {
  assert.equal(responseHeaderVersion(3, 12), 1);
  const frame = hex(
    '00 00 00 04', // correlation_id 4
    '00', // response header v1 tagged fields
    '00 00 00 00', // throttle_time_ms 0
    '02', // brokers: COMPACT_ARRAY of 1
    '00 00 00 01', //   node_id 1
    '0a 6c 6f 63 61 6c 68 6f 73 74', //   host "localhost" (9 + 1)
    '00 00 23 84', //   port 9092
    '00', //   rack null
    '00', //   tagged fields
    '03 63 31', // cluster_id "c1"
    '00 00 00 01', // controller_id 1
    '02', // topics: COMPACT_ARRAY of 1
    '00 00', //   error_code 0
    '07 6f 72 64 65 72 73', //   name "orders"
    TOPIC_ID_HEX, //   topic_id
    '00', //   is_internal false
    '02', //   partitions: COMPACT_ARRAY of 1
    '00 00', //     error_code 0
    '00 00 00 00', //     partition_index 0
    '00 00 00 01', //     leader_id 1
    '00 00 00 05', //     leader_epoch 5
    '02 00 00 00 01', //     replica_nodes [1]
    '02 00 00 00 01', //     isr_nodes [1]
    '01', //     offline_replicas []
    '00', //     tagged fields
    '00 00 0f f8', //   topic_authorized_operations 0x0ff8
    '00', //   tagged fields
    '00', // tagged fields
  );
  const body: MetadataResponse = {
    throttleTimeMs: 0,
    brokers: [{ nodeId: 1, host: 'localhost', port: 9092, rack: null }],
    clusterId: 'c1',
    controllerId: 1,
    topics: [
      {
        errorCode: 0,
        name: 'orders',
        topicId: TOPIC_ID,
        isInternal: false,
        partitions: [
          {
            errorCode: 0,
            partitionIndex: 0,
            leaderId: 1,
            leaderEpoch: 5,
            replicaNodes: [1],
            isrNodes: [1],
            offlineReplicas: [],
          },
        ],
        topicAuthorizedOperations: 0x0ff8,
      },
    ],
    clusterAuthorizedOperations: -2147483648,
  };
  assertGoldenResponse(frame, 3, 12, 4, writeMetadataResponse, readMetadataResponse, body);
});

// --------------------------------------------------------------------------------------------
// Produce (API key 0)

test('Produce v3 request carrying a hand-built record batch', () => {
  assert.equal(requestHeaderVersion(0, 3), 1);
  const frame = Buffer.concat([
    hex(
      '00 00', // request_api_key 0
      '00 03', // request_api_version 3
      '00 00 00 05', // correlation_id 5
      '00 05 73 61 6d 73 61', // client_id "samsa"
      'ff ff', // transactional_id null
      'ff ff', // acks -1 (all in-sync replicas)
      '00 00 75 30', // timeout_ms 30000
      '00 00 00 01', // topic_data: ARRAY of 1
      '00 06 6f 72 64 65 72 73', //   name "orders"
      '00 00 00 01', //   partition_data: ARRAY of 1
      '00 00 00 00', //     index 0
      '00 00 00 5b', //     records: BYTES of 91
    ),
    BATCH_A,
  ]);
  const header: RequestHeader = { requestApiKey: 0, requestApiVersion: 3, correlationId: 5, clientId: 'samsa' };
  const body: ProduceRequest = {
    transactionalId: null,
    acks: -1,
    timeoutMs: 30000,
    topicData: [{ name: 'orders', partitionData: [{ index: 0, records: BATCH_A }] }],
  };
  assertGoldenRequest(frame, header, writeProduceRequest, readProduceRequest, body);
});

test('Produce v9 request (flexible) carrying an idempotent record batch', () => {
  assert.equal(requestHeaderVersion(0, 9), 2);
  const frame = Buffer.concat([
    hex(
      '00 00', // request_api_key 0
      '00 09', // request_api_version 9
      '00 00 00 06', // correlation_id 6
      '00 05 73 61 6d 73 61', // client_id "samsa"
      '00', // header tagged fields
      '00', // transactional_id null (COMPACT_NULLABLE_STRING)
      '00 01', // acks 1
      '00 00 13 88', // timeout_ms 5000
      '02', // topic_data: COMPACT_ARRAY of 1
      '07 6f 72 64 65 72 73', //   name "orders"
      '02', //   partition_data: COMPACT_ARRAY of 1
      '00 00 00 02', //     index 2
      '51', //     records: COMPACT_RECORDS of 80 (80 + 1)
    ),
    BATCH_B,
    hex(
      '00', //     tagged fields
      '00', //   tagged fields
      '00', // tagged fields
    ),
  ]);
  const header: RequestHeader = { requestApiKey: 0, requestApiVersion: 9, correlationId: 6, clientId: 'samsa' };
  const body: ProduceRequest = {
    transactionalId: null,
    acks: 1,
    timeoutMs: 5000,
    topicData: [{ name: 'orders', partitionData: [{ index: 2, records: BATCH_B }] }],
  };
  assertGoldenRequest(frame, header, writeProduceRequest, readProduceRequest, body);
});

// --------------------------------------------------------------------------------------------
// Fetch (API key 1)

const FETCH_PARTITION_DEFAULTS = {
  currentLeaderEpoch: -1,
  lastFetchedEpoch: -1,
  logStartOffset: -1n,
  replicaDirectoryId: ZERO_UUID,
};

test('Fetch v4 request (read_committed)', () => {
  assert.equal(requestHeaderVersion(1, 4), 1);
  const frame = hex(
    '00 01', // request_api_key 1
    '00 04', // request_api_version 4
    '00 00 00 07', // correlation_id 7
    '00 05 73 61 6d 73 61', // client_id "samsa"
    'ff ff ff ff', // replica_id -1 (a consumer)
    '00 00 01 f4', // max_wait_ms 500
    '00 00 00 01', // min_bytes 1
    '00 a0 00 00', // max_bytes 10485760
    '01', // isolation_level 1 READ_COMMITTED
    '00 00 00 01', // topics: ARRAY of 1
    '00 06 6f 72 64 65 72 73', //   topic "orders"
    '00 00 00 01', //   partitions: ARRAY of 1
    '00 00 00 00', //     partition 0
    '00 00 00 00 00 00 00 2a', //     fetch_offset 42
    '00 10 00 00', //     partition_max_bytes 1048576
  );
  const header: RequestHeader = { requestApiKey: 1, requestApiVersion: 4, correlationId: 7, clientId: 'samsa' };
  const body: FetchRequest = {
    clusterId: null,
    replicaId: -1,
    replicaState: { replicaId: -1, replicaEpoch: -1n },
    maxWaitMs: 500,
    minBytes: 1,
    maxBytes: 10485760,
    isolationLevel: 1,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic: 'orders',
        topicId: ZERO_UUID,
        partitions: [{ ...FETCH_PARTITION_DEFAULTS, partition: 0, fetchOffset: 42n, partitionMaxBytes: 1048576 }],
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  };
  assertGoldenRequest(frame, header, writeFetchRequest, readFetchRequest, body);
});

const FETCH_RESPONSE_PARTITION_DEFAULTS = {
  logStartOffset: -1n,
  divergingEpoch: { epoch: -1, endOffset: -1n },
  currentLeader: { leaderId: -1, leaderEpoch: -1 },
  snapshotId: { endOffset: -1n, epoch: -1 },
  preferredReadReplica: -1,
};

test('Fetch v4 response: a batch read back from the log, an aborted transaction, an error partition', () => {
  assert.equal(responseHeaderVersion(1, 4), 0);
  const frame = Buffer.concat([
    hex(
      '00 00 00 07', // correlation_id 7
      '00 00 00 00', // throttle_time_ms 0
      '00 00 00 01', // responses: ARRAY of 1
      '00 06 6f 72 64 65 72 73', //   topic "orders"
      '00 00 00 02', //   partitions: ARRAY of 2
      '00 00 00 00', //     partition_index 0
      '00 00', //     error_code 0
      '00 00 00 00 00 00 00 2c', //     high_watermark 44
      '00 00 00 00 00 00 00 2c', //     last_stable_offset 44
      '00 00 00 01', //     aborted_transactions: ARRAY of 1
      '00 00 00 00 00 00 00 07', //       producer_id 7
      '00 00 00 00 00 00 00 28', //       first_offset 40
      '00 00 00 5b', //     records: 91 bytes
    ),
    BATCH_A_AT_42,
    hex(
      '00 00 00 01', //     partition_index 1
      '00 01', //     error_code 1 OFFSET_OUT_OF_RANGE
      'ff ff ff ff ff ff ff ff', //     high_watermark -1
      'ff ff ff ff ff ff ff ff', //     last_stable_offset -1
      'ff ff ff ff', //     aborted_transactions null
      '00 00 00 00', //     records: empty
    ),
  ]);
  const body: FetchResponse = {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 0,
    responses: [
      {
        topic: 'orders',
        topicId: ZERO_UUID,
        partitions: [
          {
            ...FETCH_RESPONSE_PARTITION_DEFAULTS,
            partitionIndex: 0,
            errorCode: 0,
            highWatermark: 44n,
            lastStableOffset: 44n,
            abortedTransactions: [{ producerId: 7n, firstOffset: 40n }],
            records: BATCH_A_AT_42,
          },
          {
            ...FETCH_RESPONSE_PARTITION_DEFAULTS,
            partitionIndex: 1,
            errorCode: 1,
            highWatermark: -1n,
            lastStableOffset: -1n,
            abortedTransactions: null,
            records: Buffer.alloc(0),
          },
        ],
      },
    ],
    nodeEndpoints: [],
  };
  assertGoldenResponse(frame, 1, 4, 7, writeFetchResponse, readFetchResponse, body);
});

test('Fetch v12 request: incremental session, forgotten topics, rack id and a tagged cluster id', () => {
  assert.equal(requestHeaderVersion(1, 12), 2);
  const frame = hex(
    '00 01', // request_api_key 1
    '00 0c', // request_api_version 12
    '00 00 00 08', // correlation_id 8
    '00 05 73 61 6d 73 61', // client_id "samsa"
    '00', // header tagged fields
    'ff ff ff ff', // replica_id -1
    '00 00 01 f4', // max_wait_ms 500
    '00 00 00 01', // min_bytes 1
    '03 20 00 00', // max_bytes 52428800
    '00', // isolation_level 0 READ_UNCOMMITTED
    '00 00 00 7b', // session_id 123
    '00 00 00 02', // session_epoch 2
    '02', // topics: COMPACT_ARRAY of 1
    '07 6f 72 64 65 72 73', //   topic "orders"
    '02', //   partitions: COMPACT_ARRAY of 1
    '00 00 00 02', //     partition 2
    '00 00 00 05', //     current_leader_epoch 5
    '00 00 00 00 00 00 00 64', //     fetch_offset 100
    'ff ff ff ff', //     last_fetched_epoch -1
    'ff ff ff ff ff ff ff ff', //     log_start_offset -1
    '00 10 00 00', //     partition_max_bytes 1048576
    '00', //     tagged fields
    '00', //   tagged fields
    '02', // forgotten_topics_data: COMPACT_ARRAY of 1
    '09 70 61 79 6d 65 6e 74 73', //   topic "payments"
    '03 00 00 00 00 00 00 00 01', //   partitions [0, 1]
    '00', //   tagged fields
    '03 72 31', // rack_id "r1"
    '01', // tagged fields: 1
    '00 03', // tag 0 (ClusterId), 3 bytes:
    '03 63 31', //   "c1"
  );
  const header: RequestHeader = { requestApiKey: 1, requestApiVersion: 12, correlationId: 8, clientId: 'samsa' };
  const body: FetchRequest = {
    clusterId: 'c1',
    replicaId: -1,
    replicaState: { replicaId: -1, replicaEpoch: -1n },
    maxWaitMs: 500,
    minBytes: 1,
    maxBytes: 52428800,
    isolationLevel: 0,
    sessionId: 123,
    sessionEpoch: 2,
    topics: [
      {
        topic: 'orders',
        topicId: ZERO_UUID,
        partitions: [
          {
            ...FETCH_PARTITION_DEFAULTS,
            partition: 2,
            currentLeaderEpoch: 5,
            fetchOffset: 100n,
            partitionMaxBytes: 1048576,
          },
        ],
      },
    ],
    forgottenTopicsData: [{ topic: 'payments', topicId: ZERO_UUID, partitions: [0, 1] }],
    rackId: 'r1',
  };
  assertGoldenRequest(frame, header, writeFetchRequest, readFetchRequest, body);
});

test('Fetch v12 response: response header v1, a batch read back from the log, tagged current leader', () => {
  assert.equal(responseHeaderVersion(1, 12), 1);
  const frame = Buffer.concat([
    hex(
      '00 00 00 08', // correlation_id 8
      '00', // response header tagged fields
      '00 00 00 00', // throttle_time_ms 0
      '00 00', // error_code 0
      '00 00 00 7b', // session_id 123
      '02', // responses: COMPACT_ARRAY of 1
      '07 6f 72 64 65 72 73', //   topic "orders"
      '02', //   partitions: COMPACT_ARRAY of 1
      '00 00 00 02', //     partition_index 2
      '00 00', //     error_code 0
      '00 00 00 00 00 00 00 65', //     high_watermark 101
      '00 00 00 00 00 00 00 65', //     last_stable_offset 101
      '00 00 00 00 00 00 00 00', //     log_start_offset 0
      '00', //     aborted_transactions null (COMPACT_ARRAY)
      'ff ff ff ff', //     preferred_read_replica -1
      '51', //     records: COMPACT_RECORDS of 80
    ),
    BATCH_B_AT_100,
    hex(
      '01', //     tagged fields: 1
      '01 09', //     tag 1 (CurrentLeader), 9 bytes:
      '00 00 00 01', //       leader_id 1
      '00 00 00 05', //       leader_epoch 5
      '00', //       tagged fields
      '00', //   tagged fields
      '00', // tagged fields
    ),
  ]);
  const body: FetchResponse = {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 123,
    responses: [
      {
        topic: 'orders',
        topicId: ZERO_UUID,
        partitions: [
          {
            ...FETCH_RESPONSE_PARTITION_DEFAULTS,
            partitionIndex: 2,
            errorCode: 0,
            highWatermark: 101n,
            lastStableOffset: 101n,
            logStartOffset: 0n,
            currentLeader: { leaderId: 1, leaderEpoch: 5 },
            abortedTransactions: null,
            records: BATCH_B_AT_100,
          },
        ],
      },
    ],
    nodeEndpoints: [],
  };
  assertGoldenResponse(frame, 1, 12, 8, writeFetchResponse, readFetchResponse, body);
});
