// The single-node file store: the MetadataStore contract (metadata-store-contract.ts), and what is
// its own: partition state derived from the stored leader epochs (replicas = ISR = leader = this
// node), data directories of earlier versions loading, the file holding a change when its event
// is emitted, and no other module than the composition root naming it.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { LocalMetadataStore } from '../../../src/metadata/local-metadata-store.ts';
import type { MetadataStore } from '../../../src/metadata/metadata-store.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { hasCode, metadataStoreContract } from './metadata-store-contract.ts';

const NODE = 7;
const FILE = 'samsa-metadata.json';

function tempDir(t: { after(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'samsa-metadata-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

metadataStoreContract('LocalMetadataStore', {
  nodeId: NODE,
  async fresh(t) {
    const dir = tempDir(t);
    return {
      store: await LocalMetadataStore.open(dir, NODE),
      reopen: () => LocalMetadataStore.open(dir, NODE),
      // The temporary file's name taken by a directory: every write fails, as on a full disk.
      async breakWrites(broken) {
        if (broken) mkdirSync(join(dir, `${FILE}.tmp`));
        else rmSync(join(dir, `${FILE}.tmp`), { recursive: true, force: true });
      },
    };
  },
});

/** The file as it is on disk now. */
function onDisk(dir: string): {
  topics: { name: string; partitions: number; leaderEpochs: number[]; partitionEpochs?: number[]; configs: object }[];
  brokerConfigs: Record<string, string>;
} {
  return JSON.parse(readFileSync(join(dir, FILE), 'utf8'));
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
  assert.deepEqual(store.partitionState('orders', 0), {
    replicas: [NODE],
    leader: NODE,
    leaderEpoch: 3,
    isr: [NODE],
    partitionEpoch: 0,
  });
  assert.equal(store.partitionState('orders', 1)?.leaderEpoch, 5);
  // Nothing was rewritten just by opening (a full disk must not stop a restart).
  assert.equal(onDisk(dir).topics[0]?.partitionEpochs, undefined);
  assert.deepEqual(await store.allocateProducerIdBlock(10), { first: 2000n, end: 2010n });
  // The partition epoch is added to the file when there is one to keep; the rest is as it was.
  const s = store.partitionState('orders', 1)!;
  await store.updatePartitionState('orders', 1, 0, { ...s, leaderEpoch: 6 });
  const topic = onDisk(dir).topics[0]!;
  assert.deepEqual(topic.leaderEpochs, [3, 6]);
  assert.deepEqual(topic.partitionEpochs, [0, 1]);
  assert.equal(JSON.parse(readFileSync(join(dir, FILE), 'utf8')).version, 1);
});

test('each change is in the file when its event is emitted', async (t) => {
  const dir = tempDir(t);
  const store: MetadataStore = await LocalMetadataStore.open(dir, NODE);
  const checked: string[] = [];
  store.subscribe((c) => {
    // Read synchronously, when the listener is called (a failed assertion leaves no entry).
    const file = onDisk(dir);
    const topic = 'topic' in c ? file.topics.find((x) => x.name === c.topic.name) : undefined;
    if (c.type === 'topic-created') assert.ok(topic !== undefined);
    if (c.type === 'topic-deleted') assert.equal(topic, undefined);
    if (c.type === 'partitions-added') assert.equal(topic?.partitions, c.topic.partitions);
    if (c.type === 'topic-configs') assert.deepEqual(topic?.configs, c.topic.configs);
    if (c.type === 'broker-configs') assert.deepEqual(file.brokerConfigs, c.configs);
    if (c.type === 'partition-state') {
      assert.equal(topic?.leaderEpochs[c.partition], c.state.leaderEpoch);
      assert.equal(topic?.partitionEpochs?.[c.partition] ?? 0, c.state.partitionEpoch);
    }
    checked.push(c.type);
  });
  await store.createTopic('a', 1, 1, {});
  await store.setPartitionCount('a', 2);
  await store.setTopicConfigs('a', { 'retention.ms': '5' });
  await store.setBrokerConfigs({ 'log.retention.ms': '7' });
  const s = store.partitionState('a', 1)!;
  await store.updatePartitionState('a', 1, 0, { ...s, leaderEpoch: 1 });
  await store.deleteTopic('a');
  assert.deepEqual(checked, [
    'topic-created',
    'partition-state',
    'partitions-added',
    'partition-state',
    'topic-configs',
    'broker-configs',
    'partition-state',
    'topic-deleted',
  ]);
});

test('the single-node store holds every partition on its own node alone, and only that broker', async (t) => {
  const dir = tempDir(t);
  const store: MetadataStore = await LocalMetadataStore.open(dir, NODE);
  await store.createTopic('t', 1, 1, {});
  const s = store.partitionState('t', 0)!;
  await assert.rejects(
    store.updatePartitionState('t', 0, 0, { ...s, leaderEpoch: 1, replicas: [NODE, 8], isr: [NODE, 8] }),
    hasCode(ErrorCode.INVALID_REQUEST),
  );
  await assert.rejects(
    store.updatePartitionState('t', 0, 0, { ...s, leaderEpoch: 1, leader: -1 }),
    hasCode(ErrorCode.INVALID_REQUEST),
  );
  await assert.rejects(store.createTopic('u', 1, 1, {}, [[8]]), hasCode(ErrorCode.INVALID_REPLICA_ASSIGNMENT));
  await assert.rejects(store.setPartitionCount('t', 2, [[NODE, 8]]), hasCode(ErrorCode.INVALID_REPLICA_ASSIGNMENT));
  assert.deepEqual(store.partitionState('t', 0), s);
  assert.equal(store.topic('u'), undefined);
  assert.equal(store.topic('t')?.partitions, 1);
  assert.deepEqual(store.brokers(), []);
  await assert.rejects(
    store.registerBroker({ nodeId: NODE + 1, host: 'h', port: 1, rack: null }),
    hasCode(ErrorCode.INVALID_REQUEST),
  );
  assert.deepEqual(store.brokers(), []);
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
