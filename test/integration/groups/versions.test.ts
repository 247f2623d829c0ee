// Every version of every group coordinator API, sent over a real socket with the generated
// codecs: each request decodes on the broker and each response encodes at that version (a field
// the version cannot carry would fail the encoder and come back as UNKNOWN_SERVER_ERROR), with
// the errors Kafka gives at that version (KIP-394's MEMBER_ID_REQUIRED only from JoinGroup v4).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import { KafkaClient } from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { randomTopic } from './helpers.ts';

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

test('group APIs at every version: requests decode, responses encode, version-specific errors', async (t) => {
  const broker = await startBroker({
    overrides: { 'offsets.topic.num.partitions': '3', 'group.initial.rebalance.delay.ms': '0' },
  });
  const client = new KafkaClient({ bootstrap: broker.bootstrap, clientId: 'versions-it' });
  t.after(async () => {
    client.close();
    await broker.close();
  });
  const conn = await client.connect();
  const topic = randomTopic('versions');
  await conn.request(ApiKey.CreateTopics, {
    topics: [{ name: topic, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 5000,
  });

  for (const v of range(0, 6)) {
    const r = await conn.request(
      ApiKey.FindCoordinator,
      v,
      v >= 4 ? { keyType: 0, coordinatorKeys: ['a', 'b'] } : { key: 'a', ...(v >= 1 ? { keyType: 1 } : {}) },
    );
    if (v >= 4)
      assert.deepEqual(
        r.coordinators.map((c) => [c.key, c.errorCode, c.nodeId]),
        [
          ['a', 0, 1],
          ['b', 0, 1],
        ],
      );
    else assert.deepEqual([r.errorCode, r.nodeId], [0, 1], `FindCoordinator v${v}`);
  }

  const protocols = [{ name: 'range', metadata: Buffer.from([0, 0, 0, 0, 0, 0]) }];
  for (const v of range(0, 9)) {
    const groupId = `g-join-v${v}`;
    const base = {
      groupId,
      sessionTimeoutMs: 10_000,
      memberId: '',
      protocolType: 'consumer',
      protocols,
      ...(v >= 1 ? { rebalanceTimeoutMs: 10_000 } : {}),
    };
    let join = await conn.request(ApiKey.JoinGroup, v, base);
    if (v >= 4) {
      assert.equal(join.errorCode, ErrorCode.MEMBER_ID_REQUIRED, `JoinGroup v${v}`);
      join = await conn.request(ApiKey.JoinGroup, v, { ...base, memberId: join.memberId });
    }
    assert.equal(join.errorCode, ErrorCode.NONE, `JoinGroup v${v}`);
    assert.equal(join.generationId, 1);
    assert.equal(join.leader, join.memberId);
    assert.equal(join.protocolName, 'range');
    if (v >= 7) assert.equal(join.protocolType, 'consumer');
    const syncVersion = Math.min(v, 5);
    const sync = await conn.request(ApiKey.SyncGroup, syncVersion, {
      groupId,
      generationId: 1,
      memberId: join.memberId,
      ...(syncVersion >= 5 ? { protocolType: 'consumer', protocolName: 'range' } : {}),
      assignments: [{ memberId: join.memberId, assignment: Buffer.from('A') }],
    });
    assert.equal(sync.errorCode, ErrorCode.NONE, `SyncGroup v${syncVersion}`);
    assert.equal(sync.assignment.toString(), 'A');
    for (const hv of range(0, 4)) {
      const hb = await conn.request(ApiKey.Heartbeat, hv, { groupId, generationId: 1, memberId: join.memberId });
      assert.equal(hb.errorCode, ErrorCode.NONE, `Heartbeat v${hv}`);
    }
    const described = await conn.request(ApiKey.DescribeGroups, Math.min(v, 5), { groups: [groupId] });
    assert.equal(described.groups[0]?.groupState, 'Stable');
    assert.equal(described.groups[0]?.members[0]?.memberAssignment.toString(), 'A');
    const leaveVersion = Math.min(v, 5);
    const leave = await conn.request(
      ApiKey.LeaveGroup,
      leaveVersion,
      leaveVersion >= 3 ? { groupId, members: [{ memberId: join.memberId }] } : { groupId, memberId: join.memberId },
    );
    assert.equal(leave.errorCode, ErrorCode.NONE, `LeaveGroup v${leaveVersion}`);
    if (leaveVersion >= 3) assert.equal(leave.members[0]?.errorCode, ErrorCode.NONE);
  }

  for (const v of range(0, 9)) {
    const groupId = `g-offsets-v${v}`;
    const commit = await conn.request(ApiKey.OffsetCommit, v, {
      groupId,
      topics: [
        { name: topic, partitions: [{ partitionIndex: 1, committedOffset: BigInt(v + 10), committedMetadata: 'm' }] },
      ],
    });
    assert.equal(commit.topics[0]?.partitions[0]?.errorCode, ErrorCode.NONE, `OffsetCommit v${v}`);
  }
  for (const v of range(0, 9)) {
    const groupId = `g-offsets-v${v}`;
    if (v >= 8) {
      const r = await conn.request(ApiKey.OffsetFetch, v, {
        groups: [
          { groupId, topics: null },
          { groupId: 'g-offsets-v0', topics: [{ name: topic, partitionIndexes: [0, 1] }] },
        ],
      });
      assert.equal(r.groups[0]?.topics[0]?.partitions[0]?.committedOffset, BigInt(v + 10), `OffsetFetch v${v}`);
      assert.deepEqual(
        r.groups[1]?.topics[0]?.partitions.map((p) => p.committedOffset),
        [-1n, 10n],
      );
    } else {
      const r = await conn.request(ApiKey.OffsetFetch, v, {
        groupId,
        topics: [{ name: topic, partitionIndexes: [1] }],
      });
      assert.equal(r.topics[0]?.partitions[0]?.committedOffset, BigInt(v + 10), `OffsetFetch v${v}`);
    }
  }
  const del = await conn.request(ApiKey.OffsetDelete, 0, {
    groupId: 'g-offsets-v1',
    topics: [{ name: topic, partitions: [{ partitionIndex: 1 }] }],
  });
  assert.equal(del.errorCode, ErrorCode.NONE);

  for (const v of range(0, 5)) {
    const r = await conn.request(ApiKey.ListGroups, v, {
      ...(v >= 4 ? { statesFilter: ['Empty'] } : {}),
      ...(v >= 5 ? { typesFilter: ['classic'] } : {}),
    });
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert.ok(
      r.groups.some((g) => g.groupId === 'g-offsets-v3'),
      `ListGroups v${v}`,
    );
    if (v >= 4) assert.equal(r.groups[0]?.groupState, 'Empty');
    if (v >= 5) assert.equal(r.groups[0]?.groupType, 'classic');
  }
  for (const v of range(0, 2)) {
    const r = await conn.request(ApiKey.DeleteGroups, v, { groupsNames: [`g-offsets-v${v}`, 'missing'] });
    assert.deepEqual(
      r.results.map((x) => x.errorCode),
      [ErrorCode.NONE, ErrorCode.GROUP_ID_NOT_FOUND],
      `DeleteGroups v${v}`,
    );
  }

  for (const v of range(0, 1)) {
    const groupId = `g-848-v${v}`;
    const r = await conn.request(ApiKey.ConsumerGroupHeartbeat, v, {
      groupId,
      memberId: v === 0 ? '' : 'member-1',
      memberEpoch: 0,
      rebalanceTimeoutMs: 10_000,
      subscribedTopicNames: v === 0 ? [topic] : null,
      ...(v >= 1 ? { subscribedTopicRegex: 'versions-.*' } : {}),
      topicPartitions: [],
    });
    assert.equal(r.errorCode, ErrorCode.NONE, `ConsumerGroupHeartbeat v${v}: ${r.errorMessage}`);
    assert.equal(r.memberEpoch, 1);
    assert.equal(r.assignment?.topicPartitions[0]?.partitions.length, 2);
    const d = await conn.request(ApiKey.ConsumerGroupDescribe, 0, { groupIds: [groupId] });
    assert.equal(d.groups[0]?.groupState, 'Stable');
    assert.equal(d.groups[0]?.members[0]?.assignment.topicPartitions[0]?.topicName, topic);
  }
});
