/**
 * Pending transactional offset commits (KIP-98/KIP-447), after Kafka's OffsetMetadataManager
 * `pendingTransactionalOffsets` and `openTransactions`: the offsets a TxnOffsetCommit wrote to
 * `__consumer_offsets` in a transactional batch, by producer id, until the transaction's marker
 * commits them (they become the committed offsets) or aborts them (they are dropped). Invisible to
 * OffsetFetch but as UNSTABLE_OFFSET_COMMIT with require_stable.
 *
 * Every change is logged in the current operation's undo log (when there is one), so a failed
 * append undoes it like the rest of the coordinator's state.
 */
import type { OffsetEntry } from './group-coordinator.ts';
import type { UndoLog } from './undo-log.ts';

type ByPartition<T> = Map<string, Map<string, Map<number, T>>>;

export interface PendingTxnOffset {
  groupId: string;
  topic: string;
  partition: number;
  entry: OffsetEntry;
}

function get<T>(m: ByPartition<T>, groupId: string, topic: string, partition: number): T | undefined {
  return m.get(groupId)?.get(topic)?.get(partition);
}

/** Sets (or, with undefined, removes) one value, keeping no empty maps. */
function put<T>(m: ByPartition<T>, groupId: string, topic: string, partition: number, value: T | undefined): void {
  let topics = m.get(groupId);
  if (value === undefined) {
    const parts = topics?.get(topic);
    parts?.delete(partition);
    if (parts?.size === 0) topics?.delete(topic);
    if (topics?.size === 0) m.delete(groupId);
    return;
  }
  if (topics === undefined) {
    topics = new Map();
    m.set(groupId, topics);
  }
  let parts = topics.get(topic);
  if (parts === undefined) {
    parts = new Map();
    topics.set(topic, parts);
  }
  parts.set(partition, value);
}

export class PendingTxnOffsets {
  /** producer id -> group -> topic -> partition -> pending offset. */
  readonly #byProducer = new Map<bigint, ByPartition<OffsetEntry>>();
  /** group -> topic -> partition -> the producer ids with a pending offset there. */
  readonly #open: ByPartition<Set<bigint>> = new Map();
  readonly #undo: () => UndoLog | undefined;

  constructor(undo: () => UndoLog | undefined) {
    this.#undo = undo;
  }

  /** The producer's pending offset of a partition. */
  get(producerId: bigint, groupId: string, topic: string, partition: number): OffsetEntry | undefined {
    const offsets = this.#byProducer.get(producerId);
    return offsets === undefined ? undefined : get(offsets, groupId, topic, partition);
  }

  /** Whether a group (or one of its partitions) has a pending transactional offset. */
  has(groupId: string, topic?: string, partition?: number): boolean {
    if (topic === undefined || partition === undefined) return this.#open.has(groupId);
    return get(this.#open, groupId, topic, partition) !== undefined;
  }

  /** The partitions of a group with a pending transactional offset. */
  partitionsOf(groupId: string): { topic: string; partition: number }[] {
    const out: { topic: string; partition: number }[] = [];
    for (const [topic, parts] of this.#open.get(groupId) ?? [])
      for (const p of parts.keys()) out.push({ topic, partition: p });
    return out;
  }

  /** The producer ids with pending offsets. */
  producers(): bigint[] {
    return [...this.#byProducer.keys()];
  }

  /** Every pending offset of a producer (of the groups `accept` accepts). */
  ofProducer(producerId: bigint, accept?: (groupId: string) => boolean): PendingTxnOffset[] {
    const out: PendingTxnOffset[] = [];
    for (const [groupId, topics] of this.#byProducer.get(producerId) ?? []) {
      if (accept !== undefined && !accept(groupId)) continue;
      for (const [topic, parts] of topics)
        for (const [partition, entry] of parts) out.push({ groupId, topic, partition, entry });
    }
    return out;
  }

  /** Sets (or, with undefined, removes) a producer's pending offset of a partition; undoable. */
  set(producerId: bigint, groupId: string, topic: string, partition: number, entry: OffsetEntry | undefined): void {
    const previous = this.get(producerId, groupId, topic, partition);
    if (previous === entry) return;
    this.#undo()?.add(() => this.#raw(producerId, groupId, topic, partition, previous));
    this.#raw(producerId, groupId, topic, partition, entry);
  }

  /** Drops every producer's pending offset of a partition (an offset tombstone); undoable. */
  clearPartition(groupId: string, topic: string, partition: number): void {
    const producers = get(this.#open, groupId, topic, partition);
    if (producers === undefined) return;
    for (const producerId of [...producers]) this.set(producerId, groupId, topic, partition, undefined);
  }

  /** Forgets the groups `accept` accepts (their partition is unloaded); not undoable. */
  dropGroups(accept: (groupId: string) => boolean): void {
    for (const [producerId, offsets] of [...this.#byProducer]) {
      for (const groupId of [...offsets.keys()]) if (accept(groupId)) offsets.delete(groupId);
      if (offsets.size === 0) this.#byProducer.delete(producerId);
    }
    for (const groupId of [...this.#open.keys()]) if (accept(groupId)) this.#open.delete(groupId);
  }

  #raw(producerId: bigint, groupId: string, topic: string, partition: number, entry: OffsetEntry | undefined): void {
    let offsets = this.#byProducer.get(producerId);
    if (entry === undefined) {
      if (offsets !== undefined) {
        put(offsets, groupId, topic, partition, undefined);
        if (offsets.size === 0) this.#byProducer.delete(producerId);
      }
      const producers = get(this.#open, groupId, topic, partition);
      producers?.delete(producerId);
      if (producers?.size === 0) put(this.#open, groupId, topic, partition, undefined);
      return;
    }
    if (offsets === undefined) {
      offsets = new Map();
      this.#byProducer.set(producerId, offsets);
    }
    put(offsets, groupId, topic, partition, entry);
    let producers = get(this.#open, groupId, topic, partition);
    if (producers === undefined) {
      producers = new Set();
      put(this.#open, groupId, topic, partition, producers);
    }
    producers.add(producerId);
  }
}
