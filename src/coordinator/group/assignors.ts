/**
 * Server-side partition assignors for KIP-848 consumer groups, by the names clients ask for in
 * ConsumerGroupHeartbeat.ServerAssignor: `uniform` (Kafka's UniformAssignor: balanced and sticky)
 * and `range` (Kafka's RangeAssignor: contiguous ranges per topic, so co-partitioned topics line
 * up). Pure functions: members, topic metadata and the previous target in, a new target out.
 */
import type { Assignment } from './consumer-group.ts';

export interface AssignorMember {
  memberId: string;
  /** Topic ids the member subscribes to (existing topics only). */
  subscribedTopicIds: ReadonlySet<string>;
}

export interface AssignorInput {
  members: readonly AssignorMember[];
  /** topic id -> partition count. */
  topics: ReadonlyMap<string, number>;
  /** The previous target assignment, for stickiness. */
  previous: ReadonlyMap<string, Assignment>;
}

export type Assignor = (input: AssignorInput) => Map<string, Assignment>;

function add(a: Assignment, topicId: string, partition: number): void {
  let s = a.get(topicId);
  if (s === undefined) {
    s = new Set();
    a.set(topicId, s);
  }
  s.add(partition);
}

function size(a: Assignment): number {
  let n = 0;
  for (const s of a.values()) n += s.size;
  return n;
}

/**
 * Balanced and sticky: every member keeps what it had while that stays valid, the rest goes to
 * the least-loaded subscriber, and partitions then move from the most- to the least-loaded
 * member (among those subscribed to the partition's topic) until no move narrows the spread.
 */
export const uniformAssignor: Assignor = ({ members, topics, previous }) => {
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
  const out = new Map<string, Assignment>(sorted.map((m) => [m.memberId, new Map()]));
  const load = new Map<string, number>(sorted.map((m) => [m.memberId, 0]));
  const taken = new Set<string>();
  const key = (t: string, p: number): string => `${t}\u0000${p}`;
  for (const m of sorted) {
    const prev = previous.get(m.memberId);
    if (prev === undefined) continue;
    for (const [topicId, parts] of prev) {
      const n = topics.get(topicId);
      if (n === undefined || !m.subscribedTopicIds.has(topicId)) continue;
      for (const p of parts) {
        if (p >= n || taken.has(key(topicId, p))) continue;
        taken.add(key(topicId, p));
        add(out.get(m.memberId)!, topicId, p);
        load.set(m.memberId, load.get(m.memberId)! + 1);
      }
    }
  }
  const topicIds = [...topics.keys()].sort();
  for (const topicId of topicIds) {
    const subscribers = sorted.filter((m) => m.subscribedTopicIds.has(topicId));
    if (subscribers.length === 0) continue;
    const n = topics.get(topicId)!;
    for (let p = 0; p < n; p++) {
      if (taken.has(key(topicId, p))) continue;
      let best = subscribers[0]!;
      for (const s of subscribers) if (load.get(s.memberId)! < load.get(best.memberId)!) best = s;
      taken.add(key(topicId, p));
      add(out.get(best.memberId)!, topicId, p);
      load.set(best.memberId, load.get(best.memberId)! + 1);
    }
  }
  // Rebalance what stickiness left uneven.
  for (let guard = 0; guard < 100_000; guard++) {
    let moved = false;
    const byLoad = [...sorted].sort((a, b) => load.get(b.memberId)! - load.get(a.memberId)!);
    outer: for (const heavy of byLoad) {
      const heavyAssignment = out.get(heavy.memberId)!;
      for (const light of [...byLoad].reverse()) {
        if (load.get(heavy.memberId)! - load.get(light.memberId)! <= 1) break;
        for (const [topicId, parts] of heavyAssignment) {
          if (!light.subscribedTopicIds.has(topicId) || parts.size === 0) continue;
          const p = Math.max(...parts);
          parts.delete(p);
          if (parts.size === 0) heavyAssignment.delete(topicId);
          add(out.get(light.memberId)!, topicId, p);
          load.set(heavy.memberId, load.get(heavy.memberId)! - 1);
          load.set(light.memberId, load.get(light.memberId)! + 1);
          moved = true;
          break outer;
        }
      }
    }
    if (!moved) break;
  }
  return out;
};

/** Per topic, subscribers sorted by member id get contiguous ranges; the first ones one more. */
export const rangeAssignor: Assignor = ({ members, topics }) => {
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
  const out = new Map<string, Assignment>(sorted.map((m) => [m.memberId, new Map()]));
  for (const [topicId, n] of topics) {
    const subscribers = sorted.filter((m) => m.subscribedTopicIds.has(topicId));
    if (subscribers.length === 0) continue;
    const quota = Math.floor(n / subscribers.length);
    const extra = n % subscribers.length;
    let next = 0;
    subscribers.forEach((m, i) => {
      const count = quota + (i < extra ? 1 : 0);
      for (let k = 0; k < count; k++) add(out.get(m.memberId)!, topicId, next++);
    });
  }
  return out;
};

export const ASSIGNORS: Readonly<Record<string, Assignor>> = { uniform: uniformAssignor, range: rangeAssignor };

export function assignmentSize(a: Assignment): number {
  return size(a);
}
