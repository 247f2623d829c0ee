import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { ProtocolErrorCodes } from '../../../../src/protocol/errors.ts';
import {
  buildControlBatch,
  buildRecordBatchSync,
  Compression,
  iterateBatches,
} from '../../../../src/protocol/records/index.ts';
import { assertProtocolError, fixCrc, legacyMessage } from './helpers.ts';

const require = createRequire(import.meta.url);

const a = buildRecordBatchSync({ records: [{ key: null, value: Buffer.from('a') }], baseOffset: 0n });
const b = buildRecordBatchSync({
  records: [
    { key: null, value: Buffer.from('b') },
    { key: null, value: Buffer.from('c') },
  ],
  baseOffset: 1n,
  compression: Compression.gzip,
});
const c = buildControlBatch({ type: 'commit', producerId: 1n, producerEpoch: 0, coordinatorEpoch: 0, timestamp: 1n });

test('iterateBatches yields offset, size and header of each batch', () => {
  const buf = Buffer.concat([a, b, c]);
  const entries = [...iterateBatches(buf)];
  assert.deepEqual(
    entries.map((e) => [e.offset, e.size, e.header.recordCount]),
    [
      [0, a.length, 1],
      [a.length, b.length, 2],
      [a.length + b.length, c.length, 1],
    ],
  );
  assert.deepEqual([...iterateBatches(Buffer.alloc(0))], []);
});

test('iterateBatches: a partial last batch is an error, or the end with partialTail "stop"', () => {
  const buf = Buffer.concat([a, b]);
  for (const cut of [1, 11, 12, 16, 17, 60, 61, b.length - 1]) {
    const partial = buf.subarray(0, a.length + cut);
    assertProtocolError(() => [...iterateBatches(partial)], ProtocolErrorCodes.truncated);
    assert.deepEqual(
      [...iterateBatches(partial, { partialTail: 'stop' })].map((e) => e.offset),
      [0],
    );
  }
});

test('iterateBatches checks CRCs unless told not to', () => {
  const bad = Buffer.concat([a, b]);
  bad[a.length + 70]! ^= 1;
  assertProtocolError(() => [...iterateBatches(bad)], ProtocolErrorCodes.corruptRecord, new RegExp(`at ${a.length}`));
  assert.equal([...iterateBatches(bad, { verifyCrc: false })].length, 2);
});

test('iterateBatches validates header fields', () => {
  const cases: [string, (buf: Buffer) => void, string][] = [
    ['batchLength below minimum', (buf) => buf.writeInt32BE(10, 8), ProtocolErrorCodes.invalid],
    ['batchLength 0x7fffffff', (buf) => buf.writeInt32BE(0x7fffffff, 8), ProtocolErrorCodes.truncated],
    ['negative batchLength', (buf) => buf.writeInt32BE(-1, 8), ProtocolErrorCodes.invalid],
    ['unknown magic', (buf) => buf.writeInt8(5, 16), ProtocolErrorCodes.invalid],
    ['codec 7', (buf) => buf.writeInt16BE(7, 21), ProtocolErrorCodes.compression],
    ['negative record count', (buf) => buf.writeInt32BE(-1, 57), ProtocolErrorCodes.invalid],
    ['record count 0x7fffffff', (buf) => buf.writeInt32BE(0x7fffffff, 57), ProtocolErrorCodes.invalid],
    ['negative lastOffsetDelta', (buf) => buf.writeInt32BE(-1, 23), ProtocolErrorCodes.invalid],
    [
      'count over lastOffsetDelta + 1',
      (buf) => {
        buf.writeInt32BE(0, 23);
        buf.writeInt32BE(2, 57);
      },
      ProtocolErrorCodes.invalid,
    ],
  ];
  for (const [name, mutate, code] of cases) {
    const buf = Buffer.from(a);
    mutate(buf);
    if (code !== ProtocolErrorCodes.truncated && buf.readInt32BE(8) >= 49) fixCrc(buf);
    const err = assertProtocolError(() => [...iterateBatches(buf)]);
    assert.equal(err.code, code, `${name}: ${err.message}`);
  }
});

test('iterateBatches names legacy magic 0/1 message sets instead of misparsing them', () => {
  for (const magic of [0, 1] as const) {
    const small = legacyMessage(magic, Buffer.from('v'));
    const large = legacyMessage(magic, Buffer.alloc(500, 1));
    for (const buf of [small, large, Buffer.concat([a, large])]) {
      assertProtocolError(
        () => [...iterateBatches(buf)],
        ProtocolErrorCodes.unsupportedVersion,
        new RegExp(`magic ${magic}: legacy magic 0/1 message sets are not supported`),
      );
    }
  }
});

test('a message set produced by kafkajs (v0 and v1 messages) is reported as legacy', () => {
  const MessageSet = require('kafkajs/src/protocol/messageSet/index.js') as (options: {
    messageVersion: number;
    compression: number;
    entries: { key: string | null; value: string; timestamp?: number }[];
  }) => { buffer: Buffer };
  for (const messageVersion of [0, 1]) {
    const { buffer } = MessageSet({
      messageVersion,
      compression: 0,
      entries: [
        { key: 'k', value: 'v', timestamp: 1 },
        { key: null, value: 'w', timestamp: 2 },
      ],
    });
    assertProtocolError(
      () => [...iterateBatches(buffer)],
      ProtocolErrorCodes.unsupportedVersion,
      new RegExp(`magic ${messageVersion}`),
    );
  }
});
