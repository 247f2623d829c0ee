/**
 * Batches produced by kafkajs 2.2.4's own encoders decode with ours, and kafkajs' decoder reads
 * ours. kafkajs ships no types for its internals, so the modules are typed by hand here.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import {
  buildRecordBatch,
  Compression,
  compressionOf,
  decodeBatch,
  decodeRecordsSync,
  iterateBatches,
  readBatchHeader,
  verifyBatchCrc,
} from '../../../../src/protocol/records/index.ts';

const require = createRequire(import.meta.url);

interface KafkajsEncoder {
  buffer: Buffer;
}
type KafkajsHeaders = { [key: string]: Buffer | string | (Buffer | string)[] | null };
interface KafkajsMessage {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: KafkajsHeaders;
  timestamp?: string | number;
}

const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch: (options: {
    compression?: number;
    firstOffset?: unknown;
    firstTimestamp?: number;
    maxTimestamp?: number;
    partitionLeaderEpoch?: number;
    lastOffsetDelta?: number;
    transactional?: boolean;
    producerId?: unknown;
    producerEpoch?: number;
    firstSequence?: number;
    records: KafkajsEncoder[];
  }) => Promise<KafkajsEncoder>;
};
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (options: {
  offsetDelta: number;
  timestampDelta: number;
  key: Buffer | string | null | undefined;
  value: Buffer | string | null;
  headers?: KafkajsHeaders | undefined;
}) => KafkajsEncoder;
const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: string | number): unknown };
const ProduceV3 = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (options: {
  acks: number;
  timeout: number;
  compression: number;
  topicData: {
    topic: string;
    partitions: { partition: number; firstSequence?: number; messages: KafkajsMessage[] }[];
  }[];
}) => { encode(): Promise<KafkajsEncoder> };
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => unknown;
const decodeKafkajsBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (decoder: unknown) => Promise<{
  firstOffset: string;
  records: { key: Buffer | null; value: Buffer | null; timestamp: string; offset: string; headers: object }[];
}>;

const T0 = 1_700_000_000_000;

const messages: KafkajsMessage[] = [
  { key: 'key-1', value: 'value-1', timestamp: T0, headers: { trace: 'abc', multi: ['x', 'y'] } },
  { key: null, value: Buffer.from([0, 1, 2]), timestamp: T0 + 10 },
  { key: Buffer.from('tomb'), value: null, timestamp: T0 - 5 },
  { key: 'long', value: 'z'.repeat(10_000), timestamp: T0 + 1 },
];

test('a gzip batch built by kafkajs RecordBatch/Record encoders decodes with ours', async () => {
  const records = messages.map((m, i) =>
    Record({
      offsetDelta: i,
      timestampDelta: Number(m.timestamp) - (T0 - 5),
      key: m.key,
      value: m.value,
      headers: m.headers,
    }),
  );
  const encoder = await RecordBatch({
    compression: 1,
    firstOffset: Long.fromValue('42'),
    firstTimestamp: T0 - 5,
    maxTimestamp: T0 + 10,
    lastOffsetDelta: records.length - 1,
    transactional: true,
    producerId: Long.fromValue('1234'),
    producerEpoch: 2,
    firstSequence: 100,
    records,
  });
  const batch = encoder.buffer;
  assert.equal(verifyBatchCrc(batch), true);
  const { header, records: decoded } = await decodeBatch(batch);
  assert.equal(compressionOf(header.attributes), Compression.gzip);
  assert.equal(header.baseOffset, 42n);
  assert.equal(header.producerId, 1234n);
  assert.equal(header.producerEpoch, 2);
  assert.equal(header.baseSequence, 100);
  assert.equal(header.maxTimestamp, BigInt(T0 + 10));
  assert.deepEqual(
    decoded.map((r) => r.offset),
    [42n, 43n, 44n, 45n],
  );
  assert.deepEqual(
    decoded.map((r) => r.timestamp),
    messages.map((m) => BigInt(m.timestamp!)),
  );
  assert.deepEqual(decoded[0]!.key, Buffer.from('key-1'));
  assert.deepEqual(decoded[0]!.value, Buffer.from('value-1'));
  assert.deepEqual(decoded[0]!.headers, [
    { key: 'trace', value: Buffer.from('abc') },
    { key: 'multi', value: Buffer.from('x') },
    { key: 'multi', value: Buffer.from('y') },
  ]);
  assert.equal(decoded[1]!.key, null);
  assert.deepEqual(decoded[1]!.value, Buffer.from([0, 1, 2]));
  assert.deepEqual(decoded[2]!.key, Buffer.from('tomb'));
  assert.equal(decoded[2]!.value, null);
  assert.equal(decoded[3]!.value!.length, 10_000);
});

test('the records field of a kafkajs Produce v3 request (gzip and none) decodes with ours', async () => {
  for (const compression of [0, 1]) {
    const request = ProduceV3({
      acks: -1,
      timeout: 30_000,
      compression,
      topicData: [{ topic: 'orders', partitions: [{ partition: 3, messages }] }],
    });
    const body = (await request.encode()).buffer;
    // transactionalId (nullable string -1), acks, timeout, [topic], [partition], records bytes.
    let pos = 0;
    assert.equal(body.readInt16BE(pos), -1);
    pos += 2 + 2 + 4;
    assert.equal(body.readInt32BE(pos), 1);
    pos += 4;
    const topicLength = body.readInt16BE(pos);
    assert.equal(body.toString('utf8', pos + 2, pos + 2 + topicLength), 'orders');
    pos += 2 + topicLength;
    assert.equal(body.readInt32BE(pos), 1);
    assert.equal(body.readInt32BE(pos + 4), 3);
    const size = body.readInt32BE(pos + 8);
    const recordsField = body.subarray(pos + 12, pos + 12 + size);

    const entries = [...iterateBatches(recordsField)];
    assert.equal(entries.length, 1);
    const header = readBatchHeader(recordsField);
    assert.equal(compressionOf(header.attributes), compression);
    const decoded = decodeRecordsSync(recordsField);
    assert.deepEqual(
      decoded.map((r) => [r.key?.toString() ?? null, r.value?.toString('hex') ?? null, r.timestamp]),
      messages.map((m) => [
        m.key === null || m.key === undefined ? null : m.key.toString(),
        m.value === null ? null : Buffer.from(m.value).toString('hex'),
        BigInt(m.timestamp!),
      ]),
    );
    assert.equal(decoded[0]!.headers.length, 3);
  }
});

test('kafkajs decodes batches built by ours', async () => {
  for (const compression of [Compression.none, Compression.gzip]) {
    const batch = await buildRecordBatch({
      baseOffset: 10n,
      compression,
      records: [
        {
          key: Buffer.from('k'),
          value: Buffer.from('v'),
          timestamp: BigInt(T0),
          headers: [{ key: 'h', value: Buffer.from('1') }],
        },
        { key: null, value: Buffer.from('w'), timestamp: BigInt(T0 + 3) },
      ],
    });
    const result = await decodeKafkajsBatch(new Decoder(batch));
    assert.equal(result.records.length, 2);
    assert.deepEqual(
      result.records.map((r) => [r.offset, r.timestamp, r.key?.toString() ?? null, r.value?.toString()]),
      [
        ['10', String(T0), 'k', 'v'],
        ['11', String(T0 + 3), null, 'w'],
      ],
    );
    assert.deepEqual(result.records[0]!.headers, { h: Buffer.from('1') });
  }
});
