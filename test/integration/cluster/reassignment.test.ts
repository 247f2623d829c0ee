// Issue 14, ElectLeaders and KIP-455 reassignment on three brokers over a real etcd:
// - a preferred election after the preferred leader was killed and came back (with
//   auto.leader.rebalance.enable=false, so only the election moves it), sent to a broker that is
//   not the controller (forwarded), then ELECTION_NOT_NEEDED;
// - an RF 2 partition moved off its leader's broker onto the third broker through kafkajs' admin
//   (AlterPartitionReassignments and ListPartitionReassignments at the controller), records
//   produced before and during the move: every record is on the new replicas (Fetch as replica
//   -2), the removed broker's log is gone, and the reassignment is listed while it runs.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import type { KafkaClient, PartitionMetadata } from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { decodeBatchSync, iterateBatches } from '../../../src/protocol/records/index.ts';
import { type Cluster, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import {
  brokerById,
  brokerClients,
  clientOf,
  errorName,
  metadataFrom,
  mustProduce,
  NO_ETCD,
  uniqueName,
  waitForMembership,
} from './helpers.ts';

const skip = etcdAvailable() ? false : NO_ETCD;
let cluster: Cluster;
let clients: Map<number, KafkaClient>;
let kafka: Kafka;

before(async () => {
  if (skip !== false) return;
  cluster = await startCluster({ brokers: 3, overrides: { 'auto.leader.rebalance.enable': 'false' } });
  clients = await brokerClients(cluster);
  await waitForMembership(
    cluster,
    clients,
    cluster.brokers.map((b) => b.nodeId),
  );
  kafka = new Kafka({
    clientId: 'reassignment-test',
    brokers: cluster.bootstrap.split(','),
    logLevel: logLevel.NOTHING,
  });
});

after(async () => {
  await cluster?.close();
});

async function createTopic(topic: string, replicationFactor: number): Promise<PartitionMetadata> {
  const res = await clientOf(clients, 1).request(ApiKey.CreateTopics, {
    topics: [{ name: topic, numPartitions: 1, replicationFactor, assignments: [], configs: [] }],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  assert.equal(errorName(res.topics[0]!.errorCode), 'NONE', res.topics[0]!.errorMessage ?? '');
  return partitionWhen(topic, 'led with its full ISR', (p) => p.leaderId >= 0 && p.isr.length === replicationFactor);
}

/** The partition (as broker `via` sees it) once `ready` holds. */
function partitionWhen(
  topic: string,
  what: string,
  ready: (p: PartitionMetadata) => boolean,
  via = 1,
): Promise<PartitionMetadata> {
  return cluster.waitFor(`${topic}-0 ${what}`, async () => {
    const p = (await metadataFrom(clientOf(clients, via), [topic])).topics.get(topic)?.partitions[0];
    return p !== undefined && ready(p) ? p : undefined;
  });
}

/** A replica's records up to its high watermark (Kafka's DEBUGGING_CONSUMER_ID, replica id -2). */
async function replicaValues(client: KafkaClient, topic: string): Promise<{ errorCode: number; values: string[] }> {
  const values: string[] = [];
  let next = 0n;
  for (let round = 0; round < 100; round++) {
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
          partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: next, partitionMaxBytes: 4 << 20 }],
        },
      ],
    });
    const p = res.responses[0]!.partitions[0]!;
    if (p.errorCode !== ErrorCode.NONE) return { errorCode: p.errorCode, values };
    const bytes = p.records ?? Buffer.alloc(0);
    let last = -1n;
    for (const b of iterateBatches(bytes, { partialTail: 'stop' })) {
      for (const r of decodeBatchSync(bytes.subarray(b.offset, b.offset + b.size)).records) {
        if (r.offset < next) continue;
        values.push(r.value?.toString() ?? '');
        last = r.offset;
      }
    }
    if (last < 0n || last + 1n >= p.highWatermark) return { errorCode: ErrorCode.NONE, values };
    next = last + 1n;
  }
  throw new Error(`Fetch ${topic}-0 made no progress`);
}

test('ElectLeaders: the preferred replica leads again after a restart; then ELECTION_NOT_NEEDED', {
  skip,
  timeout: 80_000,
}, async () => {
  const topic = uniqueName('elect');
  const created = await createTopic(topic, 3);
  const preferred = created.replicas[0]!;
  assert.equal(created.leaderId, preferred);

  const broker = brokerById(cluster, preferred);
  const via = created.replicas[1]!;
  await broker.kill();
  const moved = await partitionWhen(
    topic,
    'led by another broker',
    (p) => p.leaderId >= 0 && p.leaderId !== preferred,
    via,
  );
  await broker.start();
  await partitionWhen(topic, `with broker ${preferred} back in the ISR`, (p) => p.isr.includes(preferred), via);
  // auto.leader.rebalance.enable=false: nothing else moves it back.
  assert.equal((await partitionWhen(topic, 'led', (p) => p.leaderId >= 0, via)).leaderId, moved.leaderId);

  // Sent to a broker that is not the controller: forwarded to it.
  const md = await metadataFrom(clientOf(clients, via), []);
  const other = cluster.brokers.find((b) => b.nodeId !== md.controllerId && b.nodeId !== preferred)!;
  const client = await cluster.client(other);
  const elect = (electionType: number, topicPartitions: { topic: string; partitions: number[] }[] | null) =>
    client.request(ApiKey.ElectLeaders, 2, { electionType, topicPartitions, timeoutMs: 10_000 });
  const first = await elect(0, [{ topic, partitions: [0] }]);
  assert.equal(errorName(first.errorCode), 'NONE');
  assert.deepEqual(
    first.replicaElectionResults.map((t) => [
      t.topic,
      t.partitionResult.map((p) => [p.partitionId, errorName(p.errorCode)]),
    ]),
    [[topic, [[0, 'NONE']]]],
  );
  const after = await partitionWhen(topic, `led by broker ${preferred}`, (p) => p.leaderId === preferred);
  assert.ok(after.leaderEpoch > moved.leaderEpoch, `leader epoch ${after.leaderEpoch} > ${moved.leaderEpoch}`);

  const again = await elect(0, [{ topic, partitions: [0] }]);
  assert.equal(errorName(again.replicaElectionResults[0]!.partitionResult[0]!.errorCode), 'ELECTION_NOT_NEEDED');
  const unclean = await elect(1, [{ topic, partitions: [0, 7] }]);
  assert.deepEqual(
    unclean.replicaElectionResults[0]!.partitionResult.map((p) => errorName(p.errorCode)),
    ['ELECTION_NOT_NEEDED', 'UNKNOWN_TOPIC_OR_PARTITION'],
  );
  // Every partition (null): those needing no election are left out.
  const all = await elect(0, null);
  assert.equal(errorName(all.errorCode), 'NONE');
  assert.equal(
    all.replicaElectionResults.find((t) => t.topic === topic),
    undefined,
  );
});

test('reassignment: an RF 2 partition moves off its leader onto the third broker, records intact, old log deleted', {
  skip,
  timeout: 80_000,
}, async () => {
  const topic = uniqueName('reassign');
  await createTopic(topic, 2);
  // c: the broker paused during the move, so not the controller (the move must go on without it).
  const controllerId = (await metadataFrom(clientOf(clients, 1), [])).controllerId;
  const c = Math.max(...cluster.brokers.map((x) => x.nodeId).filter((id) => id !== controllerId));
  const [a, b] = cluster.brokers.map((x) => x.nodeId).filter((id) => id !== c) as [number, number];

  // Idempotent: a send retried across the leader change (its first attempt appended, the answer
  // lost with the old leader) must not be written twice, or the replicas' records differ from
  // what was sent.
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();
  try {
    // Placed on [a, b] first (through kafkajs' admin, at the controller), led by a.
    await admin.alterPartitionReassignments({
      topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: [a, b] }] }],
    });
    await partitionWhen(topic, `on ${a},${b}`, (p) => p.replicas.join(',') === `${a},${b}` && p.isr.length === 2);
    const elected = await clientOf(clients, c).request(ApiKey.ElectLeaders, 2, {
      electionType: 0,
      topicPartitions: [{ topic, partitions: [0] }],
      timeoutMs: 10_000,
    });
    assert.ok(
      ['NONE', 'ELECTION_NOT_NEEDED'].includes(
        errorName(elected.replicaElectionResults[0]!.partitionResult[0]!.errorCode),
      ),
    );
    const before = await partitionWhen(topic, `led by ${a}`, (p) => p.leaderId === a);

    const expected: string[] = [];
    const values = (from: number, n: number) => Array.from({ length: n }, (_, i) => `v${from + i}`);
    for (let i = 0; i < 50; i += 10) {
      await mustProduce(clientOf(clients, a), topic, 0, values(i, 10));
      expected.push(...values(i, 10));
    }

    // Broker c paused: it cannot catch up, so the reassignment stays in progress while it is
    // listed (resumed well within its 3 s lease).
    const target = brokerById(cluster, c);
    target.pause();
    try {
      const altered = await clientOf(clients, controllerId).request(ApiKey.AlterPartitionReassignments, {
        timeoutMs: 10_000,
        topics: [{ name: topic, partitions: [{ partitionIndex: 0, replicas: [b, c] }] }],
      });
      assert.equal(errorName(altered.responses[0]!.partitions[0]!.errorCode), 'NONE');
      for (const id of [a, b]) {
        const listed = await clientOf(clients, id).request(ApiKey.ListPartitionReassignments, {
          timeoutMs: 10_000,
          topics: null,
        });
        assert.deepEqual(
          listed.topics
            .filter((t) => t.name === topic)
            .map((t) => t.partitions.map((p) => [p.partitionIndex, p.replicas, p.addingReplicas, p.removingReplicas])),
          [[[0, [b, c, a], [c], [a]]]],
          `broker ${id}'s list`,
        );
      }
      // Produced during the move (acks=all: the ISR is still [a, b]).
      await mustProduce(clientOf(clients, a), topic, 0, values(50, 10));
      expected.push(...values(50, 10));
    } finally {
      target.resume();
    }
    for (let i = 60; i < 100; i += 10) {
      await producer.send({ topic, acks: -1, messages: values(i, 10).map((value) => ({ partition: 0, value })) });
      expected.push(...values(i, 10));
    }

    const done = await partitionWhen(
      topic,
      `on brokers ${b},${c} only`,
      (p) => p.replicas.join(',') === `${b},${c}` && p.leaderId >= 0,
    );
    assert.equal(done.leaderId, b, 'the removed leader gave way to the first target replica');
    assert.ok(done.leaderEpoch > before.leaderEpoch);
    await cluster.waitFor('no reassignment listed (kafkajs admin)', async () => {
      const l = await admin.listPartitionReassignments({});
      return l.topics.every((t) => t.topic !== topic);
    });
    await producer.send({ topic, acks: -1, messages: values(100, 10).map((value) => ({ partition: 0, value })) });
    expected.push(...values(100, 10));

    for (const id of [b, c]) {
      const got = await cluster.waitFor(`broker ${id}'s replica to hold all ${expected.length} records`, async () => {
        const r = await replicaValues(clientOf(clients, id), topic);
        return r.errorCode === ErrorCode.NONE && r.values.length >= expected.length ? r.values : undefined;
      });
      assert.deepEqual(got, expected, `broker ${id}'s replica`);
    }
    // Broker a no longer hosts the partition: no log, no answer.
    assert.equal(errorName((await replicaValues(clientOf(clients, a), topic)).errorCode), 'NOT_LEADER_OR_FOLLOWER');
    await cluster.waitFor(`broker ${a}'s log of ${topic}-0 deleted`, async () => {
      const dirs = await readdir(brokerById(cluster, a).dataDir);
      // Renamed to <topic>-0.<uuid>-delete at once, removed after file.delete.delay.ms, as Kafka does.
      return !dirs.includes(`${topic}-0`) && dirs.some((d) => d.startsWith(`${topic}-0.`) && d.endsWith('-delete'));
    });

    // Nothing left to cancel.
    const res = await clientOf(clients, a).request(ApiKey.AlterPartitionReassignments, {
      timeoutMs: 10_000,
      topics: [{ name: topic, partitions: [{ partitionIndex: 0, replicas: null }] }],
    });
    assert.equal(errorName(res.responses[0]!.partitions[0]!.errorCode), 'NO_REASSIGNMENT_IN_PROGRESS');
  } finally {
    await admin.disconnect();
    await producer.disconnect();
  }
});
