// The MetadataStore contract (src/metadata/metadata-store.ts) on the single-node file store:
// partition state derived from the stored leader epochs, compare-and-swap on the partition epoch,
// change-feed events only after the change is on disk and none for a failed write, and data
// directories of earlier versions still loading.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { LocalMetadataStore } from '../../../src/metadata/local-metadata-store.ts';
import type { MetadataChange, MetadataStore } from '../../../src/metadata/metadata-store.ts';
import { ErrorCode, type KafkaError } from '../../../src/protocol/error-codes.ts';

const NODE = 7;
const FILE = 'samsa-metadata.json';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'samsa-metadata-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The file as it is on disk now. */
function onDisk(dir: string): {
  clusterId: string;
  topics: { name: string; partitions: number; leaderEpochs: number[]; partitionEpochs?: number[]; configs: object }[];
  brokerConfigs: Record<string, string>;
} {
  return JSON.parse(readFileSync(join(dir, FILE), 'utf8'));
}

function code(errorCode: number): (err: unknown) => boolean {
  return (err) => (err as KafkaError).errorCode === errorCode;
}

/** Makes every write fail (the temporary file's name is taken by a directory), or not. */
function breakWrites(dir: string, broken: boolean): void {
  if (broken) mkdirSync(join(dir, `${FILE}.tmp`));
  else rmSync(join(dir, `${FILE}.tmp`), { recursive: true, force: true });
}

test('a data directory of an earlier version loads; partition state is derived from it', async (t) => {
  const dir = tempDir(t);
  // The file format before partition epochs existed.
  const old = {
    version: 1,
    clusterId: 'AAAAAAAAAAAAAAAAAAAAAA',
    topics: [
      {
        name: 'orders',
        topicId: 'BBBBBBBBBBBBBBBBBBBBBB',
        partitions: 2,
        replicationFactor: 1,
        configs: { 'cleanup.policy': 'compact' },
        leaderEpochs: [3, 5],
      },
    ],
    brokerConfigs: { 'log.retention.ms': '1000' },
    nextProducerIdBlock: '2000',
    transactionalIds: { tx: { producerId: '1000', producerEpoch: 4 } },
  };
  writeFileSync(join(dir, FILE), JSON.stringify(old));
  const store: MetadataStore = await LocalMetadataStore.open(dir, NODE);
  assert.equal(store.clusterId, 'AAAAAAAAAAAAAAAAAAAAAA');
  assert.equal(store.topic('orders')?.topicId, 'BBBBBBBBBBBBBBBBBBBBBB');
  assert.equal(store.topicById('BBBBBBBBBBBBBBBBBBBBBB')?.name, 'orders');
  assert.deepEqual(store.topic('orders')?.configs, { 'cleanup.policy': 'compact' });
  assert.deepEqual(store.brokerConfigs(), { 'log.retention.ms': '1000' });
  assert.deepEqual(store.transactionalId('tx'), { producerId: 1000n, producerEpoch: 4 });
  assert.deepEqual(await store.allocateProducerIdBlock(10), { first: 2000n, end: 2010n });
  assert.deepEqual(store.partitionState('orders', 0), {
    replicas: [NODE],
    leader: NODE,
    leaderEpoch: 3,
    isr: [NODE],
    partitionEpoch: 0,
  });
  assert.equal(store.partitionState('orders', 1)?.leaderEpoch, 5);
  assert.equal(store.partitionState('orders', 2), undefined);
  assert.equal(store.partitionState('orders', -1), undefined);
  assert.equal(store.partitionState('nope', 0), undefined);
  // Nothing was rewritten just by opening (a full disk must not stop a restart).
  assert.equal(onDisk(dir).topics[0]?.partitionEpochs, undefined);
});

test('a new store has a cluster id that survives a restart, and knows its one broker once registered', async (t) => {
  const dir = tempDir(t);
  const store = await LocalMetadataStore.open(dir, NODE);
  assert.match(store.clusterId, /^[A-Za-z0-9_-]{22}$/);
  assert.deepEqual(store.brokers(), []);
  const events: MetadataChange[] = [];
  store.subscribe((c) => events.push(c));
  const me = { nodeId: NODE, host: 'broker.example', port: 9092, rack: 'r1' };
  await store.registerBroker(me);
  assert.deepEqual(store.brokers(), [me]);
  assert.deepEqual(store.broker(NODE), me);
  assert.equal(store.broker(NODE + 1), undefined);
  assert.deepEqual(events, [{ type: 'broker-registered', broker: me }]);
  await assert.rejects(store.registerBroker({ ...me, nodeId: NODE + 1 }), code(ErrorCode.INVALID_REQUEST));
  assert.equal((await LocalMetadataStore.open(dir, NODE)).clusterId, store.clusterId);
});

test('topic, partition and config changes are announced after they are persisted, in order', async (t) => {
  const dir = tempDir(t);
  const store: MetadataStore = await LocalMetadataStore.open(dir, NODE);
  const seen: string[] = [];
  store.subscribe((c) => {
    // Read synchronously, when the listener is called: the file must hold the change already.
    const file = onDisk(dir);
    const topic = 'topic' in c ? file.topics.find((x) => x.name === c.topic.name) : undefined;
    switch (c.type) {
      case 'topic-created':
        assert.ok(topic !== undefined);
        seen.push(`created ${c.topic.name}`);
        break;
      case 'partition-state':
        assert.equal(topic?.leaderEpochs[c.partition], c.state.leaderEpoch);
        assert.equal(topic?.partitionEpochs?.[c.partition] ?? 0, c.state.partitionEpoch);
        seen.push(`state ${c.topic.name}-${c.partition} ${c.state.leaderEpoch}/${c.state.partitionEpoch}`);
        break;
      case 'partitions-added':
        assert.equal(topic?.partitions, c.topic.partitions);
        seen.push(`partitions ${c.topic.name} ${c.previousPartitions}->${c.topic.partitions}`);
        break;
      case 'topic-configs':
        assert.deepEqual(topic?.configs, c.topic.configs);
        seen.push(`configs ${c.topic.name}`);
        break;
      case 'broker-configs':
        assert.deepEqual(file.brokerConfigs, c.configs);
        seen.push('broker configs');
        break;
      case 'topic-deleted':
        assert.equal(topic, undefined);
        seen.push(`deleted ${c.topic.name}`);
        break;
      case 'broker-registered':
        break;
    }
  });
  await store.createTopic('a', 2, 1, {});
  await store.setPartitionCount('a', 3);
  await store.setTopicConfigs('a', { 'retention.ms': '5' });
  await store.setBrokerConfigs({ 'log.retention.ms': '7' });
  const s = store.partitionState('a', 1)!;
  await store.updatePartitionState('a', 1, s.partitionEpoch, { ...s, leaderEpoch: s.leaderEpoch + 1 });
  await store.deleteTopic('a');
  assert.equal(await store.deleteTopic('a'), undefined); // nothing to delete: no event
  assert.deepEqual(seen, [
    'created a',
    'state a-0 0/0',
    'state a-1 0/0',
    'partitions a 2->3',
    'state a-2 0/0',
    'configs a',
    'broker configs',
    'state a-1 1/1',
    'deleted a',
  ]);
});

test('partition state changes are compare-and-swap on the partition epoch and never lower the leader epoch', async (t) => {
  const dir = tempDir(t);
  const store: MetadataStore = await LocalMetadataStore.open(dir, NODE);
  const topic = await store.createTopic('t', 2, 1, {});
  const events: MetadataChange[] = [];
  store.subscribe((c) => events.push(c));
  const s0 = store.partitionState('t', 1)!;
  assert.deepEqual(s0, { replicas: [NODE], leader: NODE, leaderEpoch: 0, isr: [NODE], partitionEpoch: 0 });

  const s1 = await store.updatePartitionState('t', 1, 0, { ...s0, leaderEpoch: 1 });
  assert.deepEqual(s1, { ...s0, leaderEpoch: 1, partitionEpoch: 1 });
  assert.deepEqual(store.partitionState('t', 1), s1);
  assert.deepEqual(store.topic('t')?.leaderEpochs, [0, 1]); // what the handlers read today
  assert.equal(store.topicById(topic.topicId)?.leaderEpochs[1], 1);
  assert.deepEqual(store.partitionState('t', 0), s0); // the other partition is untouched
  // An ISR-only change (same leader epoch) still bumps the partition epoch.
  const s2 = await store.updatePartitionState('t', 1, 1, { ...s0, leaderEpoch: 1 });
  assert.equal(s2.partitionEpoch, 2);
  assert.equal(events.length, 2);

  // A writer that read an older state loses, and changes nothing.
  await assert.rejects(
    store.updatePartitionState('t', 1, 1, { ...s0, leaderEpoch: 9 }),
    code(ErrorCode.INVALID_UPDATE_VERSION),
  );
  await assert.rejects(
    store.updatePartitionState('t', 1, 2, { ...s0, leaderEpoch: 0 }),
    code(ErrorCode.FENCED_LEADER_EPOCH),
  );
  await assert.rejects(
    store.updatePartitionState('t', 1, 2, { ...s0, leaderEpoch: 3, replicas: [NODE, 8], isr: [NODE, 8] }),
    code(ErrorCode.INVALID_REQUEST),
  );
  await assert.rejects(
    store.updatePartitionState('t', 1, 2, { ...s0, leaderEpoch: 3, leader: -1 }),
    code(ErrorCode.INVALID_REQUEST),
  );
  await assert.rejects(store.updatePartitionState('t', 2, 0, s0), code(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
  await assert.rejects(store.updatePartitionState('u', 0, 0, s0), code(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
  assert.equal(events.length, 2);
  assert.deepEqual(store.partitionState('t', 1), s2);

  // Persisted: a restart sees the epochs, and new partitions start at 0.
  const again = await LocalMetadataStore.open(dir, NODE);
  assert.deepEqual(again.partitionState('t', 1), s2);
  await again.setPartitionCount('t', 3);
  assert.deepEqual(again.partitionState('t', 1), s2);
  assert.deepEqual(again.partitionState('t', 2), s0);
  assert.deepEqual(again.topic('t')?.leaderEpochs, [0, 1, 0]);
});

test('a failed write changes nothing and announces nothing', async (t) => {
  const dir = tempDir(t);
  const store: MetadataStore = await LocalMetadataStore.open(dir, NODE);
  await store.createTopic('t', 1, 1, { 'retention.ms': '1' });
  const before = readFileSync(join(dir, FILE), 'utf8');
  const events: MetadataChange[] = [];
  store.subscribe((c) => events.push(c));
  const s = store.partitionState('t', 0)!;

  breakWrites(dir, true);
  await assert.rejects(store.createTopic('u', 1, 1, {}));
  await assert.rejects(store.setPartitionCount('t', 2));
  await assert.rejects(store.setTopicConfigs('t', {}));
  await assert.rejects(store.setBrokerConfigs({ 'log.retention.ms': '1' }));
  await assert.rejects(store.updatePartitionState('t', 0, 0, { ...s, leaderEpoch: 1 }));
  await assert.rejects(store.deleteTopic('t'));
  await assert.rejects(store.allocateProducerIdBlock(10));
  await assert.rejects(store.setTransactionalId('tx', 1n, 0));
  assert.deepEqual(events, []);
  assert.equal(readFileSync(join(dir, FILE), 'utf8'), before);
  assert.equal(store.topic('u'), undefined);
  assert.equal(store.topic('t')?.partitions, 1);
  assert.deepEqual(store.topic('t')?.configs, { 'retention.ms': '1' });
  assert.deepEqual(store.brokerConfigs(), {});
  assert.deepEqual(store.partitionState('t', 0), s);
  assert.equal(store.transactionalId('tx'), undefined);

  // Once writes succeed again, the same change goes through and is announced.
  breakWrites(dir, false);
  const after: string[] = [];
  store.subscribe((c) => after.push(c.type));
  await store.updatePartitionState('t', 0, 0, { ...s, leaderEpoch: 1 });
  assert.deepEqual(after, ['partition-state']);
});

test('a listener that throws fails neither the change nor the other listeners; unsubscribing stops the feed', async (t) => {
  const dir = tempDir(t);
  const store: MetadataStore = await LocalMetadataStore.open(dir, NODE);
  store.subscribe(() => {
    throw new Error('listener bug');
  });
  const seen: string[] = [];
  const unsubscribe = store.subscribe((c) => seen.push(c.type));
  await store.setBrokerConfigs({ 'log.retention.ms': '1' });
  assert.deepEqual(seen, ['broker-configs']);
  unsubscribe();
  await store.setBrokerConfigs({});
  assert.deepEqual(seen, ['broker-configs']);
  assert.deepEqual(store.brokerConfigs(), {});
});

test('nothing outside src/metadata names the local store but the composition root', () => {
  const src = resolve(import.meta.dirname, '../../../src');
  const offenders = readdirSync(src, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith('.ts'))
    .map((d) => relative(src, join(d.parentPath, d.name)))
    .filter((f) => !f.startsWith('metadata/') && f !== 'broker.ts')
    .filter((f) => /\bLocalMetadataStore\b/.test(readFileSync(join(src, f), 'utf8')));
  assert.deepEqual(offenders, []);
});
