// Issue 13, etcd stops answering (SIGSTOP) under a two-broker cluster:
//   - produce and fetch on the partitions each broker leads keep working while its lease is
//     still valid (checked within about a second of the pause: the data path does not wait on
//     etcd);
//   - a CreateTopics, through the controller and through the other broker, fails with a
//     retriable error within the client's timeout instead of hanging;
//   - after SIGCONT the cluster settles and a creation succeeds again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { KafkaClient } from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { type Cluster, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import {
  brokerClients,
  brokerLogs,
  clientOf,
  createTopic,
  errorName,
  fetchAll,
  isRetriable,
  leaders,
  metadataFrom,
  mustCreateTopic,
  mustProduce,
  NO_ETCD,
  uniqueName,
  waitForMembership,
} from './helpers.ts';

const PARTITIONS = 4;
/** What a client would wait for a CreateTopics answer (kafkajs' and Kafka's default is 30 s). */
const CLIENT_TIMEOUT_MS = 15_000;

const skip = etcdAvailable() ? false : NO_ETCD;
let cluster: Cluster;
let clients: Map<number, KafkaClient>;
const topic = uniqueName('etcd-down');
let topicLeaders: number[];

before(async () => {
  if (skip !== false) return;
  cluster = await startCluster({ brokers: 2 });
  clients = await brokerClients(cluster);
  await waitForMembership(
    cluster,
    clients,
    cluster.brokers.map((b) => b.nodeId),
  );
  await mustCreateTopic(clientOf(clients, 1), topic, PARTITIONS);
  topicLeaders = await cluster.waitFor('a leader for every partition on both brokers', async () => {
    const x = leaders(await metadataFrom(clientOf(clients, 1), [topic]), topic);
    return x.length === PARTITIONS && new Set(x).size === 2 && x.every((id) => id > 0) ? x : undefined;
  });
  for (let p = 0; p < PARTITIONS; p++) await mustProduce(clientOf(clients, topicLeaders[p]!), topic, p, ['before']);
});

after(async () => {
  // close() sends SIGCONT before killing, so a stopped etcd does not outlive the test.
  await cluster?.close();
});

test('etcd stopped: produce and fetch on led partitions keep working, CreateTopics fails retriably in time, and works after resume', {
  skip,
}, async (t) => {
  const controller = (await metadataFrom(clientOf(clients, 1), [])).controllerId;
  cluster.etcd.pause();
  t.after(() => cluster.etcd.resume());
  const pausedAt = Date.now();

  // The data path, within about a second of the pause: every partition through its leader.
  for (let p = 0; p < PARTITIONS; p++) {
    const leader = clientOf(clients, topicLeaders[p]!);
    await mustProduce(leader, topic, p, ['during']);
    const values = (await fetchAll(leader, topic, p)).map((r) => r.value);
    assert.deepEqual(values, ['before', 'during'], `${topic}/${p} on broker ${topicLeaders[p]}`);
  }
  const dataPathMs = Date.now() - pausedAt;
  t.diagnostic(`produce + fetch on ${PARTITIONS} partitions with etcd stopped: ${dataPathMs} ms`);
  assert.ok(dataPathMs < 1500, `the data path took ${dataPathMs} ms with etcd stopped`);

  // Metadata changes need etcd: an answer within the client's timeout, and a retriable one. Both
  // brokers are asked before anything fails, so one broker's defect does not hide the other's.
  // Sent to both at once, right after the data-path checks, so both ask while the leases still hold
  // (3 s).
  const problems: string[] = [];
  const ask = async (b: (typeof cluster.brokers)[number]): Promise<void> => {
    const role = b.nodeId === controller ? 'controller' : 'non-controller';
    const started = Date.now();
    try {
      const r = await createTopic(
        clientOf(clients, b.nodeId),
        uniqueName('blocked'),
        1,
        {},
        { timeoutMs: 5000, requestTimeoutMs: CLIENT_TIMEOUT_MS },
      );
      const ms = Date.now() - started;
      t.diagnostic(
        `CreateTopics through broker ${b.nodeId} (${role}) with etcd stopped: ${errorName(r.errorCode)} after ${ms} ms`,
      );
      if (r.errorCode === ErrorCode.NONE || !isRetriable(r.errorCode))
        problems.push(`broker ${b.nodeId} (${role}) answered ${errorName(r.errorCode)} ${r.errorMessage ?? ''}`);
    } catch (err) {
      problems.push(`broker ${b.nodeId} (${role}), after ${Date.now() - started} ms: ${(err as Error).message}`);
    }
  };
  await Promise.all(cluster.brokers.map(ask));
  // Checked at the end, after the recovery below, with the broker output of that moment.
  const logsWhileStopped = brokerLogs(cluster);

  cluster.etcd.resume();
  const resumedAt = Date.now();
  const created = uniqueName('after-resume');
  await cluster.waitFor(
    `CreateTopics ${created} to succeed after etcd resumed`,
    async () => {
      const r = await createTopic(
        clientOf(clients, 2),
        created,
        2,
        {},
        { timeoutMs: 5000, requestTimeoutMs: CLIENT_TIMEOUT_MS },
      );
      if (r.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS) return true;
      assert.ok(
        r.errorCode === ErrorCode.NONE || isRetriable(r.errorCode),
        `CreateTopics after resume: ${errorName(r.errorCode)}`,
      );
      return r.errorCode === ErrorCode.NONE;
    },
    30_000,
  );
  t.diagnostic(`creation succeeded ${Date.now() - resumedAt} ms after etcd resumed`);
  await cluster.waitFor(`${created} led on both brokers' Metadata, and ${topic} led again`, async () => {
    for (const c of clients.values()) {
      const md = await metadataFrom(c, [created, topic]);
      const l = [...leaders(md, created), ...leaders(md, topic)];
      if (l.length !== 2 + PARTITIONS || l.some((x) => x < 0)) return false;
    }
    return true;
  });
  // The data written while etcd was stopped is still there.
  const md = await metadataFrom(clientOf(clients, 1), [topic]);
  for (const [p, leader] of leaders(md, topic).entries()) {
    const values = (await fetchAll(clientOf(clients, leader), topic, p)).map((r) => r.value);
    assert.deepEqual(values, ['before', 'during'], `${topic}/${p} after etcd resumed`);
  }
  assert.deepEqual(problems, [], `CreateTopics with etcd stopped\n${logsWhileStopped}`);
});

test('etcd stopped past the brokers’ leases: CreateTopics still gets a retriable answer within the client timeout', {
  skip,
}, async (t) => {
  cluster.etcd.pause();
  t.after(() => cluster.etcd.resume());
  // Past the 3 s lease: the brokers now know their registrations lapsed.
  await new Promise((r) => setTimeout(r, 4000));
  const problems: string[] = [];
  await Promise.all(
    cluster.brokers.map(async (b) => {
      const started = Date.now();
      try {
        const r = await createTopic(
          clientOf(clients, b.nodeId),
          uniqueName('late'),
          1,
          {},
          { timeoutMs: 5000, requestTimeoutMs: CLIENT_TIMEOUT_MS },
        );
        t.diagnostic(`broker ${b.nodeId}: ${errorName(r.errorCode)} after ${Date.now() - started} ms`);
        if (r.errorCode === ErrorCode.NONE || !isRetriable(r.errorCode))
          problems.push(`broker ${b.nodeId} answered ${errorName(r.errorCode)} ${r.errorMessage ?? ''}`);
      } catch (err) {
        problems.push(`broker ${b.nodeId}, after ${Date.now() - started} ms: ${(err as Error).message}`);
      }
    }),
  );
  const logs = brokerLogs(cluster, 1500);
  cluster.etcd.resume();
  const created = uniqueName('after-late');
  await cluster.waitFor(`CreateTopics ${created} to succeed after etcd resumed`, async () => {
    const r = await createTopic(clientOf(clients, 1), created, 1, {}, { timeoutMs: 5000 });
    return r.errorCode === ErrorCode.NONE || r.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS;
  });
  assert.deepEqual(problems, [], `CreateTopics with etcd stopped past the leases\n${logs}`);
});
