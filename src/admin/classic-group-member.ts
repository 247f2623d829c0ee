/**
 * A consumer group member for one topic on the classic protocol (JoinGroup, SyncGroup,
 * Heartbeat, LeaveGroup), for brokers without KIP-848 and for groups whose members use the
 * classic protocol (kafkajs, librdkafka's default). Eager rebalancing with the range assignor:
 * before each rejoin every partition is committed and revoked; the leader assigns each
 * subscribed topic's partitions in ranges over the members subscribed to it, as Kafka's
 * RangeAssignor does. Used by `samsa consume --group`.
 */
import { ApiKey } from '../network/api-message-types.ts';
import {
  type BrokerConnection,
  type KafkaClient,
  KafkaClientError,
  KafkaClientErrorCodes,
  type TopicMetadata,
} from '../network/kafka-client.ts';
import { ErrorCode, errorName, KafkaError } from '../protocol/error-codes.ts';
import {
  readConsumerProtocolAssignment,
  writeConsumerProtocolAssignment,
} from '../protocol/messages/data/consumer-protocol-assignment.ts';
import {
  readConsumerProtocolSubscription,
  writeConsumerProtocolSubscription,
} from '../protocol/messages/data/consumer-protocol-subscription.ts';
import { Reader } from '../protocol/reader.ts';
import { Writer } from '../protocol/writer.ts';
import { coordinatorFor } from './group-coordinator.ts';
import { committedOffsets } from './group-describe.ts';
import type { AssignmentChange, GroupMembership } from './group-member.ts';

const SESSION_TIMEOUT_MS = 10_000;
const HEARTBEAT_INTERVAL_MS = 1000;

/** Errors after which the member finds its coordinator again and retries. */
const COORDINATOR_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
]);

/** Errors that mean this member must join again (after revoking its partitions). */
const REJOIN_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.REBALANCE_IN_PROGRESS,
  ErrorCode.ILLEGAL_GENERATION,
  ErrorCode.UNKNOWN_MEMBER_ID,
  ErrorCode.FENCED_INSTANCE_ID,
]);

function subscriptionBytes(topic: string): Buffer {
  const w = new Writer(64);
  w.int16(0);
  writeConsumerProtocolSubscription(w, 0, { topics: [topic], userData: null });
  return w.toBuffer();
}

function assignmentBytes(assignment: Map<string, number[]>): Buffer {
  const w = new Writer(64);
  w.int16(0);
  writeConsumerProtocolAssignment(w, 0, {
    assignedPartitions: [...assignment].map(([topic, partitions]) => ({ topic, partitions })),
    userData: null,
  });
  return w.toBuffer();
}

function decodeVersioned<T>(bytes: Buffer, read: (r: Reader, v: number) => T): T | undefined {
  if (bytes.length < 2) return undefined;
  try {
    const r = new Reader(bytes);
    const version = r.int16();
    return read(r, Math.min(version, 3));
  } catch {
    return undefined;
  }
}

/**
 * Kafka's RangeAssignor: for each topic, its partitions split in consecutive ranges over the
 * members subscribed to it (sorted by member id), the first ones taking one more when uneven.
 */
export function rangeAssign(
  subscriptions: ReadonlyMap<string, readonly string[]>,
  partitionCounts: ReadonlyMap<string, number>,
): Map<string, Map<string, number[]>> {
  const result = new Map<string, Map<string, number[]>>();
  for (const member of subscriptions.keys()) result.set(member, new Map());
  const topics = new Set([...subscriptions.values()].flat());
  for (const topic of [...topics].sort()) {
    const count = partitionCounts.get(topic) ?? 0;
    const members = [...subscriptions]
      .filter(([, t]) => t.includes(topic))
      .map(([m]) => m)
      .sort();
    const per = Math.floor(count / members.length);
    const extra = count % members.length;
    let next = 0;
    members.forEach((m, i) => {
      const n = per + (i < extra ? 1 : 0);
      if (n > 0)
        result.get(m)!.set(
          topic,
          Array.from({ length: n }, (_, j) => next + j),
        );
      next += n;
    });
  }
  return result;
}

export class ClassicGroupMember implements GroupMembership {
  readonly groupId: string;
  readonly assigned = new Set<number>();
  failure: Error | undefined;
  onAssignment: (change: AssignmentChange) => Promise<void> = async () => {};
  private readonly client: KafkaClient;
  private readonly topic: TopicMetadata;
  private readonly rebalanceTimeoutMs: number;
  private memberId = '';
  private generationId = -1;
  private conn: BrokerConnection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private needRejoin = false;
  private firstAssignment: (() => void) | undefined;

  constructor(client: KafkaClient, groupId: string, topic: TopicMetadata, rebalanceTimeoutMs = 30_000) {
    this.client = client;
    this.groupId = groupId;
    this.topic = topic;
    this.rebalanceTimeoutMs = rebalanceTimeoutMs;
  }

  async join(): Promise<void> {
    await this.rejoin();
    if (this.failure !== undefined) throw this.failure;
    this.schedule();
  }

  async committed(partitions: readonly number[]): Promise<Map<number, bigint>> {
    const conn = await this.coordinator();
    const all = (await committedOffsets(conn, this.groupId)).get(this.topic.name) ?? new Map<number, bigint>();
    return new Map([...all].filter(([p]) => partitions.includes(p)));
  }

  async commit(offsets: ReadonlyMap<number, bigint>): Promise<void> {
    const entries = [...offsets].filter(([p]) => this.assigned.has(p));
    if (entries.length === 0 || this.generationId < 0) return;
    const conn = await this.coordinator();
    const r = await conn.request(ApiKey.OffsetCommit, {
      groupId: this.groupId,
      generationIdOrMemberEpoch: this.generationId,
      memberId: this.memberId,
      groupInstanceId: null,
      topics: [
        {
          name: this.topic.name,
          partitions: entries.map(([partitionIndex, committedOffset]) => ({
            partitionIndex,
            committedOffset,
            committedMetadata: '',
          })),
        },
      ],
    });
    for (const t of r.topics) {
      for (const p of t.partitions) {
        if (p.errorCode === ErrorCode.NONE) continue;
        // A rebalance began: the records are committed again by whoever gets the partition.
        if (REJOIN_ERRORS.has(p.errorCode)) {
          this.needRejoin = true;
          continue;
        }
        console.error(
          `samsa consume: cannot commit ${t.name}-${p.partitionIndex} for group '${this.groupId}': ${errorName(p.errorCode)}`,
        );
      }
    }
  }

  async leave(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running?.catch(() => {});
    if (this.memberId === '' || this.conn === undefined || this.conn.isClosed) return;
    const v = this.conn.versionFor(ApiKey.LeaveGroup);
    await this.conn
      .request(
        ApiKey.LeaveGroup,
        v >= 3
          ? {
              groupId: this.groupId,
              members: [{ memberId: this.memberId, groupInstanceId: null, reason: 'samsa consume exits' }],
            }
          : { groupId: this.groupId, memberId: this.memberId },
      )
      .catch(() => {});
  }

  waitForAssignment(ms: number): Promise<void> {
    if (this.assigned.size > 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.firstAssignment = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async coordinator(): Promise<BrokerConnection> {
    if (this.conn === undefined || this.conn.isClosed) this.conn = await coordinatorFor(this.client, this.groupId);
    return this.conn;
  }

  private schedule(): void {
    if (this.stopped || this.failure !== undefined) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => this.schedule());
    }, HEARTBEAT_INTERVAL_MS);
  }

  private async tick(): Promise<void> {
    try {
      if (this.needRejoin) {
        await this.rejoin();
        return;
      }
      const conn = await this.coordinator();
      const r = await conn.request(ApiKey.Heartbeat, {
        groupId: this.groupId,
        generationId: this.generationId,
        memberId: this.memberId,
        groupInstanceId: null,
      });
      if (r.errorCode === ErrorCode.NONE) return;
      if (COORDINATOR_ERRORS.has(r.errorCode)) {
        this.conn = undefined;
        return;
      }
      if (REJOIN_ERRORS.has(r.errorCode)) {
        if (r.errorCode !== ErrorCode.REBALANCE_IN_PROGRESS) this.fenced();
        await this.rejoin();
        return;
      }
      this.failure = new KafkaError(r.errorCode, `group '${this.groupId}': Heartbeat: ${errorName(r.errorCode)}`);
    } catch (err) {
      if (this.stopped) return;
      if (err instanceof KafkaClientError && err.code !== KafkaClientErrorCodes.unsupportedVersion) {
        this.conn = undefined;
        return;
      }
      this.failure = err as Error;
    }
  }

  /** Out of the group: its partitions are someone else's, so nothing of them is committed. */
  private fenced(): void {
    this.assigned.clear();
    this.generationId = -1;
    this.memberId = '';
  }

  /** Revokes every partition (committing it), then JoinGroup and SyncGroup until a generation is reached. */
  private async rejoin(): Promise<void> {
    this.needRejoin = false;
    if (this.assigned.size > 0) {
      const revoked = [...this.assigned];
      await this.onAssignment({ added: [], revoked });
      this.assigned.clear();
    }
    for (let attempt = 0; !this.stopped; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(100 * attempt, 1000)));
      if (attempt > 50) {
        this.failure = new KafkaError(ErrorCode.REBALANCE_IN_PROGRESS, `group '${this.groupId}': cannot join`);
        return;
      }
      const conn = await this.coordinator();
      const joined = await conn.request(
        ApiKey.JoinGroup,
        {
          groupId: this.groupId,
          sessionTimeoutMs: SESSION_TIMEOUT_MS,
          rebalanceTimeoutMs: this.rebalanceTimeoutMs,
          memberId: this.memberId,
          groupInstanceId: null,
          protocolType: 'consumer',
          protocols: [{ name: 'range', metadata: subscriptionBytes(this.topic.name) }],
          reason: null,
        },
        { timeoutMs: this.rebalanceTimeoutMs + 5000 },
      );
      if (joined.errorCode === ErrorCode.MEMBER_ID_REQUIRED) {
        this.memberId = joined.memberId;
        continue;
      }
      if (joined.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) {
        this.memberId = '';
        continue;
      }
      if (COORDINATOR_ERRORS.has(joined.errorCode)) {
        this.conn = undefined;
        continue;
      }
      if (joined.errorCode === ErrorCode.REBALANCE_IN_PROGRESS) continue;
      if (joined.errorCode !== ErrorCode.NONE) {
        this.failure = new KafkaError(
          joined.errorCode,
          `group '${this.groupId}': JoinGroup: ${errorName(joined.errorCode)}`,
        );
        return;
      }
      this.memberId = joined.memberId;
      this.generationId = joined.generationId;
      const assignments = joined.leader === joined.memberId ? await this.assign(joined.members) : [];
      const synced = await conn.request(
        ApiKey.SyncGroup,
        {
          groupId: this.groupId,
          generationId: this.generationId,
          memberId: this.memberId,
          groupInstanceId: null,
          protocolType: 'consumer',
          protocolName: 'range',
          assignments,
        },
        { timeoutMs: this.rebalanceTimeoutMs + 5000 },
      );
      if (REJOIN_ERRORS.has(synced.errorCode) || COORDINATOR_ERRORS.has(synced.errorCode)) {
        if (synced.errorCode === ErrorCode.UNKNOWN_MEMBER_ID) this.memberId = '';
        if (COORDINATOR_ERRORS.has(synced.errorCode)) this.conn = undefined;
        continue;
      }
      if (synced.errorCode !== ErrorCode.NONE) {
        this.failure = new KafkaError(
          synced.errorCode,
          `group '${this.groupId}': SyncGroup: ${errorName(synced.errorCode)}`,
        );
        return;
      }
      const mine = decodeVersioned(synced.assignment, readConsumerProtocolAssignment);
      const partitions = mine?.assignedPartitions.find((tp) => tp.topic === this.topic.name)?.partitions ?? [];
      for (const p of partitions) this.assigned.add(p);
      if (partitions.length > 0) {
        await this.onAssignment({ added: [...partitions].sort((a, b) => a - b), revoked: [] });
        this.firstAssignment?.();
      }
      return;
    }
  }

  /** The leader's assignment for every member (range, per subscribed topic). */
  private async assign(
    members: readonly { memberId: string; metadata: Buffer }[],
  ): Promise<{ memberId: string; assignment: Buffer }[]> {
    const subscriptions = new Map<string, string[]>();
    for (const m of members) {
      subscriptions.set(m.memberId, decodeVersioned(m.metadata, readConsumerProtocolSubscription)?.topics ?? []);
    }
    const topics = [...new Set([...subscriptions.values()].flat())];
    const md = await this.client.metadata(topics);
    const counts = new Map(
      [...md.topics.values()].filter((t) => t.errorCode === ErrorCode.NONE).map((t) => [t.name, t.partitions.length]),
    );
    return [...rangeAssign(subscriptions, counts)].map(([memberId, assignment]) => ({
      memberId,
      assignment: assignmentBytes(assignment),
    }));
  }
}
