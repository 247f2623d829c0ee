import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as snappy from 'snappy';
import { ProtocolErrorCodes } from '../../../../src/protocol/errors.ts';
import {
  buildControlBatch,
  buildRecordBatch,
  buildRecordBatchSync,
  Compression,
  type CompressionType,
  compressionOf,
  decodeBatch,
  decodeBatchSync,
  decodeRecords,
  decodeRecordsSync,
  isControl,
  isTransactional,
  type RecordInput,
  readBatchHeader,
  readControlRecord,
  timestampTypeOf,
  verifyBatchCrc,
} from '../../../../src/protocol/records/index.ts';
import { assertProtocolError, assertRejectsProtocolError, withPayload } from './helpers.ts';

const codecs: [string, CompressionType][] = [
  ['none', Compression.none],
  ['gzip', Compression.gzip],
  ['snappy', Compression.snappy],
  ['lz4', Compression.lz4],
  ['zstd', Compression.zstd],
];

const T0 = 1_700_000_000_000n;

const inputs: RecordInput[] = [
  { key: Buffer.from('key-0'), value: Buffer.from('value-0'), timestamp: T0 },
  { key: null, value: Buffer.from('null key'), timestamp: T0 + 5n },
  { key: Buffer.from('tombstone'), value: null, timestamp: T0 - 3n }, // earlier than base: negative delta
  { key: null, value: null, timestamp: T0 + 1_000_000_000_000n }, // delta beyond int32
  {
    key: Buffer.alloc(0),
    value: Buffer.alloc(0),
    timestamp: T0,
    headers: [
      { key: 'trace-id', value: Buffer.from('abc') },
      { key: 'null-value', value: null },
      { key: '', value: Buffer.alloc(0) },
      { key: 'ünïcødé ✓', value: Buffer.from([0, 1, 2, 255]) },
      { key: 'trace-id', value: Buffer.from('duplicate keys are kept in order') },
    ],
  },
  { key: Buffer.from('big'), value: Buffer.alloc(200_000, 7), timestamp: T0 + 1n },
];

function expectRecords(decoded: Awaited<ReturnType<typeof decodeRecords>>, baseOffset: bigint): void {
  assert.equal(decoded.length, inputs.length);
  decoded.forEach((r, i) => {
    const input = inputs[i]!;
    assert.equal(r.offset, baseOffset + BigInt(i));
    assert.equal(r.timestamp, input.timestamp);
    assert.deepEqual(r.key, input.key);
    assert.deepEqual(r.value, input.value);
    assert.deepEqual(r.headers, input.headers ?? []);
    assert.equal(r.attributes, 0);
  });
}

for (const [name, codec] of codecs) {
  test(`${name}: build and decode round trip (async and sync)`, async () => {
    const options = { records: inputs, baseOffset: 1000n, compression: codec };
    const batch = await buildRecordBatch(options);
    const batchSync = buildRecordBatchSync(options);
    for (const b of [batch, batchSync]) {
      assert.equal(verifyBatchCrc(b), true);
      const h = readBatchHeader(b);
      assert.equal(compressionOf(h.attributes), codec);
      assert.equal(h.recordCount, inputs.length);
      assert.equal(h.lastOffsetDelta, inputs.length - 1);
      assert.equal(h.baseTimestamp, T0);
      assert.equal(h.maxTimestamp, T0 + 1_000_000_000_000n);
      assert.equal(h.batchLength, b.length - 12);
      expectRecords(await decodeRecords(b), 1000n);
      expectRecords(decodeRecordsSync(b), 1000n);
    }
    if (codec === Compression.none) assert.deepEqual(batch, batchSync);
    else assert.ok(batch.length < 100_000, 'compressed');
  });

  test(`${name}: empty batch`, async () => {
    const batch = await buildRecordBatch({ records: [], compression: codec });
    const h = readBatchHeader(batch);
    assert.equal(h.recordCount, 0);
    assert.equal(h.lastOffsetDelta, 0);
    assert.equal(h.baseTimestamp, -1n);
    assert.equal(h.maxTimestamp, -1n);
    assert.deepEqual(await decodeRecords(batch), []);
    assert.deepEqual(decodeRecordsSync(batch), []);
  });
}

test('uncompressed empty batch is exactly the 61-byte header', () => {
  assert.equal(buildRecordBatchSync({ records: [] }).length, 61);
});

test('an emptied (compacted) batch keeps its lastOffsetDelta', () => {
  const batch = buildRecordBatchSync({ records: [], baseOffset: 50n, lastOffsetDelta: 9 });
  assert.equal(readBatchHeader(batch).lastOffsetDelta, 9);
  assert.deepEqual(decodeRecordsSync(batch), []);
  assertProtocolError(
    () => buildRecordBatchSync({ records: inputs, lastOffsetDelta: 2 }),
    ProtocolErrorCodes.unencodable,
  );
});

test('builder sets producer fields and attribute bits', () => {
  const batch = buildRecordBatchSync({
    records: [{ key: null, value: Buffer.from('x'), timestamp: 5n }],
    producerId: 123_456_789_012n,
    producerEpoch: 32767,
    baseSequence: 2_147_483_647,
    partitionLeaderEpoch: 9,
    transactional: true,
  });
  const h = readBatchHeader(batch);
  assert.equal(h.producerId, 123_456_789_012n);
  assert.equal(h.producerEpoch, 32767);
  assert.equal(h.baseSequence, 2_147_483_647);
  assert.equal(h.partitionLeaderEpoch, 9);
  assert.equal(isTransactional(h.attributes), true);
  assert.equal(isControl(h.attributes), false);
  const defaults = readBatchHeader(buildRecordBatchSync({ records: [{ key: null, value: null }] }));
  assert.equal(defaults.producerId, -1n);
  assert.equal(defaults.producerEpoch, -1);
  assert.equal(defaults.baseSequence, -1);
  assert.equal(defaults.partitionLeaderEpoch, -1);
  assert.equal(defaults.baseOffset, 0n);
  assert.equal(defaults.attributes, 0);
});

test('builder: records without a timestamp get the batch timestamp, else the current time', () => {
  const before = BigInt(Date.now());
  const [r] = decodeRecordsSync(buildRecordBatchSync({ records: [{ key: null, value: null }] }));
  assert.ok(r!.timestamp >= before && r!.timestamp <= BigInt(Date.now()));
  const records = decodeRecordsSync(
    buildRecordBatchSync({
      timestamp: 77n,
      records: [
        { key: null, value: null },
        { key: null, value: null },
      ],
    }),
  );
  assert.deepEqual(
    records.map((x) => x.timestamp),
    [77n, 77n],
  );
});

test('LogAppendTime batches report maxTimestamp for every record', () => {
  const batch = buildRecordBatchSync({
    records: inputs.slice(0, 3),
    timestampType: 1,
    logAppendTime: 9_999n,
  });
  const h = readBatchHeader(batch);
  assert.equal(timestampTypeOf(h.attributes), 1);
  assert.equal(h.maxTimestamp, 9_999n);
  for (const r of decodeRecordsSync(batch)) assert.equal(r.timestamp, 9_999n);
});

test('builder rejects values that do not fit their fields', () => {
  const records = [{ key: null, value: null }];
  assertProtocolError(() => buildRecordBatchSync({ records, producerEpoch: 40_000 }), ProtocolErrorCodes.unencodable);
  assertProtocolError(() => buildRecordBatchSync({ records, baseSequence: 2 ** 31 }), ProtocolErrorCodes.unencodable);
  assertProtocolError(() => buildRecordBatchSync({ records, producerId: 2n ** 63n }), ProtocolErrorCodes.unencodable);
  assertProtocolError(
    () => buildRecordBatchSync({ records, compression: 6 as CompressionType }),
    ProtocolErrorCodes.unencodable,
  );
});

test('control batch: commit and abort markers', () => {
  for (const type of ['commit', 'abort'] as const) {
    const batch = buildControlBatch({
      type,
      producerId: 99n,
      producerEpoch: 4,
      coordinatorEpoch: 12,
      timestamp: T0,
      baseOffset: 500n,
      partitionLeaderEpoch: 3,
    });
    const { header, records } = decodeBatchSync(batch);
    assert.equal(isControl(header.attributes), true);
    assert.equal(isTransactional(header.attributes), true);
    assert.equal(header.producerId, 99n);
    assert.equal(header.producerEpoch, 4);
    assert.equal(header.baseSequence, -1);
    assert.equal(header.partitionLeaderEpoch, 3);
    assert.equal(header.maxTimestamp, T0);
    assert.equal(records.length, 1);
    assert.equal(records[0]!.offset, 500n);
    assert.deepEqual(records[0]!.key, Buffer.from([0, 0, 0, type === 'commit' ? 1 : 0]));
    assert.deepEqual(records[0]!.value, Buffer.from([0, 0, 0, 0, 0, 12]));
    assert.deepEqual(readControlRecord(records[0]!), {
      type,
      typeId: type === 'commit' ? 1 : 0,
      version: 0,
      coordinatorEpoch: 12,
    });
  }
});

test('readControlRecord: unknown types, newer versions, malformed keys', () => {
  assert.deepEqual(readControlRecord({ key: Buffer.from([0, 0, 0, 2]), value: Buffer.from('whatever') }), {
    type: 'unknown',
    typeId: 2,
    version: 0,
    coordinatorEpoch: -1,
  });
  assert.equal(
    readControlRecord({ key: Buffer.from([0, 1, 0, 1, 9]), value: Buffer.from([0, 1, 0, 0, 0, 7, 1, 2]) })
      .coordinatorEpoch,
    7,
  );
  assertProtocolError(() => readControlRecord({ key: null, value: null }), ProtocolErrorCodes.invalid);
  assertProtocolError(
    () => readControlRecord({ key: Buffer.from([0, 0, 0]), value: null }),
    ProtocolErrorCodes.invalid,
  );
  assertProtocolError(() => readControlRecord({ key: Buffer.from([0xff, 0xff, 0, 1]), value: null }));
  assertProtocolError(() => readControlRecord({ key: Buffer.from([0, 0, 0, 1]), value: Buffer.from([0, 0, 0]) }));
});

test('raw (unframed) snappy batches decode', async () => {
  const plain = buildRecordBatchSync({ records: inputs, baseOffset: 7n });
  const batch = withPayload(plain, snappy.compressSync(plain.subarray(61)), Compression.snappy);
  expectRecords(await decodeRecords(batch), 7n);
  expectRecords(decodeRecordsSync(batch), 7n);
});

test('decode rejects a CRC mismatch unless verification is off', async () => {
  const batch = buildRecordBatchSync({ records: inputs });
  batch[100]! ^= 0xff;
  assertProtocolError(() => decodeRecordsSync(batch), ProtocolErrorCodes.corruptRecord);
  await assertRejectsProtocolError(() => decodeRecords(batch), ProtocolErrorCodes.corruptRecord);
});

test('decode validates record count, truncation and trailing bytes', async () => {
  const batch = buildRecordBatchSync({ records: inputs.slice(0, 3) });
  const payload = batch.subarray(61);

  // More records declared than present.
  const tooMany = Buffer.from(batch);
  tooMany.writeInt32BE(4, 57);
  tooMany.writeInt32BE(3, 23);
  assertProtocolError(() => decodeRecordsSync(withPayload(tooMany, payload)), ProtocolErrorCodes.truncated);

  // Fewer records declared than present: trailing bytes.
  const fewer = Buffer.from(batch);
  fewer.writeInt32BE(2, 57);
  assertProtocolError(() => decodeRecordsSync(withPayload(fewer, payload)), ProtocolErrorCodes.invalid, /follow/);

  // Count larger than lastOffsetDelta allows.
  const overCount = Buffer.from(batch);
  overCount.writeInt32BE(3, 57);
  overCount.writeInt32BE(1, 23);
  assertProtocolError(() => decodeRecordsSync(withPayload(overCount, payload)), ProtocolErrorCodes.invalid);

  // A record truncated mid-way.
  assertProtocolError(() => decodeRecordsSync(withPayload(batch, payload.subarray(0, payload.length - 2))));

  // Trailing garbage after the last record, and inside a compressed payload.
  assertProtocolError(
    () => decodeRecordsSync(withPayload(batch, Buffer.concat([payload, Buffer.from([0])]))),
    ProtocolErrorCodes.invalid,
    /follow/,
  );
  const gz = buildRecordBatchSync({ records: inputs.slice(0, 3), compression: Compression.gzip });
  const { gzipSync } = await import('node:zlib');
  await assertRejectsProtocolError(
    () => decodeRecords(withPayload(gz, gzipSync(Buffer.concat([payload, Buffer.from('junk')])))),
    ProtocolErrorCodes.invalid,
  );

  // The buffer must be exactly one batch.
  assertProtocolError(() => decodeRecordsSync(batch.subarray(0, batch.length - 1)), ProtocolErrorCodes.truncated);
  assertProtocolError(() => decodeRecordsSync(Buffer.concat([batch, batch])), ProtocolErrorCodes.invalid);
});

test('a record whose length disagrees with its fields is rejected', () => {
  // One record: length 7 = attributes(1) + ts(1) + offset(1) + key -1 (1) + value -1 (1) + headers 0 (1) = 6.
  const good = Buffer.from([12, 0, 0, 0, 1, 1, 0]);
  const batch = buildRecordBatchSync({ records: [{ key: null, value: null, timestamp: 0n }] });
  assert.deepEqual(batch.subarray(61), good);
  assert.equal(decodeRecordsSync(batch).length, 1);
  const longer = Buffer.from([14, 0, 0, 0, 1, 1, 0, 0]); // declares 7, fields take 6
  assertProtocolError(() => decodeRecordsSync(withPayload(batch, longer)), ProtocolErrorCodes.invalid, /declares/);
  const negative = Buffer.from([1, 0, 0, 0, 1, 1, 0]); // length -1
  assertProtocolError(() => decodeRecordsSync(withPayload(batch, negative)), ProtocolErrorCodes.invalid);
  const badKey = Buffer.from([12, 0, 0, 0, 3, 1, 0]); // key length -2
  assertProtocolError(() => decodeRecordsSync(withPayload(batch, badKey)), ProtocolErrorCodes.invalid);
  const badHeaderKey = Buffer.from([14, 0, 0, 0, 1, 1, 2, 1]); // one header, key length -1
  assertProtocolError(() => decodeRecordsSync(withPayload(batch, badHeaderKey)));
  const offsetPastLast = Buffer.from([12, 0, 0, 2, 1, 1, 0]); // offsetDelta 1 > lastOffsetDelta 0
  assertProtocolError(() => decodeRecordsSync(withPayload(batch, offsetPastLast)), ProtocolErrorCodes.invalid);
});

test('decodeBatch returns the header too', async () => {
  const batch = buildRecordBatchSync({ records: inputs.slice(0, 2), baseOffset: 3n });
  const { header, records } = await decodeBatch(batch);
  assert.equal(header.baseOffset, 3n);
  assert.equal(records.length, 2);
});
