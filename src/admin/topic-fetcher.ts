/**
 * Reading a topic's partitions with Fetch directly, without a consumer group: start offsets from
 * ListOffsets, then one Fetch per partition leader per round, each partition at its own position.
 * Shared by `samsa consume` and `samsa perf consume`.
 *
 * Positions advance past every complete batch a response holds (control batches included), the
 * way Kafka's consumer does; records below the fetch offset in the first batch are the caller's
 * to skip (brokers return the whole batch containing the fetch offset).
 */

import { ApiKey } from '../network/api-message-types.ts';
import type { BrokerConnection, KafkaClient, TopicMetadata } from '../network/kafka-client.ts';
import { ErrorCode, errorName, KafkaError } from '../protocol/error-codes.ts';
import type { FetchResponsePartitionData } from '../protocol/messages/001-fetch.ts';
import { isControl, isTransactional, lastOffsetOf } from '../protocol/records/batch-header.ts';
import { type BatchEntry, iterateBatches } from '../protocol/records/iterate-batches.ts';
import { sleep } from './cli-common.ts';

export const IsolationLevel = { readUncommitted: 0, readCommitted: 1 } as const;

/** ListOffsets special timestamps. */
export const EARLIEST_TIMESTAMP = -2n;
export const LATEST_TIMESTAMP = -1n;

export interface TopicFetcherOptions {
  isolationLevel?: number | undefined;
  maxWaitMs?: number | undefined;
  minBytes?: number | undefined;
  maxBytes?: number | undefined;
  partitionMaxBytes?: number | undefined;
  /** Check each batch's CRC (default true). */
  verifyCrc?: boolean | undefined;
  /**
   * Fetch over a connection per leader of its own that reuses one receive buffer
   * (recycleResponseBuffers): each FetchedPartition's `buf` is then valid only until the next
   * `fetch()`. For loops that use up every fetch before the next, such as perf consume.
   */
  recycleBuffers?: boolean | undefined;
}

export interface FetchedPartition {
  partition: number;
  /** The position this fetch started from. */
  fetchOffset: bigint;
  highWatermark: bigint;
  /** The end for read_committed readers (-1 when the broker does not say). */
  lastStableOffset: bigint;
  /** Complete batches, in order; `buf` is the partition's records field. */
  batches: BatchEntry[];
  buf: Buffer;
  abortedTransactions: { producerId: bigint; firstOffset: bigint }[] | null;
}

/** Errors cured by refreshing metadata and trying again. */
const RETRIABLE_FETCH_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.FENCED_LEADER_EPOCH,
  ErrorCode.UNKNOWN_LEADER_EPOCH,
  ErrorCode.KAFKA_STORAGE_ERROR,
  ErrorCode.REPLICA_NOT_AVAILABLE,
  ErrorCode.OFFSET_NOT_AVAILABLE,
  ErrorCode.UNKNOWN_TOPIC_ID,
  ErrorCode.NOT_COORDINATOR,
]);

export class TopicFetcher {
  readonly topic: string;
  private topicId: string;
  private readonly client: KafkaClient;
  private readonly options: TopicFetcherOptions;
  /** Next offset to fetch, per partition being read. */
  readonly positions = new Map<number, bigint>();
  /** Where to go on OFFSET_OUT_OF_RANGE: Kafka's auto.offset.reset. */
  resetTo: 'earliest' | 'latest' = 'latest';
  onWarning: (message: string) => void = (m) => console.error(m);

  constructor(client: KafkaClient, topic: TopicMetadata, options: TopicFetcherOptions = {}) {
    this.client = client;
    this.topic = topic.name;
    this.topicId = topic.topicId;
    this.options = options;
  }

  /** Offsets for `timestamp` (EARLIEST_TIMESTAMP, LATEST_TIMESTAMP or a time) from the leaders. */
  async listOffsets(partitions: readonly number[], timestamp: bigint): Promise<Map<number, bigint>> {
    const result = new Map<number, bigint>();
    for (let attempt = 0; ; attempt++) {
      const missing = partitions.filter((p) => !result.has(p));
      if (missing.length === 0) return result;
      if (attempt > 10) {
        throw new KafkaError(
          ErrorCode.LEADER_NOT_AVAILABLE,
          `ListOffsets ${this.topic}: partitions ${missing.join(',')} have no leader`,
        );
      }
      if (attempt > 0) await this.refresh(attempt);
      await Promise.all(
        [...this.groupByLeader(missing)].map(async ([leader, list]) => {
          const conn = await this.client.connection(leader);
          const version = conn.versionFor(ApiKey.ListOffsets);
          const response = await conn.request(ApiKey.ListOffsets, {
            replicaId: -1,
            isolationLevel: version >= 2 ? (this.options.isolationLevel ?? 0) : 0,
            topics: [{ name: this.topic, partitions: list.map((p) => ({ partitionIndex: p, timestamp })) }],
          });
          for (const t of response.topics) {
            for (const p of t.partitions) {
              if (p.errorCode === ErrorCode.NONE) {
                result.set(p.partitionIndex, version === 0 ? (p.oldStyleOffsets[0] ?? -1n) : p.offset);
              } else if (!RETRIABLE_FETCH_ERRORS.has(p.errorCode)) {
                throw new KafkaError(
                  p.errorCode,
                  `ListOffsets ${this.topic}-${p.partitionIndex}: ${errorName(p.errorCode)}`,
                );
              }
            }
          }
        }),
      );
    }
  }

  private groupByLeader(partitions: readonly number[]): Map<number, number[]> {
    const byLeader = new Map<number, number[]>();
    for (const p of partitions) {
      const leader = this.client.leaderOf(this.topic, p);
      if (leader < 0) continue;
      let list = byLeader.get(leader);
      if (list === undefined) {
        list = [];
        byLeader.set(leader, list);
      }
      list.push(p);
    }
    return byLeader;
  }

  /**
   * Refreshes the topic's metadata after a retriable error. The topic existed when reading
   * began, so a Metadata answer without it means it was deleted: that ends the read with an
   * error instead of retrying forever.
   */
  private async refresh(attempt: number): Promise<void> {
    await sleep(Math.min(50 * 2 ** attempt, 1000));
    const md = await this.client.metadata([this.topic]);
    const t = md.topics.get(this.topic);
    if (t !== undefined && t.errorCode === ErrorCode.NONE) this.topicId = t.topicId;
    else if (t === undefined || t.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) {
      throw new KafkaError(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        `topic '${this.topic}' no longer exists (deleted while being read)`,
      );
    }
  }

  /** Partitions whose leader answers KAFKA_STORAGE_ERROR (warned about once; cleared once they fetch fine). */
  readonly failing = new Set<number>();

  /**
   * One round: a Fetch to each leader of the partitions being read (concurrently), long-polling
   * up to maxWaitMs. Advances positions past the complete batches returned.
   */
  async fetch(): Promise<FetchedPartition[]> {
    const byLeader = this.groupByLeader([...this.positions.keys()]);
    if (byLeader.size === 0) {
      await this.refresh(3);
      return [];
    }
    const out: FetchedPartition[] = [];
    let needRefresh = false;
    const outOfRange: number[] = [];
    await Promise.all(
      [...byLeader].map(async ([leader, partitions]) => {
        const conn = await this.fetchConnection(leader);
        const maxWaitMs = this.options.maxWaitMs ?? 500;
        const response = await conn.request(
          ApiKey.Fetch,
          {
            replicaId: -1,
            maxWaitMs,
            minBytes: this.options.minBytes ?? 1,
            maxBytes: this.options.maxBytes ?? 50 * 1024 * 1024,
            isolationLevel: this.options.isolationLevel ?? 0,
            sessionId: 0,
            sessionEpoch: -1,
            topics: [
              {
                topic: this.topic,
                topicId: this.topicId,
                partitions: partitions.map((p) => ({
                  partition: p,
                  fetchOffset: this.positions.get(p)!,
                  partitionMaxBytes: this.options.partitionMaxBytes ?? 1024 * 1024,
                })),
              },
            ],
          },
          { timeoutMs: maxWaitMs + 30_000 },
        );
        throwIfTopLevelError(response.errorCode);
        for (const t of response.responses) {
          for (const p of t.partitions) {
            const fetched = this.accept(p);
            if (fetched === 'refresh') needRefresh = true;
            else if (fetched === 'reset') outOfRange.push(p.partitionIndex);
            else if (fetched !== undefined) out.push(fetched);
          }
        }
      }),
    );
    // Resets finish before the next fetch, which would otherwise ask for the same offset again.
    for (const partition of outOfRange) await this.reset(partition);
    if (needRefresh) await this.refresh(2);
    return out.sort((a, b) => a.partition - b.partition);
  }

  private readonly fetchConnections = new Map<number, BrokerConnection>();

  private async fetchConnection(leader: number): Promise<BrokerConnection> {
    if (this.options.recycleBuffers !== true) return this.client.connection(leader);
    const existing = this.fetchConnections.get(leader);
    if (existing !== undefined && !existing.isClosed) return existing;
    const conn = await this.client.dedicatedConnection(leader, { recycleResponseBuffers: true });
    this.fetchConnections.set(leader, conn);
    return conn;
  }

  private accept(p: FetchResponsePartitionData): FetchedPartition | 'refresh' | 'reset' | undefined {
    const position = this.positions.get(p.partitionIndex);
    if (position === undefined) return undefined;
    if (p.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
      this.onWarning(
        `samsa: offset ${position} is out of range for ${this.topic}-${p.partitionIndex}; resetting to ${this.resetTo}`,
      );
      return 'reset';
    }
    if (p.errorCode === ErrorCode.KAFKA_STORAGE_ERROR && !this.failing.has(p.partitionIndex)) {
      // Retried as Kafka's consumer does, but said once: it is not going to pass by itself.
      this.failing.add(p.partitionIndex);
      this.onWarning(
        `samsa: ${this.topic}-${p.partitionIndex}: KAFKA_STORAGE_ERROR: the leader's log directory is offline (see the broker's log); retrying`,
      );
    }
    if (RETRIABLE_FETCH_ERRORS.has(p.errorCode)) return 'refresh';
    if (p.errorCode === ErrorCode.NONE) this.failing.delete(p.partitionIndex);
    if (p.errorCode !== ErrorCode.NONE) {
      throw new KafkaError(p.errorCode, `Fetch ${this.topic}-${p.partitionIndex}: ${errorName(p.errorCode)}`);
    }
    const buf = p.records ?? Buffer.alloc(0);
    const batches = [...iterateBatches(buf, { partialTail: 'stop', verifyCrc: this.options.verifyCrc ?? true })];
    const last = batches.at(-1);
    if (last !== undefined) {
      const next = lastOffsetOf(last.header) + 1n;
      if (next > position) this.positions.set(p.partitionIndex, next);
    }
    return {
      partition: p.partitionIndex,
      fetchOffset: position,
      highWatermark: p.highWatermark,
      lastStableOffset: p.lastStableOffset,
      batches,
      buf,
      abortedTransactions: p.abortedTransactions,
    };
  }

  /** Moves a partition to its earliest or latest offset (auto.offset.reset). */
  private async reset(partition: number): Promise<void> {
    try {
      const offsets = await this.listOffsets(
        [partition],
        this.resetTo === 'earliest' ? EARLIEST_TIMESTAMP : LATEST_TIMESTAMP,
      );
      const offset = offsets.get(partition);
      if (offset !== undefined && this.positions.has(partition)) this.positions.set(partition, offset);
    } catch (err) {
      this.onWarning(`samsa: cannot reset ${this.topic}-${partition}: ${(err as Error).message}`);
    }
  }
}

function throwIfTopLevelError(errorCode: number): void {
  if (errorCode !== ErrorCode.NONE) throw new KafkaError(errorCode, `Fetch: ${errorName(errorCode)}`);
}

/**
 * Kafka's read_committed filtering for one partition's fetched batches: drops batches of
 * aborted transactions (from the response's abortedTransactions list and the ABORT markers) and
 * every control batch. Mirrors the Java consumer's CompletedFetch.
 */
export class AbortedTransactionFilter {
  private readonly pending: { producerId: bigint; firstOffset: bigint }[];
  private readonly aborted = new Set<bigint>();

  constructor(abortedTransactions: readonly { producerId: bigint; firstOffset: bigint }[] | null) {
    this.pending = [...(abortedTransactions ?? [])].sort((a, b) =>
      a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0,
    );
  }

  /**
   * Whether the batch's records are to be skipped. `abortMarker` says whether a control batch
   * holds an ABORT marker (the caller decodes it).
   */
  skip(
    header: { producerId: bigint; attributes: number; baseOffset: bigint; lastOffsetDelta: number },
    abortMarker: boolean,
  ): boolean {
    const lastOffset = header.baseOffset + BigInt(header.lastOffsetDelta);
    while (this.pending.length > 0 && this.pending[0]!.firstOffset <= lastOffset) {
      this.aborted.add(this.pending.shift()!.producerId);
    }
    if (isControl(header.attributes)) {
      if (abortMarker) this.aborted.delete(header.producerId);
      return true;
    }
    return isTransactional(header.attributes) && this.aborted.has(header.producerId);
  }
}
