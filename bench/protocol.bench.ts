/**
 * Wire codec throughput: `node bench/protocol.bench.ts`.
 *
 * Encodes and decodes whole request/response frames (header + body) with the generated codecs:
 *   - a Produce request (v9 flexible, v3 classic) carrying one 1 MiB batch of 1 KiB records,
 *   - a Fetch response (v12 flexible, v11 classic) carrying 1 MiB of batches across 4 partitions
 *     (16 batches of 16 x 1 KiB records per partition, as a log segment slice would hold them).
 *
 * "encode (zero-copy)" stops at the writer's chunk list, what the network layer hands to writev:
 * record batches are referenced, never copied, so its MB/s is an effective rate, not bytes moved.
 * "encode + toBuffer" also joins the chunks into one Buffer (one copy of the frame).
 * "decode (zero-copy)" reads header + body; records stay views into the frame.
 * "decode + CRC-32C walk" adds the batch walk and CRC check the Produce path performs.
 * MB/s is 10^6 frame bytes per second. BENCH_SECONDS sets the time per figure (default 2).
 */
import { randomFillSync } from 'node:crypto';
import { readProduceRequest, writeProduceRequest } from '../src/protocol/messages/000-produce.ts';
import { readFetchResponse, writeFetchResponse } from '../src/protocol/messages/001-fetch.ts';
import { requestHeaderVersion, responseHeaderVersion } from '../src/protocol/messages/index.ts';
import { readRequestHeader, writeRequestHeader } from '../src/protocol/messages/request-header.ts';
import { readResponseHeader, writeResponseHeader } from '../src/protocol/messages/response-header.ts';
import { Reader } from '../src/protocol/reader.ts';
import { buildRecordBatchSync, iterateBatches, type RecordInput } from '../src/protocol/records/index.ts';
import { Writer } from '../src/protocol/writer.ts';

const KIB = 1024;
const MIB = 1024 * KIB;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const PRODUCE = 0;
const FETCH = 1;

let sink = 0;

/** Warms up, then runs `fn` for about SECONDS; returns operations per second. */
function measure(fn: () => void): number {
  const warmUntil = process.hrtime.bigint() + 300_000_000n;
  while (process.hrtime.bigint() < warmUntil) fn();
  const start = process.hrtime.bigint();
  const stop = start + BigInt(Math.round(SECONDS * 1e9));
  let ops = 0;
  let now = start;
  while (now < stop) {
    for (let i = 0; i < 8; i++) fn();
    ops += 8;
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - start) / 1e9);
}

function report(name: string, frameBytes: number, opsPerSecond: number): void {
  const mbps = (frameBytes * opsPerSecond) / 1e6;
  console.log(`${name.padEnd(48)} ${mbps.toFixed(0).padStart(8)} MB/s ${opsPerSecond.toFixed(0).padStart(9)} ops/s`);
}

function records(count: number, first: number): RecordInput[] {
  const value = randomFillSync(Buffer.allocUnsafe(KIB));
  return Array.from({ length: count }, (_, i) => ({
    key: Buffer.from(`key-${first + i}`),
    value,
    timestamp: 1_700_000_000_000n + BigInt(first + i),
  }));
}

function frameOf(w: Writer): Buffer {
  return w.toBuffer();
}

// ---------------------------------------------------------------------------------------------
// Produce

const produceBatch = buildRecordBatchSync({ records: records(MIB / KIB, 0) });

for (const version of [9, 3]) {
  const headerVersion = requestHeaderVersion(PRODUCE, version);
  const header = { requestApiKey: PRODUCE, requestApiVersion: version, correlationId: 42, clientId: 'bench' };
  const body = {
    transactionalId: null,
    acks: -1,
    timeoutMs: 30_000,
    topicData: [{ name: 'bench-topic', partitionData: [{ index: 0, records: produceBatch }] }],
  };
  const encode = (): Writer => {
    const w = new Writer(256);
    writeRequestHeader(w, headerVersion, header);
    writeProduceRequest(w, version, body);
    return w;
  };
  const frame = frameOf(encode());
  const decode = () => {
    const r = new Reader(frame);
    const h = readRequestHeader(r, headerVersion);
    return { h, body: readProduceRequest(r, version) };
  };
  report(
    `Produce v${version} request encode (zero-copy)`,
    frame.length,
    measure(() => (sink ^= encode().toChunks().length)),
  );
  report(
    `Produce v${version} request encode + toBuffer`,
    frame.length,
    measure(() => (sink ^= encode().toBuffer().length)),
  );
  report(
    `Produce v${version} request decode (zero-copy)`,
    frame.length,
    measure(() => (sink ^= decode().body.topicData.length)),
  );
  report(
    `Produce v${version} request decode + CRC-32C walk`,
    frame.length,
    measure(() => {
      const { body: decoded } = decode();
      for (const topic of decoded.topicData) {
        for (const p of topic.partitionData) {
          if (p.records !== null) for (const entry of iterateBatches(p.records)) sink ^= entry.size;
        }
      }
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Fetch

const PARTITIONS = 4;
const BATCHES_PER_PARTITION = 16;
const RECORDS_PER_BATCH = MIB / KIB / PARTITIONS / BATCHES_PER_PARTITION;
const partitionRecords = Array.from({ length: PARTITIONS }, (_, p) => {
  const batches: Buffer[] = [];
  for (let b = 0; b < BATCHES_PER_PARTITION; b++) {
    const baseOffset = BigInt(b * RECORDS_PER_BATCH);
    batches.push(
      buildRecordBatchSync({
        records: records(RECORDS_PER_BATCH, p * 10_000 + b * 100),
        baseOffset,
        partitionLeaderEpoch: 0,
      }),
    );
  }
  return Buffer.concat(batches);
});

for (const version of [12, 11]) {
  const headerVersion = responseHeaderVersion(FETCH, version);
  const body = {
    throttleTimeMs: 0,
    errorCode: 0,
    sessionId: 7,
    responses: [
      {
        topic: 'bench-topic',
        partitions: partitionRecords.map((records, partitionIndex) => ({
          partitionIndex,
          errorCode: 0,
          highWatermark: BigInt(BATCHES_PER_PARTITION * RECORDS_PER_BATCH),
          lastStableOffset: BigInt(BATCHES_PER_PARTITION * RECORDS_PER_BATCH),
          logStartOffset: 0n,
          abortedTransactions: null,
          preferredReadReplica: -1,
          records,
        })),
      },
    ],
  };
  const encode = (): Writer => {
    const w = new Writer(256);
    writeResponseHeader(w, headerVersion, { correlationId: 42 });
    writeFetchResponse(w, version, body);
    return w;
  };
  const frame = frameOf(encode());
  const decode = () => {
    const r = new Reader(frame);
    readResponseHeader(r, headerVersion);
    return readFetchResponse(r, version);
  };
  report(
    `Fetch v${version} response encode (zero-copy)`,
    frame.length,
    measure(() => (sink ^= encode().toChunks().length)),
  );
  report(
    `Fetch v${version} response encode + toBuffer`,
    frame.length,
    measure(() => (sink ^= encode().toBuffer().length)),
  );
  report(
    `Fetch v${version} response decode (zero-copy)`,
    frame.length,
    measure(() => (sink ^= decode().responses.length)),
  );
  report(
    `Fetch v${version} response decode + CRC-32C walk`,
    frame.length,
    measure(() => {
      for (const topic of decode().responses) {
        for (const p of topic.partitions) {
          if (p.records !== null) for (const entry of iterateBatches(p.records)) sink ^= entry.size;
        }
      }
    }),
  );
}

console.log(
  `(Produce frame: 1 batch of ${MIB / KIB} x 1 KiB records, ${produceBatch.length} batch bytes; ` +
    `Fetch frame: ${PARTITIONS} partitions x ${BATCHES_PER_PARTITION} batches x ${RECORDS_PER_BATCH} records; ` +
    `node ${process.version}; ${SECONDS} s per figure; sink ${sink & 1})`,
);
