/**
 * Incremental fetch sessions (KIP-227). A full fetch with epoch 0 creates a session holding the
 * client's partitions and their fetch positions; later requests carry only what changed
 * (new/updated partitions, forgotten ones) and get back only partitions with news (records,
 * a moved high watermark, log start or last stable offset, or an error).
 *
 * The cache is bounded (max.incremental.fetch.session.cache.slots); when full the least
 * recently used session is evicted, and its client gets FETCH_SESSION_ID_NOT_FOUND on its next
 * incremental request, after which it sends a full request again — Kafka's protocol for it.
 */

export const FINAL_EPOCH = -1;
export const INITIAL_EPOCH = 0;

export interface SessionPartition {
  topicName: string;
  topicId: string;
  partition: number;
  fetchOffset: bigint;
  partitionMaxBytes: number;
  /** The leader epoch the client knows (KIP-320; -1: none, and before Fetch v9). */
  currentLeaderEpoch: number;
  /** What the last response told the client, to detect changes. */
  lastHighWatermark: bigint;
  lastLogStartOffset: bigint;
  lastStableOffset: bigint;
}

export interface FetchSession {
  readonly id: number;
  /** The epoch the next request must carry. */
  epoch: number;
  /** Keyed by `${topicId or name}:${partition}`, in insertion order. */
  readonly partitions: Map<string, SessionPartition>;
  lastUsedMs: number;
}

export function sessionKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

export class FetchSessionCache {
  private readonly sessions = new Map<number, FetchSession>();
  private readonly maxSessions: number;
  private nextId = 1;

  constructor(maxSessions: number) {
    this.maxSessions = maxSessions;
  }

  get size(): number {
    return this.sessions.size;
  }

  get(id: number): FetchSession | undefined {
    const s = this.sessions.get(id);
    if (s !== undefined) {
      // Map order doubles as LRU order.
      this.sessions.delete(id);
      this.sessions.set(id, s);
      s.lastUsedMs = Date.now();
    }
    return s;
  }

  remove(id: number): void {
    this.sessions.delete(id);
  }

  /** A new session (evicting the least recently used one when full), or undefined if sessions are disabled. */
  create(): FetchSession | undefined {
    if (this.maxSessions <= 0) return undefined;
    if (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    let id = this.nextId;
    while (id === 0 || this.sessions.has(id)) id = (id % 0x7fffffff) + 1;
    this.nextId = (id % 0x7fffffff) + 1;
    const session: FetchSession = { id, epoch: 1, partitions: new Map(), lastUsedMs: Date.now() };
    this.sessions.set(id, session);
    return session;
  }
}
