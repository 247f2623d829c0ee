import type { GroupCoordinatorService } from '../coordinator/group/group-coordinator-service.ts';
import type { TransactionCoordinator } from '../coordinator/txn/transaction-coordinator.ts';
import type { ConfigManager } from '../metadata/config-manager.ts';
import type { ControllerChannel } from '../metadata/controller-channel.ts';
import type { BrokerRegistration, PartitionState, TopicMetadata } from '../metadata/metadata-store.ts';
import type { ReassignmentController } from '../metadata/reassignment-controller.ts';
import type {
  ActiveProducer,
  AppendResult,
  FetchReadOutcome,
  FollowerReadResult,
  LeaderAppendOptions,
  PartitionOffsets,
  ReadResult,
  TxnMarkerInput,
} from '../replication/replica-manager.ts';
import type { TxnBrokerChannel } from '../replication/txn-broker-channel.ts';
import type { FetchSessionCache } from './fetch-session-cache.ts';

export type {
  AppendResult,
  FetchReadOutcome,
  FollowerReadResult,
  LeaderAppendOptions,
  PartitionOffsets,
  ReadResult,
  TxnMarkerInput,
};

export interface ApiVersionRange {
  apiKey: number;
  minVersion: number;
  maxVersion: number;
}

/** Topic lifecycle, as handlers see it. Failures are KafkaErrors carrying the code to return. */
export interface TopicService {
  list(): TopicMetadata[];
  get(name: string): TopicMetadata | undefined;
  getById(topicId: string): TopicMetadata | undefined;
  create(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    validateOnly: boolean,
  ): Promise<TopicMetadata>;
  /** Auto-creation: concurrent calls for one name all get the one topic. */
  getOrCreate(name: string, partitions: number, replicationFactor: number): Promise<TopicMetadata>;
  delete(name: string): Promise<TopicMetadata>;
  createPartitions(name: string, count: number, validateOnly: boolean): Promise<TopicMetadata>;
}

export type ConfigService = Pick<ConfigManager, 'describeTopic' | 'describeBroker' | 'alterTopic' | 'alterBroker'>;

/**
 * Partition data, as handlers see it: implemented by the ReplicaManager (src/replication/), wrapped
 * by the composition root's metrics. Failures are KafkaErrors (per-partition error codes).
 */
export interface LogService {
  /** acks=all (-1) resolves once the in-sync replicas have the records, or fails after `timeoutMs`. */
  append(
    topic: TopicMetadata,
    partition: number,
    records: Buffer,
    requiredAcks: number,
    timeoutMs?: number,
    /** KIP-890 verification of a transactional batch; coordinator-origin writes. */
    options?: LeaderAppendOptions,
  ): Promise<AppendResult>;
  /** WriteTxnMarkers at a partition led here: appends the marker (acks=all by default). */
  appendTxnMarker(
    topic: TopicMetadata,
    partition: number,
    marker: TxnMarkerInput,
    requiredAcks?: number,
    timeoutMs?: number,
  ): Promise<void>;
  /**
   * KIP-890 part 1: null when the producer's transaction is already ongoing on the partition,
   * else a guard to pass to `append` once the transaction coordinator verified the partition.
   */
  startTxnVerification(topic: TopicMetadata, partition: number, producerId: bigint): Promise<object | null>;
  /** Whether this broker holds and leads the partition now. */
  isLeader(topic: TopicMetadata, partition: number): boolean;
  /** Loads the partition's transactions, so its last stable offset is exact. */
  loadTransactionState(topic: TopicMetadata, partition: number): Promise<void>;
  read(
    topic: TopicMetadata,
    partition: number,
    fetchOffset: bigint,
    maxBytes: number,
    readCommitted: boolean,
    minOneBatch: boolean,
    /** The leader epoch the client knows (-1: none); another than the partition's fails (KIP-320). */
    currentLeaderEpoch?: number,
    /** KIP-392: a Fetch v11+ consumer may read a follower replica, up to its high watermark. */
    fromFollowerAllowed?: boolean,
  ): Promise<ReadResult>;
  /**
   * A follower's Fetch (replica id >= 0): records up to the log end, not the high watermark; the
   * follower's position is recorded (ISR, high watermark). A `lastFetchedEpoch` (>= 0) whose epoch
   * ends before `fetchOffset` here gives `divergingEpoch` and no records (Kafka's
   * Partition.fetchRecords). Fails with NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
   * UNKNOWN_LEADER_EPOCH, OFFSET_OUT_OF_RANGE.
   */
  fetchForFollower(
    topic: TopicMetadata,
    partition: number,
    replicaId: number,
    fetchOffset: bigint,
    maxBytes: number,
    currentLeaderEpoch: number,
    lastFetchedEpoch: number,
  ): Promise<FollowerReadResult>;
  /**
   * Kafka's DEBUGGING_CONSUMER_ID (-2) read: any local replica, leader or follower, up to its high
   * watermark (the first batch even if larger than `maxBytes`).
   */
  readReplica(topic: TopicMetadata, partition: number, fetchOffset: bigint, maxBytes: number): Promise<ReadResult>;
  /**
   * KIP-392: the in-sync replica a consumer in `clientRack` should fetch from instead of this
   * leader, or -1 (the leader; or no `replica.selector.class`).
   */
  preferredReadReplica(topic: TopicMetadata, partition: number, clientRack: string): number;
  /** A `currentLeaderEpoch` (>= 0) other than the partition's fails (KIP-320). */
  offsets(topic: TopicMetadata, partition: number, currentLeaderEpoch?: number): PartitionOffsets;
  /** First offset whose batch max timestamp >= timestamp, with that timestamp; null past the end. */
  offsetForTimestamp(
    topic: TopicMetadata,
    partition: number,
    timestamp: bigint,
  ): Promise<{ offset: bigint; timestamp: bigint } | null>;
  /** Offset and timestamp of the record with the largest timestamp (ListOffsets -3). */
  maxTimestamp(topic: TopicMetadata, partition: number): Promise<{ offset: bigint; timestamp: bigint } | null>;
  /**
   * Long-poll Fetch (Kafka's fetchMessages and DelayedFetch): runs `read` now and again each time
   * one of `partitions` gets an append or a high-watermark move, until its outcome has `minBytes`,
   * a partition error, or `maxWaitMs` has passed (at once when the broker is shutting down).
   */
  fetch<T extends FetchReadOutcome>(
    partitions: readonly { topic: TopicMetadata; partition: number }[],
    minBytes: number,
    maxWaitMs: number,
    read: () => Promise<T>,
  ): Promise<T>;
  deleteRecordsBefore(topic: TopicMetadata, partition: number, offset: bigint): Promise<bigint>;
  /**
   * OffsetForLeaderEpoch: the largest epoch <= the requested one and where it ends. A
   * `currentLeaderEpoch` (>= 0) other than the partition's fails with FENCED_LEADER_EPOCH or
   * UNKNOWN_LEADER_EPOCH (KIP-320).
   */
  endOffsetForEpoch(
    topic: TopicMetadata,
    partition: number,
    leaderEpoch: number,
    currentLeaderEpoch: number,
  ): { epoch: number; endOffset: bigint };
  /** Active idempotent producers of a partition (DescribeProducers). */
  producers(topic: TopicMetadata, partition: number): Promise<ActiveProducer[]>;
  /** Bytes on disk of a partition (DescribeLogDirs). */
  partitionSize(topic: TopicMetadata, partition: number): number;
  /** The data directory holding the logs, and its disk space. */
  /** `outOfSpace`: online, but the last write found the file system full (appends fail, reads go on). */
  logDirs(): Promise<
    { path: string; totalBytes: bigint; usableBytes: bigint; offline: boolean; outOfSpace: boolean }[]
  >;
}

/** The cluster as the metadata store has it: live brokers, the controller, partition states. */
export interface ClusterView {
  /** Live brokers sorted by node id (this broker included once it listens). */
  brokers(): BrokerRegistration[];
  broker(nodeId: number): BrokerRegistration | undefined;
  /** The active controller's id, or -1 while none is elected. */
  controllerId(): number;
  /** A partition's replicas, leader (-1: none), leader epoch, ISR; undefined if unknown. */
  partitionState(topic: string, partition: number): PartitionState | undefined;
}

/**
 * ElectLeaders and KIP-455 reassignments: the controller's side (src/metadata/
 * reassignment-controller.ts) and, on a broker that is not the controller, the way to it.
 */
export interface PartitionAdminService {
  readonly controller: Pick<
    ReassignmentController,
    'active' | 'electLeaders' | 'alterReassignments' | 'listReassignments'
  >;
  /** Absent on a single node, its own controller. */
  readonly forward: Pick<ControllerChannel, 'electLeaders' | 'alterPartitionReassignments'> | undefined;
}

/** The small interface the request context hands to handlers (see src/broker.ts). */
export interface BrokerServices {
  readonly nodeId: number;
  readonly clusterId: string;
  readonly rack: string | null;
  advertisedListener(): { host: string; port: number };
  /**
   * The whole cluster (brokers, controller, partition leaders): handlers answer for it, not only
   * for this broker.
   */
  readonly cluster: ClusterView;
  supportedApis(): ApiVersionRange[];
  readonly topics: TopicService;
  readonly logs: LogService;
  readonly configs: ConfigService;
  readonly fetchSessions: FetchSessionCache;
  readonly producerIds: {
    initProducerId(
      transactionalId: string | null,
      producerId: bigint,
      producerEpoch: number,
    ): Promise<{ producerId: bigint; producerEpoch: number }>;
  };
  /** ElectLeaders and partition reassignments (absent: the broker answers neither). */
  readonly partitionAdmin?: PartitionAdminService;
  /** The group coordinator (classic and KIP-848 groups, committed offsets). */
  readonly groups: GroupCoordinatorService;
  /** The transaction coordinator, and how transactions cross brokers (markers, verification). */
  readonly transactions: {
    readonly coordinator: TransactionCoordinator;
    readonly channel: Pick<TxnBrokerChannel, 'verifyPartition'>;
    /** Appends a marker to a partition led here (WriteTxnMarkers; __consumer_offsets through its coordinator). */
    writeLocalMarker(topic: TopicMetadata, partition: number, marker: TxnMarkerInput): Promise<void>;
  };
  readonly autoCreateTopicsEnable: boolean;
  readonly defaultPartitions: number;
  readonly defaultReplicationFactor: number;
  /** transaction.max.timeout.ms: the longest transaction.timeout.ms a producer may ask for. */
  readonly transactionMaxTimeoutMs: number;
}
