// Issue 14: a group coordinator's failure moves its groups, committed offsets intact. Three brokers
// on a real etcd (lease 3 s in the harness); `__consumer_offsets` is created on the first
// FindCoordinator with min(offsets.topic.replication.factor = 3, live brokers) = 3 replicas. A
// kafkajs consumer group reads batch A of a replicated topic and commits; the broker that
// coordinates the group (FindCoordinator) gets kill -9 while the consumer stays in the group.
// Within the consumer's session timeout another broker must coordinate the group (the new leader
// of the group's `__consumer_offsets` partition) and answer OffsetFetch with the offsets committed
// before the kill. The running consumer then reads batch B (nothing of A again) through the new
// coordinator and commits it; a second consumer joining the group after the first left resumes at
// the committed offsets: it reads batch C, each record once, nothing of A or B, nothing skipped.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Consumer, Kafka, logLevel } from 'kafkajs';
import { decodeRecord, partitionForGroup } from '../../../src/coordinator/group/coordinator-records.ts';
import { CONSUMER_OFFSETS_TOPIC } from '../../../src/coordinator/group/group-coordinator-service.ts';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import type { KafkaClient } from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { decodeBatchSync, iterateBatches } from '../../../src/protocol/records/index.ts';
import { createReplicatedTopic } from '../../helpers/ack-checker.ts';
import { type Cluster, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import {
  brokerById,
  brokerClients,
  brokerLogs,
  clientOf,
  errorName,
  fetchOffset,
  findCoordinator,
  leaders,
  metadataFrom,
  NO_ETCD,
  produce,
  uniqueName,
  waitForMembership,
} from '../cluster/helpers.ts';

const PARTITIONS = 3;
/** Records per partition in each of the batches A, B and C. */
const PER_BATCH = 20;
/** The consumers' session timeout: the failover must be done well within it. */
const SESSION_TIMEOUT_MS = 10_000;

const skip = etcdAvailable() ? false : NO_ETCD;
let cluster: Cluster;
let clients: Map<number, KafkaClient>;
const consumers: Consumer[] = [];

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
  // A consumer left running would keep reconnecting to a cluster that is gone.
  // Bounded: a kafkajs consumer in the middle of a rejoin may never finish disconnecting.
  for (const c of consumers)
    await Promise.race([c.disconnect().catch(() => undefined), new Promise((r) => setTimeout(r, 5000).unref())]);
  await cluster?.close();
});

interface Consumed {
  partition: number;
  offset: bigint;
  value: string;
}

/** Produces `batch`'s PER_BATCH records to every partition through its current leader, acks=all. */
async function produceBatch(topic: string, batch: string, live: readonly number[]): Promise<void> {
  for (let p = 0; p < PARTITIONS; p++) {
    const values = Array.from({ length: PER_BATCH }, (_, i) => `${batch}-p${p}-${i}`);
    await cluster.waitFor(`batch ${batch} on ${topic}/${p}`, async () => {
      const leader = leaders(await metadataFrom(clientOf(clients, live[0]!), [topic]), topic)[p];
      if (leader === undefined || !live.includes(leader)) return undefined;
      return (await produce(clientOf(clients, leader), topic, p, values)).errorCode === ErrorCode.NONE;
    });
  }
}

/** The group's committed offset of every partition as broker `nodeId` answers, or undefined on an error. */
async function committed(nodeId: number, group: string, topic: string): Promise<bigint[] | undefined> {
  const out: bigint[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const r = await fetchOffset(clientOf(clients, nodeId), group, topic, p);
    if (r.errorCode !== ErrorCode.NONE) return undefined;
    out.push(r.offset);
  }
  return out;
}

/**
 * The group's offset commits for `topic` in broker `nodeId`'s replica of its `__consumer_offsets`
 * partition, read with Kafka's DEBUGGING_CONSUMER_ID (Fetch replica id -2, up to that replica's
 * high watermark): what a coordinator loading that replica should find.
 */
async function commitsInLog(nodeId: number, offsetsPartition: number, group: string, topic: string): Promise<string> {
  const res = await clientOf(clients, nodeId).request(ApiKey.Fetch, 12, {
    replicaId: -2,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 8 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic: CONSUMER_OFFSETS_TOPIC,
        partitions: [
          {
            partition: offsetsPartition,
            currentLeaderEpoch: -1,
            fetchOffset: 0n,
            lastFetchedEpoch: -1,
            logStartOffset: -1n,
            partitionMaxBytes: 4 << 20,
          },
        ],
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  });
  const p = res.responses[0]?.partitions[0];
  if (p === undefined || p.errorCode !== ErrorCode.NONE)
    return `Fetch ${CONSUMER_OFFSETS_TOPIC}/${offsetsPartition}: ${p === undefined ? 'no partition' : errorName(p.errorCode)}`;
  const commits: string[] = [];
  const bytes = p.records ?? Buffer.alloc(0);
  for (const b of iterateBatches(bytes, { partialTail: 'stop' }))
    for (const r of decodeBatchSync(bytes.subarray(b.offset, b.offset + b.size)).records) {
      if (r.key === null) continue;
      const rec = decodeRecord(Buffer.from(r.key), r.value === null ? null : Buffer.from(r.value));
      if (rec?.type === 'OffsetCommit' && rec.group === group && rec.topic === topic)
        commits.push(`${topic}/${rec.partition}=${rec.value?.offset ?? 'tombstone'} at offset ${r.offset}`);
    }
  return `broker ${nodeId}'s ${CONSUMER_OFFSETS_TOPIC}/${offsetsPartition}: high watermark ${p.highWatermark}, commits ${commits.join(', ')}`;
}

/** A kafkajs consumer of `group` on `topic` recording everything it is given; committed after each batch. */
async function startConsumer(brokers: readonly string[], group: string, topic: string, seen: Consumed[]) {
  const kafka = new Kafka({ clientId: 'coordinator-failover', brokers: [...brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({
    groupId: group,
    sessionTimeout: SESSION_TIMEOUT_MS,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 100,
  });
  consumers.push(consumer);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      seen.push({ partition, offset: BigInt(message.offset), value: message.value?.toString() ?? '' });
    },
  });
  return consumer;
}

/** The values of `batch` each consumer record list should hold, as `partition:value` strings. */
function expected(batch: string): string[] {
  const out: string[] = [];
  for (let p = 0; p < PARTITIONS; p++) for (let i = 0; i < PER_BATCH; i++) out.push(`${p}:${batch}-p${p}-${i}`);
  return out.sort();
}

function of(seen: readonly Consumed[], batch: string): string[] {
  return seen
    .filter((r) => r.value.startsWith(`${batch}-`))
    .map((r) => `${r.partition}:${r.value}`)
    .sort();
}

test('kill -9 of a group coordinator: another broker coordinates the group with its committed offsets, consumers resume at them', {
  skip,
  timeout: 90_000,
  // src bug, seen on every run: a coordinator taking over replays its __consumer_offsets
  // partition up to its high watermark, not its log end, so the last commits are left out.
}, async (t) => {
  const topic = uniqueName('cf-topic');
  const group = uniqueName('cf-group');
  const all = cluster.brokers.map((b) => b.nodeId);
  await createReplicatedTopic(clientOf(clients, 1), topic, PARTITIONS, 3, 2);
  await produceBatch(topic, 'A', all);

  // The first FindCoordinator creates __consumer_offsets; it answers once its partition is led.
  const coordinatorId = await cluster.waitFor(`a coordinator for ${group}`, async () => {
    const r = await findCoordinator(clientOf(clients, 1), group);
    return r.errorCode === ErrorCode.NONE ? r.nodeId : undefined;
  });
  const offsetsMd = await cluster.waitFor(`${CONSUMER_OFFSETS_TOPIC} with every replica in the ISR`, async () => {
    const md = (await metadataFrom(clientOf(clients, 1), [CONSUMER_OFFSETS_TOPIC])).topics.get(CONSUMER_OFFSETS_TOPIC);
    if (md === undefined || md.errorCode !== ErrorCode.NONE || md.partitions.length === 0) return undefined;
    return md.partitions.every((p) => p.leaderId >= 0 && p.isr.length === p.replicas.length) ? md : undefined;
  });
  const groupPartition = partitionForGroup(group, offsetsMd.partitions.length);
  const prior = offsetsMd.partitions[groupPartition]!;
  t.diagnostic(
    `${CONSUMER_OFFSETS_TOPIC}: ${offsetsMd.partitions.length} partitions; ${group} -> partition ${groupPartition}, ` +
      `replicas ${prior.replicas.join(',')}, ISR ${prior.isr.join(',')}, leader ${prior.leaderId}; coordinator ${coordinatorId}`,
  );
  assert.equal(prior.replicas.length, 3, `${CONSUMER_OFFSETS_TOPIC} has min(3, live brokers) = 3 replicas`);
  assert.equal(prior.leaderId, coordinatorId, "the coordinator is the leader of the group's partition");

  // Batch A consumed and committed by a running member.
  const seen1: Consumed[] = [];
  const c1 = await startConsumer(
    cluster.brokers.map((b) => b.address),
    group,
    topic,
    seen1,
  );
  const full = (n: number) => Array.from({ length: PARTITIONS }, () => BigInt(n));
  await cluster.waitFor('batch A consumed and committed', async () => {
    const c = await committed(coordinatorId, group, topic);
    return c?.every((o, i) => o === full(PER_BATCH)[i]);
  });
  assert.deepEqual(of(seen1, 'A'), expected('A'), 'the first consumer read batch A once');

  const victim = brokerById(cluster, coordinatorId);
  const survivors = all.filter((id) => id !== coordinatorId);
  const killedAt = Date.now();
  await victim.kill('SIGKILL');
  // Another broker coordinates the group and has its offsets: asked of every survivor, each must
  // name the same live coordinator, and that one must answer OffsetFetch.
  let lastAnswer = '';
  const moved = await cluster.waitFor(
    `a new coordinator for ${group} answering OffsetFetch`,
    async () => {
      const answers = await Promise.all(survivors.map((id) => findCoordinator(clientOf(clients, id), group)));
      lastAnswer = answers.map((a) => `${errorName(a.errorCode)}/${a.nodeId}`).join(' ');
      const ids = new Set(answers.map((a) => (a.errorCode === ErrorCode.NONE ? a.nodeId : -1)));
      const [id] = ids;
      if (ids.size !== 1 || id === undefined || !survivors.includes(id)) return undefined;
      const offsets = await committed(id, group, topic);
      return offsets === undefined ? undefined : { nodeId: id, offsets, ms: Date.now() - killedAt };
    },
    SESSION_TIMEOUT_MS + 10_000,
  );
  t.diagnostic(
    `broker ${coordinatorId} killed; broker ${moved.nodeId} coordinates ${group} and answered OffsetFetch ${moved.offsets.join(',')} ` +
      `after ${moved.ms} ms (last FindCoordinator answers ${lastAnswer})`,
  );
  if (moved.offsets.some((o, i) => o !== full(PER_BATCH)[i])) {
    // The evidence, a moment later: what the new coordinator's own log holds, and what it answers.
    await new Promise((r) => setTimeout(r, 2000));
    t.diagnostic(await commitsInLog(moved.nodeId, groupPartition, group, topic));
    t.diagnostic(
      `OffsetFetch from broker ${moved.nodeId} 2 s later: ${(await committed(moved.nodeId, group, topic))?.join(',')}`,
    );
  }
  assert.deepEqual(moved.offsets, full(PER_BATCH), 'the committed offsets survived the coordinator');
  assert.ok(moved.ms < SESSION_TIMEOUT_MS, `the group moved within the session timeout (${moved.ms} ms)`);
  const afterMd = (await metadataFrom(clientOf(clients, moved.nodeId), [CONSUMER_OFFSETS_TOPIC])).topics.get(
    CONSUMER_OFFSETS_TOPIC,
  );
  const now = afterMd?.partitions[groupPartition];
  assert.equal(now?.leaderId, moved.nodeId, `the new coordinator leads ${CONSUMER_OFFSETS_TOPIC}/${groupPartition}`);
  assert.ok(now !== undefined && now.leaderEpoch > prior.leaderEpoch, 'with a new leader epoch');

  // The running member carries on through the new coordinator: batch B, and nothing of A again.
  await produceBatch(topic, 'B', survivors);
  const bCommitted = await cluster.waitFor(
    'batch B consumed and committed through the new coordinator',
    async () => {
      const c = await committed(moved.nodeId, group, topic);
      return c?.every((o, i) => o === full(2 * PER_BATCH)[i]) ? Date.now() - killedAt : undefined;
    },
    60_000,
  );
  t.diagnostic(`batch B consumed and committed by the running member ${bCommitted} ms after the kill`);
  assert.deepEqual(of(seen1, 'A'), expected('A'), 'the running member read nothing of batch A again');
  // At least once: records of B read before the member's commit reached the new coordinator may
  // be read again when it rejoins (kafkajs rejoins on the coordinator change), as in Kafka.
  const readB = of(seen1, 'B');
  assert.deepEqual([...new Set(readB)].sort(), expected('B'), 'the running member read all of batch B');
  t.diagnostic(`batch B: ${readB.length - new Set(readB).size} records read twice (uncommitted when the group moved)`);
  await c1.disconnect();

  // A member joining after that resumes at the committed offsets.
  await produceBatch(topic, 'C', survivors);
  const seen2: Consumed[] = [];
  await startConsumer(
    survivors.map((id) => brokerById(cluster, id).address),
    group,
    topic,
    seen2,
  );
  await cluster.waitFor('batch C consumed by the joining member', async () => seen2.length >= PARTITIONS * PER_BATCH);
  // A moment for anything beyond batch C (a record read twice, or an old one) to show up.
  await new Promise((r) => setTimeout(r, 500));
  const firstOffsets = Array.from({ length: PARTITIONS }, (_, p) =>
    seen2.filter((r) => r.partition === p).reduce((m, r) => (r.offset < m ? r.offset : m), 1n << 62n),
  );
  t.diagnostic(
    `the joining member read ${seen2.length} records, starting at offsets ${firstOffsets.join(',')} (committed ${full(2 * PER_BATCH).join(',')})`,
  );
  assert.deepEqual(firstOffsets, full(2 * PER_BATCH), 'the joining member started at the committed offsets');
  assert.deepEqual(
    seen2.map((r) => `${r.partition}:${r.value}`).sort(),
    expected('C'),
    `the joining member read batch C once and nothing else\n${brokerLogs(cluster)}`,
  );
});
