/**
 * Kafka's ReplicaManager: topic-partition -> `Partition` on this broker, the only thing handlers
 * (through their `LogService` view) and the group coordinator call for partition data. It creates
 * and removes partitions as topics come and go (the topic manager's `PartitionLogLifecycle`),
 * answers appends, reads, offsets, OffsetForLeaderEpoch (with KIP-320 fencing), DeleteRecords,
 * DescribeProducers and DescribeLogDirs, parks long-poll fetches in its purgatory (delayed-fetch.ts)
 * until an append or a high-watermark move, and runs the
 * producer-state housekeeping of its partitions (expiry, periodic snapshots, snapshots at stop).
 *
 * Owns the `LogManager` of the data directory (segments, recovery, retention, cleaner); each
 * `Partition` owns its log's producer state.
 *
 * A single node creates and removes logs when the topic manager asks, and leads every partition.
 * A cluster member (`clusterMember`) is driven by the metadata's change feed instead (Kafka's
 * LeaderAndIsr / KRaft metadata deltas): a partition state naming this broker among the replicas
 * creates the log and makes this broker its leader or a follower; a deleted topic removes them, and
 * so does a state whose replicas no longer name this broker (a reassignment moved it away);
 * a partition of a known topic hosted elsewhere answers NOT_LEADER_OR_FOLLOWER; when this
 * broker's registration lapses, every partition stops leading until the feed says otherwise.
 */
import { statfs } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { PartitionState, TopicMetadata } from '../metadata/metadata-store.ts';
import type { PartitionLogLifecycle } from '../metadata/topic-manager.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { OffsetCheckpointFile } from '../storage/checkpoint-file.ts';
import { realFileLayer } from '../storage/file-layer.ts';
import { type LogConfig, logConfigDefaultsFromBroker, logManagerSettingsFromBroker } from '../storage/log-config.ts';
import { LogManager } from '../storage/log-manager.ts';
import { SerialQueue } from '../util/serial-queue.ts';
import { DelayedFetchPurgatory, type FetchReadOutcome } from './delayed-fetch.ts';
import {
  type ActiveProducer,
  type AppendResult,
  type FollowerReadResult,
  type LeaderAppendOptions,
  Partition,
  type PartitionOffsets,
  type PartitionReplication,
  PartitionRole,
  type ReadResult,
  type TxnMarkerInput,
} from './partition.ts';
import type { FollowerPartitionHandle } from './replica-fetcher.ts';

export type { FetchReadOutcome } from './delayed-fetch.ts';
export type {
  ActiveProducer,
  AppendResult,
  FollowerReadResult,
  LeaderAppendOptions,
  PartitionOffsets,
  ReadResult,
  TxnMarkerInput,
} from './partition.ts';

/** No leader (the metadata's NO_LEADER). */
const NO_LEADER_ID = -1;

/** How often producer state is snapshotted, bounding the log replayed after a crash. */
const SNAPSHOT_INTERVAL_MS = 30000;

/** Partitions handled at once at start, stop and in a snapshot pass (the file system work is per partition). */
const PARTITION_CONCURRENCY = 16;

async function forEachConcurrently<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(PARTITION_CONCURRENCY, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function key(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export interface ReplicaManagerOptions {
  /** This broker's node id (node.id): a partition whose leader it is, it leads. */
  nodeId: number;
  dataDir: string;
  /** The broker's properties (server.properties names): log manager settings and log defaults. */
  properties: Readonly<Record<string, string>>;
  logger: Logger;
  /** A topic's configuration overrides, as the metadata store has them (for logs loaded at start). */
  topicOverrides: (topic: string) => Readonly<Record<string, string>> | undefined;
  /** A cluster member: partitions come and go with the metadata's change feed (see above). */
  clusterMember?: boolean;
  /**
   * Whether this broker's registration (its etcd lease) is valid now, checked before every
   * append: a broker resumed after a pause longer than its lease must not acknowledge anything
   * before it has noticed that the controller may have moved its partitions on.
   */
  registrationLive?: () => boolean;
  /** A cluster member's replication (see partition.ts): absent on a single node. */
  replication?: ReplicationOptions;
}

/** The follower-side fetchers (replica-fetcher.ts), as the ReplicaManager drives them. */
export interface FollowerFetchers {
  addPartitions(handles: readonly FollowerPartitionHandle[]): void;
  removePartitions(partitions: readonly { topic: string; partition: number }[]): void;
  close(): Promise<void>;
}

export interface ReplicationOptions {
  /** replica.lag.time.max.ms. */
  replicaLagTimeMaxMs: number;
  /** Writes an ISR change (Kafka's AlterPartition) as a compare-and-swap of the partition state. */
  alterPartition(
    topic: string,
    partition: number,
    expectedPartitionEpoch: number,
    next: { replicas: readonly number[]; leader: number; leaderEpoch: number; isr: readonly number[] },
  ): Promise<void>;
  /** Built once the ReplicaManager exists (it hands the fetchers their partitions). */
  fetchers: FollowerFetchers;
  /** Whether a broker is registered now (ISR expansion takes live brokers only). */
  isLiveBroker(nodeId: number): boolean;
  /**
   * A broker's rack, when `replica.selector.class` is Kafka's RackAwareReplicaSelector (KIP-392:
   * consumers are sent to an in-sync replica in their rack); absent: consumers read leaders only.
   */
  rackOf?: ((nodeId: number) => string | null | undefined) | undefined;
}

/** Kafka's replica.high.watermark.checkpoint.interval.ms. */
const HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS = 5000;
const HIGH_WATERMARK_CHECKPOINT_FILE = 'replication-offset-checkpoint';

/**
 * This broker became (or stopped being) the leader of a partition whose log it holds; the leader
 * epoch of the new state (-1 when it stopped leading without a newer state: fenced, deleted).
 */
export type LeadershipListener = (topic: string, partition: number, leader: boolean, leaderEpoch: number) => void;

export class ReplicaManager implements PartitionLogLifecycle {
  private readonly partitions = new Map<string, Partition>();
  private readonly dataDir: string;
  private readonly log: Logger;
  private topicConfig: (t: TopicMetadata) => LogConfig = () => {
    throw new Error('topic configs not wired');
  };
  private readonly producerIdExpirationMs: number;
  private readonly nodeId: number;
  /** Parked long-poll fetches, woken by their partitions' appends and high-watermark moves. */
  private readonly delayedFetches = new DelayedFetchPurgatory();
  private expiryTimer: NodeJS.Timeout | undefined;
  private snapshotTimer: NodeJS.Timeout | undefined;

  private readonly manager: LogManager;
  private readonly clusterMember: boolean;
  private readonly registrationLive: (() => boolean) | undefined;
  private readonly replication: ReplicationOptions | undefined;
  /** Follower handles by partition key, replaced on each leadership change. */
  private readonly followerHandles = new Map<string, { removed: boolean }>();
  private isrTimer: NodeJS.Timeout | undefined;
  private fetchersClosed = false;
  private hwCheckpointTimer: NodeJS.Timeout | undefined;
  private readonly hwCheckpoint: OffsetCheckpointFile;
  /** Log creations and deletions from the change feed, in feed order. */
  private readonly feed = new SerialQueue();
  private readonly leadershipListeners: LeadershipListener[] = [];

  private constructor(
    nodeId: number,
    dataDir: string,
    log: Logger,
    producerIdExpirationMs: number,
    manager: LogManager,
    clusterMember: boolean,
    registrationLive: (() => boolean) | undefined,
    replication: ReplicationOptions | undefined,
  ) {
    this.clusterMember = clusterMember;
    this.registrationLive = registrationLive;
    this.replication = replication;
    this.hwCheckpoint = new OffsetCheckpointFile(realFileLayer, dataDir, HIGH_WATERMARK_CHECKPOINT_FILE);
    this.nodeId = nodeId;
    this.dataDir = dataDir;
    this.log = log;
    this.producerIdExpirationMs = producerIdExpirationMs;
    this.manager = manager;
  }

  /**
   * Loads every partition log of the data directory (instantly after a clean shutdown, with
   * recovery from the checkpointed recovery points otherwise) and starts the producer-state
   * timers; `openAll` then adopts the logs and starts the log manager's background tasks.
   */
  static async open(options: ReplicaManagerOptions): Promise<ReplicaManager> {
    const { dataDir, properties, logger: log } = options;
    const expiration = Number(properties['producer.id.expiration.ms'] ?? 86400000);
    const manager = new LogManager({
      dataDirs: [dataDir],
      logger: log,
      settings: logManagerSettingsFromBroker(properties),
      brokerDefaults: logConfigDefaultsFromBroker(properties),
      topicConfigs: options.topicOverrides,
      // Replicated partitions: the leader moves the high watermark as the ISR catches up.
      highWatermarkFollowsLogEnd: options.replication === undefined,
    });
    await manager.startup();
    const service = new ReplicaManager(
      options.nodeId,
      dataDir,
      log,
      expiration,
      manager,
      options.clusterMember ?? false,
      options.registrationLive,
      options.replication,
    );
    service.expiryTimer = setInterval(() => service.expireProducers(), Math.min(expiration, 600000));
    service.expiryTimer.unref();
    service.snapshotTimer = setInterval(() => {
      service.snapshotProducers().catch((err: unknown) => log.warn({ err }, 'producer snapshot failed'));
    }, SNAPSHOT_INTERVAL_MS);
    service.snapshotTimer.unref();
    const replication = options.replication;
    if (replication !== undefined) {
      // Kafka's isr-expiration task runs at half the lag time.
      service.isrTimer = setInterval(() => service.shrinkIsrs(), Math.max(100, replication.replicaLagTimeMaxMs / 2));
      service.isrTimer.unref();
      service.hwCheckpointTimer = setInterval(() => {
        service
          .checkpointHighWatermarks()
          .catch((err: unknown) => log.warn({ err }, 'high watermark checkpoint failed'));
      }, HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS);
      service.hwCheckpointTimer.unref();
    }
    return service;
  }

  /** Wires the effective config of each topic (the topic manager owns the rules). */
  setTopicConfigs(configOf: (t: TopicMetadata) => LogConfig): void {
    this.topicConfig = configOf;
  }

  /**
   * Adopts the logs loaded at startup for the topics the metadata knows, removes the logs of
   * topics that no longer exist (a crash between deleting a topic and its data), creates any
   * missing ones, then starts the background tasks.
   */
  async openAll(
    topics: readonly TopicMetadata[],
    stateOf?: (topic: string, partition: number) => PartitionState | undefined,
  ): Promise<void> {
    const known = new Map(topics.map((t) => [t.name, t]));
    // A cluster member holds the partitions whose replicas name it; others are strays (a topic
    // deleted, or a partition moved, while this broker was down), removed as Kafka removes them.
    const hosted = (topic: string, partition: number): boolean =>
      stateOf === undefined || (stateOf(topic, partition)?.replicas.includes(this.nodeId) ?? false);
    for (const log of this.manager.allLogs) {
      const t = known.get(log.topic);
      if (t === undefined || log.partition >= t.partitions || !hosted(log.topic, log.partition))
        await this.manager.deleteLog(log.topic, log.partition);
    }
    if (stateOf === undefined) {
      for (const t of topics) await this.createLogs(t, 0);
    } else {
      // A replicated log's high watermark is what the checkpoint says (the log end may hold
      // batches the ISR never had: consumers must not see them until replicated).
      const checkpointed =
        this.replication === undefined
          ? undefined
          : await this.hwCheckpoint.read().catch(() => new Map<string, bigint>());
      if (checkpointed !== undefined)
        for (const log of this.manager.allLogs)
          log.updateHighWatermark(checkpointed.get(`${log.topic}-${log.partition}`) ?? 0n);
      // In the feed's queue: changes arriving meanwhile are applied after, in order.
      await this.feed.run(async () => {
        for (const t of topics) {
          const mine = [];
          for (let p = 0; p < t.partitions; p++) if (hosted(t.name, p)) mine.push(p);
          await this.createPartitionLogs(t, mine);
          for (const p of mine) this.applyPartitionState(t, p, stateOf(t.name, p)!);
        }
      });
    }
    this.manager.start();
  }

  /**
   * A cluster member's view of a metadata change (see the header): creates the log of a partition
   * this broker now hosts, then applies its leadership; removes a deleted topic's logs.
   */
  onMetadataChange(
    change:
      | { type: 'partition-state'; topic: TopicMetadata; partition: number; state: PartitionState }
      | { type: 'topic-deleted'; topic: TopicMetadata },
  ): void {
    if (change.type === 'topic-deleted') {
      const { topic } = change;
      for (let p = 0; p < topic.partitions; p++) {
        if (this.partitions.get(key(topic.name, p))?.role !== PartitionRole.leader) continue;
        for (const l of this.leadershipListeners) l(topic.name, p, false, -1);
      }
      this.feed
        .run(() => this.deleteLogs(change.topic))
        .catch((err: unknown) => {
          this.log.error({ err, topic: change.topic.name }, 'could not delete the logs of a deleted topic');
        });
      return;
    }
    const { topic, partition, state } = change;
    // Through the queue even when the log exists: a deletion of the topic may be queued before.
    this.feed
      .run(async () => {
        // Moved off this broker (a reassignment completed or was cancelled): Kafka's StopReplica
        // with deletion. An empty replica list is no such decision, only a state not to act on.
        if (state.replicas.length > 0 && !state.replicas.includes(this.nodeId)) {
          await this.removePartition(topic, partition);
          return;
        }
        if (!this.partitions.has(key(topic.name, partition)) && state.replicas.includes(this.nodeId))
          await this.createPartitionLogs(topic, [partition]);
        this.applyPartitionState(topic, partition, state);
      })
      .catch((err: unknown) => {
        this.log.error({ err, topic: topic.name, partition }, 'could not create the log of a partition hosted here');
      });
  }

  /**
   * Stops a partition this broker no longer hosts and deletes its log: it stops following (or
   * leading: the leadership listeners hear of it), parked fetches answer NOT_LEADER_OR_FOLLOWER.
   */
  private async removePartition(topic: TopicMetadata, partition: number): Promise<void> {
    const k = key(topic.name, partition);
    const p = this.partitions.get(k);
    if (p === undefined) return;
    this.replication?.fetchers.removePartitions([{ topic: topic.name, partition }]);
    const handle = this.followerHandles.get(k);
    if (handle !== undefined) handle.removed = true;
    this.followerHandles.delete(k);
    if (p.role === PartitionRole.leader) {
      p.makeFollower(p.leaderEpoch);
      for (const l of this.leadershipListeners) l(topic.name, partition, false, -1);
    }
    p.detach();
    this.partitions.delete(k);
    this.delayedFetches.checkAndComplete(k);
    this.delayedFetches.forget(k);
    // Renamed to <topic>-<partition>.<uuid>-delete now, removed in the background.
    await this.manager.deleteLog(topic.name, partition);
    this.log.info({ topic: topic.name, partition }, 'replica removed from this broker: log deleted');
  }

  /** Waits until the logs the change feed asked for exist (tests, ordering with other work). */
  feedIdle(): Promise<void> {
    return this.feed.idle();
  }

  /** Called after this broker starts or stops leading a partition whose log it holds. */
  onLeadershipChange(listener: LeadershipListener): void {
    this.leadershipListeners.push(listener);
  }

  /**
   * This broker's registration lapsed (its lease may have expired, so another broker may be
   * elected): no partition is led here until the metadata's feed makes it leader again.
   */
  resignAll(): void {
    for (const p of this.partitions.values()) {
      if (p.role !== PartitionRole.leader) continue;
      p.makeFollower(p.leaderEpoch);
      this.delayedFetches.checkAndComplete(key(p.topic, p.partition));
      // No newer epoch is known: -1 resigns whatever epoch it was led at.
      for (const l of this.leadershipListeners) l(p.topic, p.partition, false, -1);
    }
  }

  async createLogs(topic: TopicMetadata, fromPartition: number): Promise<void> {
    const wanted: number[] = [];
    for (let p = fromPartition; p < topic.partitions; p++) wanted.push(p);
    await this.createPartitionLogs(topic, wanted);
  }

  private async createPartitionLogs(topic: TopicMetadata, partitions: readonly number[]): Promise<void> {
    const config = this.topicConfig(topic);
    const wanted = partitions.filter((p) => !this.partitions.has(key(topic.name, p)));
    await forEachConcurrently(wanted, async (p) => {
      const loaded = this.manager.getLog(topic.name, p);
      if (loaded?.topicId !== undefined && loaded.topicId !== topic.topicId) {
        // A stray (KIP-516): the log of an earlier topic of this name, deleted and recreated while
        // this broker was down. Its records must not resurface in the new topic.
        this.log.warn(
          { topic: topic.name, partition: p, logTopicId: loaded.topicId, topicId: topic.topicId },
          `deleting the log of ${topic.name}-${p}: it belongs to topic id ${loaded.topicId}, an earlier topic of this name; the topic is now ${topic.topicId}`,
        );
        await this.manager.deleteLog(topic.name, p);
      }
      const created = this.manager.getLog(topic.name, p) === undefined;
      // Records the topic id in the log (new logs, and logs from before partition.metadata existed).
      const log = await this.manager.getOrCreateLog(topic.name, p, topic.configs, topic.topicId);
      log.updateConfig(config);
      const k = key(topic.name, p);
      this.partitions.set(
        k,
        new Partition({
          topic: topic.name,
          partition: p,
          log,
          leaderEpoch: topic.leaderEpochs[p] ?? 0,
          fresh: created && log.logEndOffset === 0n,
          producerIdExpirationMs: this.producerIdExpirationMs,
          logger: this.log,
          replication: this.partitionReplication(topic.name, p, log),
          onLogChange: () => this.delayedFetches.checkAndComplete(k),
        }),
      );
      // The cleaner of a compacted log stops at the last stable offset, known once loaded.
      if (config.compact)
        this.partitions
          .get(k)
          ?.loadTransactionState()
          .catch((err: unknown) =>
            this.log.warn({ err, topic: topic.name, partition: p }, 'could not load the producer state'),
          );
    });
  }

  async deleteLogs(topic: TopicMetadata): Promise<void> {
    this.replication?.fetchers.removePartitions(
      Array.from({ length: topic.partitions }, (_, p) => ({ topic: topic.name, partition: p })),
    );
    for (let p = 0; p < topic.partitions; p++) {
      const k = key(topic.name, p);
      const handle = this.followerHandles.get(k);
      if (handle !== undefined) handle.removed = true;
      this.followerHandles.delete(k);
      this.partitions.get(k)?.detach();
      this.partitions.delete(k);
      this.delayedFetches.forget(k);
      // Renamed to <topic>-<partition>.<uuid>-delete now, removed in the background.
      await this.manager.deleteLog(topic.name, p);
    }
  }

  /**
   * Applies a partition's state from the metadata store's change feed (Kafka's makeLeaders /
   * makeFollowers): its leader and leader epoch. A partition without a log here yet is skipped:
   * `createLogs` starts it from the same metadata.
   */
  applyPartitionState(
    topic: TopicMetadata,
    partition: number,
    state: Pick<PartitionState, 'leader' | 'leaderEpoch'> & Partial<PartitionState>,
  ) {
    const k = key(topic.name, partition);
    const p = this.partitions.get(k);
    if (p === undefined) return;
    const wasLeader = p.role === PartitionRole.leader;
    const previousEpoch = p.leaderEpoch;
    const replicaSet =
      state.replicas !== undefined && state.isr !== undefined && state.partitionEpoch !== undefined
        ? { replicas: state.replicas, isr: state.isr, partitionEpoch: state.partitionEpoch }
        : undefined;
    if (state.leader === this.nodeId) p.makeLeader(state.leaderEpoch, replicaSet);
    else p.makeFollower(state.leaderEpoch, replicaSet);
    const isLeader = state.leader === this.nodeId;
    if (this.replication !== undefined)
      this.updateFollowing(
        topic,
        p,
        state.leader,
        !isLeader && (wasLeader || previousEpoch !== state.leaderEpoch || !this.followerHandles.has(k)),
      );
    if (this.clusterMember && (isLeader !== wasLeader || isLeader))
      for (const l of this.leadershipListeners) l(topic.name, partition, isLeader, state.leaderEpoch);
    // Parked fetches read again, and answer with the partition's new state.
    this.delayedFetches.checkAndComplete(key(topic.name, partition));
  }

  updateConfig(topic: TopicMetadata): void {
    const config = this.topicConfig(topic);
    for (let p = 0; p < topic.partitions; p++) this.partitions.get(key(topic.name, p))?.log.updateConfig(config);
  }

  /** The partition, or UNKNOWN_TOPIC_OR_PARTITION when this broker has no log for it. */
  getPartitionOrError(topic: TopicMetadata, partition: number): Partition {
    const p = this.partitions.get(key(topic.name, partition));
    if (p === undefined) {
      // In a cluster the partition exists but lives on another broker (or its log is not
      // created yet): the client refreshes its metadata and goes to the leader.
      if (this.clusterMember && partition >= 0 && partition < topic.partitions)
        throw new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, `this broker does not host ${topic.name}-${partition}`);
      throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${topic.name}-${partition} has no log`);
    }
    return p;
  }

  /**
   * A Produce partition's append; acks=all (-1) resolves once the in-sync replicas have it (or
   * fails: NOT_ENOUGH_REPLICAS(_AFTER_APPEND), REQUEST_TIMED_OUT after `timeoutMs`).
   */
  async append(
    topic: TopicMetadata,
    partition: number,
    records: Buffer,
    requiredAcks: number,
    timeoutMs = 30_000,
    options: LeaderAppendOptions = {},
  ): Promise<AppendResult> {
    const p = this.getPartitionOrError(topic, partition);
    this.checkRegistrationLive();
    const result = await p.appendRecordsToLeader(records, requiredAcks, options);
    if (requiredAcks === -1) await p.waitForReplication(result.lastOffset + 1n, timeoutMs);
    return {
      baseOffset: result.baseOffset,
      logAppendTimeMs: result.logAppendTimeMs,
      logStartOffset: result.logStartOffset,
    };
  }

  /** A broker whose registration lapsed leads nothing (it may have been replaced). */
  private checkRegistrationLive(): void {
    if (this.registrationLive !== undefined && !this.registrationLive()) {
      this.resignAll();
      throw new KafkaError(
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        `this broker's registration in the cluster metadata has lapsed: it leads no partition until registered again`,
      );
    }
  }

  /** WriteTxnMarkers: appends a transaction marker as the partition's leader (see Partition.appendTxnMarker). */
  async appendTxnMarker(
    topic: TopicMetadata,
    partition: number,
    marker: TxnMarkerInput,
    requiredAcks = -1,
    timeoutMs = 30_000,
  ): Promise<void> {
    const p = this.getPartitionOrError(topic, partition);
    this.checkRegistrationLive();
    const offset = await p.appendTxnMarker(marker, requiredAcks);
    if (requiredAcks === -1) await p.waitForReplication(offset + 1n, timeoutMs);
  }

  /** KIP-890 part 1: see Partition.startTxnVerification. */
  startTxnVerification(topic: TopicMetadata, partition: number, producerId: bigint): Promise<object | null> {
    return this.getPartitionOrError(topic, partition).startTxnVerification(producerId);
  }

  /** Loads the partition's producer state so its last stable offset is exact (ListOffsets read_committed). */
  loadTransactionState(topic: TopicMetadata, partition: number): Promise<void> {
    return this.getPartitionOrError(topic, partition).loadTransactionState();
  }

  read(
    topic: TopicMetadata,
    partition: number,
    fetchOffset: bigint,
    maxBytes: number,
    readCommitted: boolean,
    minOneBatch: boolean,
    currentLeaderEpoch = -1,
    fromFollowerAllowed = false,
  ): Promise<ReadResult> {
    const p = this.getPartitionOrError(topic, partition);
    return p.read(fetchOffset, maxBytes, readCommitted, minOneBatch, currentLeaderEpoch, fromFollowerAllowed);
  }

  /**
   * KIP-392: the replica a consumer in `clientRack` should fetch from instead of this leader, or -1
   * (no `replica.selector.class`, no rack, or the leader is the best choice).
   */
  preferredReadReplica(topic: TopicMetadata, partition: number, clientRack: string): number {
    const selector = this.replication?.rackOf;
    if (selector === undefined) return -1;
    const p = this.partitions.get(key(topic.name, partition));
    return p === undefined ? -1 : p.preferredReadReplica(clientRack, selector);
  }

  /** The partition's offsets; a `currentLeaderEpoch` (>= 0, ListOffsets v4+) is fenced first (KIP-320). */
  offsets(topic: TopicMetadata, partition: number, currentLeaderEpoch = -1): PartitionOffsets {
    const p = this.getPartitionOrError(topic, partition);
    p.checkLeaderEpoch(currentLeaderEpoch);
    return p.offsets();
  }

  async offsetForTimestamp(topic: TopicMetadata, partition: number, timestamp: bigint) {
    const found = await this.getPartitionOrError(topic, partition).log.fetchOffsetByTimestamp(timestamp);
    return found === null ? null : { offset: found.offset, timestamp: found.timestamp };
  }

  async maxTimestamp(topic: TopicMetadata, partition: number) {
    const found = await this.getPartitionOrError(topic, partition).log.fetchOffsetByTimestamp(-3n);
    return found === null ? null : { offset: found.offset, timestamp: found.timestamp };
  }

  /**
   * OffsetForLeaderEpoch: the largest epoch <= `leaderEpoch` and where it ends, after KIP-320
   * fencing on `currentLeaderEpoch` (-1: the client sent none).
   */
  endOffsetForEpoch(
    topic: TopicMetadata,
    partition: number,
    leaderEpoch: number,
    currentLeaderEpoch: number,
  ): { epoch: number; endOffset: bigint } {
    const p = this.getPartitionOrError(topic, partition);
    p.checkLeaderEpoch(currentLeaderEpoch);
    return p.log.endOffsetForEpoch(leaderEpoch);
  }

  deleteRecordsBefore(topic: TopicMetadata, partition: number, offset: bigint): Promise<bigint> {
    return this.getPartitionOrError(topic, partition).log.deleteRecordsBefore(offset);
  }

  producers(topic: TopicMetadata, partition: number): Promise<ActiveProducer[]> {
    return this.getPartitionOrError(topic, partition).producers();
  }

  partitionSize(topic: TopicMetadata, partition: number): number {
    return this.getPartitionOrError(topic, partition).log.size;
  }

  /** The partition's log is offline (its directory failed: reads and appends answer KAFKA_STORAGE_ERROR). */
  /** The replication a new Partition gets on a cluster member (see partition.ts). */
  private partitionReplication(
    topic: string,
    partition: number,
    log: { config: LogConfig },
  ): PartitionReplication | undefined {
    const replication = this.replication;
    if (replication === undefined) return undefined;
    return {
      localBrokerId: this.nodeId,
      replicaLagTimeMaxMs: replication.replicaLagTimeMaxMs,
      minInsyncReplicas: () => log.config.minInsyncReplicas,
      isLiveBroker: (id) => replication.isLiveBroker(id),
      alterIsr: async (isr, expectedPartitionEpoch, leaderEpoch) => {
        const p = this.partitions.get(key(topic, partition));
        if (p === undefined) return;
        this.log.info({ topic, partition, isr: [...isr], from: [...p.replicaSet.isr] }, 'ISR change');
        await replication.alterPartition(topic, partition, expectedPartitionEpoch, {
          replicas: p.replicaSet.replicas,
          leader: this.nodeId,
          leaderEpoch,
          isr,
        });
      },
    };
  }

  /**
   * Starts, moves or stops following a partition (Kafka's makeFollowers: the fetcher for its
   * leader gets it, with a fresh handle per leader epoch so a stale fetch cannot append).
   */
  private updateFollowing(topic: TopicMetadata, p: Partition, leader: number, start: boolean): void {
    if (this.fetchersClosed) return; // shutting down
    const fetchers = this.replication!.fetchers;
    const k = key(topic.name, p.partition);
    const following = leader !== this.nodeId && leader !== NO_LEADER_ID;
    if (!start && following) return;
    const old = this.followerHandles.get(k);
    if (old !== undefined) old.removed = true;
    this.followerHandles.delete(k);
    if (!following) {
      if (old !== undefined) fetchers.removePartitions([{ topic: topic.name, partition: p.partition }]);
      return;
    }
    const state = { removed: false };
    const handle: FollowerPartitionHandle = {
      topic,
      partition: p.partition,
      leaderId: leader,
      leaderEpoch: p.leaderEpoch,
      fetchOffset: () => p.log.logEndOffset,
      lastFetchedEpoch: () => p.latestEpoch,
      append: (records, leaderHighWatermark) => p.appendAsFollower(records, leaderHighWatermark),
      truncateTo: (offset) => p.truncate(offset),
      truncateFullyAndStartAt: (offset) => p.truncate(offset, true),
      endOffsetForEpoch: (epoch) => p.log.endOffsetForEpoch(epoch),
      get removed() {
        return state.removed;
      },
    };
    this.followerHandles.set(k, state);
    fetchers.addPartitions([handle]);
  }

  /** A follower's Fetch at this leader (see Partition.fetchForFollower). */
  fetchForFollower(
    topic: TopicMetadata,
    partition: number,
    replicaId: number,
    fetchOffset: bigint,
    maxBytes: number,
    currentLeaderEpoch: number,
    lastFetchedEpoch: number,
  ): Promise<FollowerReadResult> {
    return this.getPartitionOrError(topic, partition).fetchForFollower(
      replicaId,
      fetchOffset,
      maxBytes,
      currentLeaderEpoch,
      lastFetchedEpoch,
    );
  }

  /**
   * Kafka's DEBUGGING_CONSUMER_ID (-2) read: any local replica, leader or follower, up to its high
   * watermark (tests compare replicas with it).
   */
  async readReplica(
    topic: TopicMetadata,
    partition: number,
    fetchOffset: bigint,
    maxBytes: number,
  ): Promise<ReadResult> {
    return this.readLocal(topic, partition, fetchOffset, maxBytes, 'highWatermark');
  }

  /** A read of the local replica whatever its role, up to `isolation`. */
  private async readLocal(
    topic: TopicMetadata,
    partition: number,
    fetchOffset: bigint,
    maxBytes: number,
    isolation: 'highWatermark' | 'logEnd',
  ): Promise<ReadResult> {
    const p = this.getPartitionOrError(topic, partition);
    const info = await p.log.read(fetchOffset, maxBytes, { isolation, minOneMessage: true });
    return {
      records: info.records.length > 0 ? [info.records] : [],
      bytes: info.records.length,
      logStartOffset: info.logStartOffset,
      highWatermark: info.highWatermark,
      lastStableOffset: info.lastStableOffset,
      logEndOffset: info.logEndOffset,
      leaderEpoch: p.leaderEpoch,
    };
  }

  /**
   * Stops fetching from the leaders (a controlled shutdown: this broker's last fetch must not
   * count as being in sync once it deregisters). Idempotent.
   */
  async stopFollowing(): Promise<void> {
    if (this.fetchersClosed || this.replication === undefined) return;
    this.fetchersClosed = true;
    for (const handle of this.followerHandles.values()) handle.removed = true;
    await this.replication.fetchers.close();
  }

  /** A coordinator's load of a partition it leads: up to the log end (see GroupLogAccess). */
  async readToLogEnd(
    topic: TopicMetadata,
    partition: number,
    fetchOffset: bigint,
    maxBytes: number,
  ): Promise<ReadResult> {
    return this.readLocal(topic, partition, fetchOffset, maxBytes, 'logEnd');
  }

  /** The ISR-expiration task: every led partition drops followers that fell behind. */
  private shrinkIsrs(): void {
    const now = Date.now();
    for (const p of this.partitions.values()) if (p.role === PartitionRole.leader) p.maybeShrinkIsr(now);
  }

  /** Writes every replicated log's high watermark (replication-offset-checkpoint, as Kafka's). */
  async checkpointHighWatermarks(): Promise<void> {
    const offsets = new Map<string, bigint>();
    for (const p of this.partitions.values()) {
      if (p.log.closed) continue;
      offsets.set(`${p.topic}-${p.partition}`, p.log.highWatermark);
    }
    await this.hwCheckpoint.write(offsets);
  }

  /**
   * The replica counts of a partition held here, for the metrics: its replicas, in-sync replicas
   * and min.insync.replicas (a single node: one replica, in sync).
   */
  replicaCounts(
    topic: TopicMetadata,
    partition: number,
  ): { replicas: number; isr: number; minIsr: number } | undefined {
    const p = this.partitions.get(key(topic.name, partition));
    if (p === undefined) return undefined;
    const set = p.replicaSet;
    if (this.replication === undefined) return { replicas: 1, isr: 1, minIsr: p.log.config.minInsyncReplicas };
    return { replicas: set.replicas.length, isr: set.isr.length, minIsr: p.log.config.minInsyncReplicas };
  }

  /** Whether this broker holds and leads the partition now. */
  isLeader(topic: TopicMetadata, partition: number): boolean {
    return this.partitions.get(key(topic.name, partition))?.role === PartitionRole.leader;
  }

  isOffline(topic: TopicMetadata, partition: number): boolean {
    return this.partitions.get(key(topic.name, partition))?.log.isOffline ?? false;
  }

  async logDirs(): Promise<
    { path: string; totalBytes: bigint; usableBytes: bigint; offline: boolean; outOfSpace: boolean }[]
  > {
    const fs = await statfs(this.dataDir, { bigint: true });
    return [
      {
        path: resolve(this.dataDir),
        totalBytes: fs.blocks * fs.bsize,
        usableBytes: fs.bavail * fs.bsize,
        offline: [...this.partitions.values()].some((p) => p.log.isOffline),
        outOfSpace: this.manager.outOfSpaceDirs.length > 0,
      },
    ];
  }

  /**
   * Kafka's fetchMessages: `read` (the handler's read of every partition of a Fetch) runs now, and
   * again each time one of `partitions` gets an append or a high-watermark move, until it has
   * `minBytes`, a partition error, or `maxWaitMs` passed (the delayed-fetch purgatory).
   */
  fetch<T extends FetchReadOutcome>(
    partitions: readonly { topic: TopicMetadata; partition: number }[],
    minBytes: number,
    maxWaitMs: number,
    read: () => Promise<T>,
  ): Promise<T> {
    const keys = partitions.map((p) => key(p.topic.name, p.partition));
    return this.delayedFetches.fetch(keys, minBytes, maxWaitMs, read);
  }

  private expireProducers(): void {
    const now = Date.now();
    for (const p of this.partitions.values()) p.expireProducers(now);
  }

  /** Wakes parked fetches and makes new ones answer at once (the first step of shutdown). */
  stopWaiting(): void {
    this.delayedFetches.shutdown();
  }

  /**
   * Snapshots the producer state of the partitions where it changed since the last snapshot, so
   * a restart after a crash replays only the log after it (Kafka snapshots at segment roll).
   * Partitions whose producer state did not change cost nothing: their log end may have moved,
   * but the last snapshot still holds their state.
   */
  async snapshotProducers(): Promise<void> {
    const started = performance.now();
    const changed = [...this.partitions.values()].filter((p) => p.producerStateChanged && !p.log.closed);
    let written = 0;
    await forEachConcurrently(changed, async (p) => {
      if (await p.snapshotIfChanged()) written++;
    });
    this.log.debug(
      { partitions: this.partitions.size, written, ms: Math.round(performance.now() - started) },
      'producer state snapshot pass',
    );
  }

  /**
   * Clean shutdown: producer snapshots where needed (while the logs are still open: a state not
   * yet loaded may need the log to rebuild it), then every log flushed and closed with its
   * checkpoints.
   */
  async close(): Promise<void> {
    this.stopWaiting();
    if (this.expiryTimer !== undefined) clearInterval(this.expiryTimer);
    if (this.snapshotTimer !== undefined) clearInterval(this.snapshotTimer);
    if (this.isrTimer !== undefined) clearInterval(this.isrTimer);
    if (this.hwCheckpointTimer !== undefined) clearInterval(this.hwCheckpointTimer);
    if (this.replication !== undefined) {
      await this.stopFollowing();
      await this.checkpointHighWatermarks().catch((err: unknown) =>
        this.log.warn({ err }, 'high watermark checkpoint failed'),
      );
    }
    await forEachConcurrently([...this.partitions.values()], (p) => p.snapshotAtStop());
    await this.manager.shutdown();
    this.partitions.clear();
  }
}
