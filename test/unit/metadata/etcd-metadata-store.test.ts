// The etcd MetadataStore against a real etcd (test/helpers/etcd.ts), one per file, a key prefix per
// test: the MetadataStore contract (metadata-store-contract.ts), then what only a cluster store
// does: brokers seeing each other's changes through the watch, a duplicate node id refused (and a
// restart after kill -9 taking its own registration over), one controller elected and another
// after it leaves, a stale controller fenced, a lost lease announced and registered anew, a
// 10,000-partition topic, concurrent compare-and-swaps of partitions of one topic, and an
// unreachable etcd (writes fail in bounded time, reads answer, writes resume).
import assert from 'node:assert/strict';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdMetadataStore, type EtcdMetadataStoreOptions } from '../../../src/metadata/etcd-metadata-store.ts';
import {
  type BrokerRegistration,
  DuplicateBrokerError,
  type MetadataChange,
  NO_LEADER,
} from '../../../src/metadata/metadata-store.ts';
import { ErrorCode, errorInfo, type KafkaError } from '../../../src/protocol/error-codes.ts';
import { type EtcdProcess, etcdAvailable, startEtcd } from '../../helpers/etcd.ts';
import { hasCode, metadataStoreContract } from './metadata-store-contract.ts';

type TestContext = { after(fn: () => unknown): void };

let etcdStarted: Promise<EtcdProcess> | undefined;
function sharedEtcd(): Promise<EtcdProcess> {
  etcdStarted ??= startEtcd();
  return etcdStarted;
}
after(async () => {
  if (etcdStarted !== undefined) await (await etcdStarted).stop();
});

let prefixes = 0;
function freshPrefix(): string {
  return `/samsa-test-${process.pid}-${++prefixes}`;
}

/** Short lease and timeouts, so that losing and regaining a registration takes a few seconds. */
const FAST = { sessionTimeoutMs: 2000, heartbeatIntervalMs: 300, requestTimeoutMs: 1500 } as const;

/** Opens a store, closed when the test ends (before anything registered after it). */
async function openStore(
  t: TestContext,
  endpoint: string,
  prefix: string,
  nodeId: number,
  extra: Partial<EtcdMetadataStoreOptions> = {},
): Promise<EtcdMetadataStore> {
  const store = await EtcdMetadataStore.open({ endpoints: [endpoint], prefix, nodeId, ...FAST, ...extra });
  t.after(() => store.close());
  return store;
}

function reg(nodeId: number, port = 9090 + nodeId): BrokerRegistration {
  return { nodeId, host: '127.0.0.1', port, rack: null };
}

async function until(what: string, condition: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A TCP proxy in front of etcd for one store: `pause` holds the bytes both ways (the store looks
 * stopped to etcd and etcd to it) until `resume`; `cut` drops every connection and refuses new
 * ones until `mend`, so requests fail at once and are never delivered.
 */
interface EtcdProxy {
  readonly endpoint: string;
  pause(): void;
  resume(): void;
  cut(): void;
  mend(): void;
  close(): Promise<void>;
}

async function startProxy(target: string): Promise<EtcdProxy> {
  const url = new URL(target);
  const sockets = new Set<Socket>();
  let paused = false;
  let cut = false;
  let held: (() => void)[] = [];
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  };
  const relay = (from: Socket, to: Socket) =>
    from.on('data', (chunk: Buffer) => {
      if (paused) held.push(() => to.write(chunk));
      else to.write(chunk);
    });
  const server = createServer((client) => {
    track(client);
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = netConnect(Number(url.port), url.hostname);
    track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    relay(client, upstream);
    relay(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
      const release = held;
      held = [];
      for (const write of release) write();
    },
    cut: () => {
      cut = true;
      held = [];
      for (const s of sockets) s.destroy();
    },
    mend: () => {
      cut = false;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const NODE = 7;

if (!etcdAvailable()) {
  test('EtcdMetadataStore', (t) => {
    t.skip('etcd is not installed (Debian package etcd-server; .ci/run installs it)');
  });
} else {
  metadataStoreContract('EtcdMetadataStore', {
    nodeId: NODE,
    async fresh(t) {
      const etcd = await sharedEtcd();
      // The store under test reaches etcd through a proxy that can cut it off; a reopened one
      // (a restart, or another broker) directly.
      const proxy = await startProxy(etcd.endpoint);
      const prefix = freshPrefix();
      const opened: EtcdMetadataStore[] = [];
      t.after(async () => {
        for (const s of opened.reverse()) await s.close();
        await proxy.close();
      });
      const open = async (endpoint: string) => {
        const s = await EtcdMetadataStore.open({ endpoints: [endpoint], prefix, nodeId: NODE, ...FAST });
        opened.push(s);
        return s;
      };
      return {
        store: await open(proxy.endpoint),
        reopen: () => open(etcd.endpoint),
        async breakWrites(broken) {
          if (broken) proxy.cut();
          else proxy.mend();
        },
      };
    },
  });
}

const skip = !etcdAvailable();

test('two brokers see each other’s registrations, topics and partition states through the watch', {
  skip,
}, async (t) => {
  const etcd = await sharedEtcd();
  const prefix = freshPrefix();
  const a = await openStore(t, etcd.endpoint, prefix, 1);
  const b = await openStore(t, etcd.endpoint, prefix, 2);
  assert.equal(a.clusterId, b.clusterId);
  assert.match(a.clusterId, /^[A-Za-z0-9_-]{22}$/);
  assert.notEqual(a.incarnationId, b.incarnationId);
  await a.registerBroker(reg(1));
  await b.registerBroker(reg(2));
  await until('both brokers registered everywhere', () => a.brokers().length === 2 && b.brokers().length === 2);
  assert.deepEqual(a.brokers(), [reg(1), reg(2)]);
  assert.equal(a.controllerId(), 1, 'the first broker to register is elected');
  assert.equal(b.controllerId(), 1);
  assert.equal(b.registrationLive(), true);

  const seenByB: string[] = [];
  b.subscribe((c) => {
    if (c.type === 'topic-created') seenByB.push(`${c.type} ${c.topic.name}`);
    if (c.type === 'partition-state') seenByB.push(`${c.type} ${c.partition} leader ${c.state.leader}`);
  });
  const created = await a.createTopic('shared', 2, 2, { 'retention.ms': '9' }, [
    [1, 2],
    [2, 1],
  ]);
  await until('b sees the topic', () => b.topic('shared') !== undefined);
  assert.equal(b.topic('shared')?.topicId, created.topicId);
  assert.equal(b.topicById(created.topicId)?.name, 'shared');
  assert.deepEqual(b.topic('shared')?.configs, { 'retention.ms': '9' });
  assert.deepEqual(b.partitionState('shared', 1), {
    replicas: [2, 1],
    leader: 2,
    leaderEpoch: 0,
    isr: [2, 1],
    partitionEpoch: 0,
  });
  assert.deepEqual(seenByB, ['topic-created shared', 'partition-state 0 leader 1', 'partition-state 1 leader 2']);

  // b changes partition 0 (a leader change, as a controller would decide); a sees it.
  const s0 = b.partitionState('shared', 0)!;
  const next = await b.updatePartitionState('shared', 0, 0, { ...s0, leader: 2, leaderEpoch: 1, isr: [2] });
  assert.deepEqual(next, { replicas: [1, 2], leader: 2, leaderEpoch: 1, isr: [2], partitionEpoch: 1 });
  await until('a sees the new state', () => a.partitionState('shared', 0)?.partitionEpoch === 1);
  assert.deepEqual(a.partitionState('shared', 0), next);
  assert.deepEqual(a.topic('shared')?.leaderEpochs, [1, 0]);
  await assert.rejects(
    a.updatePartitionState('shared', 0, 0, { ...s0, leaderEpoch: 2 }),
    hasCode(ErrorCode.INVALID_UPDATE_VERSION),
  );
  // Replicas only on live brokers.
  await assert.rejects(a.createTopic('elsewhere', 1, 1, {}, [[3]]), hasCode(ErrorCode.INVALID_REPLICA_ASSIGNMENT));
  await assert.rejects(a.createTopic('twice', 1, 2, {}, [[1, 1]]), hasCode(ErrorCode.INVALID_REPLICA_ASSIGNMENT));
  await assert.rejects(b.createTopic('shared', 1, 1, {}), hasCode(ErrorCode.TOPIC_ALREADY_EXISTS));

  // Deleted on b and recreated on a: the new topic starts afresh (states are keyed by topic id).
  await b.deleteTopic('shared');
  await until('a sees the deletion', () => a.topic('shared') === undefined);
  const again = await a.createTopic('shared', 1, 1, {});
  assert.notEqual(again.topicId, created.topicId);
  assert.deepEqual(a.partitionState('shared', 0), {
    replicas: [1],
    leader: 1,
    leaderEpoch: 0,
    isr: [1],
    partitionEpoch: 0,
  });

  // A broker that shuts down is gone for the others at once.
  const seenByA: MetadataChange[] = [];
  a.subscribe((c) => seenByA.push(c));
  await b.close();
  await until('a sees b leave', () => a.broker(2) === undefined);
  assert.deepEqual(
    seenByA.filter((c) => c.type === 'broker-unregistered'),
    [{ type: 'broker-unregistered', nodeId: 2 }],
  );
});

test('a node id registered by a live broker is refused; the same data directory’s restart takes it over', {
  skip,
}, async (t) => {
  const etcd = await sharedEtcd();
  const prefix = freshPrefix();
  const first = await openStore(t, etcd.endpoint, prefix, 5);
  await first.registerBroker({ nodeId: 5, host: 'broker-a', port: 9001, rack: null });
  const firstEvents: MetadataChange[] = [];
  first.subscribe((c) => firstEvents.push(c));

  const other = await openStore(t, etcd.endpoint, prefix, 5);
  await assert.rejects(other.registerBroker({ nodeId: 5, host: 'broker-b', port: 9002, rack: null }), (err) => {
    assert.ok(err instanceof DuplicateBrokerError);
    assert.equal(
      err.message,
      'node id 5 is already registered by a live broker at broker-a:9001; give this broker another node.id (--node-id) or stop the other one',
    );
    return true;
  });
  assert.equal(other.registrationLive(), false);
  assert.deepEqual(first.broker(5), { nodeId: 5, host: 'broker-a', port: 9001, rack: null });
  assert.equal(first.registrationLive(), true);

  // The first broker's process was killed (-9) and restarted on its data directory: it knows the
  // incarnation it registered with, and takes over at once instead of waiting for the lease.
  const restarted = await openStore(t, etcd.endpoint, prefix, 5, { previousIncarnation: first.incarnationId });
  await restarted.registerBroker({ nodeId: 5, host: 'broker-a', port: 9003, rack: null });
  assert.deepEqual(restarted.broker(5), { nodeId: 5, host: 'broker-a', port: 9003, rack: null });
  assert.equal(restarted.registrationLive(), true);
  await until('the restarted broker is the controller', () => restarted.controllerId() === 5);
  // The old process, were it still running, learns that its registration is gone.
  await until('the displaced process sees its registration lost', () => !first.registrationLive());
  assert.ok(firstEvents.some((c) => c.type === 'registration' && !c.live));
});

test('exactly one controller among three brokers; another is elected when it leaves', { skip }, async (t) => {
  const etcd = await sharedEtcd();
  const prefix = freshPrefix();
  const stores = await Promise.all([1, 2, 3].map((id) => openStore(t, etcd.endpoint, prefix, id)));
  await Promise.all(stores.map((s, i) => s.registerBroker(reg(i + 1))));
  const agreed = (among: EtcdMetadataStore[]) => {
    const ids = new Set(among.map((s) => s.controllerId()));
    return ids.size === 1 && !ids.has(NO_LEADER) ? [...ids][0]! : undefined;
  };
  await until('one controller', () => agreed(stores) !== undefined);
  const controller = agreed(stores)!;
  const rest = stores.filter((_, i) => i + 1 !== controller);
  const changes: MetadataChange[] = [];
  rest[0]!.subscribe((c) => changes.push(c));

  const left = Date.now();
  await stores[controller - 1]!.close();
  await until('a new controller', () => agreed(rest) !== undefined && agreed(rest) !== controller);
  assert.ok(Date.now() - left < 3000, `elected after ${Date.now() - left} ms`);
  const successor = agreed(rest)!;
  assert.deepEqual(
    changes
      .filter((c) => c.type === 'controller-changed')
      .map((c) => c.type === 'controller-changed' && c.controllerId),
    [NO_LEADER, successor],
  );
  assert.ok(changes.some((c) => c.type === 'broker-unregistered' && c.nodeId === controller));
});

test('a controller whose lease was lost is fenced, then registers anew', { skip }, async (t) => {
  const etcd = await sharedEtcd();
  const prefix = freshPrefix();
  const proxy = await startProxy(etcd.endpoint);
  const admin = new Etcd3({ hosts: etcd.endpoint });
  t.after(async () => {
    admin.close();
    await proxy.close();
  });
  const a = await openStore(t, proxy.endpoint, prefix, 1);
  const b = await openStore(t, etcd.endpoint, prefix, 2);
  await a.registerBroker(reg(1));
  await b.registerBroker(reg(2));
  await until('a is the controller everywhere', () => a.controllerId() === 1 && b.controllerId() === 1);
  // The assignment names broker 2: a must have seen its registration (a slow watch under load).
  await until('a sees b', () => a.broker(2) !== undefined);
  await a.createTopic('fenced', 1, 2, {}, [[1, 2]]);
  const s = a.partitionState('fenced', 0)!;
  const registration: boolean[] = [];
  a.subscribe((c) => {
    if (c.type === 'registration') registration.push(c.live);
  });

  // a stops (as if SIGSTOPped) and its lease is gone meanwhile: b is elected.
  proxy.pause();
  const kv = (await admin.get(`${prefix}/brokers/ids/1`).exec()).kvs[0]!;
  await admin.leaseClient.leaseRevoke({ ID: kv.lease });
  await until('b is elected', () => b.controllerId() === 2);
  assert.equal(a.controllerId(), 1, 'a has heard nothing yet');
  // a resumes with a decision made as the controller it no longer is: refused, nothing changes.
  const stale = a.updatePartitionState('fenced', 0, 0, { ...s, leader: 1, leaderEpoch: 1, isr: [1] });
  proxy.resume();
  await assert.rejects(stale, hasCode(ErrorCode.NOT_CONTROLLER));
  assert.deepEqual(b.partitionState('fenced', 0), s);
  assert.equal((await admin.get(`${prefix}/brokers/partitions/${b.topic('fenced')!.topicId}/0`).exec()).kvs.length, 0);

  // a learns its registration was lost, and registers again (a new lease, the same incarnation).
  await until('a registered again', () => registration.length === 2);
  assert.deepEqual(registration, [false, true]);
  assert.equal(a.registrationLive(), true);
  await until('b sees a again', () => b.broker(1) !== undefined);
  assert.deepEqual(b.broker(1), reg(1));
  const fresh = (await admin.get(`${prefix}/brokers/ids/1`).exec()).kvs[0]!;
  assert.notEqual(fresh.lease, kv.lease);
  assert.equal(JSON.parse(fresh.value.toString()).incarnationId, a.incarnationId);
  assert.equal(a.controllerId(), 2);
  // No longer the controller, a writes unfenced (compare-and-swap on the partition epoch only).
  const moved = await a.updatePartitionState('fenced', 0, 0, { ...s, leader: 2, leaderEpoch: 1, isr: [2] });
  assert.equal(moved.partitionEpoch, 1);
});

test('a topic of 10,000 partitions is created, seen by other brokers, and grown', { skip }, async (t) => {
  const etcd = await sharedEtcd();
  const prefix = freshPrefix();
  const a = await openStore(t, etcd.endpoint, prefix, 1);
  const b = await openStore(t, etcd.endpoint, prefix, 2);
  let statesSeenByB = 0;
  b.subscribe((c) => {
    if (c.type === 'partition-state' && c.topic.name === 'big') statesSeenByB++;
  });
  const big = await a.createTopic('big', 10_000, 1, {});
  assert.equal(big.partitions, 10_000);
  assert.equal(big.leaderEpochs.length, 10_000);
  assert.deepEqual(a.partitionState('big', 9999), {
    replicas: [1],
    leader: 1,
    leaderEpoch: 0,
    isr: [1],
    partitionEpoch: 0,
  });
  await until('b sees the topic', () => statesSeenByB === 10_000);
  assert.equal(b.topic('big')?.partitions, 10_000);

  await b.setPartitionCount('big', 10_100);
  await until('a sees the growth', () => a.topic('big')?.partitions === 10_100);
  assert.deepEqual(a.partitionState('big', 10_099), {
    replicas: [2],
    leader: 2,
    leaderEpoch: 0,
    isr: [2],
    partitionEpoch: 0,
  });
  const s = a.partitionState('big', 9999)!;
  await a.updatePartitionState('big', 9999, 0, { ...s, leaderEpoch: 1 });
  await until('b sees the change', () => b.partitionState('big', 9999)?.leaderEpoch === 1);
  assert.equal(b.topic('big')?.leaderEpochs[9999], 1);
  assert.deepEqual(await a.deleteTopic('big').then((x) => x?.name), 'big');
});

test('compare-and-swaps of different partitions of one topic never lose to each other', { skip }, async (t) => {
  const etcd = await sharedEtcd();
  const prefix = freshPrefix();
  const a = await openStore(t, etcd.endpoint, prefix, 1);
  const b = await openStore(t, etcd.endpoint, prefix, 2);
  await a.createTopic('cas', 2, 1, {});
  await until('b sees the topic', () => b.topic('cas') !== undefined);
  const s = a.partitionState('cas', 0)!;
  for (let epoch = 0; epoch < 10; epoch++) {
    const [x, y] = await Promise.all([
      a.updatePartitionState('cas', 0, epoch, { ...s, leaderEpoch: epoch + 1 }),
      b.updatePartitionState('cas', 1, epoch, { ...s, leaderEpoch: epoch + 1 }),
    ]);
    assert.equal(x.partitionEpoch, epoch + 1);
    assert.equal(y.partitionEpoch, epoch + 1);
  }
  await until('both see both', () => a.topic('cas')?.leaderEpochs[1] === 10 && b.topic('cas')?.leaderEpochs[0] === 10);
  // The same partition from two brokers at once: exactly one wins.
  const results = await Promise.allSettled([
    a.updatePartitionState('cas', 0, 10, { ...s, leaderEpoch: 11 }),
    b.updatePartitionState('cas', 0, 10, { ...s, leaderEpoch: 12 }),
  ]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  const lost = results.find((r) => r.status === 'rejected');
  assert.ok(lost !== undefined);
  assert.equal((lost.reason as KafkaError).errorCode, ErrorCode.INVALID_UPDATE_VERSION);
});

test('etcd unreachable: writes fail in bounded time with a retriable error, reads answer; then writes resume', {
  skip,
}, async (t) => {
  const etcd = await sharedEtcd();
  const prefix = freshPrefix();
  const store = await openStore(t, etcd.endpoint, prefix, 1, { requestTimeoutMs: 1000 });
  await store.registerBroker(reg(1));
  const leaving = await openStore(t, etcd.endpoint, prefix, 2, { requestTimeoutMs: 1000 });
  await leaving.registerBroker(reg(2));
  await store.createTopic('p', 1, 1, {});
  // What the reads below must answer from the cache (a slow watch under load).
  await until('the store sees broker 2', () => store.broker(2) !== undefined);
  const registration: boolean[] = [];
  store.subscribe((c) => {
    if (c.type === 'registration') registration.push(c.live);
  });

  etcd.pause();
  try {
    const started = Date.now();
    await assert.rejects(store.setBrokerConfigs({ 'log.retention.ms': '1' }), (err: KafkaError) => {
      assert.equal(err.errorCode, ErrorCode.REQUEST_TIMED_OUT);
      assert.equal(errorInfo(err.errorCode)?.retriable, true);
      assert.match(err.message, /metadata store \(etcd at 127\.0\.0\.1:\d+\) is unreachable/);
      return true;
    });
    assert.ok(Date.now() - started < 2500, `rejected after ${Date.now() - started} ms`);
    assert.equal(store.topic('p')?.partitions, 1);
    assert.equal(store.partitionState('p', 0)?.leader, 1);
    assert.deepEqual(store.brokers(), [reg(1), reg(2)]);
    // Shutting down does not wait for an etcd that does not answer.
    const closing = Date.now();
    await leaving.close();
    assert.ok(Date.now() - closing < 2500, `closed after ${Date.now() - closing} ms`);
    // Past the lease's TTL without a keepalive, the broker stops counting itself registered.
    await until('the registration is no longer live', () => !store.registrationLive(), 4000);
    await until('announced', () => registration.length === 1);
  } finally {
    etcd.resume();
  }
  await until('registered again', () => store.registrationLive() && registration.length === 2);
  assert.deepEqual(registration, [false, true]);
  await store.setBrokerConfigs({ 'log.retention.ms': '2' });
  assert.deepEqual(store.brokerConfigs(), { 'log.retention.ms': '2' });
  await until('the controller again', () => store.controllerId() === 1);
});

test('a watch whose revision was compacted away reloads and announces what changed meanwhile', { skip }, async (t) => {
  const etcd = await sharedEtcd();
  const prefix = freshPrefix();
  const proxy = await startProxy(etcd.endpoint);
  const admin = new Etcd3({ hosts: etcd.endpoint });
  t.after(async () => {
    admin.close();
    await proxy.close();
  });
  const warnings: string[] = [];
  const logger = { info: () => undefined, warn: (_: object, m: string) => warnings.push(m) };
  const a = await openStore(t, proxy.endpoint, prefix, 1, { logger });
  const b = await openStore(t, etcd.endpoint, prefix, 1);
  await b.createTopic('gone', 1, 1, {});
  await b.createTopic('kept', 1, 1, {});
  await until('a sees the topics', () => a.topic('kept') !== undefined);
  const seen: string[] = [];
  a.subscribe((c) => {
    if (c.type === 'topic-created' || c.type === 'topic-deleted') seen.push(`${c.type} ${c.topic.name}`);
    if (c.type === 'partition-state') seen.push(`${c.type} ${c.topic.name}-${c.partition} ${c.state.partitionEpoch}`);
    if (c.type === 'broker-configs') seen.push(c.type);
  });

  proxy.cut();
  await b.deleteTopic('gone');
  await b.createTopic('late', 1, 1, {});
  const s = b.partitionState('kept', 0)!;
  await b.updatePartitionState('kept', 0, 0, { ...s, leaderEpoch: 1 });
  await b.setBrokerConfigs({ 'log.retention.ms': '3' });
  const { header } = await admin.get(`${prefix}/cluster_id`).exec();
  await admin.kv.compact({ revision: header.revision });
  assert.equal(a.topic('gone')?.name, 'gone', 'a still answers from what it had');
  proxy.mend();

  await until('a caught up', () => a.topic('late') !== undefined && a.brokerConfigs()['log.retention.ms'] === '3');
  assert.ok(warnings.includes('metadata watch compacted; reloading'), warnings.join('; '));
  assert.equal(a.topic('gone'), undefined);
  assert.equal(a.partitionState('kept', 0)?.partitionEpoch, 1);
  assert.deepEqual(seen.sort(), [
    'broker-configs',
    'partition-state kept-0 1',
    'partition-state late-0 0',
    'topic-created late',
    'topic-deleted gone',
  ]);
  // And it keeps watching from there.
  await b.setBrokerConfigs({ 'log.retention.ms': '4' });
  await until('a sees later changes', () => a.brokerConfigs()['log.retention.ms'] === '4');
});

test('with several etcd endpoints, a dead one costs at most one failed request', { skip }, async (t) => {
  const etcd = await sharedEtcd();
  const dead = await startProxy(etcd.endpoint);
  t.after(() => dead.close());
  dead.cut();
  const store = await openStore(t, dead.endpoint, freshPrefix(), 1, { endpoints: [dead.endpoint, etcd.endpoint] });
  await store.registerBroker(reg(1)).catch(() => store.registerBroker(reg(1)));
  let failures = 0;
  for (let i = 0; i < 10; i++) {
    await store.setBrokerConfigs({ n: String(i) }).catch(async (err: KafkaError) => {
      assert.equal(err.errorCode, ErrorCode.REQUEST_TIMED_OUT);
      failures++;
      await store.setBrokerConfigs({ n: String(i) });
    });
  }
  assert.ok(failures <= 1, `${failures} failed requests`);
  assert.deepEqual(store.brokerConfigs(), { n: '9' });
  assert.equal(store.registrationLive(), true);
});
