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
import { type AssignableBroker, assignReplicas } from './replica-assignment.ts';

/** What a cluster member's topic manager needs: whether it is the controller, and a way to it. */
export interface TopicClusterOptions {
  /** Whether this broker is the active controller now (only the controller changes topics). */
  isController(): boolean;
  /** The live brokers, where the controller places replicas. */
  liveBrokers(): AssignableBroker[];
  /** Forwards a topic change to the active controller (KIP-590). */
  readonly channel: {
    createTopic(
      name: string,
      partitions: number,
      replicationFactor: number,
      configs: Record<string, string>,
      validateOnly: boolean,
    ): Promise<{ topicId: string }>;
    deleteTopic(name: string): Promise<void>;
    createPartitions(name: string, count: number, validateOnly: boolean): Promise<void>;
  };
  /** The most replicas a partition may have (1 until partitions are replicated). */
  readonly maxReplicationFactor: number;
}

/** How long a forwarded change may take to reach this broker's view of the metadata. */
const PROPAGATION_TIMEOUT_MS = 10_000;

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
  /**
   * A cluster member: changes are made by the controller (forwarded when this broker is not it),
   * replicas placed on the live brokers, and the logs created by each broker from the metadata's
   * change feed rather than here. Absent: a single node.
   */
  cluster?: TopicClusterOptions | undefined;
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
    const cluster = this.options.cluster;
    if (cluster !== undefined && !cluster.isController())
      return this.#forwardCreate(cluster, name, partitions, replicationFactor, configs, validateOnly);
    return this.#lifecycle.run(() => this.#create(name, partitions, replicationFactor, configs, validateOnly));
  }

  /** Auto-creation (Metadata): the topic, created with the defaults unless it exists by now. */
  getOrCreate(name: string, partitions: number, replicationFactor: number): Promise<TopicMetadata> {
    const cluster = this.options.cluster;
    if (cluster !== undefined && !cluster.isController()) {
      const existing = this.get(name);
      if (existing !== undefined) return Promise.resolve(existing);
      return this.#forwardCreate(cluster, name, partitions, replicationFactor, {}, false).catch(
        async (err: unknown) => {
          // Created meanwhile by another client: the topic, once this broker sees it.
          if (!(err instanceof KafkaError && err.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS)) throw err;
          const t = await this.#visible(name, (x) => x !== undefined);
          if (t === undefined) throw err;
          return t;
        },
      );
    }
    return this.#lifecycle.run(
      async () => this.get(name) ?? (await this.#create(name, partitions, replicationFactor, {}, false, true)),
    );
  }

  /** Forwards a creation to the controller and waits until this broker's metadata has the topic. */
  async #forwardCreate(
    cluster: TopicClusterOptions,
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    validateOnly: boolean,
  ): Promise<TopicMetadata> {
    validateTopicName(name);
    const { topicId } = await cluster.channel.createTopic(name, partitions, replicationFactor, configs, validateOnly);
    if (validateOnly) return { name, topicId: ZERO_UUID, partitions, replicationFactor, configs, leaderEpochs: [] };
    const t = await this.#visible(name, (x) => x?.topicId === topicId);
    if (t === undefined)
      throw new KafkaError(
        ErrorCode.REQUEST_TIMED_OUT,
        `topic '${name}' was created by the controller but has not reached this broker's metadata yet`,
      );
    return t;
  }

  /**
   * Resolves with the topic once `ready` holds for what the store has (undefined after
   * PROPAGATION_TIMEOUT_MS): a change made by the controller reaches this broker through the
   * metadata's change feed.
   */
  #visible(name: string, ready: (t: TopicMetadata | undefined) => boolean): Promise<TopicMetadata | undefined> {
    if (ready(this.store.topic(name))) return Promise.resolve(this.store.topic(name));
    return new Promise((resolve) => {
      const done = (t: TopicMetadata | undefined): void => {
        clearTimeout(timer);
        unsubscribe();
        resolve(t);
      };
      const timer = setTimeout(() => done(undefined), PROPAGATION_TIMEOUT_MS);
      const unsubscribe = this.store.subscribe(() => {
        const t = this.store.topic(name);
        if (ready(t)) done(t ?? this.store.topic(name));
      });
    });
  }

  delete(name: string): Promise<TopicMetadata> {
    const cluster = this.options.cluster;
    if (cluster !== undefined && !cluster.isController()) {
      return (async () => {
        const before = this.store.topic(name);
        await cluster.channel.deleteTopic(name);
        const gone = before?.topicId;
        await this.#visible(name, (t) => t === undefined || t.topicId !== gone);
        return (
          before ?? { name, topicId: ZERO_UUID, partitions: 0, replicationFactor: 1, configs: {}, leaderEpochs: [] }
        );
      })();
    }
    return this.#lifecycle.run(async () => {
      if (isInternalTopic(name) && !this.options.internalTopicChangesEnable) {
        throw new KafkaError(
          ErrorCode.INVALID_REQUEST,
          `Topic ${name} is a kafka internal topic and is not allowed to be marked for deletion.`,
        );
      }
      const topic = await this.store.deleteTopic(name);
      if (topic === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${name}'`);
      // A cluster member's logs go with the change feed, on every broker holding a replica.
      if (this.options.cluster === undefined) await this.logs.deleteLogs(topic);
      this.options.logger?.info(
        { topic: topic.name, topicId: topic.topicId, partitions: topic.partitions },
        'topic deleted',
      );
      return topic;
    });
  }

  createPartitions(name: string, count: number, validateOnly: boolean): Promise<TopicMetadata> {
    const cluster = this.options.cluster;
    if (cluster !== undefined && !cluster.isController()) {
      return (async () => {
        await cluster.channel.createPartitions(name, count, validateOnly);
        const t = validateOnly
          ? this.store.topic(name)
          : await this.#visible(name, (x) => x !== undefined && x.partitions >= count);
        if (t === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${name}'`);
        return validateOnly ? { ...t, partitions: count } : t;
      })();
    }
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
      let updated: TopicMetadata;
      if (cluster === undefined) {
        updated = await this.store.setPartitionCount(name, count);
        await this.logs.createLogs(updated, topic.partitions);
      } else {
        // Kafka continues the topic's assignment: the new partitions start where it left off.
        const assignment = assignReplicas(cluster.liveBrokers(), count - topic.partitions, topic.replicationFactor, {
          firstPartition: topic.partitions,
        });
        updated = await this.store.setPartitionCount(name, count, assignment);
      }
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
    const cluster = this.options.cluster;
    const live = cluster?.liveBrokers();
    const brokers = live?.length ?? this.brokerCount();
    if (replicationFactor > brokers) {
      throw new KafkaError(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `replication factor: ${replicationFactor} larger than available brokers: ${brokers}`,
      );
    }
    if (cluster !== undefined && replicationFactor > cluster.maxReplicationFactor) {
      throw new KafkaError(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `replication factor ${replicationFactor} is not supported yet: Samsa keeps one replica per partition until replication lands; use replication factor ${cluster.maxReplicationFactor}`,
      );
    }
    this.#checkBrokerPartitionLimit(partitions);
    new LogConfig(configs, this.brokerLogDefaults()); // throws INVALID_CONFIG
    if (validateOnly) {
      return { name, topicId: ZERO_UUID, partitions, replicationFactor, configs, leaderEpochs: [] };
    }
    if (cluster !== undefined) {
      // Placed by the controller; each broker creates the logs of its replicas from the change
      // feed, and clients retry NOT_LEADER_OR_FOLLOWER until the leader has its log.
      const assignment = assignReplicas(live!, partitions, replicationFactor);
      const topic = await this.store.createTopic(name, partitions, replicationFactor, configs, assignment);
      this.options.logger?.info(
        {
          topic: name,
          topicId: topic.topicId,
          partitions,
          replicationFactor,
          configs,
          leaders: countLeaders(assignment),
          ...(autoCreated ? { autoCreated } : {}),
        },
        'topic created',
      );
      return topic;
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

/** Partitions led per broker id, for the log line of a creation. */
function countLeaders(assignment: readonly (readonly number[])[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [leader] of assignment) if (leader !== undefined) out[leader] = (out[leader] ?? 0) + 1;
  return out;
}
