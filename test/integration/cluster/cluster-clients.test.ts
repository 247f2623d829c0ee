// Issue 13, a three-broker cluster on a real etcd, used by unmodified clients through ONE
// bootstrap address (broker 1's): they must learn the other brokers from Metadata and send each
// partition's requests to its leader, so every broker serves some of them.
//   - A 12-partition topic created through broker 1 spreads its leaders 4/4/4, and every broker
//     gives the same Metadata answer (3 brokers, same leaders, a live controller).
//   - kafkajs, @platformatic/kafka, kcat, confluent-kafka (python) and kafka-python each produce
//     to and consume from every partition of a topic of their own; every record is counted.
//   - A kafkajs group of three members spans the brokers; every record is consumed, none twice
//     after its commit.
//   - Topic create / alter config (IncrementalAlterConfigs) / delete through EACH broker (the
//     non-controllers forward to the controller, KIP-590) are seen by the other brokers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Consumer as PlatformaticConsumer, Producer as PlatformaticProducer } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import type { KafkaClient } from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { type Cluster, type ClusterBroker, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import { kcat, kcatConsumeAll, run } from '../broker/helpers.ts';
import {
  assertDeliveredOnceAfterCommit,
  type ConsumerProcess,
  consumedKeys,
  spawnKafkajsConsumer,
} from '../groups/helpers.ts';
import {
  brokerClients,
  clientOf,
  createTopic,
  deleteTopic,
  describeTopicConfig,
  errorName,
  fetchAll,
  findCoordinator,
  leaders,
  metadataFrom,
  mustCreateTopic,
  NO_ETCD,
  setTopicConfig,
  uniqueName,
  waitForMembership,
} from './helpers.ts';

const PARTITIONS = 12;
const PER_PARTITION = 3;
const PYTHON = '/usr/bin/python3';

type PlatformaticFetchResponse = Awaited<ReturnType<PlatformaticConsumer['fetch']>>;

const skip = etcdAvailable() ? false : NO_ETCD;
let cluster: Cluster;
let clients: Map<number, KafkaClient>;
/** The one address every third-party client is given. */
let bootstrap: string;

before(async () => {
  if (skip !== false) return;
  cluster = await startCluster({
    brokers: 3,
    overrides: { 'offsets.topic.num.partitions': '6', 'group.initial.rebalance.delay.ms': '500' },
  });
  clients = await brokerClients(cluster);
  bootstrap = cluster.brokers[0]!.address;
  // Brokers register after they listen: a topic created before all three are registered would
  // be spread over fewer.
  await waitForMembership(
    cluster,
    clients,
    cluster.brokers.map((b) => b.nodeId),
  );
});

after(async () => {
  await cluster?.close();
});

/** A record as a consumer reports it. */
interface Seen {
  partition: number;
  value: string | null;
}

/** Every partition holds exactly the PER_PARTITION values `tag` produced to it, each once. */
function assertEveryRecord(tag: string, seen: readonly Seen[]): void {
  const byPartition = new Map<number, string[]>();
  for (const s of seen) {
    const list = byPartition.get(s.partition) ?? [];
    list.push(s.value ?? '<null>');
    byPartition.set(s.partition, list);
  }
  for (let p = 0; p < PARTITIONS; p++) {
    const expected = Array.from({ length: PER_PARTITION }, (_, i) => `${tag}-p${p}-${i}`);
    assert.deepEqual(byPartition.get(p) ?? [], expected, `${tag}: partition ${p} read back`);
  }
  assert.equal(seen.length, PARTITIONS * PER_PARTITION, `${tag}: total records consumed`);
}

function values(tag: string, partition: number): string[] {
  return Array.from({ length: PER_PARTITION }, (_, i) => `${tag}-p${partition}-${i}`);
}

/** Creates a topic through broker 1 and waits until every broker knows all its leaders. */
async function createEverywhere(topic: string): Promise<void> {
  await mustCreateTopic(clientOf(clients, 1), topic, PARTITIONS);
  await cluster.waitFor(`every broker to know ${topic} with a leader per partition`, async () => {
    for (const c of clients.values()) {
      const l = leaders(await metadataFrom(c, [topic]), topic);
      if (l.length !== PARTITIONS || l.some((x) => x < 0)) return false;
    }
    return true;
  });
}

test('a 12-partition topic created through one broker spreads its leaders 4/4/4; every broker answers Metadata alike', {
  skip,
}, async (t) => {
  const topic = uniqueName('spread');
  await createEverywhere(topic);
  const answers = await Promise.all(
    cluster.brokers.map(async (b) => ({ b, md: await metadataFrom(clientOf(clients, b.nodeId), [topic]) })),
  );
  const reference = answers[0]!.md;
  const live = cluster.brokers.map((b) => b.nodeId);
  for (const { b, md } of answers) {
    assert.deepEqual([...md.brokers.keys()].sort(), live, `broker ${b.nodeId}: the brokers listed`);
    for (const broker of cluster.brokers) {
      const listed = md.brokers.get(broker.nodeId);
      assert.equal(
        `${listed?.host}:${listed?.port}`,
        broker.address,
        `broker ${b.nodeId}: address of ${broker.nodeId}`,
      );
    }
    assert.ok(live.includes(md.controllerId), `broker ${b.nodeId}: controller ${md.controllerId} is a live broker`);
    assert.equal(md.controllerId, reference.controllerId, `broker ${b.nodeId}: the same controller`);
    assert.equal(md.clusterId, reference.clusterId, `broker ${b.nodeId}: the same cluster id`);
    assert.deepEqual(leaders(md, topic), leaders(reference, topic), `broker ${b.nodeId}: the same leaders`);
    const parts = md.topics.get(topic)!.partitions;
    for (const p of parts) {
      assert.deepEqual(p.replicas, [p.leaderId], `broker ${b.nodeId}: ${topic}/${p.partition} has RF 1 on its leader`);
      assert.equal(p.errorCode, ErrorCode.NONE);
    }
  }
  const perLeader = new Map<number, number>();
  for (const l of leaders(reference, topic)) perLeader.set(l, (perLeader.get(l) ?? 0) + 1);
  t.diagnostic(`leaders per broker: ${JSON.stringify([...perLeader].sort())}, controller ${reference.controllerId}`);
  assert.deepEqual(
    [...perLeader].sort(),
    live.map((id) => [id, PARTITIONS / live.length]),
    'each broker leads 4 of the 12 partitions',
  );
});

test('kafkajs produces to and consumes from every partition through one bootstrap address', { skip }, async () => {
  const topic = uniqueName('kafkajs');
  await createEverywhere(topic);
  const kafka = new Kafka({ clientId: 'cluster-it', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  try {
    for (let p = 0; p < PARTITIONS; p++) {
      await producer.send({
        topic,
        acks: -1,
        messages: values('kafkajs', p).map((value) => ({ partition: p, value })),
      });
    }
  } finally {
    await producer.disconnect();
  }
  const consumer = kafka.consumer({ groupId: uniqueName('kafkajs-reader'), maxWaitTimeInMs: 100 });
  const seen: Seen[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const { promise: done, resolve, reject } = Promise.withResolvers<void>();
    consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        seen.push({ partition, value: message.value?.toString() ?? null });
        if (seen.length >= PARTITIONS * PER_PARTITION) resolve();
      },
    });
    const timer = setTimeout(resolve, 30_000);
    await done;
    clearTimeout(timer);
    // A moment for records beyond the expected count to show up, so a duplicate is seen.
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await consumer.disconnect();
  }
  assertEveryRecord('kafkajs', seen);
});

test('@platformatic/kafka produces to and fetches from every partition through one bootstrap address', {
  skip,
}, async () => {
  const topic = uniqueName('platformatic');
  await createEverywhere(topic);
  // Idempotent: a send retried after a timeout under load must not write its records twice.
  const producer = new PlatformaticProducer({
    clientId: 'cluster-it',
    bootstrapBrokers: [bootstrap],
    acks: -1,
    idempotent: true,
  });
  try {
    const messages = [];
    for (let p = 0; p < PARTITIONS; p++)
      for (const value of values('platformatic', p)) messages.push({ topic, partition: p, value: Buffer.from(value) });
    await producer.send({ messages });
  } finally {
    await producer.close();
  }
  // The logs themselves, read with the project's client from each leader: what the producer wrote,
  // each record once, whatever the consumer below reads.
  const md = await metadataFrom(clientOf(clients, 1), [topic]);
  const inLogs: Seen[] = [];
  for (const [p, leader] of leaders(md, topic).entries())
    for (const r of await fetchAll(clientOf(clients, leader), topic, p)) inLogs.push({ partition: p, value: r.value });
  assertEveryRecord('platformatic', inLogs);
  const consumer = new PlatformaticConsumer({
    clientId: 'cluster-it',
    groupId: uniqueName('unused'),
    bootstrapBrokers: [bootstrap],
    retries: 2,
  });
  const seen: Seen[] = [];
  try {
    const info = (await consumer.metadata({ topics: [topic] })).topics.get(topic);
    assert.ok(info !== undefined, `@platformatic/kafka's metadata lacks ${topic}`);
    // Group-less fetches, one per leader: the client must reach each broker it learnt of.
    const byLeader = new Map<number, number[]>();
    for (const [index, p] of info.partitions.entries()) {
      const list = byLeader.get(p.leader) ?? [];
      list.push(index);
      byLeader.set(p.leader, list);
    }
    assert.equal(byLeader.size, 3, `@platformatic/kafka sees three leaders: ${JSON.stringify([...byLeader])}`);
    for (const [leader, partitions] of byLeader) {
      const response: PlatformaticFetchResponse = await consumer.fetch({
        node: leader,
        topics: [
          {
            topicId: info.id,
            partitions: partitions.map((partition) => ({
              partition,
              fetchOffset: 0n,
              currentLeaderEpoch: -1,
              lastFetchedEpoch: -1,
              partitionMaxBytes: 1 << 20,
            })),
          },
        ],
        maxWaitTime: 100,
        minBytes: 1,
        maxBytes: 8 << 20,
      });
      assert.equal(response.errorCode, 0, `fetch from broker ${leader}`);
      for (const tr of response.responses)
        for (const p of tr.partitions) {
          assert.equal(
            p.errorCode,
            0,
            `fetch ${topic}/${p.partitionIndex} from broker ${leader}: error ${p.errorCode}`,
          );
          for (const batch of p.records ?? [])
            for (const r of batch.records)
              seen.push({ partition: p.partitionIndex, value: r.value?.toString() ?? null });
        }
    }
  } finally {
    await consumer.close();
  }
  assertEveryRecord('platformatic', seen);
});

test('kcat produces to and consumes from every partition through one bootstrap address', { skip }, async () => {
  const topic = uniqueName('kcat');
  await createEverywhere(topic);
  for (let p = 0; p < PARTITIONS; p++) {
    await kcat(bootstrap, ['-P', '-t', topic, '-p', String(p), '-X', 'acks=all'], {
      input: `${values('kcat', p).join('\n')}\n`,
    });
  }
  const seen = (await kcatConsumeAll(bootstrap, topic)).map((r) => ({ partition: r.partition, value: r.payload }));
  assertEveryRecord('kcat', seen);
});

interface PythonConsumeResult {
  records: { partition: number; value: string | null }[];
}

for (const [client, script, debPackage] of [
  ['confluent-kafka', 'test/fixtures/python/confluent_kafka_client.py', 'python3-confluent-kafka'],
  ['kafka-python', 'test/fixtures/python/kafka_python_client.py', 'python3-kafka'],
] as const) {
  test(`${client} (python) produces to and consumes from every partition through one bootstrap address`, {
    skip,
  }, async () => {
    const topic = uniqueName(client);
    await createEverywhere(topic);
    const python = async (args: string[], input?: string): Promise<string> => {
      const res = await run(PYTHON, [script, ...args], {
        timeoutMs: 60_000,
        ...(input === undefined ? {} : { input }),
      });
      assert.equal(
        res.code,
        0,
        `${client} ${args[0]} exited with ${res.code ?? res.signal} (needs ${debPackage}):\n${res.stderr}${res.stdout}`,
      );
      return res.stdout;
    };
    const records = [];
    for (let p = 0; p < PARTITIONS; p++)
      for (const value of values(client, p))
        records.push({ partition: p, key: null, value, headers: [], timestamp: Date.now() });
    await python(['produce', bootstrap], JSON.stringify([{ topic, codec: 'none', records }]));
    const consumed = JSON.parse(await python(['consume', bootstrap, topic])) as PythonConsumeResult;
    assertEveryRecord(client, consumed.records);
  });
}

test('a group of three kafkajs consumers spans the brokers: each gets partitions, every record consumed once', {
  skip,
}, async (t) => {
  const topic = uniqueName('group');
  const group = uniqueName('group-g');
  await createEverywhere(topic);
  const topicLeaders = leaders(await metadataFrom(clientOf(clients, 1), [topic]), topic);
  const consumers: ConsumerProcess[] = [];
  t.after(async () => {
    for (const c of consumers) await c.kill();
  });
  for (let i = 0; i < 3; i++) consumers.push(spawnKafkajsConsumer(`c${i}`, bootstrap, topic, group));
  await cluster.waitFor(
    'a 4/4/4 assignment of the 12 partitions',
    async () => {
      const a = consumers.map((c) => c.assignment() ?? []);
      return a.every((x) => x.length === 4) && new Set(a.flat()).size === PARTITIONS;
    },
    40_000,
  );
  // The members fetch from every broker between them (kafkajs' round-robin assignment may give a
  // member only partitions one broker leads; together they read from all three).
  const fetchedFrom = new Set(consumers.flatMap((c) => c.assignment()!.map((p) => topicLeaders[p])));
  assert.deepEqual([...fetchedFrom].sort(), [1, 2, 3], 'the group reads from partitions every broker leads');
  t.diagnostic(
    `assignment: ${consumers.map((c) => `${c.name} ${c.assignment()!.join(',')} (led by ${[...new Set(c.assignment()!.map((p) => topicLeaders[p]))].join(',')})`).join('; ')}`,
  );
  const kafka = new Kafka({ clientId: 'cluster-it', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  const produced = new Map<number, number>();
  try {
    for (let p = 0; p < PARTITIONS; p++) {
      await producer.send({ topic, acks: -1, messages: values('group', p).map((value) => ({ partition: p, value })) });
      produced.set(p, PER_PARTITION);
    }
  } finally {
    await producer.disconnect();
  }
  await cluster.waitFor(
    'every record to be consumed by the group',
    async () => new Set(consumedKeys(consumers)).size === PARTITIONS * PER_PARTITION,
  );
  await new Promise((r) => setTimeout(r, 500));
  assertDeliveredOnceAfterCommit(consumers, produced);
  assert.equal(consumedKeys(consumers).length, PARTITIONS * PER_PARTITION, 'no record consumed twice');
  for (const c of consumers) {
    const got = c.events.filter((e) => e.type === 'message').length;
    assert.equal(got, 4 * PER_PARTITION, `${c.name} consumed its 4 partitions' records`);
  }
  // The group's coordinator is a live broker, the same whichever broker is asked.
  const coordinators = new Set<number>();
  for (const c of clients.values()) {
    const r = await findCoordinator(c, group);
    assert.equal(errorName(r.errorCode), 'NONE', 'FindCoordinator');
    coordinators.add(r.nodeId);
  }
  assert.equal(coordinators.size, 1, `one coordinator for ${group}: ${[...coordinators].join(',')}`);
  t.diagnostic(`group ${group} coordinated by broker ${[...coordinators][0]}`);
});

test('topic create, config change and delete through EACH broker take effect cluster-wide', { skip }, async (t) => {
  const controller = (await metadataFrom(clientOf(clients, 1), [])).controllerId;
  t.diagnostic(`controller: broker ${controller}`);
  const others = (b: ClusterBroker): KafkaClient[] =>
    cluster.brokers.filter((x) => x.nodeId !== b.nodeId).map((x) => clientOf(clients, x.nodeId));
  for (const b of cluster.brokers) {
    const via = clientOf(clients, b.nodeId);
    const role = b.nodeId === controller ? 'controller' : 'non-controller, forwarding';
    const topic = uniqueName(`via-${b.nodeId}`);

    const created = await createTopic(via, topic, 3, { 'retention.ms': '3600000' });
    assert.equal(errorName(created.errorCode), 'NONE', `create ${topic} through broker ${b.nodeId} (${role})`);
    await cluster.waitFor(`the other brokers to list ${topic} (created through ${b.nodeId})`, async () => {
      for (const c of others(b)) {
        const l = leaders(await metadataFrom(c, [topic]), topic);
        if (l.length !== 3 || l.some((x) => x < 0)) return false;
      }
      return true;
    });
    // A second create of the same name is refused by whichever broker is asked.
    const again = await createTopic(others(b)[0]!, topic, 3);
    assert.equal(errorName(again.errorCode), 'TOPIC_ALREADY_EXISTS', `create ${topic} again`);

    const altered = await setTopicConfig(via, topic, 'retention.ms', '7200000');
    assert.equal(errorName(altered), 'NONE', `IncrementalAlterConfigs ${topic} through broker ${b.nodeId} (${role})`);
    await cluster.waitFor(`the other brokers to describe ${topic} retention.ms=7200000`, async () => {
      for (const c of others(b)) if ((await describeTopicConfig(c, topic, 'retention.ms')) !== '7200000') return false;
      return true;
    });

    const deleted = await deleteTopic(via, topic);
    assert.equal(errorName(deleted), 'NONE', `delete ${topic} through broker ${b.nodeId} (${role})`);
    await cluster.waitFor(`every broker to forget ${topic}`, async () => {
      for (const c of clients.values()) {
        const md = await metadataFrom(c, [topic]);
        if (md.topics.get(topic)?.errorCode !== ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) return false;
      }
      return true;
    });
  }
});

test('a replication factor above the live brokers gets INVALID_REPLICATION_FACTOR saying why, through any broker', {
  skip,
}, async () => {
  for (const b of cluster.brokers) {
    const res = await clientOf(clients, b.nodeId).request(ApiKey.CreateTopics, {
      topics: [{ name: uniqueName('rf4'), numPartitions: 1, replicationFactor: 4, assignments: [], configs: [] }],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    const r = res.topics[0]!;
    assert.equal(errorName(r.errorCode), 'INVALID_REPLICATION_FACTOR', `RF 4 through broker ${b.nodeId}`);
    assert.match(r.errorMessage ?? '', /larger than available brokers: 3/);
  }
});
