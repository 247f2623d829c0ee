/**
 * Kafka's ReplicaFetcherManager and ReplicaFetcherThread: how a follower copies its leaders' logs.
 *
 * One `ReplicaFetcher` per source (leader) broker fetches every partition this broker follows from
 * it in one Fetch, one Fetch in flight at a time, at the highest version both sides support (12 at
 * least: the follower's truncation relies on `lastFetchedEpoch` and the leader's `divergingEpoch`,
 * KIP-595's fetch-time truncation as in Kafka 3.x; Samsa brokers all speak 17). The Fetch carries
 * this broker's id as the replica id (v15+ in `replicaState`, KIP-903) so the leader reads up to its
 * log end and records the follower's position; it is sessionless (full fetches, sessionId 0 and
 * epoch -1), read-uncommitted, by topic id from v13.
 *
 * Per partition of a response (Kafka's AbstractFetcherThread.processFetchRequest):
 * - records (or a new high watermark / log start): `append`, awaited before the next Fetch;
 * - `divergingEpoch`: truncate where the logs agree (getOffsetTruncationState), then fetch again;
 * - OFFSET_OUT_OF_RANGE: the leader's offsets by ListOffsets; a leader end below ours truncates to
 *   it, a leader log start above our end empties our log and starts it there;
 * - leadership errors (the metadata feed will hand a new handle) and anything else: the partition
 *   waits `backoffMs`, logged once per distinct error.
 * A failed connection is reopened after `backoffMs`. Nothing spins: every path that fetches again
 * at once has made progress (new data, a truncation), and a fetcher whose partitions all wait sleeps.
 *
 * Who calls it: the ReplicaManager, as the metadata feed makes this broker a follower (add) or
 * leader / not a replica (remove). Handles are replaced, never mutated: a response to a Fetch sent
 * for an earlier handle of the partition is dropped.
 */
import type { TopicMetadata } from '../metadata/metadata-store.ts';
import { ApiKey } from '../network/api-message-types.ts';
import { BrokerConnection } from '../network/kafka-client.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import type {
  FetchRequestFetchPartitionInput,
  FetchResponse,
  FetchResponsePartitionData,
} from '../protocol/messages/001-fetch.ts';

/** A partition this broker follows, as the ReplicaManager hands it to the fetcher. */
export interface FollowerPartitionHandle {
  readonly topic: TopicMetadata;
  readonly partition: number;
  readonly leaderId: number;
  /** The leader epoch this broker follows at (sent as currentLeaderEpoch, KIP-320). */
  readonly leaderEpoch: number;
  /** Where to fetch from: the local log end offset. */
  fetchOffset(): bigint;
  /** The latest leader epoch in the local leader-epoch cache, -1 if none (Fetch v12+ lastFetchedEpoch). */
  lastFetchedEpoch(): number;
  /**
   * The local leader-epoch cache's answer for `epoch` (PartitionLog.endOffsetForEpoch): the largest
   * epoch <= `epoch` and where it ends, epoch -1 if none. Decides how far a diverging log truncates.
   * Without it the follower truncates to the leader's end of the epoch, which is right unless the
   * follower has an epoch the leader never had (after an unclean election): then it keeps
   * divergent records and the partition backs off with a warning instead of converging.
   */
  endOffsetForEpoch?(epoch: number): { epoch: number; endOffset: bigint };
  /**
   * Appends the leader's batches (offsets and epochs kept) and moves the local high watermark to
   * min(leaderHW, LEO). Called with empty `records` when only the leader's high watermark or log
   * start moved.
   */
  append(records: Buffer, leaderHighWatermark: bigint, leaderLogStartOffset: bigint): Promise<void>;
  /** Removes every offset >= offset (diverging epoch, KIP-101/KIP-279/KIP-595). */
  truncateTo(offset: bigint): Promise<void>;
  /** Empties the log and starts it at `offset` (the leader's log start moved past our end). */
  truncateFullyAndStartAt(offset: bigint): Promise<void>;
  /** The handle is stale (leadership moved, partition deleted): the fetcher drops it. */
  readonly removed: boolean;
}

export interface ReplicaFetcherLogger {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  debug?(o: object, m: string): void;
}

export interface ReplicaFetcherOptions {
  nodeId: number;
  /** The advertised endpoint of a live broker, undefined if it is not live. */
  brokerEndpoint(nodeId: number): { host: string; port: number } | undefined;
  logger: ReplicaFetcherLogger;
  /** replica.fetch.wait.max.ms, 500. */
  maxWaitMs?: number;
  /** replica.fetch.min.bytes, 1. */
  minBytes?: number;
  /** replica.fetch.max.bytes, 1 MiB. */
  maxBytesPerPartition?: number;
  /** replica.fetch.response.max.bytes, 10 MiB. */
  responseMaxBytes?: number;
  /** replica.fetch.backoff.ms, 1000. */
  backoffMs?: number;
  /** replica.socket.timeout.ms, 30000: a Fetch or ListOffsets without an answer by then fails. */
  requestTimeoutMs?: number;
}

type Settings = Required<Omit<ReplicaFetcherOptions, 'logger' | 'brokerEndpoint' | 'nodeId'>>;

/** Fetch v12 brings lastFetchedEpoch and divergingEpoch, which the truncation relies on. */
const MIN_FETCH_VERSION = 12;
const LATEST_TIMESTAMP = -1n;
const EARLIEST_TIMESTAMP = -2n;
const NO_RECORDS = Buffer.alloc(0);

/** Errors that mean the metadata this broker follows by is stale: wait for the feed's next handle. */
const LEADERSHIP_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.FENCED_LEADER_EPOCH,
  ErrorCode.UNKNOWN_LEADER_EPOCH,
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.UNKNOWN_TOPIC_ID,
  ErrorCode.INCONSISTENT_TOPIC_ID,
]);

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errorName(code: number): string {
  return new KafkaError(code).errorName;
}

/** Kafka's PartitionFetchState, reduced: the log itself is the fetch position. */
interface PartitionFetchState {
  readonly handle: FollowerPartitionHandle;
  /** performance.now() before which the partition is not fetched (after an error). */
  delayedUntil: number;
  /** The last problem logged at warn level for this partition; cleared when it fetches again. */
  lastProblem: string | undefined;
  /** What the last append told the log, so a response without news costs no append. */
  lastHighWatermark: bigint;
  lastLogStartOffset: bigint;
}

/** What one Fetch asked for a partition: its state then (the handle identifies it) and its position. */
interface SentPartition {
  state: PartitionFetchState;
  fetchOffset: bigint;
  lastFetchedEpoch: number;
}

/** One source broker's fetcher (Kafka's ReplicaFetcherThread, one per broker here). */
class ReplicaFetcher {
  readonly leaderId: number;
  private readonly nodeId: number;
  private readonly settings: Settings;
  private readonly brokerEndpoint: ReplicaFetcherOptions['brokerEndpoint'];
  private readonly log: ReplicaFetcherLogger;
  private readonly partitions = new Map<string, PartitionFetchState>();
  private connection: BrokerConnection | undefined;
  private closed = false;
  /** Aborted by `close`: a connection attempt in progress is abandoned, not waited for. */
  private readonly closing = new AbortController();
  private readonly loop: Promise<void>;
  private wakeUp: (() => void) | undefined;
  /** The last connection problem logged at warn level, so an outage logs one line, not one per retry. */
  private connectionProblem: string | undefined;

  constructor(leaderId: number, options: ReplicaFetcherOptions, settings: Settings) {
    this.leaderId = leaderId;
    this.nodeId = options.nodeId;
    this.settings = settings;
    this.brokerEndpoint = options.brokerEndpoint;
    this.log = options.logger;
    this.loop = this.run();
  }

  get size(): number {
    return this.partitions.size;
  }

  add(key: string, handle: FollowerPartitionHandle): void {
    this.partitions.set(key, {
      handle,
      delayedUntil: 0,
      lastProblem: undefined,
      lastHighWatermark: -1n,
      lastLogStartOffset: -1n,
    });
    this.wake();
  }

  remove(key: string): void {
    this.partitions.delete(key);
  }

  /** Stops fetching: an in-flight request fails at once, an append in progress is waited for. */
  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    this.connection?.close();
    this.wake();
    await this.loop;
  }

  private wake(): void {
    this.wakeUp?.();
  }

  /** Waits `ms` (Infinity: until woken), or less when `wake` is called. */
  private sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = undefined;
        resolve();
      };
      // setTimeout takes at most 2^31-1 ms (a larger delay fires after 1 ms).
      if (Number.isFinite(ms)) timer = setTimeout(done, Math.max(0, Math.min(ms, 0x7fffffff)));
      this.wakeUp = done;
    });
  }

  private debug(o: object, m: string): void {
    this.log.debug?.(o, m);
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        await this.doWork();
      } catch (err) {
        // A bug or an unexpected failure of a handle: never a crash, never a spin.
        this.log.warn({ err, leaderId: this.leaderId }, `replica fetcher from broker ${this.leaderId} failed`);
        await this.sleep(this.settings.backoffMs);
      }
    }
    this.connection?.close();
    this.connection = undefined;
  }

  /** One round: connect if needed, one Fetch of every partition not backing off, its outcome applied. */
  private async doWork(): Promise<void> {
    for (const [key, s] of this.partitions) if (s.handle.removed) this.partitions.delete(key);
    const now = performance.now();
    const ready: PartitionFetchState[] = [];
    let nextReady = Number.POSITIVE_INFINITY;
    for (const s of this.partitions.values()) {
      if (s.delayedUntil <= now) ready.push(s);
      else nextReady = Math.min(nextReady, s.delayedUntil);
    }
    if (ready.length === 0) {
      await this.sleep(nextReady - now);
      return;
    }
    const conn = await this.connect();
    if (conn === undefined) return;
    const version = conn.versionFor(ApiKey.Fetch);
    if (version < MIN_FETCH_VERSION) {
      this.connectionFailed(
        conn,
        `broker ${this.leaderId} supports Fetch up to v${version}, below v${MIN_FETCH_VERSION} (diverging epochs)`,
      );
      await this.sleep(this.settings.backoffMs);
      return;
    }
    const byId = version >= 13;
    const sent = new Map<string, SentPartition>();
    const topics = new Map<string, { topic: string; topicId: string; partitions: FetchRequestFetchPartitionInput[] }>();
    for (const state of ready) {
      const { handle } = state;
      const fetchOffset = handle.fetchOffset();
      const lastFetchedEpoch = handle.lastFetchedEpoch();
      const topicKey = byId ? handle.topic.topicId : handle.topic.name;
      sent.set(partitionKey(topicKey, handle.partition), { state, fetchOffset, lastFetchedEpoch });
      let topic = topics.get(topicKey);
      if (topic === undefined) {
        topic = { topic: handle.topic.name, topicId: handle.topic.topicId, partitions: [] };
        topics.set(topicKey, topic);
      }
      topic.partitions.push({
        partition: handle.partition,
        currentLeaderEpoch: handle.leaderEpoch,
        fetchOffset,
        lastFetchedEpoch,
        partitionMaxBytes: this.settings.maxBytesPerPartition,
      });
    }
    let response: FetchResponse;
    try {
      response = await conn.request(
        ApiKey.Fetch,
        version,
        {
          ...(version >= 15
            ? { replicaState: { replicaId: this.nodeId, replicaEpoch: -1n } }
            : { replicaId: this.nodeId }),
          maxWaitMs: this.settings.maxWaitMs,
          minBytes: this.settings.minBytes,
          maxBytes: this.settings.responseMaxBytes,
          isolationLevel: 0,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [...topics.values()],
        },
        // The leader holds the Fetch up to maxWaitMs before answering.
        { timeoutMs: this.settings.maxWaitMs + this.settings.requestTimeoutMs },
      );
    } catch (err) {
      if (this.closed) return;
      this.connectionFailed(conn, `Fetch from broker ${this.leaderId} failed: ${describe(err)}`);
      await this.sleep(this.settings.backoffMs);
      return;
    }
    // Only an answered Fetch ends an outage: a connection that fails each request is one outage.
    if (this.connectionProblem !== undefined) {
      this.log.info({ leaderId: this.leaderId, address: conn.address }, `fetching from broker ${this.leaderId} again`);
      this.connectionProblem = undefined;
    }
    if (response.errorCode !== ErrorCode.NONE) {
      const problem = `Fetch from broker ${this.leaderId} failed: ${errorName(response.errorCode)}`;
      for (const state of ready) this.backOff(state, problem);
      return;
    }
    const outcomes: Promise<void>[] = [];
    for (const topic of response.responses) {
      for (const data of topic.partitions) {
        const s = sent.get(partitionKey(byId ? topic.topicId : topic.topic, data.partitionIndex));
        if (s === undefined) continue;
        outcomes.push(this.processPartition(conn, s, data));
      }
    }
    // Partitions are independent; each one's outcome (append, truncation) completes before the
    // next Fetch reads its position.
    await Promise.all(outcomes);
  }

  /** The connection to the leader, opened if needed; undefined (after a backoff) when it cannot be. */
  private async connect(): Promise<BrokerConnection | undefined> {
    if (this.connection !== undefined && !this.connection.isClosed) return this.connection;
    this.connection = undefined;
    const endpoint = this.brokerEndpoint(this.leaderId);
    if (endpoint === undefined) {
      this.connectionFailed(undefined, `broker ${this.leaderId} is not live`);
      await this.sleep(this.settings.backoffMs);
      return undefined;
    }
    try {
      const conn = await BrokerConnection.connect(endpoint.host, endpoint.port, {
        clientId: `broker-${this.nodeId}-fetcher-${this.leaderId}`,
        requestTimeoutMs: this.settings.requestTimeoutMs,
        connectTimeoutMs: this.settings.requestTimeoutMs,
        signal: this.closing.signal,
      });
      if (this.closed) {
        conn.close();
        return undefined;
      }
      this.connection = conn;
      return conn;
    } catch (err) {
      if (this.closed) return undefined;
      this.connectionFailed(undefined, `cannot connect to broker ${this.leaderId}: ${describe(err)}`);
      await this.sleep(this.settings.backoffMs);
      return undefined;
    }
  }

  /** Drops the connection (the next round reconnects) and logs the first failure of an outage. */
  private connectionFailed(conn: BrokerConnection | undefined, problem: string): void {
    conn?.close();
    if (this.connection === conn) this.connection = undefined;
    if (this.connectionProblem === undefined) {
      this.log.warn(
        { leaderId: this.leaderId, partitions: this.partitions.size },
        `${problem}; retrying every ${this.settings.backoffMs} ms`,
      );
    } else {
      this.debug({ leaderId: this.leaderId }, problem);
    }
    this.connectionProblem = problem;
  }

  /** The partition waits `backoffMs` before its next Fetch; `problem` is logged once until it fetches again. */
  private backOff(state: PartitionFetchState, problem: string): void {
    state.delayedUntil = performance.now() + this.settings.backoffMs;
    const where = { topic: state.handle.topic.name, partition: state.handle.partition, leaderId: this.leaderId };
    if (state.lastProblem === problem) this.debug(where, problem);
    else this.log.warn(where, problem);
    state.lastProblem = problem;
  }

  /** Whether `s` still describes the partition: a newer handle, or a removal, makes a response stale. */
  private current(s: SentPartition): boolean {
    const { handle } = s.state;
    return (
      !this.closed &&
      !handle.removed &&
      this.partitions.get(partitionKey(handle.topic.name, handle.partition)) === s.state
    );
  }

  private async processPartition(
    conn: BrokerConnection,
    s: SentPartition,
    data: FetchResponsePartitionData,
  ): Promise<void> {
    const { state } = s;
    const { handle } = state;
    if (!this.current(s)) return;
    const tp = `${handle.topic.name}-${handle.partition}`;
    try {
      if (data.errorCode === ErrorCode.NONE) {
        // The log must still end where this Fetch started (Kafka checks the same before appending).
        if (handle.fetchOffset() !== s.fetchOffset) return;
        if (data.divergingEpoch.endOffset >= 0n && data.divergingEpoch.epoch >= 0) {
          await this.truncateOnDivergence(s, data.divergingEpoch, tp);
          return;
        }
        const records = data.records ?? NO_RECORDS;
        if (
          records.length > 0 ||
          data.highWatermark !== state.lastHighWatermark ||
          data.logStartOffset !== state.lastLogStartOffset
        ) {
          await handle.append(records, data.highWatermark, data.logStartOffset);
          state.lastHighWatermark = data.highWatermark;
          state.lastLogStartOffset = data.logStartOffset;
        }
        if (state.lastProblem !== undefined) {
          this.log.info({ topic: handle.topic.name, partition: handle.partition }, `${tp} is fetching again`);
          state.lastProblem = undefined;
        }
        return;
      }
      if (data.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
        await this.handleOutOfRange(conn, s, tp);
        return;
      }
      const name = errorName(data.errorCode);
      if (LEADERSHIP_ERRORS.has(data.errorCode)) {
        // Kafka's fetcher waits too: the metadata feed brings the new leader (a new handle).
        this.backOff(state, `${tp}: broker ${this.leaderId} answered ${name} at leader epoch ${handle.leaderEpoch}`);
      } else {
        this.backOff(state, `${tp}: broker ${this.leaderId} answered ${name}`);
      }
    } catch (err) {
      if (!this.current(s)) return;
      // An append or truncation failed (a disk error, a batch the log refused): this partition
      // waits and tries again; the others go on.
      this.backOff(state, `${tp}: replicating from broker ${this.leaderId} failed: ${describe(err)}`);
    }
  }

  /**
   * Kafka's AbstractFetcherThread.truncateOnFetchResponse/getOffsetTruncationState: the leader's
   * log agrees with ours up to the end of `diverging.epoch` (the largest epoch it has at or below
   * our last fetched epoch). Where our log has that epoch, truncate to the smaller of the two ends;
   * where it has only an earlier one, truncate to our end of that, and the next Fetch (with our new
   * last epoch) finds the next point of agreement.
   */
  private async truncateOnDivergence(
    s: SentPartition,
    diverging: { epoch: number; endOffset: bigint },
    tp: string,
  ): Promise<void> {
    const { handle } = s.state;
    const local = handle.endOffsetForEpoch?.(diverging.epoch) ?? { epoch: -1, endOffset: -1n };
    let target: bigint;
    if (local.epoch < 0 || local.endOffset < 0n) target = min(diverging.endOffset, s.fetchOffset);
    else if (local.epoch === diverging.epoch) target = min(min(diverging.endOffset, local.endOffset), s.fetchOffset);
    else target = min(local.endOffset, s.fetchOffset);
    this.log.info(
      { topic: handle.topic.name, partition: handle.partition, leaderId: this.leaderId, diverging, target },
      `${tp}: truncating to ${target}: the leader's epoch ${diverging.epoch} ends at ${diverging.endOffset} (our log end ${s.fetchOffset}, last epoch ${s.lastFetchedEpoch})`,
    );
    if (target < s.fetchOffset) await handle.truncateTo(target);
    // A truncation that changed nothing would send the same Fetch and get the same answer: wait.
    if (handle.fetchOffset() === s.fetchOffset && handle.lastFetchedEpoch() === s.lastFetchedEpoch)
      this.backOff(s.state, `${tp}: the leader reports a diverging epoch the local log cannot truncate to`);
  }

  /**
   * Kafka's AbstractFetcherThread.fetchOffsetAndTruncate: our fetch offset is outside the leader's
   * log. A leader end below ours (an unclean election lost records) truncates to it; a leader log
   * start above our end (retention or DeleteRecords moved it past us) empties our log and starts
   * it there. Otherwise the leader's log moved meanwhile, and the partition tries again later.
   */
  private async handleOutOfRange(conn: BrokerConnection, s: SentPartition, tp: string): Promise<void> {
    const { handle } = s.state;
    const where = { topic: handle.topic.name, partition: handle.partition, leaderId: this.leaderId };
    const replicaEnd = s.fetchOffset;
    const leaderEnd = await this.listOffset(conn, handle, LATEST_TIMESTAMP);
    if (!this.current(s)) return;
    if (leaderEnd < replicaEnd) {
      this.log.warn(
        { ...where, replicaEnd, leaderEnd },
        `${tp}: truncating to ${leaderEnd}, the leader's log end, below ours (${replicaEnd}): records past it are lost`,
      );
      await handle.truncateTo(leaderEnd);
      return;
    }
    const leaderStart = await this.listOffset(conn, handle, EARLIEST_TIMESTAMP);
    if (!this.current(s)) return;
    if (leaderStart > replicaEnd) {
      this.log.info(
        { ...where, replicaEnd, leaderStart },
        `${tp}: the leader's log starts at ${leaderStart}, past our log end ${replicaEnd}: starting the log there`,
      );
      await handle.truncateFullyAndStartAt(leaderStart);
      return;
    }
    this.backOff(
      s.state,
      `${tp}: offset ${replicaEnd} out of range at broker ${this.leaderId}, whose log now spans ${leaderStart}-${leaderEnd}`,
    );
  }

  /** The leader's offset for `timestamp` (-1 latest, -2 earliest), asked as a replica (ListOffsets). */
  private async listOffset(
    conn: BrokerConnection,
    handle: FollowerPartitionHandle,
    timestamp: bigint,
  ): Promise<bigint> {
    const response = await conn.request(ApiKey.ListOffsets, {
      replicaId: this.nodeId,
      isolationLevel: 0,
      topics: [
        {
          name: handle.topic.name,
          partitions: [{ partitionIndex: handle.partition, currentLeaderEpoch: handle.leaderEpoch, timestamp }],
        },
      ],
    });
    const p = response.topics
      .find((t) => t.name === handle.topic.name)
      ?.partitions.find((x) => x.partitionIndex === handle.partition);
    if (p === undefined) throw new Error(`ListOffsets from broker ${this.leaderId} did not answer for the partition`);
    if (p.errorCode !== ErrorCode.NONE)
      throw new KafkaError(p.errorCode, `ListOffsets from broker ${this.leaderId}: ${errorName(p.errorCode)}`);
    // v0 answers in the old-style array.
    return p.offset >= 0n || p.oldStyleOffsets.length === 0 ? p.offset : p.oldStyleOffsets[0]!;
  }
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/**
 * Kafka's ReplicaFetcherManager: the fetchers of this broker, one per source broker, each created
 * when a partition first follows that broker and closed when it follows none.
 */
export class ReplicaFetcherManager {
  private readonly options: ReplicaFetcherOptions;
  private readonly settings: Settings;
  private readonly fetchers = new Map<number, ReplicaFetcher>();
  /** Each followed partition's source broker. */
  private readonly sourceOf = new Map<string, number>();
  /** Idle fetchers being shut down, waited for by `close`. */
  private readonly closing = new Set<Promise<void>>();
  private closed = false;

  constructor(options: ReplicaFetcherOptions) {
    this.options = options;
    this.settings = {
      maxWaitMs: options.maxWaitMs ?? 500,
      minBytes: options.minBytes ?? 1,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1024 * 1024,
      responseMaxBytes: options.responseMaxBytes ?? 10 * 1024 * 1024,
      backoffMs: options.backoffMs ?? 1000,
      requestTimeoutMs: options.requestTimeoutMs ?? 30000,
    };
  }

  /** Starts (or moves) following: replaces any earlier handle of the same topic-partition. */
  addPartitions(handles: readonly FollowerPartitionHandle[]): void {
    if (this.closed) return;
    for (const handle of handles) {
      const key = partitionKey(handle.topic.name, handle.partition);
      this.detach(key);
      if (handle.removed || handle.leaderId < 0 || handle.leaderId === this.options.nodeId) continue;
      let fetcher = this.fetchers.get(handle.leaderId);
      if (fetcher === undefined) {
        fetcher = new ReplicaFetcher(handle.leaderId, this.options, this.settings);
        this.fetchers.set(handle.leaderId, fetcher);
      }
      fetcher.add(key, handle);
      this.sourceOf.set(key, handle.leaderId);
    }
    this.shutdownIdleFetchers();
  }

  removePartitions(partitions: readonly { topic: string; partition: number }[]): void {
    for (const { topic, partition } of partitions) this.detach(partitionKey(topic, partition));
    this.shutdownIdleFetchers();
  }

  /** The source brokers fetched from now, and how many partitions each (tests, metrics). */
  fetcherPartitionCounts(): Map<number, number> {
    return new Map([...this.fetchers].map(([leaderId, f]) => [leaderId, f.size]));
  }

  /** Stops every fetcher and waits for in-flight appends. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.fetchers.values()].map((f) => f.close());
    this.fetchers.clear();
    this.sourceOf.clear();
    await Promise.all([...all, ...this.closing]);
  }

  private detach(key: string): void {
    const source = this.sourceOf.get(key);
    if (source === undefined) return;
    this.fetchers.get(source)?.remove(key);
    this.sourceOf.delete(key);
  }

  private shutdownIdleFetchers(): void {
    for (const [leaderId, fetcher] of this.fetchers) {
      if (fetcher.size > 0) continue;
      this.fetchers.delete(leaderId);
      const done = fetcher.close();
      this.closing.add(done);
      void done.finally(() => this.closing.delete(done));
    }
  }
}
