// Issue 11 item 11: commits to topics that do not exist succeeded (OffsetCommit, and the admin
// client's AlterConsumerGroupOffsets, which is an OffsetCommit with generation -1). Kafka's
// KafkaApis.handleOffsetCommitRequest answers UNKNOWN_TOPIC_OR_PARTITION for every partition of
// a topic it does not know and for every partition beyond a topic's partition count, commits
// the rest, and does not call the coordinator at all when nothing is left (so no simple group is
// created). And a KIP-848 consumer that only uses assign() commits with its member id and epoch
// -1: Kafka creates a simple group (OffsetMetadataManager.validateOffsetCommit); Samsa answered
// GROUP_ID_NOT_FOUND (librdkafka 2.12 with group.protocol=consumer: "The group id does not
// exist"). Real clients where they can: @platformatic/kafka's admin, confluent-kafka-python
// (librdkafka 2.0.2) and node-rdkafka (librdkafka 2.12); raw frames for the exact codes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Admin } from '@platformatic/kafka';
import { startBroker } from '../../../src/broker.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { baseConfig, connect, disconnect, rdkafka } from '../../helpers/rdkafka.ts';
import { WireClient } from '../../helpers/wire-client.ts';
import { randomTopic, spawnBroker } from './helpers.ts';

const execFileAsync = promisify(execFile);

interface CommitResponse {
  topics: { name: string; partitions: { partitionIndex: number; errorCode: number }[] }[];
}
interface FetchResponse {
  groups: {
    groupId: string;
    errorCode: number;
    topics: { name: string; partitions: { partitionIndex: number; committedOffset: bigint }[] }[];
  }[];
}
interface ListResponse {
  groups: { groupId: string; groupState: string; groupType: string }[];
}

/** [topic, partition, error] triples, sorted. */
function results(r: CommitResponse): [string, number, number][] {
  return r.topics
    .flatMap((t) => t.partitions.map((p): [string, number, number] => [t.name, p.partitionIndex, p.errorCode]))
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
}

async function committedOffsets(c: WireClient, groupId: string, topics: [string, number[]][]) {
  const r = await c.request<FetchResponse>(9, 8, {
    groups: [{ groupId, topics: topics.map(([name, partitionIndexes]) => ({ name, partitionIndexes })) }],
  });
  assert.equal(r.groups[0]!.errorCode, ErrorCode.NONE);
  return r.groups[0]!.topics.map((t) => [t.name, t.partitions.map((p) => p.committedOffset)]);
}

async function groupsListed(c: WireClient): Promise<Map<string, [string, string]>> {
  const r = await c.request<ListResponse>(16, 5, { statesFilter: [], typesFilter: [] });
  return new Map(r.groups.map((g) => [g.groupId, [g.groupState, g.groupType]]));
}

test('OffsetCommit to topics or partitions that do not exist answers UNKNOWN_TOPIC_OR_PARTITION and commits nothing there', async (t) => {
  const broker = await startBroker({ overrides: { 'offsets.topic.num.partitions': '3' } });
  const c = await WireClient.connect(broker.bootstrap);
  t.after(async () => {
    c.close();
    await broker.close();
  });
  const topic = randomTopic('exists');
  const missing = randomTopic('missing');
  const created = await c.request<{ topics: { errorCode: number }[] }>(19, 4, {
    topics: [{ name: topic, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 5000,
  });
  assert.equal(created.topics[0]!.errorCode, ErrorCode.NONE);

  for (const v of [1, 2, 5, 8, 9]) {
    const groupId = randomTopic(`unknown-v${v}`);
    const r = await c.request<CommitResponse>(8, v, {
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: '',
      topics: [
        {
          name: missing,
          partitions: [
            { partitionIndex: 0, committedOffset: 5n },
            { partitionIndex: 1, committedOffset: 6n },
          ],
        },
        {
          name: topic,
          partitions: [
            { partitionIndex: 0, committedOffset: 7n },
            { partitionIndex: 2, committedOffset: 8n },
            { partitionIndex: -1, committedOffset: 9n },
          ],
        },
      ],
    });
    assert.deepEqual(
      results(r),
      [
        [missing, 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
        [missing, 1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
        [topic, -1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
        [topic, 0, ErrorCode.NONE],
        [topic, 2, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      ].sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : (a[1] as number) - (b[1] as number))),
      `OffsetCommit v${v}`,
    );
    assert.deepEqual(
      await committedOffsets(c, groupId, [
        [missing, [0, 1]],
        [topic, [0, 1, 2]],
      ]),
      [
        [missing, [-1n, -1n]],
        [topic, [7n, -1n, -1n]],
      ],
      `OffsetFetch after OffsetCommit v${v}`,
    );
  }

  // Nothing valid left: the coordinator is not asked, so no simple group appears.
  const nothing = randomTopic('unknown-only');
  const r = await c.request<CommitResponse>(8, 8, {
    groupId: nothing,
    generationIdOrMemberEpoch: -1,
    memberId: '',
    topics: [{ name: missing, partitions: [{ partitionIndex: 0, committedOffset: 5n }] }],
  });
  assert.deepEqual(results(r), [[missing, 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]]);
  assert.equal((await groupsListed(c)).has(nothing), false, 'a group made by a commit of nothing');
});

test('AlterConsumerGroupOffsets (@platformatic/kafka admin) and a confluent-kafka-python commit on a missing topic fail with UNKNOWN_TOPIC_OR_PARTITION', async (t) => {
  const broker = await startBroker({ overrides: { 'offsets.topic.num.partitions': '3' } });
  const admin = new Admin({ clientId: 'unknown-topic-it', bootstrapBrokers: [broker.bootstrap], retries: 1 });
  const c = await WireClient.connect(broker.bootstrap);
  t.after(async () => {
    c.close();
    await admin.close();
    await broker.close();
  });
  const topic = randomTopic('alter');
  const missing = randomTopic('alter-missing');
  await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 });
  const groupId = randomTopic('alter-g');

  await assert.rejects(
    admin.alterConsumerGroupOffsets({
      groupId,
      topics: [{ name: missing, partitionOffsets: [{ partition: 0, offset: 5n }] }],
    }),
    (err: unknown) => {
      assert.ok(apiErrors(err).has('UNKNOWN_TOPIC_OR_PARTITION'), String(err));
      return true;
    },
  );
  // The same admin call on an existing topic works.
  await admin.alterConsumerGroupOffsets({
    groupId,
    topics: [{ name: topic, partitionOffsets: [{ partition: 1, offset: 42n }] }],
  });
  assert.deepEqual(
    await committedOffsets(c, groupId, [
      [missing, [0]],
      [topic, [0, 1]],
    ]),
    [
      [missing, [-1n]],
      [topic, [-1n, 42n]],
    ],
  );

  // librdkafka 2.0.2 through confluent-kafka-python: a group-less consumer's commit.
  const script = [
    'import sys, json',
    'from confluent_kafka import Consumer, TopicPartition, KafkaException',
    "c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': sys.argv[2], 'enable.auto.commit': False})",
    'try:',
    '    r = c.commit(offsets=[TopicPartition(sys.argv[3], 0, 5)], asynchronous=False)',
    "    print(json.dumps({'error': None, 'partitions': [tp.error.name() if tp.error else None for tp in r]}))",
    'except KafkaException as e:',
    "    print(json.dumps({'error': e.args[0].name()}))",
    'c.close()',
  ].join('\n');
  const { stdout } = await execFileAsync('/usr/bin/python3', ['-c', script, broker.bootstrap, groupId, missing], {
    timeout: 30_000,
  });
  assert.deepEqual(JSON.parse(stdout), { error: 'UNKNOWN_TOPIC_OR_PART' });
});

/** The Kafka error names (apiId) anywhere in a @platformatic/kafka error and its causes. */
function apiErrors(err: unknown, into = new Set<string>()): Set<string> {
  if (typeof err !== 'object' || err === null) return into;
  const e = err as { apiId?: unknown; errors?: unknown; cause?: unknown };
  if (typeof e.apiId === 'string') into.add(e.apiId);
  const nested = Array.isArray(e.errors)
    ? e.errors
    : typeof e.errors === 'object' && e.errors !== null
      ? Object.values(e.errors)
      : [];
  for (const x of [...nested, e.cause]) apiErrors(x, into);
  return into;
}

test('a KIP-848 consumer using assign() commits with its member id and epoch -1: a simple group is created (was GROUP_ID_NOT_FOUND)', async (t) => {
  const broker = await startBroker({ overrides: { 'offsets.topic.num.partitions': '3' } });
  const c = await WireClient.connect(broker.bootstrap);
  t.after(async () => {
    c.close();
    await broker.close();
  });
  const topic = randomTopic('assign');
  await c.request(19, 4, {
    topics: [{ name: topic, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 5000,
  });
  for (const v of [8, 9]) {
    const groupId = randomTopic(`assign-v${v}`);
    // What a KIP-848 client sends before (or without) joining: its own member id (KIP-1082), -1.
    const r = await c.request<CommitResponse>(8, v, {
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: randomUUID(),
      groupInstanceId: null,
      topics: [{ name: topic, partitions: [{ partitionIndex: 1, committedOffset: 11n }] }],
    });
    assert.deepEqual(results(r), [[topic, 1, ErrorCode.NONE]], `OffsetCommit v${v}`);
    assert.deepEqual(await committedOffsets(c, groupId, [[topic, [1]]]), [[topic, [11n]]]);
    assert.deepEqual((await groupsListed(c)).get(groupId), ['Empty', 'classic']);
    // Committing again, still with epoch -1, to the (empty, simple) group works too.
    const again = await c.request<CommitResponse>(8, v, {
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: randomUUID(),
      topics: [{ name: topic, partitions: [{ partitionIndex: 1, committedOffset: 12n }] }],
    });
    assert.deepEqual(results(again), [[topic, 1, ErrorCode.NONE]]);
  }
  // An epoch of 0 or more still names a membership the group must have.
  const member = await c.request<CommitResponse>(8, 9, {
    groupId: randomTopic('assign-member'),
    generationIdOrMemberEpoch: 3,
    memberId: randomUUID(),
    topics: [{ name: topic, partitions: [{ partitionIndex: 1, committedOffset: 11n }] }],
  });
  assert.deepEqual(results(member), [[topic, 1, ErrorCode.GROUP_ID_NOT_FOUND]]);
});

test('librdkafka 2.12 (node-rdkafka) assign() + commitSync: with group.protocol=consumer a simple group is created (was "The group id does not exist"); a missing topic fails', async (t) => {
  // commitSync blocks the JavaScript thread until the broker answers: the broker runs apart.
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-rdkafka-commit-'));
  const broker = await spawnBroker(dataDir, { 'offsets.topic.num.partitions': '3' });
  const c = await WireClient.connect(broker.bootstrap);
  t.after(async () => {
    c.close();
    await broker.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });
  const topic = randomTopic('rdkafka-assign');
  const missing = randomTopic('rdkafka-missing');
  await c.request(19, 4, {
    topics: [{ name: topic, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 5000,
  });
  const { KafkaConsumer } = rdkafka();
  for (const protocol of ['consumer', 'classic'] as const) {
    const groupId = randomTopic(`rdkafka-${protocol}`);
    const consumer = new KafkaConsumer(
      { ...baseConfig(broker.bootstrap), 'group.id': groupId, 'group.protocol': protocol, 'enable.auto.commit': false },
      {},
    );
    await connect(consumer);
    try {
      consumer.assign([{ topic, partition: 0 }]);
      /** commitSync's error, once librdkafka has found the coordinator. */
      const commit = async (name: string, offset: number): Promise<string | null> => {
        for (let attempt = 0; ; attempt++) {
          try {
            consumer.commitSync([{ topic: name, partition: 0, offset }]);
            return null;
          } catch (err) {
            const message = String(err);
            if (!message.includes('Waiting for coordinator') || attempt > 100) return message;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      };
      assert.equal(await commit(topic, 5), null, `${protocol}: commit`);
      assert.deepEqual(await committedOffsets(c, groupId, [[topic, [0]]]), [[topic, [5n]]]);
      assert.deepEqual((await groupsListed(c)).get(groupId), ['Empty', 'classic']);
      assert.match((await commit(missing, 5)) ?? 'no error', /Unknown topic or partition/, `${protocol}: missing`);
    } finally {
      await disconnect(consumer);
    }
  }
});
