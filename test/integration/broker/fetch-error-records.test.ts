// Issue 11 item 9: a Fetch error partition carried a null record set (length -1). Kafka sends an
// empty one: its KafkaApis passes every partition of a client Fetch through
// FetchResponse.recordsOrFail, which turns null into MemoryRecords.EMPTY, and the log read that
// fails (OFFSET_OUT_OF_RANGE, storage errors) already carries MemoryRecords.EMPTY. librdkafka
// rejects a whole Fetch response whose MessageSetSize is -1 ("invalid MessageSetSize -1") and
// fetches again at once, so it never sees the error code: no auto.offset.reset, a spin on a deleted
// topic (test/integration/clients/rdkafka-fetch-errors.test.ts shows both with librdkafka 2.12).
// Here, raw frames: every kind of error partition, by name and by topic id, non-flexible and
// flexible versions, sessionless and in a fetch session, decoded from the bytes on the wire.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import type {
  FetchRequestInput,
  FetchResponse,
  FetchResponsePartitionData,
} from '../../../src/protocol/messages/001-fetch.ts';
import type { DeleteRecordsResponse } from '../../../src/protocol/messages/021-delete-records.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { ApiKeys, createTopic, produceBatch, RawConnection, randomTopic } from './helpers.ts';

let broker: RunningBroker;
let conn: RawConnection;
const topic = randomTopic('fetch-error-records');
let topicId: string;

before(async () => {
  broker = await startBroker({ logLevel: 'error' });
  conn = await RawConnection.connect(broker.bootstrap);
  topicId = await createTopic(conn, topic, 1);
  for (let i = 0; i < 4; i++) {
    const p = await produceBatch(conn, 9, topic, 0, batchOf(`v${i}`));
    assert.equal(p.errorCode, 0);
  }
  // Log start 2, log end 4: offsets 0-1 and 5+ are out of range.
  const deleted = await conn.request<DeleteRecordsResponse>(21, 2, {
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, offset: 2n }] }],
    timeoutMs: 5000,
  });
  assert.equal(deleted.topics[0]?.partitions[0]?.errorCode, 0);
});

after(async () => {
  conn.close();
  await broker.close();
});

function batchOf(value: string): Buffer {
  return buildRecordBatchSync({ records: [{ key: null, value: Buffer.from(value) }] });
}

function fetchRequest(
  partitions: { topic: string; topicId: string; partition: number; offset: bigint }[],
  session: { sessionId: number; sessionEpoch: number } = { sessionId: 0, sessionEpoch: -1 },
): FetchRequestInput {
  return {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    ...session,
    topics: partitions.map((p) => ({
      topic: p.topic,
      topicId: p.topicId,
      partitions: [{ partition: p.partition, fetchOffset: p.offset, partitionMaxBytes: 1 << 20 }],
    })),
    forgottenTopicsData: [],
    rackId: '',
  };
}

function onlyPartition(res: FetchResponse): FetchResponsePartitionData {
  assert.equal(res.errorCode, 0);
  assert.equal(res.responses.length, 1);
  const p = res.responses[0]!.partitions[0];
  assert.ok(p !== undefined);
  return p;
}

function assertEmptyRecords(p: FetchResponsePartitionData, what: string): void {
  assert.notEqual(p.records, null, `${what}: the record set is null (librdkafka: invalid MessageSetSize -1)`);
  assert.equal(p.records?.length, 0, `${what}: an empty record set`);
}

const UNKNOWN_ID = 'AQIDBAUGBwgJCgsMDQ4PEA';

test('a Fetch error partition carries an empty record set, not null, at every version (issue 11 item 9)', async () => {
  for (const version of [0, 4, 7, 11, 12, 13, 16, 17]) {
    const byId = version >= 13;
    const cases: { what: string; topic: string; topicId: string; partition: number; offset: bigint; error: number }[] =
      [
        {
          what: 'unknown topic',
          topic: byId ? '' : 'no-such-topic',
          topicId: byId ? UNKNOWN_ID : '',
          partition: 0,
          offset: 0n,
          error: byId ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        },
        {
          what: 'unknown partition',
          topic,
          topicId,
          partition: 7,
          offset: 0n,
          error: byId ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        },
        {
          what: 'offset below the log start',
          topic,
          topicId,
          partition: 0,
          offset: 1n,
          error: ErrorCode.OFFSET_OUT_OF_RANGE,
        },
        {
          what: 'offset past the log end',
          topic,
          topicId,
          partition: 0,
          offset: 100n,
          error: ErrorCode.OFFSET_OUT_OF_RANGE,
        },
      ];
    for (const c of cases) {
      const res = await conn.request<FetchResponse>(ApiKeys.Fetch, version, fetchRequest([c]));
      const p = onlyPartition(res);
      const what = `Fetch v${version}, ${c.what}`;
      assert.equal(p.errorCode, c.error, `${what}: error code`);
      assertEmptyRecords(p, what);
      if (c.error === ErrorCode.OFFSET_OUT_OF_RANGE && version >= 5) {
        assert.equal(p.highWatermark, 4n, `${what}: high watermark`);
        assert.equal(p.logStartOffset, 2n, `${what}: log start offset`);
      }
    }
  }
});

test('an error partition in an incremental fetch session carries an empty record set (issue 11 item 9)', async () => {
  const version = 12;
  const full = await conn.request<FetchResponse>(
    ApiKeys.Fetch,
    version,
    fetchRequest([{ topic, topicId, partition: 0, offset: 2n }], { sessionId: 0, sessionEpoch: 0 }),
  );
  const first = onlyPartition(full);
  assert.equal(first.errorCode, 0);
  assert.ok(full.sessionId > 0, 'a session was created');
  // The next fetch of the session moves the partition out of range.
  const incremental = await conn.request<FetchResponse>(
    ApiKeys.Fetch,
    version,
    fetchRequest([{ topic, topicId, partition: 0, offset: 100n }], {
      sessionId: full.sessionId,
      sessionEpoch: 1,
    }),
  );
  const p = onlyPartition(incremental);
  assert.equal(p.errorCode, ErrorCode.OFFSET_OUT_OF_RANGE);
  assertEmptyRecords(p, 'incremental Fetch v12, offset past the log end');
});
