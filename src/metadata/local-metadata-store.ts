/**
 * The single-node MetadataStore (metadata-store.ts): cluster id, topics (name, stable topic ID,
 * partition count, per-topic config overrides, leader and partition epochs), broker configs,
 * producer-id blocks and transactional ids, persisted in `<dataDir>/samsa-metadata.json`.
 * Every partition has one replica, on this node, which leads it: replicas = ISR = [this node].
 * The one broker is this one, registered in memory (there is no liveness to record).
 *
 * Every change is written to a temporary file, fsynced and renamed over the old one, so a crash
 * leaves either the old or the new state, never a torn file. Topic IDs never change once
 * assigned, which Java consumers rely on (Fetch v13+ addresses partitions by topic ID).
 * Changes are serialised through one queue; reads are synchronous snapshots of memory, which
 * changes only once the file holds the new state (a failed write, e.g. a full disk, changes
 * nothing). Change-feed listeners are called after a change is persisted, never for a failed one.
 *
 * File format: version 1, unchanged except for the optional per-topic `partitionEpochs` (absent:
 * all 0), so data directories of earlier versions load, and earlier versions ignore it.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { randomUuid } from '../protocol/uuid.ts';
import { isOutOfSpaceError } from '../storage/file-layer.ts';
import { SerialQueue } from '../util/serial-queue.ts';
import {
  type BrokerRegistration,
  type MetadataChange,
  type MetadataListener,
  type MetadataStore,
  NO_LEADER,
  type PartitionState,
  type PartitionStateUpdate,
  type ProducerIdBlock,
  type ReplicaAssignment,
  type TopicMetadata,
} from './metadata-store.ts';

/**
 * Kept for the files that still import it from here; new code imports it from metadata-store.ts.
 * @deprecated
 */
export type { TopicMetadata } from './metadata-store.ts';

/** A topic as stored: `partitionEpochs` appeared after version 1 did, so it may be absent. */
interface StoredTopic extends TopicMetadata {
  /** Partition epoch per partition (absent, or shorter than `partitions`: 0). */
  readonly partitionEpochs?: readonly number[];
}

interface StoredState {
  version: 1;
  clusterId: string;
  topics: StoredTopic[];
  brokerConfigs: Record<string, string>;
  /** Producer ids below this were handed out (persisted before use, so never reused). */
  nextProducerIdBlock?: string;
  /** transactional.id -> producer id and epoch (KIP-98), so re-initialising fences the old one. */
  transactionalIds?: Record<string, { producerId: string; producerEpoch: number }>;
}

const FILE = 'samsa-metadata.json';

export class LocalMetadataStore implements MetadataStore {
  private readonly dir: string;
  /** This broker: every partition's one replica and leader. */
  private readonly nodeId: number;
  private state: StoredState;
  private readonly byName = new Map<string, StoredTopic>();
  private readonly byId = new Map<string, StoredTopic>();
  private readonly queue = new SerialQueue();
  private registration: BrokerRegistration | undefined;
  private readonly listeners = new Set<MetadataListener>();

  private constructor(dir: string, nodeId: number, state: StoredState) {
    this.dir = dir;
    this.nodeId = nodeId;
    this.state = state;
    for (const t of state.topics) this.index(t);
  }

  /** Opens (or creates) the store of `dir` for the broker `nodeId`. */
  static async open(dir: string, nodeId: number): Promise<LocalMetadataStore> {
    await mkdir(dir, { recursive: true });
    let state: StoredState;
    let fresh = false;
    try {
      state = JSON.parse(await readFile(join(dir, FILE), 'utf8')) as StoredState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      state = { version: 1, clusterId: randomUuid(), topics: [], brokerConfigs: {} };
      fresh = true;
    }
    const store = new LocalMetadataStore(dir, nodeId, state);
    // Only a new cluster id needs writing: a restart on a full disk must not fail here.
    if (fresh) await store.persist(state);
    return store;
  }

  get clusterId(): string {
    return this.state.clusterId;
  }

  brokers(): BrokerRegistration[] {
    return this.registration === undefined ? [] : [this.registration];
  }

  broker(nodeId: number): BrokerRegistration | undefined {
    return this.registration?.nodeId === nodeId ? this.registration : undefined;
  }

  controllerId(): number {
    return this.registration === undefined ? NO_LEADER : this.nodeId;
  }

  registrationLive(): boolean {
    return this.registration !== undefined;
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  registerBroker(broker: BrokerRegistration): Promise<void> {
    return this.queue.run(() => {
      if (broker.nodeId !== this.nodeId) {
        throw new KafkaError(
          ErrorCode.INVALID_REQUEST,
          `the single-node metadata store belongs to node ${this.nodeId}: node ${broker.nodeId} cannot register`,
        );
      }
      this.registration = { ...broker };
      this.emit({ type: 'broker-registered', broker: this.registration });
    });
  }

  topics(): TopicMetadata[] {
    return [...this.byName.values()];
  }

  topic(name: string): TopicMetadata | undefined {
    return this.byName.get(name);
  }

  topicById(topicId: string): TopicMetadata | undefined {
    return this.byId.get(topicId);
  }

  partitionState(topic: string, partition: number): PartitionState | undefined {
    const t = this.byName.get(topic);
    if (t === undefined || !Number.isInteger(partition) || partition < 0 || partition >= t.partitions) return undefined;
    return this.derive(t, partition);
  }

  updatePartitionState(
    topic: string,
    partition: number,
    expectedPartitionEpoch: number,
    next: PartitionStateUpdate,
  ): Promise<PartitionState> {
    return this.queue.run(async () => {
      const current = this.partitionState(topic, partition);
      if (current === undefined) {
        throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown partition ${topic}-${partition}`);
      }
      if (current.partitionEpoch !== expectedPartitionEpoch) {
        throw new KafkaError(
          ErrorCode.INVALID_UPDATE_VERSION,
          `partition ${topic}-${partition} is at partition epoch ${current.partitionEpoch}, not ${expectedPartitionEpoch}`,
        );
      }
      if (next.leaderEpoch < current.leaderEpoch) {
        throw new KafkaError(
          ErrorCode.FENCED_LEADER_EPOCH,
          `partition ${topic}-${partition} is at leader epoch ${current.leaderEpoch}, above ${next.leaderEpoch}`,
        );
      }
      const only = [this.nodeId];
      if (next.leader !== this.nodeId || !sameIds(next.replicas, only) || !sameIds(next.isr, only)) {
        throw new KafkaError(
          ErrorCode.INVALID_REQUEST,
          `the single-node metadata store keeps every partition on node ${this.nodeId} alone (replicas, ISR and leader)`,
        );
      }
      const old = this.byName.get(topic)!;
      const leaderEpochs = [...old.leaderEpochs];
      leaderEpochs[partition] = next.leaderEpoch;
      const partitionEpochs = Array.from({ length: old.partitions }, (_, p) => old.partitionEpochs?.[p] ?? 0);
      partitionEpochs[partition] = current.partitionEpoch + 1;
      const updated = await this.replaceTopic({ ...old, leaderEpochs, partitionEpochs });
      const state = this.derive(updated, partition);
      this.emit({ type: 'partition-state', topic: updated, partition, state });
      return state;
    });
  }

  brokerConfigs(): Readonly<Record<string, string>> {
    return this.state.brokerConfigs;
  }

  createTopic(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    assignment?: ReplicaAssignment,
  ): Promise<TopicMetadata> {
    return this.queue.run(async () => {
      if (this.byName.has(name))
        throw new KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${name}' already exists.`);
      this.checkAssignment(assignment, partitions);
      const topic: StoredTopic = {
        name,
        topicId: randomUuid(),
        partitions,
        replicationFactor,
        configs: { ...configs },
        leaderEpochs: new Array<number>(partitions).fill(0),
      };
      const next = { ...this.state, topics: [...this.state.topics, topic] };
      await this.persist(next);
      this.state = next;
      this.index(topic);
      this.emit({ type: 'topic-created', topic });
      this.emitPartitionStates(topic, 0);
      return topic;
    });
  }

  deleteTopic(name: string): Promise<TopicMetadata | undefined> {
    return this.queue.run(async () => {
      const topic = this.byName.get(name);
      if (topic === undefined) return undefined;
      const next = { ...this.state, topics: this.state.topics.filter((t) => t.name !== name) };
      await this.persist(next);
      this.state = next;
      this.byName.delete(name);
      this.byId.delete(topic.topicId);
      this.emit({ type: 'topic-deleted', topic });
      return topic;
    });
  }

  setPartitionCount(name: string, partitions: number, assignment?: ReplicaAssignment): Promise<TopicMetadata> {
    return this.queue.run(async () => {
      const old = this.existing(name);
      this.checkAssignment(assignment, partitions - old.partitions);
      const updated = await this.replaceTopic({
        ...old,
        partitions,
        leaderEpochs: [...old.leaderEpochs, ...new Array<number>(partitions - old.partitions).fill(0)],
      });
      this.emit({ type: 'partitions-added', topic: updated, previousPartitions: old.partitions });
      this.emitPartitionStates(updated, old.partitions);
      return updated;
    });
  }

  setTopicConfigs(name: string, configs: Record<string, string>): Promise<TopicMetadata> {
    return this.queue.run(async () => {
      const updated = await this.replaceTopic({ ...this.existing(name), configs: { ...configs } });
      this.emit({ type: 'topic-configs', topic: updated });
      return updated;
    });
  }

  setBrokerConfigs(configs: Record<string, string>): Promise<void> {
    return this.queue.run(async () => {
      const next = { ...this.state, brokerConfigs: { ...configs } };
      await this.persist(next);
      this.state = next;
      this.emit({ type: 'broker-configs', configs: next.brokerConfigs });
    });
  }

  /**
   * Reserves `size` producer ids and persists the reservation before returning it, so ids are
   * unique across restarts (like Kafka's AllocateProducerIds blocks).
   */
  allocateProducerIdBlock(size: number): Promise<ProducerIdBlock> {
    return this.queue.run(async () => {
      const first = BigInt(this.state.nextProducerIdBlock ?? '0');
      const end = first + BigInt(size);
      const next = { ...this.state, nextProducerIdBlock: end.toString() };
      await this.persist(next);
      this.state = next;
      return { first, end };
    });
  }

  transactionalId(id: string): { producerId: bigint; producerEpoch: number } | undefined {
    const t = this.state.transactionalIds?.[id];
    return t === undefined ? undefined : { producerId: BigInt(t.producerId), producerEpoch: t.producerEpoch };
  }

  setTransactionalId(id: string, producerId: bigint, producerEpoch: number): Promise<void> {
    return this.queue.run(async () => {
      const transactionalIds = {
        ...this.state.transactionalIds,
        [id]: { producerId: producerId.toString(), producerEpoch },
      };
      const next = { ...this.state, transactionalIds };
      await this.persist(next);
      this.state = next;
    });
  }

  subscribe(listener: MetadataListener): () => void {
    // A wrapper, so one function subscribed twice gets each change twice and unsubscribes once.
    const entry: MetadataListener = (change) => listener(change);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  private emit(change: MetadataChange): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch {
        // The change is persisted whatever a listener does; listeners report their own failures.
      }
    }
  }

  private emitPartitionStates(topic: StoredTopic, fromPartition: number): void {
    for (let p = fromPartition; p < topic.partitions; p++) {
      this.emit({ type: 'partition-state', topic, partition: p, state: this.derive(topic, p) });
    }
  }

  /** A partition's state: replicas = ISR = [this node], which leads it; epochs as stored. */
  private derive(t: StoredTopic, partition: number): PartitionState {
    return {
      replicas: [this.nodeId],
      leader: this.nodeId,
      leaderEpoch: t.leaderEpochs[partition] ?? 0,
      isr: [this.nodeId],
      partitionEpoch: t.partitionEpochs?.[partition] ?? 0,
    };
  }

  /** An assignment of `count` partitions that this store can hold: each on this node alone. */
  private checkAssignment(assignment: ReplicaAssignment | undefined, count: number): void {
    if (assignment === undefined) return;
    if (assignment.length !== count) {
      throw new KafkaError(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `the replica assignment has ${assignment.length} partitions, not ${count}`,
      );
    }
    if (!assignment.every((replicas) => sameIds(replicas, [this.nodeId]))) {
      throw new KafkaError(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `the single-node metadata store keeps every partition on node ${this.nodeId} alone`,
      );
    }
  }

  private existing(name: string): StoredTopic {
    const t = this.byName.get(name);
    if (t === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${name}'`);
    return t;
  }

  /** Persists `updated` in place of the topic of its name, then makes it visible. */
  private async replaceTopic(updated: StoredTopic): Promise<StoredTopic> {
    const next = { ...this.state, topics: this.state.topics.map((t) => (t.name === updated.name ? updated : t)) };
    await this.persist(next);
    this.state = next;
    this.index(updated);
    return updated;
  }

  private index(t: StoredTopic): void {
    this.byName.set(t.name, t);
    this.byId.set(t.topicId, t);
  }

  /** Writes `state` (write tmp, fsync, rename); a full disk is KAFKA_STORAGE_ERROR saying so. */
  private async persist(state: StoredState): Promise<void> {
    const path = join(this.dir, FILE);
    const tmp = `${path}.tmp`;
    try {
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify(state, null, 1));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (err) {
      if (!isOutOfSpaceError(err)) throw err;
      await rm(tmp, { force: true }).catch(() => undefined);
      throw new KafkaError(
        ErrorCode.KAFKA_STORAGE_ERROR,
        `log directory ${this.dir} is out of space: cannot write ${FILE}; free space and retry`,
        { cause: err },
      );
    }
  }
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}
