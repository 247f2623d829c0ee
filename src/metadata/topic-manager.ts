/**
 * Topic lifecycle for a single node: validates names, partition counts, replication factors and
 * configs exactly as Kafka does, records the topic in the metadata store and asks the storage
 * engine to create or remove the partition logs.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { LogConfig } from '../storage/log-config.ts';
import type { LocalMetadataStore, TopicMetadata } from './local-metadata-store.ts';

/** What topic management needs from the storage engine. */
export interface PartitionLogLifecycle {
  createLogs(topic: TopicMetadata, fromPartition: number): Promise<void>;
  deleteLogs(topic: TopicMetadata): Promise<void>;
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

export class TopicManager {
  private readonly store: LocalMetadataStore;
  private readonly logs: PartitionLogLifecycle;
  private readonly brokerCount: () => number;
  private readonly brokerLogDefaults: () => Readonly<Record<string, string>>;

  constructor(
    store: LocalMetadataStore,
    logs: PartitionLogLifecycle,
    brokerCount: () => number,
    brokerLogDefaults: () => Readonly<Record<string, string>>,
  ) {
    this.store = store;
    this.logs = logs;
    this.brokerCount = brokerCount;
    this.brokerLogDefaults = brokerLogDefaults;
  }

  list(): TopicMetadata[] {
    return this.store.topics();
  }

  get(name: string): TopicMetadata | undefined {
    return this.store.topic(name);
  }

  getById(topicId: string): TopicMetadata | undefined {
    return this.store.topicById(topicId);
  }

  /** The effective log config of a topic (its overrides over the broker's defaults). */
  logConfig(topic: TopicMetadata): LogConfig {
    return new LogConfig(topic.configs, this.brokerLogDefaults());
  }

  async create(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    validateOnly: boolean,
  ): Promise<TopicMetadata> {
    validateTopicName(name);
    if (this.store.topic(name) !== undefined) {
      throw new KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic '${name}' already exists`);
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
    new LogConfig(configs, this.brokerLogDefaults()); // throws INVALID_CONFIG
    if (validateOnly) {
      return { name, topicId: '', partitions, replicationFactor, configs, leaderEpochs: [] };
    }
    const topic = await this.store.createTopic(name, partitions, replicationFactor, configs);
    try {
      await this.logs.createLogs(topic, 0);
    } catch (err) {
      // Not a topic without logs (e.g. the disk filled up meanwhile): undo it, as far as possible.
      await this.logs.deleteLogs(topic).catch(() => undefined);
      await this.store.deleteTopic(name).catch(() => undefined);
      throw err;
    }
    return topic;
  }

  async delete(name: string): Promise<TopicMetadata> {
    const topic = await this.store.deleteTopic(name);
    if (topic === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${name}'`);
    await this.logs.deleteLogs(topic);
    return topic;
  }

  async createPartitions(name: string, count: number, validateOnly: boolean): Promise<TopicMetadata> {
    const topic = this.store.topic(name);
    if (topic === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${name}'`);
    if (count <= topic.partitions) {
      throw new KafkaError(
        ErrorCode.INVALID_PARTITIONS,
        `topic currently has ${topic.partitions} partitions, which is higher than the requested ${count}`,
      );
    }
    if (validateOnly) return { ...topic, partitions: count };
    const updated = await this.store.setPartitionCount(name, count);
    await this.logs.createLogs(updated, topic.partitions);
    return updated;
  }
}
