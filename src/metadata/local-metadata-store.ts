/**
 * The single-node metadata store: cluster id, topics (name, stable topic ID, partition count,
 * per-topic config overrides) persisted in `<dataDir>/samsa-metadata.json`.
 *
 * Every change is written to a temporary file, fsynced and renamed over the old one, so a crash
 * leaves either the old or the new state, never a torn file. Topic IDs never change once
 * assigned, which Java consumers rely on (Fetch v13+ addresses partitions by topic ID).
 * Changes are serialised through one queue; reads are synchronous snapshots of memory, which
 * changes only once the file holds the new state (a failed write, e.g. a full disk, changes
 * nothing).
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { randomUuid } from '../protocol/uuid.ts';
import { isOutOfSpaceError } from '../storage/file-layer.ts';
import { SerialQueue } from '../util/serial-queue.ts';

export interface TopicMetadata {
  readonly name: string;
  readonly topicId: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs: Readonly<Record<string, string>>;
  /** Leader epoch per partition; bumped when leadership changes (here: never, single node). */
  readonly leaderEpochs: readonly number[];
}

interface StoredState {
  version: 1;
  clusterId: string;
  topics: TopicMetadata[];
  brokerConfigs: Record<string, string>;
  /** Producer ids below this were handed out (persisted before use, so never reused). */
  nextProducerIdBlock?: string;
  /** transactional.id -> producer id and epoch (KIP-98), so re-initialising fences the old one. */
  transactionalIds?: Record<string, { producerId: string; producerEpoch: number }>;
}

const FILE = 'samsa-metadata.json';

export class LocalMetadataStore {
  private readonly dir: string;
  private state: StoredState;
  private readonly byName = new Map<string, TopicMetadata>();
  private readonly byId = new Map<string, TopicMetadata>();
  private readonly queue = new SerialQueue();

  private constructor(dir: string, state: StoredState) {
    this.dir = dir;
    this.state = state;
    for (const t of state.topics) this.index(t);
  }

  static async open(dir: string): Promise<LocalMetadataStore> {
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
    const store = new LocalMetadataStore(dir, state);
    // Only a new cluster id needs writing: a restart on a full disk must not fail here.
    if (fresh) await store.persist(state);
    return store;
  }

  get clusterId(): string {
    return this.state.clusterId;
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

  brokerConfigs(): Readonly<Record<string, string>> {
    return this.state.brokerConfigs;
  }

  createTopic(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
  ): Promise<TopicMetadata> {
    return this.queue.run(async () => {
      if (this.byName.has(name))
        throw new KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${name}' already exists.`);
      const topic: TopicMetadata = {
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
      return topic;
    });
  }

  setPartitionCount(name: string, partitions: number): Promise<TopicMetadata> {
    return this.update(name, (t) => ({
      ...t,
      partitions,
      leaderEpochs: [...t.leaderEpochs, ...new Array<number>(partitions - t.partitions).fill(0)],
    }));
  }

  setTopicConfigs(name: string, configs: Record<string, string>): Promise<TopicMetadata> {
    return this.update(name, (t) => ({ ...t, configs: { ...configs } }));
  }

  setBrokerConfigs(configs: Record<string, string>): Promise<void> {
    return this.queue.run(async () => {
      const next = { ...this.state, brokerConfigs: { ...configs } };
      await this.persist(next);
      this.state = next;
    });
  }

  /**
   * Reserves `size` producer ids and persists the reservation before returning it, so ids are
   * unique across restarts (like Kafka's AllocateProducerIds blocks).
   */
  allocateProducerIdBlock(size: number): Promise<{ first: bigint; end: bigint }> {
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

  private update(name: string, change: (t: TopicMetadata) => TopicMetadata): Promise<TopicMetadata> {
    return this.queue.run(async () => {
      const old = this.byName.get(name);
      if (old === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${name}'`);
      const updated = change(old);
      const next = { ...this.state, topics: this.state.topics.map((t) => (t.name === name ? updated : t)) };
      await this.persist(next);
      this.state = next;
      this.index(updated);
      return updated;
    });
  }

  private index(t: TopicMetadata): void {
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
