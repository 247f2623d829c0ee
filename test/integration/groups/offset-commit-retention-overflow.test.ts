// Issue 11 item 3: OffsetCommit v2-v4 with a huge retention_time_ms (2^63-1) threw a RangeError
// while encoding the record (commit time + retention overflowed int64), answered
// UNKNOWN_SERVER_ERROR, yet OffsetFetch returned the new offset until a restart, after which it
// was gone. Kafka computes expireTimestamp = commitTimestamp + retentionTime in a long; Samsa
// saturates it, so the commit succeeds and survives a restart (and never expires early).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { WireClient } from '../../helpers/wire-client.ts';
import { type BrokerProcess, randomTopic, spawnBroker } from './helpers.ts';

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

interface CommitResponse {
  topics: { name: string; partitions: { partitionIndex: number; errorCode: number }[] }[];
}
interface FetchResponse {
  topics: { partitions: { partitionIndex: number; committedOffset: bigint; errorCode: number }[] }[];
}

async function fetchOffsets(bootstrap: string, groupId: string, topic: string): Promise<bigint[]> {
  const c = await WireClient.connect(bootstrap);
  try {
    for (;;) {
      const r = await c.request<FetchResponse & { errorCode: number }>(9, 5, {
        groupId,
        topics: [{ name: topic, partitionIndexes: [0, 1, 2] }],
      });
      if (r.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      assert.equal(r.errorCode, ErrorCode.NONE);
      return r.topics[0]!.partitions.map((p) => p.committedOffset);
    }
  } finally {
    c.close();
  }
}

test('OffsetCommit v2-v4 with retention_time_ms 2^63-1 commits (saturated expiry) and the offset survives a restart', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-retention-'));
  let broker: BrokerProcess | undefined = await spawnBroker(dataDir, { 'offsets.topic.num.partitions': '2' });
  t.after(async () => {
    await broker?.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });
  const topic = randomTopic('retention');
  const c = await WireClient.connect(broker.bootstrap);
  const created = await c.request<{ topics: { errorCode: number }[] }>(19, 4, {
    topics: [{ name: topic, numPartitions: 3, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 5000,
  });
  assert.equal(created.topics[0]!.errorCode, ErrorCode.NONE);

  const groups: string[] = [];
  for (const [i, v] of [2, 3, 4].entries()) {
    const groupId = randomTopic(`retention-v${v}`);
    groups.push(groupId);
    const r = await c.request<CommitResponse>(8, v, {
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: '',
      retentionTimeMs: INT64_MAX,
      topics: [{ name: topic, partitions: [{ partitionIndex: i, committedOffset: 100n + BigInt(v) }] }],
    });
    assert.equal(r.topics[0]!.partitions[0]!.errorCode, ErrorCode.NONE, `OffsetCommit v${v}`);
  }
  // The most negative retention is accepted too (Kafka: the offset expires at the next check).
  const negative = await c.request<CommitResponse>(8, 2, {
    groupId: randomTopic('retention-negative'),
    generationIdOrMemberEpoch: -1,
    memberId: '',
    retentionTimeMs: INT64_MIN,
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, committedOffset: 5n }] }],
  });
  assert.equal(negative.topics[0]!.partitions[0]!.errorCode, ErrorCode.NONE, 'OffsetCommit v2, retention -2^63');
  c.close();

  const expected = (i: number) => [0, 1, 2].map((p) => (p === i ? 102n + BigInt(i) : -1n));
  for (const [i, groupId] of groups.entries()) {
    assert.deepEqual(await fetchOffsets(broker.bootstrap, groupId, topic), expected(i), 'before the restart');
  }

  const exit = await broker.stop('SIGTERM');
  assert.equal(exit.code, 0, broker.stderr());
  broker = await spawnBroker(dataDir, { 'offsets.topic.num.partitions': '2' });
  for (const [i, groupId] of groups.entries()) {
    assert.deepEqual(await fetchOffsets(broker.bootstrap, groupId, topic), expected(i), 'after the restart');
  }
});
