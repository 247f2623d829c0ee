/**
 * The fault tests' checker (issue 14): what a replicated cluster acknowledged must survive a
 * fault, exactly once, at the offset it was acknowledged at.
 *
 * Producer side: one idempotent producer (InitProducerId) writing acks=all, one loop per
 * partition, one batch per Produce request and one request in flight per partition. It is built
 * on the project's KafkaClient rather than kafkajs because the checker must control exactly what
 * idempotence depends on: a failed or timed-out batch is re-sent byte for byte (same producer id,
 * epoch and base sequence) to whichever broker leads the partition after a metadata refresh, for
 * as long as it takes, so a batch appended by a leader that died before answering is either
 * recognised as a duplicate by the new leader (if it was replicated) or appended once (if it was
 * not). kafkajs hides its retries and gives up after a few, which would turn a slow failover into
 * a batch the test cannot account for. Every acknowledged (partition, offset, value) is recorded,
 * with which broker acknowledged it and when the acknowledged attempt was sent.
 *
 * Consumer side: one loop per partition reading from the leader (Fetch, read_uncommitted),
 * recording every (partition, offset, value) it was ever given.
 *
 * Verification, after the fault healed: every broker's replica of every partition is read with
 * Kafka's DEBUGGING_CONSUMER_ID (Fetch with replica id -2, up to that replica's high watermark),
 * once every replica reports the same high watermark. Then: every acknowledged record is at its
 * acknowledged offset in the leader's log (else lost), no value is in the log twice (duplicated),
 * the replicas hold the same records up to the lowest high watermark (divergent), and no record
 * any consumer read is missing from the final log (read, then lost).
 *
 * Connections: one KafkaClient per broker address, each asking only that broker, so a broker
 * that is stopped (SIGSTOP) delays only the requests sent to it; metadata is asked of every
 * broker at once and the first answer is taken.
 */
import { ApiKey } from '../../src/network/api-message-types.ts';
import { type ClusterMetadata, KafkaClient, type TopicMetadata } from '../../src/network/kafka-client.ts';
import { ErrorCode, KafkaError } from '../../src/protocol/error-codes.ts';
import { buildRecordBatchSync, decodeBatchSync, isControl, iterateBatches } from '../../src/protocol/records/index.ts';

export interface AckCheckerOptions {
  /** Every broker's `host:port` (metadata is asked of all of them). */
  bootstrap: readonly string[];
  topic: string;
  partitions: number;
  /** Records per second over all partitions (default 300). */
  recordsPerSecond?: number;
  /** Records per batch (default 5). */
  batchSize?: number;
  /** The broker-side Produce timeout (default 2000 ms): below `requestTimeoutMs`, so a slow acks=all answers REQUEST_TIMED_OUT before the client gives up. */
  produceTimeoutMs?: number;
  /** Client-side timeout of each request (default 4000 ms). */
  requestTimeoutMs?: number;
  /** How long `stop` keeps retrying batches not yet acknowledged (default 30 s). */
  drainTimeoutMs?: number;
  /** Prefix of every value (default a random one), so values are unique across runs. */
  valuePrefix?: string;
}

export interface AckedRecord {
  partition: number;
  /** -1 when the broker answered DUPLICATE_SEQUENCE_NUMBER without the original offset. */
  offset: bigint;
  value: string;
}

/** One Produce request of the checker and how it ended. */
export interface ProduceAttempt {
  partition: number;
  nodeId: number;
  baseSequence: number;
  sentAt: number;
  endedAt: number;
  /** 'NONE' when acknowledged; an error name, or 'transport: ...' when no answer came. */
  outcome: string;
  /** The leader epoch the broker named in its answer (v10+ currentLeader), -1 if none. */
  leaderEpoch: number;
}

export interface ReplicaView {
  nodeId: number;
  highWatermark: bigint;
  records: Map<bigint, string>;
}

export interface PartitionCheck {
  partition: number;
  leaderId: number;
  leaderEpoch: number;
  isr: number[];
  replicas: ReplicaView[];
}

export interface CheckReport {
  acknowledged: number;
  /** Acknowledged records not at their offset on the leader (must be empty). */
  lost: string[];
  /** Values present more than once in a partition's log (must be 0). */
  duplicated: number;
  /** Records a consumer read that the final log does not hold at that offset (must be empty). */
  readThenLost: string[];
  /** Replicas that differ below the lowest high watermark (must be empty). */
  divergent: string[];
  /** Non-retriable producer errors (must be empty). */
  fatal: string[];
  /** Batches still unacknowledged when `stop` gave up (their records may or may not be in the log). */
  unresolved: number;
  /** Records the consumers read. */
  consumed: number;
  partitions: PartitionCheck[];
}

interface Pending {
  partition: number;
  baseSequence: number;
  values: string[];
  batch: Buffer;
}

interface PartitionLeader {
  leaderId: number;
  leaderEpoch: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function errorName(code: number): string {
  return code === ErrorCode.NONE ? 'NONE' : new KafkaError(code).errorName;
}

/**
 * Errors after which the same batch is sent again. Besides Kafka's retriable ones: a leader can
 * answer NOT_ENOUGH_REPLICAS_AFTER_APPEND (appended, ISR too small) and the resend is then a
 * duplicate the broker recognises.
 */
function worthRetrying(code: number): boolean {
  return code === ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND || new KafkaError(code).retriable;
}

export class AckChecker {
  readonly topic: string;
  readonly partitionCount: number;
  readonly acked: AckedRecord[] = [];
  readonly attempts: ProduceAttempt[] = [];
  readonly fatal: string[] = [];
  /** partition -> offset -> value, everything the consumers were given. */
  readonly consumed = new Map<number, Map<bigint, string>>();
  /** A consumer given two different values at one offset (a read record replaced). */
  readonly consumedConflicts: string[] = [];
  private readonly options: Required<Omit<AckCheckerOptions, 'bootstrap' | 'topic' | 'partitions'>>;
  private readonly bootstrapClients: KafkaClient[];
  private readonly nodeClients = new Map<number, KafkaClient>();
  private readonly nodeAddresses = new Map<number, string>();
  private readonly leaders = new Map<number, PartitionLeader>();
  private refreshing: Promise<void> | undefined;
  private nextBootstrap = 0;
  private producerId = -1n;
  private producerEpoch = -1;
  private producing = false;
  private consuming = false;
  private drainDeadline = Number.POSITIVE_INFINITY;
  private loops: Promise<void>[] = [];
  private consumerLoops: Promise<void>[] = [];
  private unresolved = 0;
  private counter = 0;

  constructor(options: AckCheckerOptions) {
    this.topic = options.topic;
    this.partitionCount = options.partitions;
    this.options = {
      recordsPerSecond: options.recordsPerSecond ?? 300,
      batchSize: options.batchSize ?? 5,
      produceTimeoutMs: options.produceTimeoutMs ?? 2000,
      requestTimeoutMs: options.requestTimeoutMs ?? 4000,
      drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
      valuePrefix: options.valuePrefix ?? Math.random().toString(36).slice(2, 8),
    };
    this.bootstrapClients = options.bootstrap.map((a) => this.newClient(a));
    for (let p = 0; p < this.partitionCount; p++) this.consumed.set(p, new Map());
  }

  private newClient(address: string): KafkaClient {
    return new KafkaClient({
      bootstrap: [address],
      requestTimeoutMs: this.options.requestTimeoutMs,
      connectTimeoutMs: 1000,
      clientId: 'ack-checker',
    });
  }

  /** Gets a producer id, then starts the producer and consumer loops. */
  async start(): Promise<void> {
    await this.refreshMetadata();
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.anyBroker((c) =>
          c.request(ApiKey.InitProducerId, {
            transactionalId: null,
            transactionTimeoutMs: 60_000,
            producerId: -1n,
            producerEpoch: -1,
          }),
        );
        if (res.errorCode !== ErrorCode.NONE) throw new Error(`InitProducerId: ${errorName(res.errorCode)}`);
        this.producerId = res.producerId;
        this.producerEpoch = res.producerEpoch;
        break;
      } catch (err) {
        if (attempt >= 20) throw err;
        await sleep(250);
      }
    }
    this.producing = true;
    this.consuming = true;
    for (let p = 0; p < this.partitionCount; p++) {
      this.loops.push(this.produceLoop(p));
      this.consumerLoops.push(this.consumeLoop(p));
    }
  }

  /** Stops producing, keeps retrying unacknowledged batches until acknowledged or the drain timeout, then stops the consumers. */
  async stop(): Promise<void> {
    this.drainDeadline = Date.now() + this.options.drainTimeoutMs;
    this.producing = false;
    await Promise.all(this.loops);
    this.consuming = false;
    await Promise.all(this.consumerLoops);
  }

  close(): void {
    this.producing = false;
    this.consuming = false;
    this.drainDeadline = 0;
    for (const c of [...this.bootstrapClients, ...this.nodeClients.values()]) c.close();
  }

  /** Acknowledged records so far (for "keep producing until N more were acknowledged"). */
  get acknowledged(): number {
    return this.acked.length;
  }

  /**
   * How long after `faultAt` writes resumed on `partition`: the first acknowledgement of an
   * attempt sent at or after `faultAt` (an attempt sent before could have been answered by the
   * broker just faulted). Undefined while none.
   */
  resumedAfter(faultAt: number, partition: number): number | undefined {
    let first: number | undefined;
    for (const a of this.attempts) {
      if (a.partition !== partition || a.outcome !== 'NONE' || a.sentAt < faultAt) continue;
      if (first === undefined || a.endedAt < first) first = a.endedAt;
    }
    return first === undefined ? undefined : first - faultAt;
  }

  /** The latest of `resumedAfter` over `partitions`, undefined until all resumed. */
  allResumedAfter(faultAt: number, partitions: readonly number[]): number | undefined {
    let worst = 0;
    for (const p of partitions) {
      const r = this.resumedAfter(faultAt, p);
      if (r === undefined) return undefined;
      worst = Math.max(worst, r);
    }
    return worst;
  }

  /** The topic's partitions as the first broker that answers describes them. */
  async topicMetadata(): Promise<TopicMetadata> {
    const md = await this.fastestMetadata();
    const t = md.topics.get(this.topic);
    if (t === undefined || t.errorCode !== ErrorCode.NONE)
      throw new Error(`Metadata ${this.topic}: ${t === undefined ? 'missing' : errorName(t.errorCode)}`);
    return t;
  }

  /** Whether every partition has a leader and all its replicas in the ISR. */
  async fullIsr(): Promise<boolean> {
    const t = await this.topicMetadata();
    return t.partitions.every((p) => p.leaderId >= 0 && p.isr.length === p.replicas.length);
  }

  /** The leader of a partition as last learnt (-1: unknown). */
  leaderOf(partition: number): number {
    return this.leaders.get(partition)?.leaderId ?? -1;
  }

  // ---- connections and metadata ----

  /** Runs `fn` against the bootstrap brokers in turn until one answers. */
  private async anyBroker<T>(fn: (c: KafkaClient) => Promise<T>): Promise<T> {
    let last: unknown;
    for (let i = 0; i < this.bootstrapClients.length; i++) {
      const c = this.bootstrapClients[this.nextBootstrap % this.bootstrapClients.length]!;
      try {
        return await fn(c);
      } catch (err) {
        last = err;
        // The next call starts at the next broker: this one is dead or stopped.
        this.nextBootstrap++;
      }
    }
    throw last;
  }

  /**
   * Metadata of the topic from whichever broker answers first, all asked at once: asked in turn,
   * a stopped broker would hold every refresh for a request timeout, and the time until writes
   * resume would measure this client instead of the cluster's failover.
   */
  private async fastestMetadata(): Promise<ClusterMetadata> {
    return Promise.any(this.bootstrapClients.map((c) => c.metadata([this.topic])));
  }

  /** One metadata refresh at a time, shared by every loop that asks meanwhile. */
  refreshMetadata(): Promise<void> {
    if (this.refreshing !== undefined) return this.refreshing;
    const run = (async () => {
      try {
        const md = await this.fastestMetadata();
        for (const [id, b] of md.brokers) {
          const address = `${b.host}:${b.port}`;
          if (this.nodeAddresses.get(id) !== address) {
            this.nodeClients.get(id)?.close();
            this.nodeClients.delete(id);
            this.nodeAddresses.set(id, address);
          }
        }
        const t = md.topics.get(this.topic);
        if (t !== undefined && t.errorCode === ErrorCode.NONE) {
          for (const p of t.partitions)
            this.leaders.set(p.partition, { leaderId: p.leaderId, leaderEpoch: p.leaderEpoch });
        }
      } catch {
        // Every broker failed to answer: the loops back off and ask again.
      } finally {
        this.refreshing = undefined;
      }
    })();
    this.refreshing = run;
    return run;
  }

  private nodeClient(nodeId: number): KafkaClient | undefined {
    let c = this.nodeClients.get(nodeId);
    if (c === undefined) {
      const address = this.nodeAddresses.get(nodeId);
      if (address === undefined) return undefined;
      c = this.newClient(address);
      this.nodeClients.set(nodeId, c);
    }
    return c;
  }

  // ---- producer ----

  private async produceLoop(partition: number): Promise<void> {
    const intervalMs = (this.options.batchSize * this.partitionCount * 1000) / this.options.recordsPerSecond;
    let sequence = 0;
    let nextAt = Date.now();
    while (this.producing) {
      const values = Array.from(
        { length: this.options.batchSize },
        () => `${this.options.valuePrefix}-p${partition}-${this.counter++}`,
      );
      const batch = buildRecordBatchSync({
        records: values.map((v) => ({ key: null, value: Buffer.from(v) })),
        producerId: this.producerId,
        producerEpoch: this.producerEpoch,
        baseSequence: sequence,
      });
      const ok = await this.sendUntilAcked({ partition, baseSequence: sequence, values, batch });
      if (!ok) return;
      sequence += values.length;
      // A steady rate; after a stall, carry on from now rather than sending a burst.
      nextAt = Math.max(nextAt + intervalMs, Date.now() - intervalMs);
      const wait = nextAt - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }

  /** Sends one batch until a broker acknowledges it; false on a fatal error or when `stop` gave up. */
  private async sendUntilAcked(b: Pending): Promise<boolean> {
    for (;;) {
      if (Date.now() > this.drainDeadline) {
        this.unresolved++;
        return false;
      }
      const leader = this.leaders.get(b.partition)?.leaderId ?? -1;
      const client = leader >= 0 ? this.nodeClient(leader) : undefined;
      if (client === undefined) {
        await this.refreshMetadata();
        await sleep(100);
        continue;
      }
      const attempt: ProduceAttempt = {
        partition: b.partition,
        nodeId: leader,
        baseSequence: b.baseSequence,
        sentAt: Date.now(),
        endedAt: 0,
        outcome: '',
        leaderEpoch: -1,
      };
      this.attempts.push(attempt);
      try {
        const res = await client.request(
          ApiKey.Produce,
          {
            transactionalId: null,
            acks: -1,
            timeoutMs: this.options.produceTimeoutMs,
            topicData: [{ name: this.topic, partitionData: [{ index: b.partition, records: b.batch }] }],
          },
          { timeoutMs: this.options.requestTimeoutMs },
        );
        attempt.endedAt = Date.now();
        const p = res.responses[0]?.partitionResponses[0];
        if (p === undefined) {
          attempt.outcome = 'no partition in the response';
          this.fatal.push(`partition ${b.partition} seq ${b.baseSequence}: Produce answer without the partition`);
          return false;
        }
        attempt.outcome = errorName(p.errorCode);
        attempt.leaderEpoch = p.currentLeader?.leaderEpoch ?? -1;
        if (p.errorCode === ErrorCode.NONE || p.errorCode === ErrorCode.DUPLICATE_SEQUENCE_NUMBER) {
          // Kafka answers a duplicate of one of the last five batches with its original offset;
          // DUPLICATE_SEQUENCE_NUMBER (no offset) counts as acknowledged too, as Kafka's producer does.
          const base = p.errorCode === ErrorCode.NONE ? p.baseOffset : -1n;
          attempt.outcome = 'NONE';
          b.values.forEach((value, i) => {
            this.acked.push({ partition: b.partition, offset: base < 0n ? -1n : base + BigInt(i), value });
          });
          return true;
        }
        if (!worthRetrying(p.errorCode)) {
          this.fatal.push(
            `partition ${b.partition} seq ${b.baseSequence} at broker ${leader}: ${attempt.outcome} ${p.errorMessage ?? ''}`,
          );
          return false;
        }
      } catch (err) {
        // No answer (connection refused or closed, timeout): the batch may or may not be in the
        // log; the resend of the same sequence settles which.
        attempt.endedAt = Date.now();
        attempt.outcome = `transport: ${err instanceof Error ? err.message : String(err)}`;
      }
      await this.refreshMetadata();
      await sleep(50);
    }
  }

  // ---- consumer ----

  private async consumeLoop(partition: number): Promise<void> {
    const seen = this.consumed.get(partition)!;
    let next = 0n;
    while (this.consuming) {
      const leader = this.leaders.get(partition)?.leaderId ?? -1;
      const client = leader >= 0 ? this.nodeClient(leader) : undefined;
      if (client === undefined) {
        await this.refreshMetadata();
        await sleep(100);
        continue;
      }
      try {
        const res = await client.request(
          ApiKey.Fetch,
          12,
          {
            replicaId: -1,
            maxWaitMs: 200,
            minBytes: 1,
            maxBytes: 4 << 20,
            isolationLevel: 0,
            sessionId: 0,
            sessionEpoch: -1,
            topics: [
              {
                topic: this.topic,
                partitions: [
                  {
                    partition,
                    currentLeaderEpoch: -1,
                    fetchOffset: next,
                    lastFetchedEpoch: -1,
                    logStartOffset: -1n,
                    partitionMaxBytes: 1 << 20,
                  },
                ],
              },
            ],
            forgottenTopicsData: [],
            rackId: '',
          },
          { timeoutMs: this.options.requestTimeoutMs },
        );
        const p = res.responses[0]?.partitions[0];
        if (p === undefined || p.errorCode !== ErrorCode.NONE) {
          // Not the leader any more, or a new leader whose high watermark is still behind what
          // we read (OFFSET_OUT_OF_RANGE): ask again from the same offset, never skip.
          await this.refreshMetadata();
          await sleep(100);
          continue;
        }
        for (const r of decodeRecords(p.records)) {
          if (r.offset < next) continue;
          const before = seen.get(r.offset);
          if (before !== undefined && before !== r.value)
            this.consumedConflicts.push(`partition ${partition} offset ${r.offset}: read ${before}, later ${r.value}`);
          seen.set(r.offset, r.value);
          next = r.offset + 1n;
        }
      } catch {
        await this.refreshMetadata();
        await sleep(100);
      }
    }
  }

  // ---- verification ----

  /**
   * One broker's replica of `partition` up to its high watermark (Fetch with replica id -2).
   * Throws when the broker does not answer or answers with an error.
   */
  private async readReplica(nodeId: number, partition: number): Promise<ReplicaView> {
    const client = this.nodeClient(nodeId);
    if (client === undefined) throw new Error(`broker ${nodeId} is not in the metadata`);
    const records = new Map<bigint, string>();
    let next = 0n;
    let highWatermark = -1n;
    for (let round = 0; round < 10_000; round++) {
      const res = await client.request(ApiKey.Fetch, 12, {
        replicaId: -2,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 8 << 20,
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [
          {
            topic: this.topic,
            partitions: [
              {
                partition,
                currentLeaderEpoch: -1,
                fetchOffset: next,
                lastFetchedEpoch: -1,
                logStartOffset: -1n,
                partitionMaxBytes: 4 << 20,
              },
            ],
          },
        ],
        forgottenTopicsData: [],
        rackId: '',
      });
      const p = res.responses[0]?.partitions[0];
      if (p === undefined)
        throw new Error(`replica Fetch ${this.topic}/${partition} at broker ${nodeId}: no partition`);
      if (p.errorCode !== ErrorCode.NONE)
        throw new Error(`replica Fetch ${this.topic}/${partition} at broker ${nodeId}: ${errorName(p.errorCode)}`);
      // The high watermark of the first answer bounds the read: records above it are not committed.
      if (highWatermark < 0n) highWatermark = p.highWatermark;
      const got = decodeRecords(p.records).filter((r) => r.offset >= next && r.offset < highWatermark);
      for (const r of got) records.set(r.offset, r.value);
      if (got.length === 0) {
        if (next < highWatermark)
          throw new Error(
            `replica Fetch ${this.topic}/${partition} at broker ${nodeId}: nothing at ${next}, below its high watermark ${highWatermark}`,
          );
        return { nodeId, highWatermark, records };
      }
      next = got.at(-1)!.offset + 1n;
      if (next >= highWatermark) return { nodeId, highWatermark, records };
    }
    throw new Error(`replica Fetch ${this.topic}/${partition} at broker ${nodeId} made no progress`);
  }

  /**
   * Waits until every partition has a leader, its full replica set in the ISR and the same high
   * watermark on every replica, then reads them all. Throws with the last state seen after
   * `timeoutMs`.
   */
  async settle(timeoutMs = 30_000): Promise<PartitionCheck[]> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      try {
        const md = await this.fastestMetadata();
        for (const [id, b] of md.brokers) this.nodeAddresses.set(id, `${b.host}:${b.port}`);
        const t = md.topics.get(this.topic);
        if (t === undefined || t.errorCode !== ErrorCode.NONE) throw new Error(`no topic ${this.topic} in Metadata`);
        const out: PartitionCheck[] = [];
        for (const p of t.partitions) {
          if (p.leaderId < 0) throw new Error(`partition ${p.partition}: no leader`);
          if (p.isr.length !== p.replicas.length)
            throw new Error(`partition ${p.partition}: ISR ${p.isr.join(',')} of replicas ${p.replicas.join(',')}`);
          const replicas: ReplicaView[] = [];
          for (const id of p.replicas) replicas.push(await this.readReplica(id, p.partition));
          const hws = replicas.map((r) => r.highWatermark);
          if (hws.some((h) => h !== hws[0]))
            throw new Error(
              `partition ${p.partition}: high watermarks ${replicas.map((r) => `${r.nodeId}:${r.highWatermark}`).join(' ')}`,
            );
          out.push({ partition: p.partition, leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, isr: p.isr, replicas });
        }
        return out;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > deadline) throw new Error(`replicas did not settle within ${timeoutMs} ms: ${last}`);
      await sleep(250);
    }
  }

  /** Settles, reads every replica and compares with what was acknowledged and consumed. */
  async verify(timeoutMs = 30_000): Promise<CheckReport> {
    const partitions = await this.settle(timeoutMs);
    const lost: string[] = [];
    const readThenLost: string[] = [...this.consumedConflicts];
    const divergent: string[] = [];
    let duplicated = 0;
    const logs = new Map<number, Map<bigint, string>>();
    for (const pc of partitions) {
      const leader = pc.replicas.find((r) => r.nodeId === pc.leaderId)!;
      logs.set(pc.partition, leader.records);
      const counts = new Map<string, number>();
      for (const v of leader.records.values()) counts.set(v, (counts.get(v) ?? 0) + 1);
      for (const n of counts.values()) if (n > 1) duplicated += n - 1;
      const lowest = pc.replicas.reduce((m, r) => (r.highWatermark < m ? r.highWatermark : m), leader.highWatermark);
      for (const r of pc.replicas) {
        if (r === leader) continue;
        for (let o = 0n; o < lowest; o++) {
          if (r.records.get(o) !== leader.records.get(o)) {
            divergent.push(
              `partition ${pc.partition} offset ${o}: leader ${leader.nodeId} has ${leader.records.get(o)}, broker ${r.nodeId} has ${r.records.get(o)}`,
            );
            break;
          }
        }
      }
    }
    const present = new Map<number, Set<string>>();
    for (const [p, log] of logs) present.set(p, new Set(log.values()));
    for (const a of this.acked) {
      const log = logs.get(a.partition);
      if (a.offset < 0n) {
        if (present.get(a.partition)?.has(a.value) !== true)
          lost.push(`partition ${a.partition} ${a.value} (duplicate-acknowledged)`);
        continue;
      }
      const at = log?.get(a.offset);
      if (at !== a.value)
        lost.push(`partition ${a.partition} offset ${a.offset}: acknowledged ${a.value}, log has ${at}`);
    }
    let consumed = 0;
    for (const [p, seen] of this.consumed) {
      const log = logs.get(p);
      for (const [offset, value] of seen) {
        consumed++;
        if (log?.get(offset) !== value)
          readThenLost.push(`partition ${p} offset ${offset}: read ${value}, final log has ${log?.get(offset)}`);
      }
    }
    return {
      acknowledged: this.acked.length,
      lost,
      duplicated,
      readThenLost,
      divergent,
      fatal: [...this.fatal],
      unresolved: this.unresolved,
      consumed,
      partitions,
    };
  }
}

/**
 * Creates `topic` through `client` with replication factor `replicationFactor` and
 * min.insync.replicas `minInsync`, failing with the broker's error.
 */
export async function createReplicatedTopic(
  client: KafkaClient,
  topic: string,
  partitions: number,
  replicationFactor: number,
  minInsync: number,
): Promise<void> {
  const res = await client.request(ApiKey.CreateTopics, {
    topics: [
      {
        name: topic,
        numPartitions: partitions,
        replicationFactor,
        assignments: [],
        configs: [{ name: 'min.insync.replicas', value: String(minInsync) }],
      },
    ],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  const t = res.topics[0];
  if (t === undefined || t.errorCode !== ErrorCode.NONE)
    throw new Error(
      `CreateTopics ${topic}: ${t === undefined ? 'no answer' : `${errorName(t.errorCode)} ${t.errorMessage ?? ''}`}`,
    );
}

/** One line of figures, and the first few problems of each kind. */
export function describeReport(r: CheckReport): string {
  const head =
    `acknowledged ${r.acknowledged}, lost ${r.lost.length}, duplicated ${r.duplicated}, read-then-lost ${r.readThenLost.length}, ` +
    `divergent ${r.divergent.length}, fatal ${r.fatal.length}, unresolved batches ${r.unresolved}, consumed ${r.consumed}; ` +
    r.partitions
      .map((p) => `p${p.partition} leader ${p.leaderId} epoch ${p.leaderEpoch} hw ${p.replicas[0]?.highWatermark}`)
      .join(', ');
  const some = (what: string, xs: readonly string[]) =>
    xs.length === 0
      ? ''
      : `\n${what}:\n  ${xs.slice(0, 10).join('\n  ')}${xs.length > 10 ? `\n  ... ${xs.length - 10} more` : ''}`;
  return (
    head +
    some('lost', r.lost) +
    some('read then lost', r.readThenLost) +
    some('divergent', r.divergent) +
    some('fatal', r.fatal)
  );
}

/** Whether the report is clean: nothing lost, duplicated, diverged, read-then-lost or fatal. */
export function reportIsClean(r: CheckReport): boolean {
  return (
    r.lost.length === 0 &&
    r.duplicated === 0 &&
    r.readThenLost.length === 0 &&
    r.divergent.length === 0 &&
    r.fatal.length === 0
  );
}

/** Records of a Fetch answer's bytes (a partial last batch is left out), control batches skipped. */
function decodeRecords(bytes: Buffer | null | undefined): { offset: bigint; value: string }[] {
  const out: { offset: bigint; value: string }[] = [];
  if (bytes === null || bytes === undefined || bytes.length === 0) return out;
  for (const b of iterateBatches(bytes, { partialTail: 'stop' })) {
    const batch = decodeBatchSync(bytes.subarray(b.offset, b.offset + b.size));
    if (isControl(batch.header.attributes)) continue;
    for (const r of batch.records) out.push({ offset: r.offset, value: r.value === null ? '' : r.value.toString() });
  }
  return out;
}
