/**
 * Drives a GroupCoordinator the way the broker does (records appended, then completions run),
 * with a fake clock, and keeps every record so a test can replay them into a fresh coordinator.
 */

import type { TopicInfo } from '../../../../src/coordinator/group/consumer-group-heartbeat.ts';
import type { CoordinatorRecord } from '../../../../src/coordinator/group/coordinator-records.ts';
import type { GroupCoordinatorConfig } from '../../../../src/coordinator/group/group-config.ts';
import {
  type CoordinatorResult,
  GroupCoordinator,
  type JoinGroupInput,
  type JoinGroupResult,
  type RequestInfo,
  type SyncGroupInput,
  type SyncGroupResult,
} from '../../../../src/coordinator/group/group-coordinator.ts';
import { ManualClock } from '../../../../src/util/clock.ts';

export const GROUP = 'g';

export function info(apiVersion = 5, clientId = 'client'): RequestInfo {
  return { apiVersion, clientId, clientHost: '/127.0.0.1' };
}

/** A parked request's answer, filled in when the coordinator completes it. */
export interface Pending<T> {
  result: T | undefined;
}

/** Whether a parked request is still waiting (a function, so assertions do not narrow `result`). */
export function parked(p: Pending<unknown>): boolean {
  return p.result === undefined;
}

export class Harness {
  readonly clock = new ManualClock();
  readonly records: CoordinatorRecord[] = [];
  readonly coordinator: GroupCoordinator;
  readonly topics = new Map<string, TopicInfo>();
  #ids = 0;

  constructor(config: Partial<GroupCoordinatorConfig> = {}) {
    this.coordinator = new GroupCoordinator({
      clock: this.clock,
      config: { groupInitialRebalanceDelayMs: 0, ...config },
      newId: () => `id${++this.#ids}`,
      topics: {
        byName: (name) => this.topics.get(name),
        all: () => [...this.topics.values()],
      },
    });
  }

  addTopic(name: string, partitions: number): TopicInfo {
    const t = { name, topicId: `${name}-id`.padEnd(22, 'A').slice(0, 22), partitions };
    this.topics.set(name, t);
    return t;
  }

  drive<T>(result: CoordinatorResult<T>): T {
    this.records.push(...result.records);
    for (const c of result.completions) c();
    return result.response;
  }

  join(req: Partial<JoinGroupInput> & { memberId?: string }, apiVersion = 5): Pending<JoinGroupResult> {
    const pending: Pending<JoinGroupResult> = { result: undefined };
    this.drive(
      this.coordinator.joinGroup(
        info(apiVersion),
        {
          groupId: GROUP,
          sessionTimeoutMs: 10_000,
          rebalanceTimeoutMs: 30_000,
          memberId: '',
          groupInstanceId: null,
          protocolType: 'consumer',
          protocols: [{ name: 'range', metadata: Buffer.from('m') }],
          ...req,
        },
        (r) => {
          pending.result = r;
        },
      ),
    );
    return pending;
  }

  /** JoinGroup with the KIP-394 handshake done: returns the parked second join. */
  joinNew(req: Partial<JoinGroupInput> = {}, apiVersion = 5): Pending<JoinGroupResult> {
    const first = this.join(req, apiVersion);
    if (first.result?.errorCode !== 79) return first;
    return this.join({ ...req, memberId: first.result.memberId }, apiVersion);
  }

  sync(req: Partial<SyncGroupInput> & { memberId: string; generationId: number }): Pending<SyncGroupResult> {
    const pending: Pending<SyncGroupResult> = { result: undefined };
    this.drive(
      this.coordinator.syncGroup(
        info(),
        { groupId: GROUP, groupInstanceId: null, protocolType: null, protocolName: null, assignments: [], ...req },
        (r) => {
          pending.result = r;
        },
      ),
    );
    return pending;
  }

  heartbeat(memberId: string, generationId: number, groupInstanceId: string | null = null): number {
    return this.drive(this.coordinator.heartbeat(info(), { groupId: GROUP, memberId, generationId, groupInstanceId }));
  }

  commit(memberId: string, generation: number, offset: bigint, partition = 0, topic = 't', apiVersion = 8): number {
    const topics = this.drive(
      this.coordinator.offsetCommit(info(apiVersion), {
        groupId: GROUP,
        generationIdOrMemberEpoch: generation,
        memberId,
        groupInstanceId: null,
        retentionTimeMs: -1n,
        topics: [
          {
            name: topic,
            partitions: [
              { partitionIndex: partition, committedOffset: offset, committedLeaderEpoch: 0, committedMetadata: '' },
            ],
          },
        ],
      }),
    );
    return topics[0]!.partitions[0]!.errorCode;
  }

  fetchOffset(partition = 0, topic = 't', groupId = GROUP): bigint {
    const r = this.drive(
      this.coordinator.offsetFetch(info(), {
        groupId,
        topics: [{ name: topic, partitionIndexes: [partition] }],
        requireStable: false,
        memberId: null,
        memberEpoch: -1,
      }),
    );
    return r.topics[0]!.partitions[0]!.committedOffset;
  }

  tick(ms: number): void {
    this.clock.advance(ms);
    this.drive(this.coordinator.poll());
  }

  state(groupId = GROUP): string | undefined {
    const g = this.coordinator.groups.get(groupId);
    if (g === undefined) return undefined;
    return 'state' in g ? g.state : g.stateName();
  }

  /** A fresh coordinator that replayed every record this one wrote. */
  replayed(config: Partial<GroupCoordinatorConfig> = {}): GroupCoordinator {
    const fresh = new GroupCoordinator({
      clock: this.clock,
      config: { groupInitialRebalanceDelayMs: 0, ...config },
      topics: { byName: (name) => this.topics.get(name), all: () => [...this.topics.values()] },
    });
    for (const r of this.records) fresh.replay(r);
    return fresh;
  }
}
