// The MetadataStore contract (src/metadata/metadata-store.ts), for any implementation: each store's
// test file calls `metadataStoreContract` with a harness that opens it on fresh metadata. Covered:
// topics by name and ID, the initial partition state, compare-and-swap on the partition epoch
// (never lowering the leader epoch), persistence across a reopen, the change feed (in order,
// after the change, none for a failed write), producer-id blocks and transactional ids.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MetadataChange, MetadataStore, PartitionState } from '../../../src/metadata/metadata-store.ts';
import { ErrorCode, type KafkaError } from '../../../src/protocol/error-codes.ts';

export interface MetadataStoreInstance {
  readonly store: MetadataStore;
  /** Another store on the same metadata (a restart; for a shared store, another broker). */
  reopen(): Promise<MetadataStore>;
  /** Makes every write fail from now on (a full disk, an unreachable etcd), or work again. */
  breakWrites(broken: boolean): Promise<void>;
}

export interface MetadataStoreHarness {
  /** The broker the store serves: the replica and leader of partitions placed on it. */
  readonly nodeId: number;
  /** A store on fresh metadata, cleaned up after the test `t`. */
  fresh(t: { after(fn: () => unknown): void }): Promise<MetadataStoreInstance>;
}

export function hasCode(errorCode: number): (err: unknown) => boolean {
  return (err) => (err as KafkaError).errorCode === errorCode;
}

export function metadataStoreContract(name: string, h: MetadataStoreHarness): void {
  const node = h.nodeId;
  const initial: PartitionState = { replicas: [node], leader: node, leaderEpoch: 0, isr: [node], partitionEpoch: 0 };

  test(`${name}: topics by name and ID, each partition led by its first replica at epoch 0`, async (t) => {
    const { store, reopen } = await h.fresh(t);
    const a = await store.createTopic('a', 2, 1, { 'retention.ms': '5' });
    const b = await store.createTopic('b', 1, 1, {}, [[node]]);
    assert.notEqual(a.topicId, b.topicId);
    assert.equal(store.topicById(a.topicId)?.name, 'a');
    assert.deepEqual(store.topic('a')?.configs, { 'retention.ms': '5' });
    assert.deepEqual(
      store
        .topics()
        .map((x) => x.name)
        .sort(),
      ['a', 'b'],
    );
    assert.deepEqual(store.partitionState('a', 0), initial);
    assert.deepEqual(store.partitionState('a', 1), initial);
    assert.deepEqual(store.partitionState('b', 0), initial);
    assert.equal(store.partitionState('a', 2), undefined);
    assert.equal(store.partitionState('a', -1), undefined);
    assert.equal(store.partitionState('c', 0), undefined);
    await assert.rejects(store.createTopic('a', 1, 1, {}), hasCode(ErrorCode.TOPIC_ALREADY_EXISTS));
    await assert.rejects(store.createTopic('c', 2, 1, {}, [[node]]), hasCode(ErrorCode.INVALID_REPLICA_ASSIGNMENT));
    await store.setPartitionCount('b', 3, [[node], [node]]);
    assert.deepEqual(store.partitionState('b', 2), initial);
    await assert.rejects(store.setPartitionCount('nope', 2), hasCode(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));

    const again = await reopen();
    assert.equal(again.clusterId, store.clusterId);
    assert.equal(again.topic('a')?.topicId, a.topicId);
    assert.equal(again.topic('b')?.partitions, 3);
    assert.equal((await store.deleteTopic('a'))?.topicId, a.topicId);
    assert.equal(store.topic('a'), undefined);
    assert.equal(store.topicById(a.topicId), undefined);
    assert.equal(await store.deleteTopic('a'), undefined);
  });

  test(`${name}: partition state changes are compare-and-swap on the partition epoch, never lowering the leader epoch`, async (t) => {
    const { store, reopen } = await h.fresh(t);
    await store.createTopic('t', 2, 1, {});
    const s0 = store.partitionState('t', 1)!;
    const s1 = await store.updatePartitionState('t', 1, 0, { ...s0, leaderEpoch: 1 });
    assert.deepEqual(s1, { ...initial, leaderEpoch: 1, partitionEpoch: 1 });
    assert.deepEqual(store.partitionState('t', 1), s1);
    assert.deepEqual(store.topic('t')?.leaderEpochs, [0, 1]); // what readers of TopicMetadata see
    assert.deepEqual(store.partitionState('t', 0), initial); // the other partition is untouched
    // A change that keeps the leader epoch (an ISR change) still bumps the partition epoch.
    const s2 = await store.updatePartitionState('t', 1, 1, { ...s0, leaderEpoch: 1 });
    assert.equal(s2.partitionEpoch, 2);

    // A writer that read an older state loses, and changes nothing.
    await assert.rejects(
      store.updatePartitionState('t', 1, 1, { ...s0, leaderEpoch: 9 }),
      hasCode(ErrorCode.INVALID_UPDATE_VERSION),
    );
    await assert.rejects(
      store.updatePartitionState('t', 1, 2, { ...s0, leaderEpoch: 0 }),
      hasCode(ErrorCode.FENCED_LEADER_EPOCH),
    );
    await assert.rejects(store.updatePartitionState('t', 2, 0, initial), hasCode(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
    await assert.rejects(store.updatePartitionState('u', 0, 0, initial), hasCode(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
    assert.deepEqual(store.partitionState('t', 1), s2);

    const again = await reopen();
    assert.deepEqual(again.partitionState('t', 1), s2);
    assert.deepEqual(again.topic('t')?.leaderEpochs, [0, 1]);
    // A stale writer elsewhere is refused too.
    await assert.rejects(
      again.updatePartitionState('t', 1, 0, { ...s0, leaderEpoch: 5 }),
      hasCode(ErrorCode.INVALID_UPDATE_VERSION),
    );
  });

  test(`${name}: the change feed announces each change once it is made, in order`, async (t) => {
    const { store } = await h.fresh(t);
    const seen: string[] = [];
    store.subscribe((c) => seen.push(describe(c)));
    await store.createTopic('a', 2, 1, {});
    await store.setPartitionCount('a', 3);
    await store.setTopicConfigs('a', { 'retention.ms': '5' });
    await store.setBrokerConfigs({ 'log.retention.ms': '7' });
    const s = store.partitionState('a', 1)!;
    await store.updatePartitionState('a', 1, s.partitionEpoch, { ...s, leaderEpoch: s.leaderEpoch + 1 });
    await store.deleteTopic('a');
    await store.deleteTopic('a'); // nothing to delete: no event
    await store.allocateProducerIdBlock(10); // not part of the feed
    await store.setTransactionalId('tx', 1n, 0);
    assert.deepEqual(seen, [
      'topic-created a 2',
      'partition-state a-0 0/0',
      'partition-state a-1 0/0',
      'partitions-added a 2->3',
      'partition-state a-2 0/0',
      'topic-configs a {"retention.ms":"5"}',
      'broker-configs {"log.retention.ms":"7"}',
      'partition-state a-1 1/1',
      'topic-deleted a',
    ]);
  });

  test(`${name}: a failed write changes nothing and announces nothing`, async (t) => {
    const { store, breakWrites } = await h.fresh(t);
    await store.createTopic('t', 1, 1, { 'retention.ms': '1' });
    const events: MetadataChange[] = [];
    store.subscribe((c) => events.push(c));
    const s = store.partitionState('t', 0)!;

    await breakWrites(true);
    await assert.rejects(store.createTopic('u', 1, 1, {}));
    await assert.rejects(store.setPartitionCount('t', 2));
    await assert.rejects(store.setTopicConfigs('t', {}));
    await assert.rejects(store.setBrokerConfigs({ 'log.retention.ms': '1' }));
    await assert.rejects(store.updatePartitionState('t', 0, 0, { ...s, leaderEpoch: 1 }));
    await assert.rejects(store.deleteTopic('t'));
    await assert.rejects(store.allocateProducerIdBlock(10));
    await assert.rejects(store.setTransactionalId('tx', 1n, 0));
    assert.equal(events.length, 0);
    assert.equal(store.topic('u'), undefined);
    assert.equal(store.topic('t')?.partitions, 1);
    assert.deepEqual(store.topic('t')?.configs, { 'retention.ms': '1' });
    assert.deepEqual(store.brokerConfigs(), {});
    assert.deepEqual(store.partitionState('t', 0), s);
    assert.equal(store.transactionalId('tx'), undefined);

    // Once writes work again, the same change goes through and is announced.
    await breakWrites(false);
    await store.updatePartitionState('t', 0, 0, { ...s, leaderEpoch: 1 });
    assert.deepEqual(
      events.map((e) => describe(e)),
      ['partition-state t-0 1/1'],
    );
  });

  test(`${name}: a listener that throws fails neither the change nor other listeners; unsubscribing stops the feed`, async (t) => {
    const { store } = await h.fresh(t);
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

  test(`${name}: producer-id blocks never overlap, across reopens; transactional ids are kept`, async (t) => {
    const { store, reopen } = await h.fresh(t);
    const first = await store.allocateProducerIdBlock(1000);
    const second = await store.allocateProducerIdBlock(1000);
    assert.equal(first.end - first.first, 1000n);
    assert.ok(second.first >= first.end);
    await store.setTransactionalId('tx', second.first, 3);
    const again = await reopen();
    const third = await again.allocateProducerIdBlock(1000);
    assert.ok(third.first >= second.end);
    assert.deepEqual(again.transactionalId('tx'), { producerId: second.first, producerEpoch: 3 });
    assert.equal(again.transactionalId('other'), undefined);
  });

  test(`${name}: the broker is known once registered`, async (t) => {
    const { store } = await h.fresh(t);
    const seen: MetadataChange[] = [];
    store.subscribe((c) => seen.push(c));
    const me = { nodeId: node, host: 'broker.example', port: 9092, rack: 'r1' };
    await store.registerBroker(me);
    assert.deepEqual(store.brokers(), [me]);
    assert.deepEqual(store.broker(node), me);
    assert.equal(store.broker(node + 1000), undefined);
    // A cluster store also announces the controller elected once a broker registers.
    assert.deepEqual(
      seen.filter((c) => c.type !== 'controller-changed'),
      [{ type: 'broker-registered', broker: me }],
    );
  });
}

function describe(c: MetadataChange): string {
  switch (c.type) {
    case 'topic-created':
      return `${c.type} ${c.topic.name} ${c.topic.partitions}`;
    case 'topic-deleted':
      return `${c.type} ${c.topic.name}`;
    case 'partitions-added':
      return `${c.type} ${c.topic.name} ${c.previousPartitions}->${c.topic.partitions}`;
    case 'partition-state':
      return `${c.type} ${c.topic.name}-${c.partition} ${c.state.leaderEpoch}/${c.state.partitionEpoch}`;
    case 'topic-configs':
      return `${c.type} ${c.topic.name} ${JSON.stringify(c.topic.configs)}`;
    case 'broker-configs':
      return `${c.type} ${JSON.stringify(c.configs)}`;
    case 'broker-registered':
      return `${c.type} ${c.broker.nodeId}`;
    case 'broker-unregistered':
      return `${c.type} ${c.nodeId}`;
    case 'controller-changed':
      return `${c.type} ${c.controllerId}`;
    case 'registration':
      return `${c.type} ${c.live}`;
  }
}
