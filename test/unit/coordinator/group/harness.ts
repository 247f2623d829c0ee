/**
 * Drives a GroupCoordinator the way the broker does (records appended, then completions run),
 * with a fake clock, and keeps every record so a test can replay them into a fresh coordinator.
 * With `failAppends`, it also batches as the broker's runtime does: operations run on top of
 * ones not appended yet, and a batch's append may fail as an offline log would. Then every
 * operation of the batch is reverted, newest first, and the state must be exactly what it was
 * before the batch (the harness compares); the failed operation's failure callbacks run and
 * the others run again, as in GroupCoordinatorService.
 */
import assert from 'node:assert/strict';

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
import { ErrorCode } from '../../../../src/protocol/error-codes.ts';
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

/**
 * Everything the coordinator holds, as plain data: groups with their members (object identity
 * included, since timers and parked requests hold the objects), offsets, timers (callbacks by
 * identity). Two fingerprints are deepEqual exactly when the states are the same.
 */
const identities = new WeakMap<object, number>();
let lastIdentity = 0;
function identity(o: object): number {
  let n = identities.get(o);
  if (n === undefined) {
    n = ++lastIdentity;
    identities.set(o, n);
  }
  return n;
}

export function fingerprint(c: GroupCoordinator): unknown {
  const canon = (v: unknown): unknown => {
    if (typeof v === 'function') return `fn#${identity(v)}`;
    if (typeof v === 'bigint') return `${v}n`;
    if (v === null || typeof v !== 'object') return v;
    if (Buffer.isBuffer(v)) return `buf:${v.toString('hex')}`;
    if (v instanceof Map) return ['Map', [...v].map(([k, x]) => [canon(k), canon(x)])];
    if (v instanceof Set) return ['Set', [...v].map(canon)];
    if (Array.isArray(v)) return v.map(canon);
    return [v.constructor.name, identity(v), Object.entries(v).map(([k, x]) => [k, canon(x)])];
  };
  const sorted = <T>(entries: [string, T][]): [string, T][] => entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    groups: sorted([...c.groups].map(([k, g]) => [k, canon(g)])),
    offsets: sorted(
      [...c.offsets].map(([g, topics]) => [
        g,
        sorted([...topics].map(([t, parts]) => [t, [...parts].sort(([a], [b]) => a - b).map((e) => canon(e))])),
      ]),
    ),
    timers: sorted([...c.timers.entries()].map(([name, t]) => [name, canon(t)])),
  };
}

export class Harness {
  readonly clock = new ManualClock();
  readonly records: CoordinatorRecord[] = [];
  readonly coordinator: GroupCoordinator;
  readonly topics = new Map<string, TopicInfo>();
  /** Decides, for each batch with records, whether its append fails. */
  failAppends: (() => boolean) | undefined;
  /** With `failAppends`: whether the next operation joins the batch (instead of ending it). */
  batchMore: () => boolean = () => false;
  /** Operations reverted so far. */
  reverted = 0;
  #ids = 0;
  /** Operations run but not appended yet (with `failAppends`), and the state before them. */
  #pending: { call: () => CoordinatorResult<unknown>; result: CoordinatorResult<unknown> }[] = [];
  #before: unknown;

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

  /**
   * Runs one operation; without `failAppends`, drives it at once. With it, the operation joins
   * the batch being built, which is appended (or fails) when `batchMore` says so.
   */
  op<T>(call: () => CoordinatorResult<T>, alone = false): T {
    if (this.failAppends === undefined) return this.drive(call());
    if (this.#pending.length === 0) this.#before = fingerprint(this.coordinator);
    const result = call();
    this.#pending.push({ call, result });
    if (alone || !this.batchMore()) this.flush();
    return result.response;
  }

  /** Appends the batch being built; with `fail`, as the log would fail it. */
  flush(fail = this.failAppends?.() ?? false): void {
    const batch = this.#pending.splice(0);
    const writers = batch.filter((o) => o.result.records.length > 0);
    if (writers.length === 0 || !fail) {
      for (const o of batch) this.drive(o.result);
      return;
    }
    for (let i = batch.length - 1; i >= 0; i--) this.coordinator.revert(batch[i]!.result);
    assert.deepEqual(fingerprint(this.coordinator), this.#before, 'a reverted batch leaves the state as it was');
    this.reverted += batch.length;
    if (writers.length === 1) {
      // The failed operation's failure callbacks, then the others again.
      const failed = writers[0]!;
      this.op(
        () =>
          this.coordinator.run(() => {
            for (const fn of failed.result.onFailure) fn(ErrorCode.UNKNOWN_SERVER_ERROR);
          }),
        true,
      );
      for (const o of batch) if (o !== failed) this.op(o.call);
    } else {
      // Which writer failed it is unknown: each runs again in a batch of its own.
      for (const o of batch) this.op(o.call, true);
    }
  }

  /** Appends whatever is still being batched, successfully (end of a test). */
  settle(): void {
    while (this.#pending.length > 0) this.flush(false);
  }

  join(req: Partial<JoinGroupInput> & { memberId?: string }, apiVersion = 5): Pending<JoinGroupResult> {
    const pending: Pending<JoinGroupResult> = { result: undefined };
    this.op(() =>
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
    this.op(() =>
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
    return this.op(() =>
      this.coordinator.heartbeat(info(), { groupId: GROUP, memberId, generationId, groupInstanceId }),
    );
  }

  commit(memberId: string, generation: number, offset: bigint, partition = 0, topic = 't', apiVersion = 8): number {
    const topics = this.op(() =>
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
    const r = this.op(() =>
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
    this.op(() => this.coordinator.poll());
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
