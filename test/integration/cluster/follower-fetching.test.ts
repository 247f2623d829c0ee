// KIP-392, fetching from the closest replica: with replica.selector.class set to Kafka's
// RackAwareReplicaSelector, the leader answers a consumer in another broker's rack with that
// in-sync replica as its preferred read replica (and no records), the replica serves the consumer up
// to its high watermark, and librdkafka (confluent-kafka with client.rack) consumes everything
// through it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import type { KafkaClient } from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { decodeBatchSync, iterateBatches } from '../../../src/protocol/records/index.ts';
import { type Cluster, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import { run } from '../broker/helpers.ts';
import { mustProduce, NO_ETCD } from './helpers.ts';

const skip = etcdAvailable() ? false : NO_ETCD;
const TOPIC = 'closest';
let cluster: Cluster;

before(async () => {
  if (skip !== false) return;
  cluster = await startCluster({
    brokers: 3,
    overrides: { 'replica.selector.class': 'org.apache.kafka.common.replica.RackAwareReplicaSelector' },
    brokerOverrides: { 1: { 'broker.rack': 'r1' }, 2: { 'broker.rack': 'r2' }, 3: { 'broker.rack': 'r3' } },
  });
});
after(async () => {
  await cluster?.close();
});

/** One consumer Fetch v12 of partition 0 from `offset`, with the consumer's rack. */
async function fetchAs(client: KafkaClient, rackId: string, offset: bigint) {
  const res = await client.request(ApiKey.Fetch, 12, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic: TOPIC,
        partitions: [
          {
            partition: 0,
            currentLeaderEpoch: -1,
            fetchOffset: offset,
            lastFetchedEpoch: -1,
            logStartOffset: -1n,
            partitionMaxBytes: 1 << 20,
          },
        ],
      },
    ],
    forgottenTopicsData: [],
    rackId,
  });
  const p = res.responses[0]!.partitions[0]!;
  const values: string[] = [];
  const bytes = p.records ?? Buffer.alloc(0);
  for (const b of iterateBatches(bytes, { partialTail: 'stop' }))
    for (const r of decodeBatchSync(bytes.subarray(b.offset, b.offset + b.size)).records)
      values.push(r.value?.toString() ?? '');
  return {
    errorCode: p.errorCode,
    preferredReadReplica: p.preferredReadReplica,
    highWatermark: p.highWatermark,
    values,
  };
}

test('a consumer in a follower’s rack is sent to that follower, which serves it; librdkafka with client.rack reads through it', {
  skip,
}, async (t) => {
  const client = await cluster.client();
  await cluster.waitFor('3 brokers', async () => (await client.metadata([])).brokers.size === 3);
  const created = await (await client.connect()).request(ApiKey.CreateTopics, {
    topics: [{ name: TOPIC, numPartitions: 1, replicationFactor: 3, assignments: [], configs: [] }],
    timeoutMs: 10_000,
  });
  assert.equal(created.topics[0]!.errorCode, 0);
  const md = await cluster.waitFor('a leader and a full ISR', async () => {
    const p = (await client.metadata([TOPIC])).topics.get(TOPIC)?.partitions[0];
    return p !== undefined && p.leaderId > 0 && p.isr.length === 3 ? p : undefined;
  });
  const leader = cluster.brokers.find((b) => b.nodeId === md.leaderId)!;
  const follower = cluster.brokers.find((b) => b.nodeId !== md.leaderId)!;
  const leaderClient = await cluster.client(leader);
  const followerClient = await cluster.client(follower);
  const values = Array.from({ length: 20 }, (_, i) => `closest-${i}`);
  await mustProduce(leaderClient, TOPIC, 0, values);

  // In the leader's own rack, or no rack: the leader serves.
  const own = await fetchAs(leaderClient, `r${leader.nodeId}`, 0n);
  assert.equal(own.preferredReadReplica, -1);
  assert.deepEqual(own.values, values);
  assert.equal((await fetchAs(leaderClient, '', 0n)).preferredReadReplica, -1);
  // In the follower's rack: sent there, with no records.
  const redirected = await fetchAs(leaderClient, `r${follower.nodeId}`, 0n);
  assert.equal(redirected.errorCode, ErrorCode.NONE);
  assert.equal(redirected.preferredReadReplica, follower.nodeId);
  assert.deepEqual(redirected.values, []);
  // The follower serves the consumer up to its high watermark (which trails the leader's by a fetch).
  const served = await cluster.waitFor('the follower to serve every record', async () => {
    const r = await fetchAs(followerClient, `r${follower.nodeId}`, 0n);
    return r.values.length === values.length ? r : undefined;
  });
  assert.deepEqual(served.values, values);
  t.diagnostic(`leader ${leader.nodeId}, consumer in rack r${follower.nodeId} served by broker ${follower.nodeId}`);

  // librdkafka follows the preferred read replica (client.rack).
  const script = `
import sys
from confluent_kafka import Consumer
c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': 'closest', 'auto.offset.reset': 'earliest',
              'client.rack': sys.argv[2], 'enable.auto.commit': False})
c.subscribe(['${TOPIC}'])
got = []
import time
deadline = time.time() + 30
while len(got) < ${values.length} and time.time() < deadline:
    m = c.poll(0.5)
    if m is not None and m.error() is None:
        got.append(m.value().decode())
c.close()
print('\\n'.join(got))
`;
  const out = await run('/usr/bin/python3', ['-c', script, cluster.bootstrap, `r${follower.nodeId}`], {
    timeoutMs: 60_000,
  });
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual(out.stdout.trim().split('\n'), values);
});
