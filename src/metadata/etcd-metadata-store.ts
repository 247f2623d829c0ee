/**
 * The MetadataStore of a cluster, on etcd (issue 13): every broker opens one on the same etcd key
 * prefix, reads from a cache of it and writes with etcd transactions, so the brokers agree on
 * topics, partition states, configs, the live brokers and the active controller.
 *
 * Key layout under the prefix, modelled on Kafka's ZooKeeper layout:
 *
 *   /cluster_id                       the cluster id, created once (put if absent)
 *   /brokers/ids/N                    {nodeId, host, port, rack, incarnationId}, under the broker's lease
 *   /controller                       {brokerId}, under the winner's lease
 *   /brokers/topics/NAME              {topicId, partitions, replicationFactor, assignment}
 *   /brokers/partitions/TOPICID/P     {replicas, leader, leaderEpoch, isr, partitionEpoch,
 *                                      addingReplicas?, removingReplicas? (a KIP-455 reassignment)}
 *   /config/topics/NAME               the topic's config overrides
 *   /config/brokers/<default>         the dynamic cluster-wide broker configs
 *   /latest_producer_id_block         {version, broker, block_start, block_end} (end inclusive, as Kafka)
 *   /transactional_ids/ID             {producerId, producerEpoch}
 *
 * A partition's initial state (its first replica leading, all replicas in sync, epochs 0) is not
 * written: it follows from the topic's assignment, and the partition's state key appears with the
 * first change of that state. So creating or growing a topic is one transaction on one key
 * whatever its partition count (10,000 partitions are about 80 KB of assignment, far from etcd's
 * 1.5 MiB request limit and unaffected by its 128 operations per transaction), a lost race leaves
 * nothing behind, and each partition's later state is a key of its own, so compare-and-swaps of
 * different partitions never conflict. State keys include the topic id: those of a deleted topic
 * go with it (one range delete) and can never be taken for a recreated topic's.
 *
 * Reads are synchronous, from a cache loaded at open and kept by one watch of the prefix. Every
 * change, ours or another broker's, reaches the cache and the listeners through that watch, in
 * revision order; a write resolves once the watch has delivered its revision, so a read right
 * after it sees it. A watch that breaks resumes from the last revision applied; one that was
 * compacted away reloads the prefix and announces the differences.
 *
 * Liveness: registerBroker puts /brokers/ids/N under a lease kept alive every heartbeat interval,
 * then campaigns for /controller under the same lease. A broker that has not had a keepalive
 * acknowledged for the lease's TTL, or that learns its lease is gone, announces
 * `registration live: false` and keeps trying to register anew (new lease, same incarnation),
 * announcing `live: true` when it is. While this store holds /controller, its topic and partition
 * writes also compare the key's create revision with the one it won, so a controller that was
 * stopped past its lease cannot overwrite what the new controller decided (NOT_CONTROLLER).
 *
 * etcd unreachable: reads answer from the cache, and each write rejects within the request timeout
 * with a retriable REQUEST_TIMED_OUT naming the etcd endpoints.
 */
import { randomUUID } from 'node:crypto';
import {
  Etcd3,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  type ICompare,
  type IDuplexStream,
  type IKeyValue,
  type ILeaseKeepAliveRequest,
  type ILeaseKeepAliveResponse,
  type IOptions,
  type IRequestOp,
  type ITxnResponse,
  type IWatchRequest,
  type IWatchResponse,
} from 'etcd3';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { randomUuid } from '../protocol/uuid.ts';
import { SerialQueue } from '../util/serial-queue.ts';
import {
  type BrokerRegistration,
  DuplicateBrokerError,
  type MetadataChange,
  type MetadataListener,
  type MetadataStore,
  NO_LEADER,
  type PartitionState,
  type PartitionStateUpdate,
  type ProducerIdBlock,
  type ReplicaAssignment,
  type TopicMetadata,
} from './metadata-store.ts';

export interface EtcdMetadataStoreOptions {
  /** `http://HOST:PORT` of each etcd member (parseMetadataUrl). */
  readonly endpoints: readonly string[];
  /** Every key of this cluster lives under it, e.g. `/samsa`. */
  readonly prefix: string;
  readonly nodeId: number;
  /** broker.session.timeout.ms: the lease TTL, rounded up to whole seconds (at least 1). */
  readonly sessionTimeoutMs: number;
  /** broker.heartbeat.interval.ms: how often the lease is kept alive. */
  readonly heartbeatIntervalMs: number;
  /**
   * The incarnation id the previous process of this data directory registered with: its
   * registration, if still there (kill -9 leaves it until the lease expires), is taken over.
   */
  readonly previousIncarnation?: string | undefined;
  /** How long one etcd request (and the watch catching up with a write) may take; default 5000. */
  readonly requestTimeoutMs?: number | undefined;
  readonly logger?: { info(o: object, m: string): void; warn(o: object, m: string): void } | undefined;
}

/** Only a transaction's changes and the watch decide the cache; the client must not retry them. */
type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;
const PASS_THROUGH: Policy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
  async execute(fn, signal) {
    return fn({ signal: signal ?? new AbortController().signal });
  },
};

/** How long an etcd member that failed to answer is skipped while another may answer. */
const MEMBER_DOWN_MS = 30_000;

/**
 * The per-member policy: a member that just failed to answer is skipped for a while if another is
 * not known to be down, so that with several endpoints a dead member costs one failed request, not
 * one in N forever; the request that failed is not retried (the caller's error is retriable).
 */
function memberPolicy(member: string, downUntil: Map<string, number>): Policy {
  downUntil.set(member, 0);
  return {
    ...PASS_THROUGH,
    async execute(fn, signal) {
      const now = Date.now();
      const othersUp = [...downUntil].some(([m, until]) => m !== member && until <= now);
      if ((downUntil.get(member) ?? 0) > now && othersUp) throw new Error(`etcd member ${member} failed recently`);
      try {
        const result = await fn({ signal: signal ?? new AbortController().signal });
        downUntil.set(member, 0);
        return result;
      } catch (err) {
        if (err instanceof GRPCUnavailableError || err instanceof GRPCDeadlineExceededError) {
          downUntil.set(member, Date.now() + MEMBER_DOWN_MS);
        }
        throw err;
      }
    },
  };
}

const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
/** Reconnecting a broken watch: first delay, doubled up to the maximum. */
const WATCH_BACKOFF_MS = 100;
const WATCH_BACKOFF_MAX_MS = 1000;
/** A load of the prefix reads this many keys per request (one response stays small). */
const LOAD_PAGE = 2000;
/** Compare-and-swap attempts before giving up on a key others keep changing. */
const CAS_ATTEMPTS = 8;

/** Relative keys (after the prefix). */
const CLUSTER_ID = '/cluster_id';
const BROKERS = '/brokers/ids/';
const CONTROLLER = '/controller';
const TOPICS = '/brokers/topics/';
const PARTITIONS = '/brokers/partitions/';
const TOPIC_CONFIGS = '/config/topics/';
const BROKER_CONFIGS = '/config/brokers/<default>';
const PRODUCER_ID_BLOCK = '/latest_producer_id_block';
const TRANSACTIONAL_IDS = '/transactional_ids/';

interface StoredBroker {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
  incarnationId: string;
}

interface StoredTopic {
  topicId: string;
  partitions: number;
  replicationFactor: number;
  /** Replicas per partition, the preferred leader first: each partition's initial state. */
  assignment: number[][];
}

/** Kafka's /latest_producer_id_block: the last block handed out, `block_end` inclusive. */
interface StoredProducerIdBlock {
  version: 1;
  broker: number;
  block_start: string;
  block_end: string;
}

interface CachedBroker {
  readonly registration: BrokerRegistration;
  readonly incarnationId: string;
  readonly lease: string;
}

interface CachedTopic {
  readonly stored: StoredTopic;
  readonly createRevision: number;
  readonly modRevision: number;
}

interface CachedState {
  readonly state: PartitionState;
  readonly modRevision: number;
}

interface KvChange {
  readonly type: 'put' | 'delete';
  /** The key without the prefix. */
  readonly key: string;
  readonly kv: IKeyValue;
}

interface Waiter {
  readonly revision: number;
  resolve(): void;
  reject(err: Error): void;
}

export class EtcdMetadataStore implements MetadataStore {
  /** Random id of this process's registration; a restart of the same data directory takes it over. */
  readonly incarnationId: string = randomUUID();

  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly nodeId: number;
  private readonly ttlSeconds: number;
  private readonly heartbeatIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly previousIncarnation: string | undefined;
  private readonly where: string;
  /** How many etcd members were given. */
  private readonly members: number;
  private readonly logger: EtcdMetadataStoreOptions['logger'];
  private readonly listeners = new Set<MetadataListener>();

  // The cache: what the watch delivered up to `revision`.
  private revision = 0;
  private clusterIdValue = '';
  /** Mod revision of every key, to tell what a reload changed. */
  private readonly modRevisions = new Map<string, number>();
  private readonly brokerEntries = new Map<number, CachedBroker>();
  private controller: { brokerId: number; createRevision: number } | undefined;
  private readonly topicEntries = new Map<string, CachedTopic>();
  private readonly topicConfigs = new Map<string, Record<string, string>>();
  /** Partition states that differ from the initial one, by topic id and partition. */
  private readonly states = new Map<string, Map<number, CachedState>>();
  private brokerConfigsValue: Readonly<Record<string, string>> = {};
  private readonly transactionalIds = new Map<string, { producerId: bigint; producerEpoch: number }>();
  /** What readers see, by name and by id; replaced (never mutated) on change. */
  private readonly views = new Map<string, TopicMetadata>();
  private readonly viewsById = new Map<string, TopicMetadata>();
  private waiters: Waiter[] = [];

  // The watch.
  private watchGeneration = 0;
  private watchStream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
  private watchConnected = false;
  private watchRetry: NodeJS.Timeout | undefined;
  private watchBackoffMs = WATCH_BACKOFF_MS;
  private reloading = false;

  // This broker's registration.
  private readonly registrationQueue = new SerialQueue();
  private registration: BrokerRegistration | undefined;
  private lease: { id: string; lastKeepAlive: number } | undefined;
  private live = false;
  private recovering = false;
  /** `registration live: false` was announced and `live: true` not yet. */
  private lossAnnounced = false;
  private campaigning = false;
  private keepaliveInFlight = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastRecoveryError = '';
  /** The create revision of /controller when this store won it; undefined while not controller. */
  private controllerRevision: number | undefined;
  private closed = false;

  private constructor(options: EtcdMetadataStoreOptions) {
    this.prefix = options.prefix.replace(/\/+$/, '');
    this.nodeId = options.nodeId;
    this.ttlSeconds = Math.max(1, Math.ceil(options.sessionTimeoutMs / 1000));
    this.heartbeatIntervalMs = Math.max(10, options.heartbeatIntervalMs);
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.previousIncarnation = options.previousIncarnation;
    this.logger = options.logger;
    const membersDown = new Map<string, number>();
    this.members = options.endpoints.length;
    this.where = `etcd at ${options.endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',')}`;
    this.client = new Etcd3({
      hosts: [...options.endpoints],
      dialTimeout: this.requestTimeoutMs,
      // No retries nor circuit breaker: each write gets one bounded attempt, and a recovered etcd
      // is used at once.
      faultHandling: { host: (member) => memberPolicy(member, membersDown), global: PASS_THROUGH },
      grpcOptions: {
        // A connection of its own per client, so a reconnect after an outage is not held back
        // by the backoff of a shared one.
        'grpc.use_local_subchannel_pool': 1,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
        // Finds a dead connection under an idle watch (etcd's minimum ping interval is 5 s).
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5000,
      },
    });
  }

  /** Connects, creates the cluster id if there is none, loads the metadata and starts watching it. */
  static async open(options: EtcdMetadataStoreOptions): Promise<EtcdMetadataStore> {
    const store = new EtcdMetadataStore(options);
    try {
      await store.start();
    } catch (err) {
      store.closed = true;
      store.client.close();
      throw err;
    }
    return store;
  }

  private async start(): Promise<void> {
    const clusterKey = this.key(CLUSTER_ID);
    // Both steps may be repeated, so a dead member among several costs one attempt, not the start.
    for (let attempt = 1; ; attempt++) {
      try {
        // Only the first broker's id sticks: put if absent.
        await this.txn('creating the cluster id', [cmpCreate(clusterKey, 0)], [put(clusterKey, randomUuid())], []);
        await this.reload();
        break;
      } catch (err) {
        if (attempt >= this.members) throw err;
      }
    }
    this.startWatch();
  }

  get clusterId(): string {
    return this.clusterIdValue;
  }

  // ---- brokers, controller, registration -------------------------------------------------------

  brokers(): BrokerRegistration[] {
    return [...this.brokerEntries.values()].map((b) => b.registration).sort((a, b) => a.nodeId - b.nodeId);
  }

  broker(nodeId: number): BrokerRegistration | undefined {
    return this.brokerEntries.get(nodeId)?.registration;
  }

  controllerId(): number {
    return this.controller?.brokerId ?? NO_LEADER;
  }

  registrationLive(): boolean {
    return this.live && this.lease !== undefined && Date.now() < this.lease.lastKeepAlive + this.ttlSeconds * 1000;
  }

  registerBroker(broker: BrokerRegistration): Promise<void> {
    return this.registrationQueue.run(async () => {
      this.assertOpen();
      if (broker.nodeId !== this.nodeId) {
        throw new KafkaError(
          ErrorCode.INVALID_REQUEST,
          `this metadata store belongs to node ${this.nodeId}: node ${broker.nodeId} cannot register through it`,
        );
      }
      const first = this.registration === undefined;
      this.registration = { nodeId: broker.nodeId, host: broker.host, port: broker.port, rack: broker.rack };
      try {
        // A lease that may have expired (the registration was lost) is replaced, not reused.
        if (this.lease === undefined || !this.live) {
          await this.revokeLease();
          await this.grantLease();
        }
        await this.putRegistration();
      } catch (err) {
        if (first) {
          // Nothing of this broker may stay behind: not its lease, not its wish to be registered.
          this.registration = undefined;
          await this.revokeLease();
        }
        throw err;
      }
      this.live = true;
      this.startHeartbeat();
      await this.campaign();
      this.announceLive();
    });
  }

  /** A new lease; its TTL counts from before the request, as etcd's does from when it got it. */
  private async grantLease(): Promise<void> {
    const sent = Date.now();
    const res = await this.call('granting the broker lease', (deadline) =>
      this.client.leaseClient.leaseGrant({ TTL: this.ttlSeconds }, { deadline }),
    );
    this.lease = { id: res.ID, lastKeepAlive: sent };
  }

  /** Revokes the current lease, if any, as far as etcd can be reached (its keys go with it). */
  private async revokeLease(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    this.controllerRevision = undefined;
    if (lease === undefined) return;
    await this.call('revoking the broker lease', (deadline) =>
      this.client.leaseClient.leaseRevoke({ ID: lease.id }, { deadline }),
    ).catch((err: unknown) => {
      // Unreachable: the lease expires by itself. Unknown: it already did.
      if (!/lease not found/.test(String((err as Error).message)))
        this.warn({ err }, 'could not revoke the broker lease');
    });
  }

  /**
   * Puts /brokers/ids/N under the current lease if absent, or over our own registration or that
   * of this data directory's previous process; another live broker's: DuplicateBrokerError.
   */
  private async putRegistration(): Promise<void> {
    const reg = this.registration!;
    const lease = this.lease!.id;
    const key = this.key(`${BROKERS}${reg.nodeId}`);
    const value = JSON.stringify({ ...reg, incarnationId: this.incarnationId } satisfies StoredBroker);
    let compare = cmpCreate(key, 0);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const res = await this.txn('registering the broker', [compare], [put(key, value, lease)], [get(key)]);
      if (res.succeeded) {
        await this.waitForRevision(Number(res.header.revision), 'the broker registration');
        return;
      }
      const kv = rangeKv(res, 0);
      if (kv === undefined) {
        compare = cmpCreate(key, 0);
        continue;
      }
      const existing = parseJson<StoredBroker>(kv.value.toString());
      const incarnation = existing?.incarnationId;
      if (
        incarnation !== this.incarnationId &&
        (incarnation === undefined || incarnation !== this.previousIncarnation)
      ) {
        throw new DuplicateBrokerError(
          `node id ${reg.nodeId} is already registered by a live broker at ${existing?.host}:${existing?.port}; give this broker another node.id (--node-id) or stop the other one`,
        );
      }
      if (incarnation !== this.incarnationId) {
        this.info(
          { nodeId: reg.nodeId, previousIncarnation: incarnation },
          'taking over the registration of this data directory’s previous broker process',
        );
        // Its lease still holds what else it had (the controller key): let that go now.
        if (kv.lease !== '0' && kv.lease !== lease) {
          await this.call('revoking the previous process’s lease', (deadline) =>
            this.client.leaseClient.leaseRevoke({ ID: kv.lease }, { deadline }),
          ).catch(() => undefined);
          compare = cmpCreate(key, 0);
          continue;
        }
      }
      compare = cmpMod(key, Number(kv.mod_revision));
    }
    throw new KafkaError(ErrorCode.REQUEST_TIMED_OUT, `registration ${key} keeps changing on ${this.where}; retry`);
  }

  /** Puts /controller under our lease if there is none; remembers its create revision if we won. */
  private async campaign(): Promise<void> {
    if (this.closed || !this.live || this.lease === undefined || this.campaigning) return;
    this.campaigning = true;
    try {
      const key = this.key(CONTROLLER);
      const lease = this.lease.id;
      const res = await this.txn(
        'campaigning for controller',
        [cmpCreate(key, 0)],
        [put(key, JSON.stringify({ brokerId: this.nodeId }), lease)],
        [get(key)],
      );
      const revision = Number(res.header.revision);
      if (res.succeeded) {
        this.controllerRevision = revision;
        this.info({ nodeId: this.nodeId }, 'this broker is the active controller');
        await this.waitForRevision(revision, 'the controller election');
        return;
      }
      const kv = rangeKv(res, 0);
      // Ours already (the same lease): a re-registration need not give it up.
      if (kv !== undefined && kv.lease === lease) this.controllerRevision = Number(kv.create_revision);
    } finally {
      this.campaigning = false;
    }
  }

  private startHeartbeat(): void {
    if (this.heartbeat !== undefined) return;
    this.heartbeat = setInterval(() => this.onHeartbeat(), this.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  private onHeartbeat(): void {
    if (this.closed || this.registration === undefined) return;
    if (!this.live) {
      this.recover();
      return;
    }
    const lease = this.lease;
    if (lease === undefined || Date.now() >= lease.lastKeepAlive + this.ttlSeconds * 1000) {
      this.lost('no keepalive of the broker lease was acknowledged within its TTL');
      return;
    }
    if (!this.keepaliveInFlight) {
      this.keepaliveInFlight = true;
      const sent = Date.now();
      this.keepalive(lease.id)
        .then((res) => {
          if (this.lease?.id !== lease.id) return;
          if (Number(res.TTL) <= 0) this.lost('etcd reports the broker lease expired');
          else lease.lastKeepAlive = Math.max(lease.lastKeepAlive, sent);
        })
        .catch(() => {
          // Unreachable etcd: the TTL check above decides when this becomes a lost registration.
        })
        .finally(() => {
          this.keepaliveInFlight = false;
        });
    }
    // Nobody won the last election yet (e.g. etcd was unreachable when the controller left).
    if (this.controller === undefined && !this.campaigning) {
      void this.registrationQueue
        .run(() => this.campaign())
        .catch((err: unknown) => this.warn({ err }, 'campaign for controller failed'));
    }
  }

  /** One keepalive of `leaseId` on a stream of its own, bounded by the request timeout. */
  private async keepalive(leaseId: string): Promise<ILeaseKeepAliveResponse> {
    const timeoutMs = Math.min(this.requestTimeoutMs, this.ttlSeconds * 1000);
    const stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> =
      await this.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + timeoutMs });
    return new Promise((resolve, reject) => {
      stream.on('data', (res) => {
        resolve(res);
        stream.end();
      });
      stream.on('error', reject);
      stream.on('end', () => reject(new Error('the keepalive stream ended')));
      stream.write({ ID: leaseId });
    });
  }

  /** This broker's registration is no longer valid: say so, and start registering anew. */
  private lost(reason: string): void {
    if (!this.live || this.closed) return;
    this.live = false;
    this.controllerRevision = undefined;
    this.warn({ nodeId: this.nodeId, reason }, 'broker registration lost; registering again');
    this.lossAnnounced = true;
    this.emit({ type: 'registration', live: false });
    this.recover();
  }

  /** Registered again after `registration live: false` was announced: say so (once). */
  private announceLive(): void {
    if (!this.lossAnnounced || !this.live) return;
    this.lossAnnounced = false;
    this.emit({ type: 'registration', live: true });
  }

  /** New lease, registration (same incarnation) and campaign; retried every heartbeat until done. */
  private recover(): void {
    if (this.recovering || this.closed || this.registration === undefined) return;
    this.recovering = true;
    void this.registrationQueue
      .run(async () => {
        if (this.live || this.closed) return;
        // Not awaited: the old lease has expired or will, and waiting out a revoke that cannot
        // reach etcd would delay the new registration by a request timeout once etcd is back.
        void this.revokeLease();
        await this.grantLease();
        await this.putRegistration();
        this.live = true;
        this.lastRecoveryError = '';
        this.info({ nodeId: this.nodeId }, 'broker registered again');
        await this.campaign().catch((err: unknown) => this.warn({ err }, 'campaign for controller failed'));
        this.announceLive();
      })
      .catch((err: unknown) => {
        const message = String((err as Error).message);
        if (message !== this.lastRecoveryError) this.warn({ err }, 'could not register the broker again; retrying');
        this.lastRecoveryError = message;
      })
      .finally(() => {
        this.recovering = false;
      });
  }

  // ---- topics and partitions -------------------------------------------------------------------

  topics(): TopicMetadata[] {
    return [...this.views.values()];
  }

  topic(name: string): TopicMetadata | undefined {
    return this.views.get(name);
  }

  topicById(topicId: string): TopicMetadata | undefined {
    return this.viewsById.get(topicId);
  }

  partitionState(topic: string, partition: number): PartitionState | undefined {
    const t = this.topicEntries.get(topic);
    if (t === undefined || !Number.isInteger(partition) || partition < 0 || partition >= t.stored.partitions) {
      return undefined;
    }
    return this.states.get(t.stored.topicId)?.get(partition)?.state ?? initialState(t.stored, partition);
  }

  async createTopic(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    assignment?: ReplicaAssignment,
  ): Promise<TopicMetadata> {
    this.assertOpen();
    if (this.topicEntries.has(name)) throw topicExists(name);
    const stored: StoredTopic = {
      topicId: randomUuid(),
      partitions,
      replicationFactor,
      assignment: this.checkAssignment(assignment, partitions),
    };
    const topicKey = this.key(TOPICS + name);
    const fence = this.fence();
    const res = await this.txn(
      `creating topic '${name}'`,
      [cmpCreate(topicKey, 0), ...fence.compare],
      [put(this.key(TOPIC_CONFIGS + name), JSON.stringify(configs)), put(topicKey, JSON.stringify(stored))],
      [get(topicKey), ...fence.read],
    );
    if (!res.succeeded) {
      const existing = rangeKv(res, 0);
      if (existing === undefined) throw this.notController(res, 1);
      // A write whose answer was lost and that was tried again is ours all the same.
      if (parseJson<StoredTopic>(existing.value.toString())?.topicId !== stored.topicId) throw topicExists(name);
    }
    await this.waitForRevision(Number(res.header.revision), `topic '${name}'`);
    return this.viewsById.get(stored.topicId) ?? this.view(name, stored, configs);
  }

  async deleteTopic(name: string): Promise<TopicMetadata | undefined> {
    this.assertOpen();
    let topic = this.topicEntries.get(name);
    let view = this.views.get(name);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (topic === undefined) return undefined;
      const topicKey = this.key(TOPICS + name);
      const fence = this.fence();
      const res = await this.txn(
        `deleting topic '${name}'`,
        [cmpCreate(topicKey, topic.createRevision), ...fence.compare],
        [
          del(topicKey),
          del(this.key(TOPIC_CONFIGS + name)),
          delPrefix(this.key(`${PARTITIONS}${topic.stored.topicId}/`)),
        ],
        [get(topicKey), ...fence.read],
      );
      if (res.succeeded) {
        await this.waitForRevision(Number(res.header.revision), `the deletion of topic '${name}'`);
        return view ?? this.view(name, topic.stored, {});
      }
      if (!fence.held(res, 1)) throw this.notController(res, 1);
      // Deleted meanwhile (undefined: nothing to delete), or recreated (delete that one).
      topic = cachedTopic(rangeKv(res, 0));
      view = undefined;
    }
    throw casExhausted(`topic '${name}'`);
  }

  async setPartitionCount(name: string, partitions: number, assignment?: ReplicaAssignment): Promise<TopicMetadata> {
    this.assertOpen();
    let topic: CachedTopic | undefined = this.existing(name);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (topic === undefined) throw unknownTopic(name);
      const old = topic.stored;
      if (partitions <= old.partitions) {
        throw new KafkaError(
          ErrorCode.INVALID_PARTITIONS,
          `Topic '${name}' currently has ${old.partitions} partitions, which is higher than or equal to the requested ${partitions}.`,
        );
      }
      const added = this.checkAssignment(assignment, partitions - old.partitions);
      const stored: StoredTopic = { ...old, partitions, assignment: [...old.assignment, ...added] };
      const topicKey = this.key(TOPICS + name);
      const fence = this.fence();
      const res = await this.txn(
        `adding partitions to topic '${name}'`,
        [cmpMod(topicKey, topic.modRevision), ...fence.compare],
        [put(topicKey, JSON.stringify(stored))],
        [get(topicKey), ...fence.read],
      );
      if (res.succeeded) {
        await this.waitForRevision(Number(res.header.revision), `the partitions of topic '${name}'`);
        return this.views.get(name) ?? this.view(name, stored, this.topicConfigs.get(name) ?? {});
      }
      if (!fence.held(res, 1)) throw this.notController(res, 1);
      topic = cachedTopic(rangeKv(res, 0));
    }
    throw casExhausted(`topic '${name}'`);
  }

  async updatePartitionState(
    topic: string,
    partition: number,
    expectedPartitionEpoch: number,
    next: PartitionStateUpdate,
  ): Promise<PartitionState> {
    this.assertOpen();
    const t = this.topicEntries.get(topic);
    if (t === undefined || !Number.isInteger(partition) || partition < 0 || partition >= t.stored.partitions) {
      throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown partition ${topic}-${partition}`);
    }
    const topicKey = this.key(TOPICS + topic);
    const stateKey = this.key(`${PARTITIONS}${t.stored.topicId}/${partition}`);
    const cached = this.states.get(t.stored.topicId)?.get(partition);
    // What the compare expects: the state key's mod revision (0: not written yet, the initial state).
    let current: CachedState = cached ?? { state: initialState(t.stored, partition), modRevision: 0 };
    let fromCache = true;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const refusal = checkUpdate(topic, partition, current.state, expectedPartitionEpoch, next);
      if (refusal !== undefined) {
        if (!fromCache) throw refusal;
        // The cache may lag behind etcd: decide on what etcd holds now.
        const res = await this.txn(`reading partition ${topic}-${partition}`, [], [get(stateKey), get(topicKey)], []);
        const fresh = this.freshState(res, t, partition);
        if (fresh === undefined) throw unknownPartition(topic, partition);
        current = fresh;
        fromCache = false;
        continue;
      }
      const state: PartitionState = {
        replicas: [...next.replicas],
        leader: next.leader,
        leaderEpoch: next.leaderEpoch,
        isr: [...next.isr],
        partitionEpoch: current.state.partitionEpoch + 1,
        // A reassignment in progress outlives ISR changes and elections (absent: kept).
        ...reassignmentOf(
          next.addingReplicas ?? current.state.addingReplicas,
          next.removingReplicas ?? current.state.removingReplicas,
        ),
      };
      const fence = this.fence();
      const compare =
        current.modRevision === 0
          ? // The topic must still be this one: a state key must not outlive its topic.
            [cmpCreate(stateKey, 0), cmpCreate(topicKey, t.createRevision)]
          : [cmpMod(stateKey, current.modRevision)];
      const res = await this.txn(
        `updating the state of partition ${topic}-${partition}`,
        [...compare, ...fence.compare],
        [put(stateKey, JSON.stringify(state))],
        [get(stateKey), get(topicKey), ...fence.read],
      );
      if (res.succeeded) {
        await this.waitForRevision(Number(res.header.revision), `the state of partition ${topic}-${partition}`);
        return state;
      }
      if (!fence.held(res, 2)) throw this.notController(res, 2);
      const fresh = this.freshState(res, t, partition);
      if (fresh === undefined) throw unknownPartition(topic, partition);
      current = fresh;
      fromCache = false;
    }
    throw casExhausted(`partition ${topic}-${partition}`);
  }

  /** The partition's state as a transaction read it (state key, topic key); undefined: gone. */
  private freshState(res: ITxnResponse, t: CachedTopic, partition: number): CachedState | undefined {
    const topicKv = rangeKv(res, 1);
    if (topicKv === undefined || Number(topicKv.create_revision) !== t.createRevision) return undefined;
    const stateKv = rangeKv(res, 0);
    if (stateKv === undefined) return { state: initialState(t.stored, partition), modRevision: 0 };
    const state = parseJson<PartitionState>(stateKv.value.toString());
    if (state === undefined) return undefined;
    return { state, modRevision: Number(stateKv.mod_revision) };
  }

  async setTopicConfigs(name: string, configs: Record<string, string>): Promise<TopicMetadata> {
    this.assertOpen();
    const topic = this.existing(name);
    const topicKey = this.key(TOPICS + name);
    const fence = this.fence();
    const res = await this.txn(
      `setting the configs of topic '${name}'`,
      [cmpCreate(topicKey, topic.createRevision), ...fence.compare],
      [put(this.key(TOPIC_CONFIGS + name), JSON.stringify(configs))],
      [get(topicKey), ...fence.read],
    );
    if (!res.succeeded) {
      if (!fence.held(res, 1)) throw this.notController(res, 1);
      throw unknownTopic(name);
    }
    await this.waitForRevision(Number(res.header.revision), `the configs of topic '${name}'`);
    return this.views.get(name) ?? this.view(name, topic.stored, configs);
  }

  brokerConfigs(): Readonly<Record<string, string>> {
    return this.brokerConfigsValue;
  }

  async setBrokerConfigs(configs: Record<string, string>): Promise<void> {
    this.assertOpen();
    const res = await this.txn(
      'setting the broker configs',
      [],
      [put(this.key(BROKER_CONFIGS), JSON.stringify(configs))],
      [],
    );
    await this.waitForRevision(Number(res.header.revision), 'the broker configs');
  }

  /** Compare-and-swap on /latest_producer_id_block: no id is handed out twice, across brokers. */
  async allocateProducerIdBlock(size: number): Promise<ProducerIdBlock> {
    this.assertOpen();
    const key = this.key(PRODUCER_ID_BLOCK);
    let compare = cmpCreate(key, 0);
    let first = 0n;
    // The first attempt assumes there is no block yet; a failed compare tells the latest.
    for (let attempt = 0; attempt < CAS_ATTEMPTS * 4; attempt++) {
      const end = first + BigInt(size);
      const block: StoredProducerIdBlock = {
        version: 1,
        broker: this.nodeId,
        block_start: first.toString(),
        block_end: (end - 1n).toString(),
      };
      const res = await this.txn('allocating producer ids', [compare], [put(key, JSON.stringify(block))], [get(key)]);
      if (res.succeeded) return { first, end };
      const kv = rangeKv(res, 0);
      if (kv === undefined) {
        compare = cmpCreate(key, 0);
        first = 0n;
        continue;
      }
      const latest = parseJson<StoredProducerIdBlock>(kv.value.toString());
      if (latest === undefined)
        throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, `${key} on ${this.where} is not JSON`);
      compare = cmpMod(key, Number(kv.mod_revision));
      first = BigInt(latest.block_end) + 1n;
    }
    throw casExhausted('the producer id block');
  }

  transactionalId(id: string): { producerId: bigint; producerEpoch: number } | undefined {
    return this.transactionalIds.get(id);
  }

  async setTransactionalId(id: string, producerId: bigint, producerEpoch: number): Promise<void> {
    this.assertOpen();
    const value = JSON.stringify({ producerId: producerId.toString(), producerEpoch });
    const res = await this.txn(
      `recording transactional id '${id}'`,
      [],
      [put(this.key(TRANSACTIONAL_IDS + id), value)],
      [],
    );
    await this.waitForRevision(Number(res.header.revision), `transactional id '${id}'`);
  }

  subscribe(listener: MetadataListener): () => void {
    // A wrapper, so one function subscribed twice gets each change twice and unsubscribes once.
    const entry: MetadataListener = (change) => listener(change);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.watchRetry);
    this.live = false;
    // Deregisters and gives up controllership at once (bounded: an unreachable etcd lets the lease expire).
    await this.revokeLease();
    this.watchGeneration++;
    // cancel(), not end(): a half-closed stream keeps its HTTP/2 connection, and so the
    // process, alive until etcd ends it.
    this.watchStream?.cancel();
    this.watchStream = undefined;
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.reject(new Error('the etcd metadata store was closed'));
    this.listeners.clear();
    this.client.close();
  }

  // ---- writes: transactions, fencing, waiting for the watch ------------------------------------

  private key(relative: string): string {
    return this.prefix + relative;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the etcd metadata store is closed');
  }

  /**
   * The compare that fences this store's topic and partition writes while it is the controller
   * (the /controller key is still the one it created), and a read of that key for the failure case.
   */
  private fence(): {
    compare: ICompare[];
    read: IRequestOp[];
    held(res: ITxnResponse, index: number): boolean;
  } {
    const revision = this.controllerRevision;
    if (revision === undefined) return { compare: [], read: [], held: () => true };
    return {
      compare: [cmpCreate(this.key(CONTROLLER), revision)],
      read: [get(this.key(CONTROLLER))],
      held: (res, index) => Number(rangeKv(res, index)?.create_revision ?? 0) === revision,
    };
  }

  private notController(res: ITxnResponse, index: number): KafkaError {
    const kv = rangeKv(res, index);
    const now = kv === undefined ? undefined : parseJson<{ brokerId: number }>(kv.value.toString())?.brokerId;
    if (this.controllerRevision !== undefined && Number(kv?.create_revision ?? 0) !== this.controllerRevision) {
      this.controllerRevision = undefined;
    }
    return new KafkaError(
      ErrorCode.NOT_CONTROLLER,
      `broker ${this.nodeId} is no longer the active controller (${now === undefined ? 'none is elected' : `broker ${now} is`}); nothing was changed`,
    );
  }

  /** One etcd request, bounded by the request timeout; failing to reach etcd is REQUEST_TIMED_OUT. */
  private async call<T>(what: string, request: (deadline: number) => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    // The gRPC deadline ends the call; the timer is the backstop should a call hang before it.
    const backstop = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.requestTimeoutMs} ms`)),
        this.requestTimeoutMs + 500,
      );
    });
    try {
      return await Promise.race([request(Date.now() + this.requestTimeoutMs), backstop]);
    } catch (err) {
      if (err instanceof KafkaError || err instanceof DuplicateBrokerError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      if (/lease not found|too many operations|request is too large|duplicate key/.test(message)) throw err;
      throw new KafkaError(
        ErrorCode.REQUEST_TIMED_OUT,
        `the metadata store (${this.where}) is unreachable: ${what} failed: ${message}`,
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  private txn(what: string, compare: ICompare[], success: IRequestOp[], failure: IRequestOp[]): Promise<ITxnResponse> {
    return this.call(what, (deadline) => this.client.kv.txn({ compare, success, failure }, { deadline }));
  }

  /** Resolves once the watch has applied `revision` to the cache, or rejects after the request timeout. */
  private waitForRevision(revision: number, what: string): Promise<void> {
    if (this.revision >= revision || this.closed) return Promise.resolve();
    if (!this.watchConnected) this.restartWatchSoon(0);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new KafkaError(
            ErrorCode.REQUEST_TIMED_OUT,
            `the metadata store (${this.where}) is unreachable: ${what} was written at revision ${revision}, but the watch did not deliver it within ${this.requestTimeoutMs} ms`,
          ),
        );
      }, this.requestTimeoutMs);
      this.waiters.push(waiter);
    });
  }

  private resolveWaiters(): void {
    if (this.waiters.length === 0) return;
    const due = this.waiters.filter((w) => w.revision <= this.revision);
    if (due.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.revision > this.revision);
    for (const w of due) w.resolve();
  }

  // ---- the cache: load, watch, apply -----------------------------------------------------------

  /**
   * Reads the whole prefix at one revision and applies the differences from the cache as one
   * change (at open: everything). Used at open and when the watch's revision was compacted away.
   */
  private async reload(): Promise<void> {
    const start = Buffer.from(`${this.prefix}/`);
    const end = prefixEnd(start);
    const kvs = new Map<string, IKeyValue>();
    let from = start;
    let atRevision: string | undefined;
    for (;;) {
      const res = await this.call('loading the cluster metadata', (deadline) =>
        this.client.kv.range(
          {
            key: from,
            range_end: end,
            limit: LOAD_PAGE,
            ...(atRevision === undefined ? {} : { revision: atRevision }),
          },
          { deadline },
        ),
      );
      atRevision ??= res.header.revision;
      for (const kv of res.kvs) kvs.set(kv.key.toString().slice(this.prefix.length), kv);
      if (!res.more || res.kvs.length === 0) break;
      from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    const changes: KvChange[] = [];
    for (const key of this.modRevisions.keys()) {
      if (!kvs.has(key)) changes.push({ type: 'delete', key, kv: deletedKv(key, Number(atRevision)) });
    }
    for (const [key, kv] of kvs) {
      if (this.modRevisions.get(key) !== Number(kv.mod_revision)) changes.push({ type: 'put', key, kv });
    }
    this.apply(changes);
    this.revision = Math.max(this.revision, Number(atRevision));
    this.resolveWaiters();
  }

  private startWatch(): void {
    if (this.closed) return;
    const generation = ++this.watchGeneration;
    const start = Buffer.from(`${this.prefix}/`);
    const request: IWatchRequest = {
      create_request: {
        key: start,
        range_end: prefixEnd(start),
        start_revision: this.revision + 1,
        progress_notify: true,
      },
    };
    this.client.watchClient.watch().then(
      (stream) => {
        if (generation !== this.watchGeneration) {
          stream.cancel();
          return;
        }
        this.watchStream = stream;
        stream.on('data', (res) => this.onWatchResponse(res, generation));
        stream.on('error', (err) => this.onWatchBroken(generation, err));
        stream.on('end', () => this.onWatchBroken(generation, new Error('the watch stream ended')));
        stream.write(request);
      },
      (err: unknown) => this.onWatchBroken(generation, err),
    );
  }

  private onWatchResponse(res: IWatchResponse, generation: number): void {
    if (generation !== this.watchGeneration) return;
    if (res.canceled) {
      if (Number(res.compact_revision) > 0) {
        // Our revision was compacted away: reload everything, then watch from there.
        this.watchGeneration++;
        this.watchConnected = false;
        this.watchStream?.cancel();
        this.watchStream = undefined;
        this.warn({ compactRevision: res.compact_revision }, 'metadata watch compacted; reloading');
        this.resync();
      } else {
        this.onWatchBroken(generation, new Error(`watch cancelled: ${res.cancel_reason}`));
      }
      return;
    }
    this.watchConnected = true;
    this.watchBackoffMs = WATCH_BACKOFF_MS;
    if (res.created) return;
    if (res.events.length === 0) {
      // A progress notification: everything up to its revision was delivered.
      this.revision = Math.max(this.revision, Number(res.header.revision));
    } else {
      // One revision at a time: a transaction's changes are applied (and announced) together.
      let batch: KvChange[] = [];
      let batchRevision = -1;
      for (const ev of res.events) {
        const revision = Number(ev.kv.mod_revision);
        if (revision !== batchRevision && batch.length > 0) {
          this.applyRevision(batch, batchRevision);
          batch = [];
        }
        batchRevision = revision;
        batch.push({
          type: ev.type === 'Delete' ? 'delete' : 'put',
          key: ev.kv.key.toString().slice(this.prefix.length),
          kv: ev.kv,
        });
      }
      if (batch.length > 0) this.applyRevision(batch, batchRevision);
    }
    this.resolveWaiters();
  }

  private applyRevision(changes: KvChange[], revision: number): void {
    if (revision <= this.revision) return; // already applied (a reload got there first)
    this.apply(changes);
    this.revision = revision;
  }

  private onWatchBroken(generation: number, err: unknown): void {
    if (generation !== this.watchGeneration || this.closed) return;
    this.watchGeneration++;
    // Once per outage, not once per reconnect attempt.
    if (this.watchConnected) this.warn({ err }, 'metadata watch broken; resuming');
    this.watchConnected = false;
    const stream = this.watchStream;
    this.watchStream = undefined;
    try {
      stream?.cancel();
    } catch {
      // Already torn down.
    }
    this.restartWatchSoon(this.watchBackoffMs);
    this.watchBackoffMs = Math.min(this.watchBackoffMs * 2, WATCH_BACKOFF_MAX_MS);
  }

  private restartWatchSoon(delayMs: number): void {
    if (this.closed || this.watchConnected || this.reloading) return;
    if (this.watchRetry !== undefined) {
      if (delayMs > 0) return;
      clearTimeout(this.watchRetry);
    }
    this.watchRetry = setTimeout(() => {
      this.watchRetry = undefined;
      if (!this.watchConnected && !this.reloading) this.startWatch();
    }, delayMs);
    this.watchRetry.unref();
  }

  private resync(): void {
    if (this.reloading || this.closed) return;
    this.reloading = true;
    this.reload()
      .then(() => {
        this.reloading = false;
        this.startWatch();
      })
      .catch((err: unknown) => {
        this.reloading = false;
        this.warn({ err }, 'could not reload the cluster metadata; retrying');
        const retry = setTimeout(() => this.resync(), WATCH_BACKOFF_MAX_MS);
        retry.unref();
      });
  }

  /** Applies the changes of one revision to the cache, then announces what they changed. */
  private apply(changes: KvChange[]): void {
    const touchedTopics = new Set<string>();
    const touchedConfigs = new Set<string>();
    const touchedStates = new Map<string, Set<number>>();
    const brokerChanges: MetadataChange[] = [];
    let brokerConfigsChanged = false;
    let ownRegistrationLost: string | undefined;
    const controllerBefore = this.controllerId();
    let controllerDeleted = false;

    for (const { type, key, kv } of changes) {
      if (type === 'put') this.modRevisions.set(key, Number(kv.mod_revision));
      else this.modRevisions.delete(key);
      const value = type === 'put' ? kv.value.toString() : undefined;

      if (key === CLUSTER_ID) {
        if (value !== undefined) this.clusterIdValue = value;
      } else if (key.startsWith(BROKERS)) {
        const nodeId = Number(key.slice(BROKERS.length));
        const before = this.brokerEntries.get(nodeId);
        const stored = value === undefined ? undefined : parseJson<StoredBroker>(value);
        if (stored !== undefined) {
          const registration = { nodeId: stored.nodeId, host: stored.host, port: stored.port, rack: stored.rack };
          this.brokerEntries.set(nodeId, { registration, incarnationId: stored.incarnationId, lease: kv.lease });
          brokerChanges.push({ type: 'broker-registered', broker: registration });
          if (nodeId === this.nodeId && stored.incarnationId !== this.incarnationId && this.live) {
            ownRegistrationLost = `node id ${nodeId} was registered by another process (incarnation ${stored.incarnationId})`;
          }
        } else if (before !== undefined) {
          this.brokerEntries.delete(nodeId);
          brokerChanges.push({ type: 'broker-unregistered', nodeId });
          if (nodeId === this.nodeId && before.lease === this.lease?.id && this.live) {
            ownRegistrationLost = 'the broker registration was deleted (its lease was revoked or expired)';
          }
        }
      } else if (key === CONTROLLER) {
        const revision = Number(kv.mod_revision);
        const brokerId = value === undefined ? undefined : parseJson<{ brokerId: number }>(value)?.brokerId;
        const createRevision = Number(kv.create_revision);
        this.controller = brokerId === undefined ? undefined : { brokerId, createRevision };
        if (
          this.controllerRevision !== undefined &&
          revision > this.controllerRevision &&
          (brokerId === undefined || createRevision !== this.controllerRevision)
        ) {
          this.controllerRevision = undefined;
        }
        if (brokerId === undefined) controllerDeleted = true;
      } else if (key.startsWith(TOPICS)) {
        const name = key.slice(TOPICS.length);
        const stored = value === undefined ? undefined : parseJson<StoredTopic>(value);
        if (stored !== undefined) {
          this.topicEntries.set(name, {
            stored,
            createRevision: Number(kv.create_revision),
            modRevision: Number(kv.mod_revision),
          });
        } else {
          const gone = this.topicEntries.get(name);
          this.topicEntries.delete(name);
          if (gone !== undefined) this.states.delete(gone.stored.topicId);
        }
        touchedTopics.add(name);
      } else if (key.startsWith(PARTITIONS)) {
        const [topicId, p] = key.slice(PARTITIONS.length).split('/');
        const partition = Number(p);
        if (topicId === undefined || !Number.isInteger(partition)) continue;
        const state = value === undefined ? undefined : parseJson<PartitionState>(value);
        let byPartition = this.states.get(topicId);
        if (state !== undefined) {
          if (byPartition === undefined) {
            byPartition = new Map();
            this.states.set(topicId, byPartition);
          }
          byPartition.set(partition, { state, modRevision: Number(kv.mod_revision) });
        } else {
          byPartition?.delete(partition);
        }
        let touched = touchedStates.get(topicId);
        if (touched === undefined) {
          touched = new Set();
          touchedStates.set(topicId, touched);
        }
        touched.add(partition);
      } else if (key.startsWith(TOPIC_CONFIGS)) {
        const name = key.slice(TOPIC_CONFIGS.length);
        const configs = value === undefined ? undefined : parseJson<Record<string, string>>(value);
        if (configs !== undefined) this.topicConfigs.set(name, configs);
        else this.topicConfigs.delete(name);
        touchedConfigs.add(name);
      } else if (key === BROKER_CONFIGS) {
        this.brokerConfigsValue = (value === undefined ? undefined : parseJson<Record<string, string>>(value)) ?? {};
        brokerConfigsChanged = true;
      } else if (key.startsWith(TRANSACTIONAL_IDS)) {
        const id = key.slice(TRANSACTIONAL_IDS.length);
        const stored =
          value === undefined ? undefined : parseJson<{ producerId: string; producerEpoch: number }>(value);
        if (stored !== undefined) {
          this.transactionalIds.set(id, { producerId: BigInt(stored.producerId), producerEpoch: stored.producerEpoch });
        } else {
          this.transactionalIds.delete(id);
        }
      }
    }

    // Topics: created, deleted, grown, reconfigured; then partition states that changed.
    const announced = new Map<string, number>(); // topic id -> partitions whose state was announced from
    for (const name of new Set([...touchedTopics, ...touchedConfigs])) {
      let old = this.views.get(name);
      const entry = this.topicEntries.get(name);
      if (old !== undefined && (entry === undefined || entry.stored.topicId !== old.topicId)) {
        this.views.delete(name);
        this.viewsById.delete(old.topicId);
        this.emit({ type: 'topic-deleted', topic: old });
        old = undefined;
      }
      if (entry === undefined) continue;
      const view = this.index(name, entry);
      if (old === undefined) {
        this.emit({ type: 'topic-created', topic: view });
        this.emitPartitionStates(view, entry.stored, 0);
        announced.set(view.topicId, 0);
        continue;
      }
      if (view.partitions > old.partitions) {
        this.emit({ type: 'partitions-added', topic: view, previousPartitions: old.partitions });
        this.emitPartitionStates(view, entry.stored, old.partitions);
        announced.set(view.topicId, old.partitions);
      }
      if (touchedConfigs.has(name)) this.emit({ type: 'topic-configs', topic: view });
    }
    for (const [topicId, partitions] of touchedStates) {
      const old = this.viewsById.get(topicId);
      if (old === undefined) continue;
      const entry = this.topicEntries.get(old.name)!;
      const view = this.index(old.name, entry);
      const from = announced.get(topicId) ?? Number.POSITIVE_INFINITY;
      for (const partition of [...partitions].sort((a, b) => a - b)) {
        if (partition >= view.partitions || partition >= from) continue;
        this.emit({
          type: 'partition-state',
          topic: view,
          partition,
          state: this.partitionState(view.name, partition)!,
        });
      }
    }
    if (brokerConfigsChanged) this.emit({ type: 'broker-configs', configs: this.brokerConfigsValue });
    for (const change of brokerChanges) this.emit(change);
    if (this.controllerId() !== controllerBefore) {
      this.emit({ type: 'controller-changed', controllerId: this.controllerId() });
    }
    if (ownRegistrationLost !== undefined) this.lost(ownRegistrationLost);
    if (controllerDeleted && this.live && !this.closed) {
      // Every registered broker campaigns; one wins.
      void this.registrationQueue
        .run(() => this.campaign())
        .catch((err: unknown) => this.warn({ err }, 'campaign for controller failed'));
    }
  }

  private emitPartitionStates(view: TopicMetadata, stored: StoredTopic, from: number): void {
    const states = this.states.get(stored.topicId);
    for (let p = from; p < stored.partitions; p++) {
      const state = states?.get(p)?.state ?? initialState(stored, p);
      this.emit({ type: 'partition-state', topic: view, partition: p, state });
    }
  }

  /** Builds and indexes the topic's view from the cache. */
  private index(name: string, entry: CachedTopic): TopicMetadata {
    const view = this.view(name, entry.stored, this.topicConfigs.get(name) ?? {});
    this.views.set(name, view);
    this.viewsById.set(view.topicId, view);
    return view;
  }

  private view(name: string, stored: StoredTopic, configs: Record<string, string>): TopicMetadata {
    const states = this.states.get(stored.topicId);
    return {
      name,
      topicId: stored.topicId,
      partitions: stored.partitions,
      replicationFactor: stored.replicationFactor,
      configs: { ...configs },
      leaderEpochs: Array.from({ length: stored.partitions }, (_, p) => states?.get(p)?.state.leaderEpoch ?? 0),
    };
  }

  private emit(change: MetadataChange): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch {
        // The change is made whatever a listener does; listeners report their own failures.
      }
    }
  }

  private existing(name: string): CachedTopic {
    const t = this.topicEntries.get(name);
    if (t === undefined) throw unknownTopic(name);
    return t;
  }

  /**
   * The replicas of `count` partitions: as given (each a non-empty list of distinct brokers that
   * are registered, or this broker itself), or all on this broker, as the single-node store does.
   */
  private checkAssignment(assignment: ReplicaAssignment | undefined, count: number): number[][] {
    if (assignment === undefined) return Array.from({ length: count }, () => [this.nodeId]);
    if (assignment.length !== count) {
      throw new KafkaError(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `the replica assignment has ${assignment.length} partitions, not ${count}`,
      );
    }
    for (const [p, replicas] of assignment.entries()) {
      if (replicas.length === 0 || new Set(replicas).size !== replicas.length) {
        throw new KafkaError(
          ErrorCode.INVALID_REPLICA_ASSIGNMENT,
          `partition ${p}: replicas ${JSON.stringify(replicas)} must be distinct broker ids, at least one`,
        );
      }
      const absent = replicas.find((id) => id !== this.nodeId && !this.brokerEntries.has(id));
      if (absent !== undefined) {
        throw new KafkaError(
          ErrorCode.INVALID_REPLICA_ASSIGNMENT,
          `partition ${p}: broker ${absent} is not a live broker of the cluster`,
        );
      }
    }
    return assignment.map((replicas) => [...replicas]);
  }

  private info(o: object, m: string): void {
    this.logger?.info(o, m);
  }

  private warn(o: object, m: string): void {
    if (!this.closed) this.logger?.warn(o, m);
  }
}

function initialState(stored: StoredTopic, partition: number): PartitionState {
  const replicas = stored.assignment[partition] ?? [];
  return { replicas, leader: replicas[0] ?? NO_LEADER, leaderEpoch: 0, isr: replicas, partitionEpoch: 0 };
}

/** The reassignment fields of a stored state: written only while a reassignment is in progress. */
function reassignmentOf(
  adding: readonly number[] | undefined,
  removing: readonly number[] | undefined,
): Pick<PartitionState, 'addingReplicas' | 'removingReplicas'> {
  if ((adding?.length ?? 0) === 0 && (removing?.length ?? 0) === 0) return {};
  return { addingReplicas: [...(adding ?? [])], removingReplicas: [...(removing ?? [])] };
}

/** Why `next` may not replace `current` (the errors of MetadataStore.updatePartitionState), or undefined. */
function checkUpdate(
  topic: string,
  partition: number,
  current: PartitionState,
  expectedPartitionEpoch: number,
  next: PartitionStateUpdate,
): KafkaError | undefined {
  if (current.partitionEpoch !== expectedPartitionEpoch) {
    return new KafkaError(
      ErrorCode.INVALID_UPDATE_VERSION,
      `partition ${topic}-${partition} is at partition epoch ${current.partitionEpoch}, not ${expectedPartitionEpoch}`,
    );
  }
  if (next.leaderEpoch < current.leaderEpoch) {
    return new KafkaError(
      ErrorCode.FENCED_LEADER_EPOCH,
      `partition ${topic}-${partition} is at leader epoch ${current.leaderEpoch}, above ${next.leaderEpoch}`,
    );
  }
  return undefined;
}

function cachedTopic(kv: IKeyValue | undefined): CachedTopic | undefined {
  const stored = kv === undefined ? undefined : parseJson<StoredTopic>(kv.value.toString());
  if (kv === undefined || stored === undefined) return undefined;
  return { stored, createRevision: Number(kv.create_revision), modRevision: Number(kv.mod_revision) };
}

function topicExists(name: string): KafkaError {
  return new KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${name}' already exists.`);
}

function unknownTopic(name: string): KafkaError {
  return new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${name}'`);
}

function unknownPartition(topic: string, partition: number): KafkaError {
  return new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown partition ${topic}-${partition}`);
}

function casExhausted(what: string): KafkaError {
  return new KafkaError(ErrorCode.REQUEST_TIMED_OUT, `${what} kept changing under concurrent writers; retry`);
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** The end of the key range holding every key that starts with `prefix`. */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] = end[end.length - 1]! + 1;
  return end;
}

function put(key: string, value: string, lease?: string): IRequestOp {
  return {
    request_put: { key: Buffer.from(key), value: Buffer.from(value), ...(lease === undefined ? {} : { lease }) },
  };
}

function get(key: string): IRequestOp {
  return { request_range: { key: Buffer.from(key) } };
}

function del(key: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(key) } };
}

function delPrefix(prefix: string): IRequestOp {
  const key = Buffer.from(prefix);
  return { request_delete_range: { key, range_end: prefixEnd(key) } };
}

/** The key's create revision equals `revision` (0: the key does not exist). */
function cmpCreate(key: string, revision: number): ICompare {
  return { key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: revision };
}

function cmpMod(key: string, revision: number): ICompare {
  return { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: revision };
}

/** The key read by the `index`th operation of the branch a transaction ran, if it exists. */
function rangeKv(res: ITxnResponse, index: number): IKeyValue | undefined {
  return res.responses[index]?.response_range?.kvs[0];
}

/** A stand-in for a key that a reload found gone (only its key and revision are read). */
function deletedKv(key: string, revision: number): IKeyValue {
  const r = String(revision);
  return {
    key: Buffer.from(key),
    create_revision: '0',
    mod_revision: r,
    version: '0',
    value: Buffer.alloc(0),
    lease: '0',
  };
}
