/**
 * The cluster metadata as every layer above the metadata layer sees it (ENGINEERING.md): cluster
 * id, brokers, topics by name and by ID, the state of each partition (replicas, leader, leader
 * epoch, ISR, partition epoch), topic and broker configs, producer-id blocks, transactional ids,
 * and a change feed. Implemented by the single-node file store (`local-metadata-store.ts`) and,
 * for a cluster, by a store on etcd; only the composition root (src/broker.ts) names an
 * implementation.
 *
 * Reads are synchronous snapshots of what the store has persisted (a cache of etcd, for the etcd
 * store). Changes resolve once persisted; a change that fails changes nothing and emits nothing.
 * Partition state changes are compare-and-swap on the partition epoch (Kafka's AlterPartition /
 * ZooKeeper-era conditional znode updates), so a stale controller or broker cannot overwrite a
 * newer decision.
 */

export interface TopicMetadata {
  readonly name: string;
  readonly topicId: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs: Readonly<Record<string, string>>;
  /**
   * Leader epoch per partition (the same as `partitionState(...).leaderEpoch`); bumped when
   * leadership changes.
   */
  readonly leaderEpochs: readonly number[];
}

/** A broker of the cluster, as registered (Kafka's /brokers/ids/N; a node in MetadataResponse). */
export interface BrokerRegistration {
  readonly nodeId: number;
  /** The advertised address clients connect to. */
  readonly host: string;
  readonly port: number;
  readonly rack: string | null;
}

/** No leader (Kafka's -1 in LeaderAndIsr and MetadataResponse). */
export const NO_LEADER = -1;

/** The state of one partition (Kafka's PartitionRegistration / ZK partition state znode). */
export interface PartitionState {
  /** Broker ids holding a replica, the preferred leader first. */
  readonly replicas: readonly number[];
  /** The leader's broker id, or NO_LEADER. */
  readonly leader: number;
  /** Bumped each time leadership changes (KIP-101, KIP-320). */
  readonly leaderEpoch: number;
  /** In-sync replicas (the leader among them). */
  readonly isr: readonly number[];
  /** Bumped by every change of this state: the compare-and-swap guard. */
  readonly partitionEpoch: number;
  /**
   * An ongoing reassignment (KIP-455, as Kafka's PartitionRegistration): replicas being added
   * (catching up, not yet in the target's ISR) and being removed once they are. Absent or empty:
   * no reassignment; `replicas` is then the assignment itself.
   */
  readonly addingReplicas?: readonly number[];
  readonly removingReplicas?: readonly number[];
}

/**
 * Replica broker ids per partition, the preferred leader first (Kafka's replica assignment); a
 * new partition starts with its first replica as leader, all replicas in sync, epochs 0.
 */
export type ReplicaAssignment = readonly (readonly number[])[];

/**
 * A change of partition state: everything but the partition epoch, which the store bumps.
 * `addingReplicas`/`removingReplicas` absent keep the current ones (an ISR change or an election
 * does not end a reassignment); empty arrays clear them.
 */
export type PartitionStateUpdate = Omit<PartitionState, 'partitionEpoch'>;

export interface ProducerIdBlock {
  /** The first id of the block. */
  readonly first: bigint;
  /** One past the last id of the block. */
  readonly end: bigint;
}

/**
 * One change of the metadata, emitted once it is persisted, in the order the changes were made.
 * A new topic (or new partitions) is followed by the `partition-state` of each new partition.
 */
export type MetadataChange =
  | { readonly type: 'topic-created'; readonly topic: TopicMetadata }
  | { readonly type: 'topic-deleted'; readonly topic: TopicMetadata }
  | { readonly type: 'partitions-added'; readonly topic: TopicMetadata; readonly previousPartitions: number }
  | {
      readonly type: 'partition-state';
      readonly topic: TopicMetadata;
      readonly partition: number;
      readonly state: PartitionState;
    }
  | { readonly type: 'topic-configs'; readonly topic: TopicMetadata }
  | { readonly type: 'broker-configs'; readonly configs: Readonly<Record<string, string>> }
  | { readonly type: 'broker-registered'; readonly broker: BrokerRegistration }
  /** A broker's registration is gone: its lease expired, or it shut down. */
  | { readonly type: 'broker-unregistered'; readonly nodeId: number }
  /** Another broker (or none: NO_LEADER) is the active controller now. */
  | { readonly type: 'controller-changed'; readonly controllerId: number }
  /**
   * This broker's own registration became invalid (`live: false`: its lease may have expired, so
   * it must stop acting as a leader) or valid again (`live: true`, registered anew).
   */
  | { readonly type: 'registration'; readonly live: boolean };

export type MetadataListener = (change: MetadataChange) => void;

export interface MetadataStore {
  readonly clusterId: string;

  /** The live brokers, by node id. */
  brokers(): BrokerRegistration[];
  broker(nodeId: number): BrokerRegistration | undefined;
  /**
   * Registers (or re-registers, e.g. with its bound port) this broker. Another live broker
   * registered with the same node id: rejects with DuplicateBrokerError.
   */
  registerBroker(broker: BrokerRegistration): Promise<void>;
  /**
   * The active controller's node id, NO_LEADER while none is elected. The local store: this
   * node, once registered. The etcd store: every registered broker campaigns, one wins.
   */
  controllerId(): number;
  /**
   * Whether this broker's registration is valid now (an etcd lease not yet expired as far as
   * this broker can tell). A broker whose registration is not valid stops acting as a leader until
   * it is registered again. Always true for the local store once registered.
   */
  registrationLive(): boolean;

  topics(): TopicMetadata[];
  topic(name: string): TopicMetadata | undefined;
  topicById(topicId: string): TopicMetadata | undefined;
  /**
   * TOPIC_ALREADY_EXISTS if the name is taken. `assignment` (one entry per partition): where the
   * replicas go, as the controller decided; absent, the store places them (the local store: on
   * this node). INVALID_REPLICA_ASSIGNMENT if the store cannot hold that assignment.
   */
  createTopic(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    assignment?: ReplicaAssignment,
  ): Promise<TopicMetadata>;
  /** The deleted topic, or undefined if there was none of that name. */
  deleteTopic(name: string): Promise<TopicMetadata | undefined>;
  /**
   * Grows the topic to `partitions` partitions; `assignment`: of the new partitions only, as in
   * createTopic. UNKNOWN_TOPIC_OR_PARTITION if there is no such topic.
   */
  setPartitionCount(name: string, partitions: number, assignment?: ReplicaAssignment): Promise<TopicMetadata>;

  /** The state of a partition, or undefined if the topic or partition does not exist. */
  partitionState(topic: string, partition: number): PartitionState | undefined;
  /**
   * Replaces a partition's state if its partition epoch is still `expectedPartitionEpoch`, bumping
   * it; resolves to the new state. A stale expected epoch rejects with INVALID_UPDATE_VERSION, a
   * leader epoch below the current one with FENCED_LEADER_EPOCH, an unknown partition with
   * UNKNOWN_TOPIC_OR_PARTITION; nothing changes then.
   */
  updatePartitionState(
    topic: string,
    partition: number,
    expectedPartitionEpoch: number,
    next: PartitionStateUpdate,
  ): Promise<PartitionState>;

  /** Replaces a topic's config overrides. */
  setTopicConfigs(name: string, configs: Record<string, string>): Promise<TopicMetadata>;
  /** The dynamic (cluster-wide default) broker configs. */
  brokerConfigs(): Readonly<Record<string, string>>;
  setBrokerConfigs(configs: Record<string, string>): Promise<void>;

  /**
   * Reserves `size` producer ids, persisted before they are returned, so no id is handed out
   * twice (Kafka's AllocateProducerIds, /latest_producer_id_block).
   */
  allocateProducerIdBlock(size: number): Promise<ProducerIdBlock>;
  /** transactional.id -> its producer id and epoch (KIP-98). */
  transactionalId(id: string): { producerId: bigint; producerEpoch: number } | undefined;
  setTransactionalId(id: string, producerId: bigint, producerEpoch: number): Promise<void>;

  /**
   * Calls `listener` with each change after it is persisted; returns the unsubscribe function.
   * A listener that throws does not fail the change nor stop other listeners.
   */
  subscribe(listener: MetadataListener): () => void;

  /** Stops watching and, for a cluster store, gives up the registration and controllership. */
  close(): Promise<void>;
}

/**
 * Another live broker is registered with this node id: the broker must not start (Kafka:
 * "Error while creating ephemeral at /brokers/ids/N, node already exists").
 */
export class DuplicateBrokerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DuplicateBrokerError';
  }
}
