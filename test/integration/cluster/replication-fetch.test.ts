// Issue 14, replication end to end: three brokers on a real etcd, a topic with replication factor
// 3, records produced with acks=all by kafkajs. Every broker's replica of every partition (leader
// and followers, read with Kafka's DEBUGGING_CONSUMER_ID, replica id -2) ends up with the same
// records at the same offsets with the same leader epochs, and the followers' high watermarks
// reach the leader's.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import type { KafkaClient } from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { decodeBatchSync, iterateBatches } from '../../../src/protocol/records/index.ts';
import { type Cluster, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import {
  brokerClients,
  clientOf,
  errorName,
  type FetchedValue,
  metadataFrom,
  NO_ETCD,
  uniqueName,
  waitForMembership,
} from './helpers.ts';

const PARTITIONS = 3;
const PER_PARTITION = 40;

const skip = etcdAvailable() ? false : NO_ETCD;
let cluster: Cluster;
let clients: Map<number, KafkaClient>;

before(async () => {
  if (skip !== false) return;
  cluster = await startCluster({ brokers: 3 });
  clients = await brokerClients(cluster);
  await waitForMembership(
    cluster,
    clients,
    cluster.brokers.map((b) => b.nodeId),
  );
});

after(async () => {
  await cluster?.close();
});

/** One Fetch as Kafka's debugging consumer (replica id -2): this broker's replica, up to its high watermark. */
async function fetchReplica(
  client: KafkaClient,
  topic: string,
  partition: number,
  offset: bigint,
): Promise<{ errorCode: number; highWatermark: bigint; records: FetchedValue[] }> {
  const res = await client.request(ApiKey.Fetch, 12, {
    replicaId: -2,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 8 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic,
        partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: offset, partitionMaxBytes: 4 << 20 }],
      },
    ],
  });
  const p = res.responses[0]?.partitions[0];
  if (p === undefined) throw new Error(`Fetch ${topic}/${partition}: no partition in the response`);
  const records: FetchedValue[] = [];
  const bytes = p.records ?? Buffer.alloc(0);
  for (const b of iterateBatches(bytes, { partialTail: 'stop' })) {
    const batch = decodeBatchSync(bytes.subarray(b.offset, b.offset + b.size));
    for (const r of batch.records) {
      if (r.offset < offset) continue;
      records.push({
        offset: r.offset,
        value: r.value === null ? null : r.value.toString(),
        leaderEpoch: batch.header.partitionLeaderEpoch,
      });
    }
  }
  return { errorCode: p.errorCode, highWatermark: p.highWatermark, records };
}

/** A replica's records up to its high watermark. */
async function replicaRecords(client: KafkaClient, topic: string, partition: number) {
  const out: FetchedValue[] = [];
  let next = 0n;
  for (let round = 0; round < 100; round++) {
    const r = await fetchReplica(client, topic, partition, next);
    if (r.errorCode !== ErrorCode.NONE) throw new Error(`Fetch ${topic}/${partition}: ${errorName(r.errorCode)}`);
    if (next >= r.highWatermark || r.records.length === 0) return { highWatermark: r.highWatermark, records: out };
    out.push(...r.records);
    next = r.records.at(-1)!.offset + 1n;
  }
  throw new Error(`Fetch ${topic}/${partition} made no progress`);
}

test('acks=all records reach every replica: same offsets, values and leader epochs on all three brokers', {
  skip,
  timeout: 120_000,
}, async () => {
  const topic = uniqueName('replicated');
  const admin = clientOf(clients, cluster.brokers[0]!.nodeId);
  const created = await admin.request(ApiKey.CreateTopics, {
    topics: [{ name: topic, numPartitions: PARTITIONS, replicationFactor: 3, assignments: [], configs: [] }],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  assert.equal(errorName(created.topics[0]!.errorCode), 'NONE', created.topics[0]!.errorMessage ?? '');

  // Every partition has a leader and three replicas, as every broker says.
  await cluster.waitFor('every partition led with 3 replicas', async () => {
    for (const b of cluster.brokers) {
      const md = await metadataFrom(clientOf(clients, b.nodeId), [topic]);
      const t = md.topics.get(topic);
      if (t === undefined || t.errorCode !== ErrorCode.NONE || t.partitions.length !== PARTITIONS) return false;
      if (t.partitions.some((p) => p.leaderId < 0 || p.replicas.length !== 3)) return false;
    }
    return true;
  });

  const kafka = new Kafka({
    clientId: 'replication-fetch',
    brokers: cluster.bootstrap.split(','),
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (let i = 0; i < PER_PARTITION; i += 10) {
      await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: PARTITIONS * 10 }, (_, j) => ({
          partition: j % PARTITIONS,
          value: `p${j % PARTITIONS}-${i + Math.floor(j / PARTITIONS)}`,
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }

  // The ISR is complete: every follower caught up and was added back (or never left).
  const md = await cluster.waitFor('the ISR of every partition to hold all 3 replicas', async () => {
    const m = await metadataFrom(admin, [topic]);
    const t = m.topics.get(topic);
    return t?.partitions.every((p) => p.isr.length === 3) ? t : undefined;
  });

  for (const p of md.partitions) {
    const expected = Array.from({ length: PER_PARTITION }, (_, i) => `p${p.partition}-${i}`);
    // A follower's high watermark follows the leader's one fetch later.
    const replicas = await cluster.waitFor(
      `every replica of partition ${p.partition} at the full high watermark`,
      async () => {
        const all = [];
        for (const b of cluster.brokers) {
          const r = await replicaRecords(clientOf(clients, b.nodeId), topic, p.partition);
          if (r.highWatermark !== BigInt(PER_PARTITION)) return undefined;
          all.push({ nodeId: b.nodeId, ...r });
        }
        return all;
      },
    );
    const leader = replicas.find((r) => r.nodeId === p.leaderId)!;
    assert.deepEqual(
      leader.records.map((r) => r.value),
      expected,
    );
    for (const r of replicas) {
      assert.deepEqual(
        r.records.map((x) => [String(x.offset), x.value, x.leaderEpoch]),
        leader.records.map((x) => [String(x.offset), x.value, x.leaderEpoch]),
        `broker ${r.nodeId}'s replica of partition ${p.partition} equals the leader's (broker ${p.leaderId})`,
      );
    }
  }
});

test('a Fetch as a follower goes to the leader only: a follower answers NOT_LEADER_OR_FOLLOWER', {
  skip,
  timeout: 60_000,
}, async () => {
  const topic = uniqueName('follower-fetch');
  const admin = clientOf(clients, cluster.brokers[0]!.nodeId);
  await admin.request(ApiKey.CreateTopics, {
    topics: [{ name: topic, numPartitions: 1, replicationFactor: 2, assignments: [], configs: [] }],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  const p = await cluster.waitFor('a leader', async () => {
    const t = (await metadataFrom(admin, [topic])).topics.get(topic);
    const part = t?.partitions[0];
    return part !== undefined && part.leaderId >= 0 ? part : undefined;
  });
  const follower = p.replicas.find((id) => id !== p.leaderId)!;
  const outsider = cluster.brokers.map((b) => b.nodeId).find((id) => !p.replicas.includes(id))!;
  // As the outsider broker would fetch, from the follower: not the leader.
  const res = await clientOf(clients, follower).request(ApiKey.Fetch, {
    replicaState: { replicaId: outsider, replicaEpoch: -1n },
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topicId: (await metadataFrom(admin, [topic])).topics.get(topic)!.topicId,
        partitions: [{ partition: 0, currentLeaderEpoch: p.leaderEpoch, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }],
      },
    ],
  });
  assert.equal(errorName(res.responses[0]!.partitions[0]!.errorCode), 'NOT_LEADER_OR_FOLLOWER');
});

test('a follower Fetch past the leader end of its last fetched epoch gets divergingEpoch and no records, at once', {
  skip,
  timeout: 60_000,
}, async () => {
  const topic = uniqueName('diverging');
  const admin = clientOf(clients, cluster.brokers[0]!.nodeId);
  await admin.request(ApiKey.CreateTopics, {
    topics: [{ name: topic, numPartitions: 1, replicationFactor: 3, assignments: [], configs: [] }],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  const t = await cluster.waitFor('a leader', async () => {
    const md = (await metadataFrom(admin, [topic])).topics.get(topic);
    return md?.partitions[0] !== undefined && md.partitions[0].leaderId >= 0 ? md : undefined;
  });
  const p = t.partitions[0]!;
  const kafka = new Kafka({ clientId: 'diverging', brokers: cluster.bootstrap.split(','), logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] });
  await producer.disconnect();
  const follower = p.replicas.find((id) => id !== p.leaderId)!;
  // As the follower would ask with records of the current epoch up to offset 10, which the
  // leader's epoch never reached: its epoch ends at 3.
  const started = Date.now();
  const res = await clientOf(clients, p.leaderId).request(ApiKey.Fetch, {
    replicaState: { replicaId: follower, replicaEpoch: -1n },
    maxWaitMs: 5000,
    minBytes: 1,
    maxBytes: 1 << 20,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topicId: t.topicId,
        partitions: [
          {
            partition: 0,
            currentLeaderEpoch: p.leaderEpoch,
            fetchOffset: 10n,
            lastFetchedEpoch: p.leaderEpoch,
            partitionMaxBytes: 1 << 20,
          },
        ],
      },
    ],
  });
  const data = res.responses[0]!.partitions[0]!;
  assert.equal(errorName(data.errorCode), 'NONE');
  assert.deepEqual(data.divergingEpoch, { epoch: p.leaderEpoch, endOffset: 3n });
  assert.equal(data.records?.length ?? 0, 0);
  assert.ok(Date.now() - started < 4000, 'answered without waiting for max.wait.ms');
});
