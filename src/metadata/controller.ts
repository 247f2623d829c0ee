/**
 * The active controller's partition-leadership duties (Kafka's KafkaController /
 * PartitionStateMachine of the ZooKeeper era, with etcd in ZooKeeper's place). Every broker runs
 * one; it acts only while the metadata store says this broker is the controller.
 *
 * On becoming controller, and whenever brokers come and go or partitions appear, it reconciles
 * every partition's leader with the live brokers:
 * - a dead broker leaves the ISR of partitions whose leader is live;
 * - a leader that is not live is replaced by the first live in-sync replica (Kafka's
 *   OfflinePartitionLeaderElectionStrategy), or by any live replica when
 *   `unclean.leader.election.enable` (topic or broker) allows it, else the partition has no leader
 *   (NO_LEADER), its ISR kept so the last in-sync replica is elected when it returns;
 * - a partition without a leader gets the first live in-sync replica;
 * - with `auto.leader.rebalance.enable`, leadership moves back to the preferred (first) replica
 *   once it is live and in sync.
 * Each decision is a compare-and-swap on the partition epoch, with the leader epoch bumped, and
 * the store fences it by the controller registration, so a stale controller changes nothing.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import type { MetadataStore, PartitionState, PartitionStateUpdate, TopicMetadata } from './metadata-store.ts';
import { NO_LEADER } from './metadata-store.ts';

export interface ControllerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ControllerOptions {
  autoLeaderRebalanceEnable: boolean;
  /** The effective unclean.leader.election.enable of a topic (its override, else the broker's). */
  uncleanLeaderElection: (topic: TopicMetadata) => boolean;
  logger: ControllerLogger;
}

/** After a failed reconciliation (etcd unreachable, a lost compare-and-swap), try again after this. */
const RETRY_MS = 1000;

/** The leader a partition should have now, or undefined to leave it as it is. */
export function electLeader(
  state: PartitionState,
  live: ReadonlySet<number>,
  options: { unclean: boolean; preferred: boolean },
): PartitionStateUpdate | undefined {
  const preferred = state.replicas[0];
  if (state.leader !== NO_LEADER && live.has(state.leader)) {
    // A dead broker leaves the ISR at once (as KRaft fences it), so acks=all does not wait out
    // replica.lag.time.max.ms for a replica that is gone.
    const isr = state.isr.filter((r) => live.has(r));
    if (isr.length < state.isr.length) return { ...withoutEpoch(state), isr };
    if (
      options.preferred &&
      preferred !== undefined &&
      state.leader !== preferred &&
      live.has(preferred) &&
      state.isr.includes(preferred)
    ) {
      return { ...withoutEpoch(state), leader: preferred, leaderEpoch: state.leaderEpoch + 1 };
    }
    return undefined;
  }
  const inSync = state.replicas.find((r) => live.has(r) && state.isr.includes(r));
  if (inSync !== undefined) {
    // The ISR loses the replicas that are gone, but never its last member (Kafka keeps it, so a
    // clean election can happen when that replica returns).
    const isr = state.isr.filter((r) => live.has(r));
    return { ...withoutEpoch(state), leader: inSync, leaderEpoch: state.leaderEpoch + 1, isr };
  }
  const anyLive = options.unclean ? state.replicas.find((r) => live.has(r)) : undefined;
  if (anyLive !== undefined) {
    return { ...withoutEpoch(state), leader: anyLive, leaderEpoch: state.leaderEpoch + 1, isr: [anyLive] };
  }
  if (state.leader === NO_LEADER) return undefined;
  return { ...withoutEpoch(state), leader: NO_LEADER, leaderEpoch: state.leaderEpoch + 1 };
}

function withoutEpoch(state: PartitionState): PartitionStateUpdate {
  return { replicas: state.replicas, leader: state.leader, leaderEpoch: state.leaderEpoch, isr: state.isr };
}

export class Controller {
  readonly #store: MetadataStore;
  readonly #nodeId: number;
  readonly #options: ControllerOptions;
  #unsubscribe: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #retry: NodeJS.Timeout | undefined;
  #active = false;
  #closed = false;
  /** The last offline/under-replicated counts logged. */
  #lastHealth = '0/0';

  constructor(store: MetadataStore, nodeId: number, options: ControllerOptions) {
    this.#store = store;
    this.#nodeId = nodeId;
    this.#options = options;
  }

  /** Whether this broker is the active controller now. */
  get active(): boolean {
    return this.#store.controllerId() === this.#nodeId && this.#store.registrationLive();
  }

  start(): void {
    this.#unsubscribe = this.#store.subscribe((change) => {
      switch (change.type) {
        case 'controller-changed':
        case 'broker-registered':
        case 'broker-unregistered':
        case 'registration':
        case 'topic-created':
        case 'partitions-added':
          this.#schedule();
          break;
        case 'partition-state':
          // Someone else's write may leave a partition without a live leader, a dead broker in an
          // ISR (a leader's expansion racing that broker's shutdown), or the preferred replica
          // back in sync; and the health counts follow ISR changes. Reconciling reads the cache
          // and writes only what must change.
          if (this.active) this.#schedule();
          break;
        default:
          break;
      }
    });
    this.#schedule();
  }

  /** Reconciles soon (once more if one is running, so no change is missed). */
  #schedule(): void {
    if (this.#closed) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#reconcileLoop().finally(() => {
      this.#running = undefined;
    });
  }

  async #reconcileLoop(): Promise<void> {
    do {
      this.#again = false;
      const wasActive = this.#active;
      this.#active = this.active;
      if (this.#active && !wasActive)
        this.#options.logger.info({ nodeId: this.#nodeId }, 'this broker is the controller');
      if (!this.#active) {
        if (wasActive) this.#options.logger.info({ nodeId: this.#nodeId }, 'this broker is no longer the controller');
        return;
      }
      try {
        await this.#reconcile();
      } catch (err) {
        if (this.#closed) return;
        this.#options.logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          `controller: partition leadership not reconciled; retrying in ${RETRY_MS} ms`,
        );
        clearTimeout(this.#retry);
        this.#retry = setTimeout(() => this.#schedule(), RETRY_MS);
        this.#retry.unref();
        return;
      }
    } while (this.#again && !this.#closed);
  }

  async #reconcile(): Promise<void> {
    const live = new Set(this.#store.brokers().map((b) => b.nodeId));
    let changed = 0;
    let failed: unknown;
    for (const topic of this.#store.topics()) {
      const unclean = this.#options.uncleanLeaderElection(topic);
      for (let p = 0; p < topic.partitions; p++) {
        if (this.#closed || !this.active) return;
        const state = this.#store.partitionState(topic.name, p);
        if (state === undefined) continue;
        const next = electLeader(state, live, { unclean, preferred: this.#options.autoLeaderRebalanceEnable });
        if (next === undefined) continue;
        try {
          await this.#store.updatePartitionState(topic.name, p, state.partitionEpoch, next);
          changed++;
        } catch (err) {
          // A partition changed meanwhile (or deleted): the next round sees its new state.
          if (err instanceof KafkaError && err.errorCode === ErrorCode.INVALID_UPDATE_VERSION) this.#again = true;
          else if (!(err instanceof KafkaError && err.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)) failed = err;
        }
      }
    }
    if (changed > 0)
      this.#options.logger.info({ partitions: changed, liveBrokers: [...live] }, 'partition leaders elected');
    this.#reportHealth(live);
    if (failed !== undefined) throw failed;
  }

  /**
   * One log line whenever the count of offline (no live leader) or under-replicated (ISR smaller
   * than the replicas) partitions changes, as the controller sees them after a reconciliation.
   */
  #reportHealth(live: ReadonlySet<number>): void {
    let offline = 0;
    let underReplicated = 0;
    for (const topic of this.#store.topics()) {
      for (let p = 0; p < topic.partitions; p++) {
        const state = this.#store.partitionState(topic.name, p);
        if (state === undefined) continue;
        if (!live.has(state.leader)) offline++;
        else if (state.isr.length < state.replicas.length) underReplicated++;
      }
    }
    const key = `${offline}/${underReplicated}`;
    if (key === this.#lastHealth) return;
    this.#lastHealth = key;
    const line = { offlinePartitions: offline, underReplicatedPartitions: underReplicated };
    if (offline > 0 || underReplicated > 0) this.#options.logger.warn(line, 'partitions offline or under-replicated');
    else this.#options.logger.info(line, 'every partition has a live leader and a full ISR');
  }

  /** Waits for the reconciliation under way (tests, shutdown). */
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
