/**
 * A corrupt record batch below the log end (bit rot, a bad copy) must not keep the broker from
 * starting or producer state from being rebuilt from the log (no snapshot at the log end, e.g. one that
 * could not be written on a full disk): the replay stops there with a warning, the broker serves,
 * reads that reach the damage fail with KAFKA_STORAGE_ERROR instead of skipping it, and appends
 * continue at the log end.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { startBroker } from '../../../src/broker.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import type { FetchRequestInput, FetchResponse } from '../../../src/protocol/messages/001-fetch.ts';
import type { DescribeProducersResponse } from '../../../src/protocol/messages/061-describe-producers.ts';
import { buildRecordBatchSync, iterateBatches } from '../../../src/protocol/records/index.ts';
import { ApiKeys, createTopic, produceBatch, RawConnection } from './helpers.ts';

function batchOf(i: number): Buffer {
  return buildRecordBatchSync({
    records: [{ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), timestamp: BigInt(Date.now()) }],
  });
}

async function fetchError(conn: RawConnection, topic: string, offset: bigint): Promise<number> {
  const res = await conn.request<FetchResponse>(ApiKeys.Fetch, 11, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: offset, partitionMaxBytes: 100 }] }],
    forgottenTopicsData: [],
    rackId: '',
  } satisfies FetchRequestInput);
  return res.responses[0]!.partitions[0]!.errorCode;
}

test('a corrupt batch below the log end does not keep the broker from starting when producer state is replayed', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-corrupt-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const warnings: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim() !== '') warnings.push(JSON.parse(l).msg);
      done();
    },
  });
  let broker = await startBroker({ dataDir, logger: pino({ level: 'warn' }, sink) });
  let conn = await RawConnection.connect(broker.bootstrap);
  await createTopic(conn, 'rot', 1);
  for (let i = 0; i < 200; i++) assert.equal((await produceBatch(conn, 9, 'rot', 0, batchOf(i))).errorCode, 0);
  conn.close();
  await broker.close();

  // No producer snapshot (as when it could not be written), and a batch in the middle damaged.
  const dir = join(dataDir, 'rot-0');
  for (const f of await readdir(dir)) if (f.endsWith('.snapshot')) await rm(join(dir, f));
  const logPath = join(dir, '00000000000000000000.log');
  const data = await readFile(logPath);
  const victim = [...iterateBatches(data)][100]!;
  data.writeInt32BE(3, victim.offset + 8);
  await writeFile(logPath, data);

  broker = await startBroker({ dataDir, logger: pino({ level: 'warn' }, sink) });
  t.after(() => broker.close());
  conn = await RawConnection.connect(broker.bootstrap);
  t.after(() => conn.close());
  // Producer state is rebuilt when first needed (here DescribeProducers), not at start.
  const described = await conn.request<DescribeProducersResponse>(61, 0, {
    topics: [{ name: 'rot', partitionIndexes: [0] }],
  });
  assert.equal(described.topics[0]!.partitions[0]!.errorCode, 0);
  assert.ok(
    warnings.some((w) => /producer state/.test(w)),
    `a warning names the replay that stopped: ${JSON.stringify(warnings)}`,
  );
  assert.equal(await fetchError(conn, 'rot', 0n), 0, 'data before the damage is served');
  assert.equal(await fetchError(conn, 'rot', 100n), ErrorCode.KAFKA_STORAGE_ERROR, 'the damage is not skipped');
  const p = await produceBatch(conn, 9, 'rot', 0, batchOf(200));
  assert.equal(p.errorCode, 0);
  assert.equal(p.baseOffset, 200n, 'appends continue at the log end');
});
