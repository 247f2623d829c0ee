/**
 * What the broker counts and shows for its metrics, without any metrics library: Kafka's
 * BrokerTopicMetrics (per topic and for all topics), gathered by a LogService decorator the
 * composition root hands to the handlers, and `BrokerMetricsView`, the small read-only interface
 * the HTTP server (src/admin/http/) turns into Prometheus text on each scrape. Counting costs a
 * map lookup per partition of a Produce or Fetch, whether or not the HTTP listener is enabled.
 */
import type {
  AppendResult,
  FollowerReadResult,
  LeaderAppendOptions,
  LogService,
  ReadResult,
} from './handlers/broker-services.ts';
import type { TopicMetadata } from './metadata/metadata-store.ts';
import type { RequestMetrics } from './network/request-metrics.ts';
import type { NetworkStats } from './network/socket-server.ts';
import { ErrorCode, KafkaError } from './protocol/error-codes.ts';
import { BATCH_LENGTH_OFFSET, LOG_OVERHEAD, RECORDS_COUNT_OFFSET } from './protocol/records/batch-header.ts';

/** Kafka's BrokerTopicMetrics meters (their counts), for one topic or for all. */
export interface TopicCounters {
  messagesIn: number;
  bytesIn: number;
  bytesOut: number;
  failedProduceRequests: number;
  failedFetchRequests: number;
  totalProduceRequests: number;
  totalFetchRequests: number;
}

function zeroCounters(): TopicCounters {
  return {
    messagesIn: 0,
    bytesIn: 0,
    bytesOut: 0,
    failedProduceRequests: 0,
    failedFetchRequests: 0,
    totalProduceRequests: 0,
    totalFetchRequests: 0,
  };
}

/**
 * Kafka's BrokerTopicStats: counts per topic and for all topics together. As in Kafka's
 * ReplicaManager, the request counts are per partition of a request (a Produce to three
 * partitions of a topic counts three), and a long-poll Fetch read again after new data counts again.
 */
export class BrokerTopicStats {
  readonly allTopics: TopicCounters = zeroCounters();
  readonly #byTopic = new Map<string, TopicCounters>();

  topic(name: string): TopicCounters {
    let c = this.#byTopic.get(name);
    if (c === undefined) {
      c = zeroCounters();
      this.#byTopic.set(name, c);
    }
    return c;
  }

  /** Per-topic counts, by topic name. */
  topics(): ReadonlyMap<string, Readonly<TopicCounters>> {
    return this.#byTopic;
  }

  /** Drops the counts of topics that no longer exist (Kafka removes a deleted topic's metrics). */
  retainTopics(exists: (topic: string) => boolean): void {
    for (const topic of this.#byTopic.keys()) if (!exists(topic)) this.#byTopic.delete(topic);
  }

  add(topic: string, field: keyof TopicCounters, n = 1): void {
    this.allTopics[field] += n;
    this.topic(topic)[field] += n;
  }
}

/** Records in the record batches of a Produce partition (the sum of their record counts). */
export function recordCount(records: Buffer): number {
  let count = 0;
  for (let at = 0; at + RECORDS_COUNT_OFFSET + 4 <= records.length; ) {
    count += records.readInt32BE(at + RECORDS_COUNT_OFFSET);
    at += LOG_OVERHEAD + records.readInt32BE(at + BATCH_LENGTH_OFFSET);
  }
  return count;
}

/**
 * Errors that are the client's or the partition's state, not a failure of the broker: Kafka's
 * ReplicaManager does not count them as failed produce requests (appendToLocalLog) ...
 */
const EXPECTED_APPEND_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.MESSAGE_TOO_LARGE,
  ErrorCode.RECORD_LIST_TOO_LARGE,
  ErrorCode.CORRUPT_MESSAGE,
  ErrorCode.KAFKA_STORAGE_ERROR,
]);

/** ... nor as failed fetch requests (readFromLocalLog; an offset out of range is the client's to reset). */
const EXPECTED_READ_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.UNKNOWN_LEADER_EPOCH,
  ErrorCode.FENCED_LEADER_EPOCH,
  ErrorCode.REPLICA_NOT_AVAILABLE,
  ErrorCode.KAFKA_STORAGE_ERROR,
  ErrorCode.INCONSISTENT_TOPIC_ID,
  ErrorCode.OFFSET_OUT_OF_RANGE,
]);

function expected(err: unknown, codes: ReadonlySet<number>): boolean {
  return err instanceof KafkaError && codes.has(err.errorCode);
}

/**
 * The handlers' LogService, counting appends and reads into `stats` (Kafka marks the same meters
 * in ReplicaManager.appendToLocalLog and readFromLocalLog). Everything else passes through.
 */
export function meteredLogService(inner: LogService, stats: BrokerTopicStats): LogService {
  return {
    async append(
      topic: TopicMetadata,
      partition: number,
      records: Buffer,
      requiredAcks: number,
      timeoutMs?: number,
      options?: LeaderAppendOptions,
    ): Promise<AppendResult> {
      stats.add(topic.name, 'totalProduceRequests');
      // Counted before the append: the request's buffer is reused once the handler returns.
      const messages = recordCount(records);
      const bytes = records.length;
      try {
        const result = await inner.append(topic, partition, records, requiredAcks, timeoutMs, options);
        stats.add(topic.name, 'messagesIn', messages);
        stats.add(topic.name, 'bytesIn', bytes);
        return result;
      } catch (err) {
        if (!expected(err, EXPECTED_APPEND_ERRORS)) stats.add(topic.name, 'failedProduceRequests');
        throw err;
      }
    },
    async read(
      topic,
      partition,
      fetchOffset,
      maxBytes,
      readCommitted,
      minOneBatch,
      currentLeaderEpoch,
      fromFollowerAllowed,
    ): Promise<ReadResult> {
      stats.add(topic.name, 'totalFetchRequests');
      try {
        const result = await inner.read(
          topic,
          partition,
          fetchOffset,
          maxBytes,
          readCommitted,
          minOneBatch,
          currentLeaderEpoch,
          fromFollowerAllowed,
        );
        if (result.bytes > 0) stats.add(topic.name, 'bytesOut', result.bytes);
        return result;
      } catch (err) {
        if (!expected(err, EXPECTED_READ_ERRORS)) stats.add(topic.name, 'failedFetchRequests');
        throw err;
      }
    },
    // Kafka counts a follower's fetch as a fetch request, but its bytes as replication bytes out
    // (BrokerTopicStats.updateBytesOut), not the topic's bytes out.
    async fetchForFollower(
      topic,
      partition,
      replicaId,
      fetchOffset,
      maxBytes,
      currentLeaderEpoch,
      lastFetchedEpoch,
    ): Promise<FollowerReadResult> {
      stats.add(topic.name, 'totalFetchRequests');
      try {
        return await inner.fetchForFollower(
          topic,
          partition,
          replicaId,
          fetchOffset,
          maxBytes,
          currentLeaderEpoch,
          lastFetchedEpoch,
        );
      } catch (err) {
        if (!expected(err, EXPECTED_READ_ERRORS)) stats.add(topic.name, 'failedFetchRequests');
        throw err;
      }
    },
    async readReplica(topic, partition, fetchOffset, maxBytes): Promise<ReadResult> {
      stats.add(topic.name, 'totalFetchRequests');
      try {
        const result = await inner.readReplica(topic, partition, fetchOffset, maxBytes);
        if (result.bytes > 0) stats.add(topic.name, 'bytesOut', result.bytes);
        return result;
      } catch (err) {
        if (!expected(err, EXPECTED_READ_ERRORS)) stats.add(topic.name, 'failedFetchRequests');
        throw err;
      }
    },
    offsets: (topic, partition, currentLeaderEpoch) => inner.offsets(topic, partition, currentLeaderEpoch),
    preferredReadReplica: (topic, partition, clientRack) => inner.preferredReadReplica(topic, partition, clientRack),
    offsetForTimestamp: (topic, partition, timestamp) => inner.offsetForTimestamp(topic, partition, timestamp),
    maxTimestamp: (topic, partition) => inner.maxTimestamp(topic, partition),
    // The re-reads of a parked fetch come back through `read` above, and are counted there.
    fetch: (partitions, minBytes, maxWaitMs, read) => inner.fetch(partitions, minBytes, maxWaitMs, read),
    deleteRecordsBefore: (topic, partition, offset) => inner.deleteRecordsBefore(topic, partition, offset),
    endOffsetForEpoch: (topic, partition, leaderEpoch, currentLeaderEpoch) =>
      inner.endOffsetForEpoch(topic, partition, leaderEpoch, currentLeaderEpoch),
    producers: (topic, partition) => inner.producers(topic, partition),
    appendTxnMarker: (topic, partition, marker, requiredAcks, timeoutMs) =>
      inner.appendTxnMarker(topic, partition, marker, requiredAcks, timeoutMs),
    startTxnVerification: (topic, partition, producerId) => inner.startTxnVerification(topic, partition, producerId),
    loadTransactionState: (topic, partition) => inner.loadTransactionState(topic, partition),
    isLeader: (topic, partition) => inner.isLeader(topic, partition),
    partitionSize: (topic, partition) => inner.partitionSize(topic, partition),
    logDirs: () => inner.logDirs(),
  };
}

/** One partition's log, as the metrics show it (Kafka's kafka.log:type=Log gauges). */
export interface PartitionLogMetrics {
  topic: string;
  partition: number;
  size: number;
  logStartOffset: bigint;
  logEndOffset: bigint;
  highWatermark: bigint;
  offline: boolean;
  /** This broker leads the partition (a follower's replica is held here but led elsewhere). */
  leader: boolean;
  /** Replicas, in-sync replicas and min.insync.replicas, as this broker knows them. */
  replicas: number;
  isr: number;
  minIsr: number;
}

/**
 * The controller's view of the cluster (Kafka's KafkaController metrics): reported by the active
 * controller only, every other broker reporting 0, as Kafka does, so a sum over brokers counts once.
 */
export interface ControllerMetrics {
  active: boolean;
  globalTopicCount: number;
  globalPartitionCount: number;
  /** Partitions without a live leader. */
  offlinePartitionCount: number;
}

/** A committed offset of a consumer group (kafka-exporter's kafka_consumergroup_current_offset). */
export interface GroupOffsetMetrics {
  groupId: string;
  topic: string;
  partition: number;
  offset: bigint;
}

/** Whether the broker serves clients yet (`/ready`), and if not, why not. */
export type Readiness = { ready: true } | { ready: false; reason: string };

/**
 * What the HTTP server reads on each scrape and probe. Before the broker's services exist (the
 * HTTP listener opens before the logs are recovered, so `/ready` can say so) the lists are empty.
 */
export interface BrokerMetricsView {
  readonly nodeId: number;
  readiness(): Readiness;
  topicStats(): BrokerTopicStats;
  requestMetrics(): RequestMetrics | undefined;
  networkStats(): NetworkStats | undefined;
  topicCount(): number;
  partitions(): PartitionLogMetrics[];
  controller(): ControllerMetrics;
  groupOffsets(): GroupOffsetMetrics[];
  /** `host:port` advertised to clients, once the listeners are bound. */
  advertisedAddress(): string | undefined;
}
