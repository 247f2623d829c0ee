/**
 * The controller's side of ElectLeaders (API 43) and of partition reassignment (KIP-455:
 * AlterPartitionReassignments 45, ListPartitionReassignments 46). Only the active controller
 * changes partition states; a broker that is not it forwards the request to it (as KIP-590 has
 * brokers forward admin requests; Kafka's admin client sends these to the controller anyway).
 *
 * Elections and reassignment steps are compare-and-swaps of the partition state
 * (reassignment.ts decides what to write). A reassignment's completion is driven by the metadata
 * feed: each change of a reassigning partition's state (an adding replica joining the ISR, written
 * by the leader) is checked, and every partition once more when this broker becomes controller.
 * The adding brokers start following from the same feed (ReplicaManager creates the log of every
 * partition whose replicas name it), and the removed ones delete their logs when the replicas no
 * longer name them.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import type { ControllerLogger } from './controller.ts';
import type { MetadataStore, PartitionState } from './metadata-store.ts';
import {
  addingReplicas,
  cancelReassignment,
  checkTarget,
  completeReassignment,
  ElectionType,
  preferredElection,
  reassigning,
  removingReplicas,
  startReassignment,
  type Transition,
  uncleanElection,
} from './reassignment.ts';

/** CAS attempts per partition before giving up on a busy partition. */
const CAS_ATTEMPTS = 5;
/** After a failed completion pass (etcd unreachable, a lost race), try again after this. */
const RETRY_MS = 1000;

export interface PartitionResult {
  readonly partition: number;
  /** 0 (NONE) or the Kafka error code. */
  readonly errorCode: number;
  readonly errorMessage: string | null;
}

export interface TopicResults {
  readonly topic: string;
  readonly partitions: PartitionResult[];
}

export interface OngoingReassignment {
  readonly topic: string;
  readonly partition: number;
  readonly replicas: readonly number[];
  readonly addingReplicas: readonly number[];
  readonly removingReplicas: readonly number[];
}

export interface ReassignmentControllerOptions {
  /** Whether this broker is the active controller now. */
  isController(): boolean;
  logger: ControllerLogger;
}

function ok(partition: number): PartitionResult {
  return { partition, errorCode: ErrorCode.NONE, errorMessage: null };
}

function failed(partition: number, err: unknown): PartitionResult {
  if (err instanceof KafkaError) return { partition, errorCode: err.errorCode, errorMessage: err.message };
  return {
    partition,
    errorCode: ErrorCode.UNKNOWN_SERVER_ERROR,
    errorMessage: err instanceof Error ? err.message : String(err),
  };
}

function notController(): KafkaError {
  return new KafkaError(ErrorCode.NOT_CONTROLLER, 'this broker is not the active controller right now; retry shortly');
}

export class ReassignmentController {
  readonly #store: MetadataStore;
  readonly #options: ReassignmentControllerOptions;
  #unsubscribe: (() => void) | undefined;
  /** Reassigning partitions whose state changed since the last completion pass ('*': all). */
  readonly #dirty = new Set<string>();
  #running: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(store: MetadataStore, options: ReassignmentControllerOptions) {
    this.#store = store;
    this.#options = options;
  }

  get active(): boolean {
    return this.#options.isController();
  }

  start(): void {
    this.#unsubscribe = this.#store.subscribe((change) => {
      switch (change.type) {
        case 'partition-state':
          if (reassigning(change.state)) this.#check(`${change.topic.name}\u0000${change.partition}`);
          break;
        // A new controller finishes what the previous one left (and a broker coming back may
        // make a stuck completion possible: its replica can lead).
        case 'controller-changed':
        case 'registration':
        case 'broker-registered':
          this.#check('*');
          break;
        default:
          break;
      }
    });
    this.#check('*');
  }

  /** ElectLeaders: `partitions` null elects for every partition (answering those elected only). */
  async electLeaders(
    electionType: number,
    partitions: readonly { topic: string; partitions: readonly number[] }[] | null,
  ): Promise<TopicResults[]> {
    if (!this.active) throw notController();
    if (electionType !== ElectionType.PREFERRED && electionType !== ElectionType.UNCLEAN)
      throw new KafkaError(ErrorCode.INVALID_REQUEST, `unknown election type ${electionType}`);
    const all = partitions === null;
    const wanted =
      partitions ??
      this.#store
        .topics()
        .map((t) => ({ topic: t.name, partitions: Array.from({ length: t.partitions }, (_, p) => p) }));
    const out: TopicResults[] = [];
    let elected = 0;
    for (const t of wanted) {
      const results: PartitionResult[] = [];
      for (const p of t.partitions) {
        const name = `${t.topic}-${p}`;
        try {
          await this.#transition(t.topic, p, (state, live) =>
            electionType === ElectionType.PREFERRED
              ? preferredElection(state, live, name)
              : uncleanElection(state, live, name),
          );
          results.push(ok(p));
          elected++;
        } catch (err) {
          // Kafka's controller leaves the partitions needing no election out of an all-partitions answer.
          if (all && err instanceof KafkaError && err.errorCode === ErrorCode.ELECTION_NOT_NEEDED) continue;
          results.push(failed(p, err));
        }
      }
      if (results.length > 0 || !all) out.push({ topic: t.topic, partitions: results });
    }
    if (elected > 0)
      this.#options.logger.info(
        { elected, type: electionType === ElectionType.PREFERRED ? 'preferred' : 'unclean' },
        'leaders elected on request (ElectLeaders)',
      );
    return out;
  }

  /**
   * AlterPartitionReassignments: each partition's target replicas, or null to cancel its
   * reassignment in progress.
   */
  async alterReassignments(
    topics: readonly {
      name: string;
      partitions: readonly { partitionIndex: number; replicas: readonly number[] | null }[];
    }[],
  ): Promise<TopicResults[]> {
    if (!this.active) throw notController();
    const out: TopicResults[] = [];
    for (const t of topics) {
      const results: PartitionResult[] = [];
      for (const p of t.partitions) {
        const name = `${t.name}-${p.partitionIndex}`;
        try {
          const target = p.replicas;
          if (target !== null) checkTarget(target, new Set(this.#store.brokers().map((b) => b.nodeId)), name);
          const state = (await this.#transition(t.name, p.partitionIndex, (s, live) =>
            target === null ? cancelReassignment(s, live, name) : startReassignment(s, target, live, name),
          ))!;
          this.#options.logger.info(
            {
              topic: t.name,
              partition: p.partitionIndex,
              target,
              replicas: state.replicas,
              adding: addingReplicas(state),
              removing: removingReplicas(state),
            },
            target === null ? 'reassignment cancelled' : 'reassignment started',
          );
          results.push(ok(p.partitionIndex));
        } catch (err) {
          results.push(failed(p.partitionIndex, err));
        }
      }
      out.push({ topic: t.name, partitions: results });
    }
    return out;
  }

  /** ListPartitionReassignments: the reassignments in progress (`topics` null: all of them). */
  listReassignments(
    topics: readonly { name: string; partitionIndexes: readonly number[] }[] | null,
  ): OngoingReassignment[] {
    const wanted =
      topics ??
      this.#store
        .topics()
        .map((t) => ({ name: t.name, partitionIndexes: Array.from({ length: t.partitions }, (_, p) => p) }));
    const out: OngoingReassignment[] = [];
    for (const t of wanted) {
      for (const p of t.partitionIndexes) {
        // An unknown topic or partition is left out, as Kafka does.
        const state = this.#store.partitionState(t.name, p);
        if (state === undefined || !reassigning(state)) continue;
        out.push({
          topic: t.name,
          partition: p,
          replicas: state.replicas,
          addingReplicas: addingReplicas(state),
          removingReplicas: removingReplicas(state),
        });
      }
    }
    return out;
  }

  /**
   * Applies `decide` to the partition's current state by CAS, deciding again on a lost race;
   * throws the transition's error (or UNKNOWN_TOPIC_OR_PARTITION). `decide` returning undefined:
   * nothing to write (undefined).
   */
  async #transition(
    topic: string,
    partition: number,
    decide: (state: PartitionState, live: ReadonlySet<number>) => Transition | undefined,
  ): Promise<PartitionState | undefined> {
    for (let attempt = 0; ; attempt++) {
      const state = this.#store.partitionState(topic, partition);
      if (state === undefined)
        throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown partition ${topic}-${partition}`);
      const t = decide(state, new Set(this.#store.brokers().map((b) => b.nodeId)));
      if (t === undefined) return undefined;
      if ('error' in t) throw t.error;
      try {
        return await this.#store.updatePartitionState(topic, partition, state.partitionEpoch, t.update);
      } catch (err) {
        const raced = err instanceof KafkaError && err.errorCode === ErrorCode.INVALID_UPDATE_VERSION;
        if (!raced || attempt + 1 >= CAS_ATTEMPTS) throw err;
      }
    }
  }

  /** Schedules a completion pass over `key` (topic NUL partition) or every partition ('*'). */
  #check(key: string): void {
    if (this.#closed) return;
    this.#dirty.add(key);
    if (this.#running !== undefined) return;
    this.#running = this.#completeLoop().finally(() => {
      this.#running = undefined;
    });
  }

  async #completeLoop(): Promise<void> {
    // After the change's own listeners (the controller's reconcile among them) have run.
    await Promise.resolve();
    while (this.#dirty.size > 0 && !this.#closed) {
      if (!this.active) {
        this.#dirty.clear();
        return;
      }
      const keys = this.#dirty.has('*') ? this.#allReassigning() : [...this.#dirty];
      this.#dirty.clear();
      let retry = false;
      for (const k of keys) {
        const [topic, p] = k.split('\u0000') as [string, string];
        const partition = Number(p);
        try {
          const before = this.#store.partitionState(topic, partition);
          const after = await this.#completeOne(topic, partition);
          if (after !== undefined && before !== undefined)
            this.#options.logger.info(
              { topic, partition, replicas: after.replicas, leader: after.leader, from: before.replicas },
              'reassignment completed',
            );
        } catch (err) {
          if (this.#closed) return;
          if (!(err instanceof KafkaError && err.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)) {
            retry = true;
            this.#options.logger.warn(
              { topic, partition, err: err instanceof Error ? err.message : String(err) },
              `reassignment not completed yet; retrying in ${RETRY_MS} ms`,
            );
          }
        }
      }
      if (retry) {
        clearTimeout(this.#retry);
        this.#retry = setTimeout(() => this.#check('*'), RETRY_MS);
        this.#retry.unref();
      }
    }
  }

  #allReassigning(): string[] {
    const out: string[] = [];
    for (const t of this.#store.topics())
      for (let p = 0; p < t.partitions; p++) {
        const s = this.#store.partitionState(t.name, p);
        if (s !== undefined && reassigning(s)) out.push(`${t.name}\u0000${p}`);
      }
    return out;
  }

  /** Completes the partition's reassignment if its adding replicas are in sync; the new state, else undefined. */
  #completeOne(topic: string, partition: number): Promise<PartitionState | undefined> {
    return this.#transition(topic, partition, (state, live) => completeReassignment(state, live));
  }

  /** Waits for the completion pass under way (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#unsubscribe?.();
    await this.#running?.catch(() => undefined);
  }
}
