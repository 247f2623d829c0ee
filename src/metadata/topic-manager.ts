/**
 * Topic lifecycle for a single node: validates names, partition counts, replication factors and
 * configs exactly as Kafka does, records the topic in the metadata store and asks the storage
 * engine to create or remove the partition logs.
 *
 * Creation, deletion, partition changes and auto-creation run one at a time (one queue), and a
 * topic becomes visible only once its logs exist: concurrent auto-creations of one topic all get
 * that topic, and a deletion racing a creation cannot leave a topic without partition logs.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { ZERO_UUID } from '../protocol/uuid.ts';
import { LogConfig } from '../storage/log-config.ts';
import { SerialQueue } from '../util/serial-queue.ts';
import type { MetadataStore, TopicMetadata } from './metadata-store.ts';

/** What topic management needs from the storage engine. */
export interface PartitionLogLifecycle {
  createLogs(topic: TopicMetadata, fromPartition: number): Promise<void>;
  deleteLogs(topic: TopicMetadata): Promise<void>;
}

/** Kafka's Topic.INTERNAL_TOPICS: the coordinators' state. */
const INTERNAL_TOPICS = new Set(['__consumer_offsets', '__transaction_state', '__share_group_state']);

export function isInternalTopic(name: string): boolean {
  return INTERNAL_TOPICS.has(name);
}

/** Kafka's limit on partitions created by one CreateTopics or CreatePartitions request (KAFKA-17870). */
export const MAX_PARTITIONS_PER_REQUEST = 10_000;

export function excessivePartitionsError(): KafkaError {
  return new KafkaError(ErrorCode.POLICY_VIOLATION, 'Excessively large number of partitions per request.');
}

/** Kafka's Topic.unifyCollisionChars: '.' and '_' collide in metric names. */
function collisionKey(name: string): string {
  return name.replaceAll('.', '_');
}

const LEGAL_NAME = /^[a-zA-Z0-9._-]+$/;
const MAX_NAME_LENGTH = 249;

export function validateTopicName(name: string): void {
  if (name.length === 0) throw new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, 'topic name is empty');
  if (name === '.' || name === '..')
    throw new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, `topic name cannot be "${name}"`);
  if (name.length > MAX_NAME_LENGTH) {
    throw new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, `topic name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (!LEGAL_NAME.test(name)) {
    throw new KafkaError(
      ErrorCode.INVALID_TOPIC_EXCEPTION,
      `topic name "${name}" has characters other than [a-zA-Z0-9._-]`,
    );
  }
}

/** Where topic changes are logged (the broker's pino logger). */
export interface TopicChangeLogger {
  info(obj: object, msg: string): void;
}

export interface TopicManagerOptions {
  /** Partitions of all topics together this broker may hold (samsa.max.broker.partitions). */
  maxBrokerPartitions: number;
  /** Whether clients may delete internal topics or add partitions to them. */
  internalTopicChangesEnable: boolean;
  /** One info line per topic created or deleted and per partition count change (none: silent). */
  logger?: TopicChangeLogger | undefined;
}

export const DEFAULT_TOPIC_MANAGER_OPTIONS: TopicManagerOptions = {
  maxBrokerPartitions: 100_000,
  internalTopicChangesEnable: false,
};

export class TopicManager {
  private readonly store: MetadataStore;
  private readonly logs: PartitionLogLifecycle;
  private readonly brokerCount: () => number;
  private readonly brokerLogDefaults: () => Readonly<Record<string, string>>;
  private readonly options: TopicManagerOptions;
  readonly #lifecycle = new SerialQueue();
  /** Topics in the store whose logs are still being created: not visible yet. */
  readonly #creating = new Set<string>();

  constructor(
    store: MetadataStore,
    logs: PartitionLogLifecycle,
    brokerCount: () => number,
    brokerLogDefaults: () => Readonly<Record<string, string>>,
    options: TopicManagerOptions = DEFAULT_TOPIC_MANAGER_OPTIONS,
  ) {
    this.store = store;
    this.logs = logs;
    this.brokerCount = brokerCount;
    this.brokerLogDefaults = brokerLogDefaults;
    this.options = options;
  }

  list(): TopicMetadata[] {
    const all = this.store.topics();
    return this.#creating.size === 0 ? all : all.filter((t) => !this.#creating.has(t.name));
  }

  get(name: string): TopicMetadata | undefined {
    return this.#creating.has(name) ? undefined : this.store.topic(name);
  }

  getById(topicId: string): TopicMetadata | undefined {
    const t = this.store.topicById(topicId);
    return t === undefined || this.#creating.has(t.name) ? undefined : t;
  }

  /** The effective log config of a topic (its overrides over the broker's defaults). */
  logConfig(topic: TopicMetadata): LogConfig {
    return new LogConfig(topic.configs, this.brokerLogDefaults());
  }

  create(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    validateOnly: boolean,
  ): Promise<TopicMetadata> {
    return this.#lifecycle.run(() => this.#create(name, partitions, replicationFactor, configs, validateOnly));
  }

  /** Auto-creation (Metadata): the topic, created with the defaults unless it exists by now. */
  getOrCreate(name: string, partitions: number, replicationFactor: number): Promise<TopicMetadata> {
    return this.#lifecycle.run(
      async () => this.get(name) ?? (await this.#create(name, partitions, replicationFactor, {}, false, true)),
    );
  }

  delete(name: string): Promise<TopicMetadata> {
    return this.#lifecycle.run(async () => {
      if (isInternalTopic(name) && !this.options.internalTopicChangesEnable) {
        throw new KafkaError(
          ErrorCode.INVALID_REQUEST,
          `Topic ${name} is a kafka internal topic and is not allowed to be marked for deletion.`,
        );
      }
      const topic = await this.store.deleteTopic(name);
      if (topic === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${name}'`);
      await this.logs.deleteLogs(topic);
      this.options.logger?.info(
        { topic: topic.name, topicId: topic.topicId, partitions: topic.partitions },
        'topic deleted',
      );
      return topic;
    });
  }

  createPartitions(name: string, count: number, validateOnly: boolean): Promise<TopicMetadata> {
    return this.#lifecycle.run(async () => {
      const topic = this.store.topic(name);
      if (topic === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${name}'`);
      if (isInternalTopic(name) && !this.options.internalTopicChangesEnable) {
        // More partitions would map groups (or transactional ids) to other partitions, away from
        // the state already written for them.
        throw new KafkaError(
          ErrorCode.INVALID_REQUEST,
          `Topic ${name} is a kafka internal topic and is not allowed to have its partitions changed.`,
        );
      }
      if (count <= topic.partitions) {
        throw new KafkaError(
          ErrorCode.INVALID_PARTITIONS,
          `topic currently has ${topic.partitions} partitions, which is higher than the requested ${count}`,
        );
      }
      this.#checkBrokerPartitionLimit(count - topic.partitions);
      if (validateOnly) return { ...topic, partitions: count };
      const updated = await this.store.setPartitionCount(name, count);
      await this.logs.createLogs(updated, topic.partitions);
      this.options.logger?.info(
        { topic: name, topicId: topic.topicId, partitions: count, previousPartitions: topic.partitions },
        'partitions added',
      );
      return updated;
    });
  }

  /** POLICY_VIOLATION when `adding` partitions would take this broker over its limit. */
  #checkBrokerPartitionLimit(adding: number): void {
    const max = this.options.maxBrokerPartitions;
    let held = 0;
    for (const t of this.store.topics()) held += t.partitions;
    if (held + adding > max) {
      throw new KafkaError(
        ErrorCode.POLICY_VIOLATION,
        `${adding} more partitions would exceed this broker's limit of ${max} (it holds ${held}; samsa.max.broker.partitions)`,
      );
    }
  }

  async #create(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    validateOnly: boolean,
    autoCreated = false,
  ): Promise<TopicMetadata> {
    validateTopicName(name);
    if (this.store.topic(name) !== undefined) {
      throw new KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${name}' already exists.`);
    }
    const key = collisionKey(name);
    const colliding = this.store.topics().find((t) => collisionKey(t.name) === key);
    if (colliding !== undefined) {
      throw new KafkaError(
        ErrorCode.INVALID_TOPIC_EXCEPTION,
        `Topic '${name}' collides with existing topic: ${colliding.name}`,
      );
    }
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new KafkaError(ErrorCode.INVALID_PARTITIONS, `number of partitions must be at least 1, got ${partitions}`);
    }
    if (replicationFactor < 1) {
      throw new KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, 'replication factor must be at least 1');
    }
    if (replicationFactor > this.brokerCount()) {
      throw new KafkaError(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `replication factor: ${replicationFactor} larger than available brokers: ${this.brokerCount()}`,
      );
    }
    this.#checkBrokerPartitionLimit(partitions);
    new LogConfig(configs, this.brokerLogDefaults()); // throws INVALID_CONFIG
    if (validateOnly) {
      return { name, topicId: ZERO_UUID, partitions, replicationFactor, configs, leaderEpochs: [] };
    }
    this.#creating.add(name);
    try {
      const topic = await this.store.createTopic(name, partitions, replicationFactor, configs);
      try {
        await this.logs.createLogs(topic, 0);
      } catch (err) {
        // Not a topic without logs (e.g. the disk filled up meanwhile): undo it, as far as possible.
        await this.logs.deleteLogs(topic).catch(() => undefined);
        await this.store.deleteTopic(name).catch(() => undefined);
        throw err;
      }
      this.options.logger?.info(
        {
          topic: name,
          topicId: topic.topicId,
          partitions,
          replicationFactor,
          configs,
          ...(autoCreated ? { autoCreated } : {}),
        },
        'topic created',
      );
      return topic;
    } finally {
      this.#creating.delete(name);
    }
  }
}
