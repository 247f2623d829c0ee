/**
 * Group membership for `samsa consume --group`: `joinConsumerGroup` picks the protocol (KIP-848
 * where the coordinator has it, else classic-group-member.ts).
 *
 * GroupMember: a member for one topic on the KIP-848 protocol (ConsumerGroupHeartbeat). The
 * coordinator assigns partitions server-side; the member heartbeats every interval the
 * coordinator asks for, reconciles assignment changes (revoked partitions are committed and
 * dropped before the member acknowledges, as KIP-848 requires), commits offsets with its member
 * epoch (OffsetCommit v9+), and leaves with epoch -1.
 */
import { randomBytes } from 'node:crypto';
import { ApiKey, type ResponseOf } from '../network/api-message-types.ts';
import {
  type BrokerConnection,
  type KafkaClient,
  KafkaClientError,
  KafkaClientErrorCodes,
  type TopicMetadata,
} from '../network/kafka-client.ts';
import { ErrorCode, errorName, KafkaError } from '../protocol/error-codes.ts';
import { coordinatorFor } from './group-coordinator.ts';
import { committedOffsets } from './group-describe.ts';

export interface AssignmentChange {
  added: number[];
  revoked: number[];
}

/** What `samsa consume --group` needs of a group member, on either protocol. */
export interface GroupMembership {
  /** Partitions of the topic this member owns. */
  readonly assigned: ReadonlySet<number>;
  /** Set when the member cannot go on (the consume loop throws it). */
  failure: Error | undefined;
  /** Called on each assignment change: commit and drop revoked partitions, position added ones. */
  onAssignment: (change: AssignmentChange) => Promise<void>;
  join(): Promise<void>;
  committed(partitions: readonly number[]): Promise<Map<number, bigint>>;
  commit(offsets: ReadonlyMap<number, bigint>): Promise<void>;
  leave(): Promise<void>;
  waitForAssignment(ms: number): Promise<void>;
}

export type GroupProtocol = 'consumer' | 'classic';

/**
 * Joins `groupId` as a member reading `topic`: on the KIP-848 protocol when the coordinator
 * has it, else (or when the group is a classic group with members, or `protocol` says so) on
 * the classic one. `prepare` sets the member's onAssignment before it joins.
 */
export async function joinConsumerGroup(
  client: KafkaClient,
  groupId: string,
  topic: TopicMetadata,
  protocol: GroupProtocol | undefined,
  prepare: (member: GroupMembership) => void,
): Promise<GroupMembership> {
  const { ClassicGroupMember } = await import('./classic-group-member.ts');
  const classic = () => {
    const m = new ClassicGroupMember(client, groupId, topic);
    prepare(m);
    return m.join().then(() => m);
  };
  if (protocol === 'classic') return classic();
  const conn = await coordinatorFor(client, groupId);
  if (!conn.supports(ApiKey.ConsumerGroupHeartbeat)) {
    if (protocol === 'consumer') {
      throw new KafkaClientError(
        KafkaClientErrorCodes.unsupportedVersion,
        `--group-protocol consumer needs KIP-848 (ConsumerGroupHeartbeat, Kafka 4.0+), which ${conn.address} does not support`,
      );
    }
    return classic();
  }
  const member = new GroupMember(client, groupId, topic);
  prepare(member);
  try {
    await member.join();
    return member;
  } catch (err) {
    // A classic group with members: join it their way.
    if (protocol === undefined && err instanceof KafkaError && err.errorCode === ErrorCode.GROUP_ID_NOT_FOUND) {
      return classic();
    }
    throw err;
  }
}

/** Errors after which the member finds its coordinator again and retries. */
const COORDINATOR_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
]);

export class GroupMember implements GroupMembership {
  readonly groupId: string;
  /** KIP-1082: the member generates its own id. */
  readonly memberId = randomBytes(16).toString('base64url');
  private epoch = 0;
  /** Partitions of the topic this member owns. */
  readonly assigned = new Set<number>();
  /** Set when the member cannot go on (the consume loop throws it). */
  failure: Error | undefined;
  /**
   * Called on each assignment change before it is acknowledged: the consumer commits and drops
   * revoked partitions and positions added ones.
   */
  onAssignment: (change: AssignmentChange) => Promise<void> = async () => {};
  private readonly client: KafkaClient;
  private readonly topic: TopicMetadata;
  private readonly rebalanceTimeoutMs: number;
  private conn: BrokerConnection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private intervalMs = 3000;
  /** Owned partitions to report in the next heartbeat (after a change), else null. */
  private pendingAck: number[] | null = null;
  private running: Promise<void> | undefined;
  private stopped = false;
  private firstAssignment: (() => void) | undefined;

  constructor(client: KafkaClient, groupId: string, topic: TopicMetadata, rebalanceTimeoutMs = 30_000) {
    this.client = client;
    this.groupId = groupId;
    this.topic = topic;
    this.rebalanceTimeoutMs = rebalanceTimeoutMs;
  }

  /** Joins the group; resolves once the coordinator has answered the first heartbeat. */
  async join(): Promise<void> {
    this.conn = await coordinatorFor(this.client, this.groupId);
    if (!this.conn.supports(ApiKey.ConsumerGroupHeartbeat)) {
      throw new KafkaClientError(
        KafkaClientErrorCodes.unsupportedVersion,
        `--group needs the KIP-848 consumer group protocol (ConsumerGroupHeartbeat, Kafka 4.0+), which ${this.conn.address} does not support`,
      );
    }
    await this.heartbeat();
    if (this.failure !== undefined) throw this.failure;
    this.schedule();
  }

  /** The committed offsets of the group for these partitions (absent: none committed). */
  async committed(partitions: readonly number[]): Promise<Map<number, bigint>> {
    const conn = await this.coordinator();
    const all = (await committedOffsets(conn, this.groupId)).get(this.topic.name) ?? new Map<number, bigint>();
    return new Map([...all].filter(([p]) => partitions.includes(p)));
  }

  /** Commits `offsets` (the next offset to read, per partition) with this member's epoch. */
  async commit(offsets: ReadonlyMap<number, bigint>): Promise<void> {
    const entries = [...offsets].filter(([p]) => this.assigned.has(p));
    if (entries.length === 0 || this.epoch <= 0) return;
    const conn = await this.coordinator();
    const r = await conn.request(ApiKey.OffsetCommit, {
      groupId: this.groupId,
      generationIdOrMemberEpoch: this.epoch,
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
        if (p.errorCode !== ErrorCode.NONE) {
          console.error(
            `samsa consume: cannot commit ${t.name}-${p.partitionIndex} for group '${this.groupId}': ${errorName(p.errorCode)}`,
          );
        }
      }
    }
  }

  /** Leaves the group (heartbeat with epoch -1); the caller commits first. */
  async leave(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running?.catch(() => {});
    if (this.epoch <= 0 || this.conn === undefined || this.conn.isClosed) return;
    await this.conn
      .request(ApiKey.ConsumerGroupHeartbeat, {
        groupId: this.groupId,
        memberId: this.memberId,
        memberEpoch: -1,
        instanceId: null,
        rackId: null,
        rebalanceTimeoutMs: -1,
        subscribedTopicNames: null,
        subscribedTopicRegex: null,
        serverAssignor: null,
        topicPartitions: null,
      })
      .catch(() => {});
  }

  /** Resolves once this member owns at least one partition, or `ms` passed. */
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

  private schedule(delayMs = this.intervalMs): void {
    if (this.stopped || this.failure !== undefined) return;
    this.timer = setTimeout(() => {
      this.running = this.heartbeat().finally(() => this.schedule(this.pendingAck !== null ? 0 : this.intervalMs));
    }, delayMs);
  }

  private async heartbeat(): Promise<void> {
    const joining = this.epoch === 0;
    const ack = this.pendingAck;
    let response: ResponseOf<typeof ApiKey.ConsumerGroupHeartbeat>;
    try {
      const conn = await this.coordinator();
      response = await conn.request(ApiKey.ConsumerGroupHeartbeat, {
        groupId: this.groupId,
        memberId: this.memberId,
        memberEpoch: this.epoch,
        instanceId: null,
        rackId: null,
        rebalanceTimeoutMs: joining ? this.rebalanceTimeoutMs : -1,
        subscribedTopicNames: joining ? [this.topic.name] : null,
        subscribedTopicRegex: null,
        serverAssignor: null,
        topicPartitions: joining ? [] : ack === null ? null : [{ topicId: this.topic.topicId, partitions: ack }],
      });
    } catch (err) {
      if (this.stopped) return;
      // A lost connection: find the coordinator again at the next heartbeat.
      if (err instanceof KafkaClientError && err.code !== KafkaClientErrorCodes.unsupportedVersion) {
        this.conn = undefined;
        return;
      }
      this.failure = err as Error;
      return;
    }
    if (response.errorCode === ErrorCode.NONE) {
      if (ack !== null && ack === this.pendingAck) this.pendingAck = null;
      this.epoch = response.memberEpoch;
      if (response.heartbeatIntervalMs > 0) this.intervalMs = response.heartbeatIntervalMs;
      if (response.assignment !== null) await this.reconcile(response.assignment.topicPartitions);
      return;
    }
    if (COORDINATOR_ERRORS.has(response.errorCode)) {
      this.conn = undefined;
      return;
    }
    if (response.errorCode === ErrorCode.UNKNOWN_MEMBER_ID || response.errorCode === ErrorCode.FENCED_MEMBER_EPOCH) {
      // Fenced: its partitions are someone else's now; rejoin with nothing.
      console.error(`samsa consume: ${errorName(response.errorCode)} in group '${this.groupId}'; rejoining`);
      const revoked = [...this.assigned];
      this.assigned.clear();
      this.epoch = 0;
      this.pendingAck = null;
      await this.onAssignment({ added: [], revoked });
      return;
    }
    this.failure = new KafkaError(
      response.errorCode,
      `group '${this.groupId}': ${errorName(response.errorCode)}${response.errorMessage ? `: ${response.errorMessage}` : ''}`,
    );
  }

  private async reconcile(topicPartitions: readonly { topicId: string; partitions: number[] }[]): Promise<void> {
    const target = new Set(topicPartitions.find((t) => t.topicId === this.topic.topicId)?.partitions ?? []);
    const revoked = [...this.assigned].filter((p) => !target.has(p));
    const added = [...target].filter((p) => !this.assigned.has(p));
    if (revoked.length > 0) {
      // Committed while still owned, then dropped.
      await this.onAssignment({ added: [], revoked });
      for (const p of revoked) this.assigned.delete(p);
    }
    if (added.length > 0) {
      for (const p of added) this.assigned.add(p);
      await this.onAssignment({ added, revoked: [] });
    }
    this.pendingAck = [...this.assigned].sort((a, b) => a - b);
    if (this.assigned.size > 0) this.firstAssignment?.();
  }
}
