/**
 * Composition root: builds the services (metadata store, storage engine, topic manager),
 * registers one handler per API key, starts the listeners. `startBroker` is also the embedding
 * API: `const broker = await startBroker(); ... await broker.close()`.
 */
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import { type BrokerMetricsView, BrokerTopicStats, meteredLogService, type Readiness } from './broker-metrics.ts';
import {
  type BrokerConfig,
  ConfigError,
  type ConfigSources,
  type HostPort,
  loadBrokerConfig,
  parseHostPort,
} from './config/broker-config.ts';
import { parseMetadataUrl } from './config/metadata-url.ts';
import { groupCoordinatorConfigFrom } from './coordinator/group/group-config.ts';
import { CONSUMER_OFFSETS_TOPIC, GroupCoordinatorService } from './coordinator/group/group-coordinator-service.ts';
import { ProducerIdManager } from './coordinator/txn/producer-id-manager.ts';
import {
  TRANSACTION_STATE_TOPIC,
  TransactionCoordinator,
  txnCoordinatorConfigFrom,
} from './coordinator/txn/transaction-coordinator.ts';
import { produceHandler } from './handlers/000-produce.ts';
import { fetchHandler } from './handlers/001-fetch.ts';
import { listOffsetsHandler } from './handlers/002-list-offsets.ts';
import { metadataHandler } from './handlers/003-metadata.ts';
import { offsetCommitHandler } from './handlers/008-offset-commit.ts';
import { offsetFetchHandler } from './handlers/009-offset-fetch.ts';
import { findCoordinatorHandler } from './handlers/010-find-coordinator.ts';
import { joinGroupHandler } from './handlers/011-join-group.ts';
import { heartbeatHandler } from './handlers/012-heartbeat.ts';
import { leaveGroupHandler } from './handlers/013-leave-group.ts';
import { syncGroupHandler } from './handlers/014-sync-group.ts';
import { describeGroupsHandler } from './handlers/015-describe-groups.ts';
import { listGroupsHandler } from './handlers/016-list-groups.ts';
import { apiVersionsHandler } from './handlers/018-api-versions.ts';
import { createTopicsHandler } from './handlers/019-create-topics.ts';
import { deleteTopicsHandler } from './handlers/020-delete-topics.ts';
import { deleteRecordsHandler } from './handlers/021-delete-records.ts';
import { initProducerIdHandler } from './handlers/022-init-producer-id.ts';
import { offsetForLeaderEpochHandler } from './handlers/023-offset-for-leader-epoch.ts';
import { addPartitionsToTxnHandler } from './handlers/024-add-partitions-to-txn.ts';
import { addOffsetsToTxnHandler } from './handlers/025-add-offsets-to-txn.ts';
import { endTxnHandler } from './handlers/026-end-txn.ts';
import { writeTxnMarkersHandler } from './handlers/027-write-txn-markers.ts';
import { txnOffsetCommitHandler } from './handlers/028-txn-offset-commit.ts';
import { describeConfigsHandler } from './handlers/032-describe-configs.ts';
import { alterConfigsHandler } from './handlers/033-alter-configs.ts';
import { describeLogDirsHandler } from './handlers/035-describe-log-dirs.ts';
import { createPartitionsHandler } from './handlers/037-create-partitions.ts';
import { deleteGroupsHandler } from './handlers/042-delete-groups.ts';
import { electLeadersHandler } from './handlers/043-elect-leaders.ts';
import { incrementalAlterConfigsHandler } from './handlers/044-incremental-alter-configs.ts';
import { alterPartitionReassignmentsHandler } from './handlers/045-alter-partition-reassignments.ts';
import { listPartitionReassignmentsHandler } from './handlers/046-list-partition-reassignments.ts';
import { offsetDeleteHandler } from './handlers/047-offset-delete.ts';
import { describeClusterHandler } from './handlers/060-describe-cluster.ts';
import { describeProducersHandler } from './handlers/061-describe-producers.ts';
import { describeTransactionsHandler } from './handlers/065-describe-transactions.ts';
import { listTransactionsHandler } from './handlers/066-list-transactions.ts';
import { consumerGroupHeartbeatHandler } from './handlers/068-consumer-group-heartbeat.ts';
import { consumerGroupDescribeHandler } from './handlers/069-consumer-group-describe.ts';
import { describeTopicPartitionsHandler } from './handlers/075-describe-topic-partitions.ts';
import type { BrokerServices } from './handlers/broker-services.ts';
import { RequestDispatcher } from './handlers/dispatcher.ts';
import { FetchSessionCache } from './handlers/fetch-session-cache.ts';
import type { ApiHandler } from './handlers/handler.ts';
import { nonDefaultConfig } from './metadata/config-in-effect.ts';
import { ConfigManager } from './metadata/config-manager.ts';
import { Controller } from './metadata/controller.ts';
import { ControllerChannel } from './metadata/controller-channel.ts';
import { LocalMetadataStore } from './metadata/local-metadata-store.ts';
import { DuplicateBrokerError, type MetadataStore, NO_LEADER, type TopicMetadata } from './metadata/metadata-store.ts';
import { ReassignmentController } from './metadata/reassignment-controller.ts';
import { TopicManager } from './metadata/topic-manager.ts';
import type { RequestMetrics } from './network/request-metrics.ts';
import { DEFAULT_CONNECTION_LIMITS, type NetworkStats, SocketServer } from './network/socket-server.ts';
import { apiKeyInfo } from './protocol/messages/api-keys.ts';
import { ReplicaFetcherManager } from './replication/replica-fetcher.ts';
import { ReplicaManager, type TxnMarkerInput } from './replication/replica-manager.ts';
import { TxnBrokerChannel } from './replication/txn-broker-channel.ts';
import { type DataDirectoryLock, lockDataDirectory } from './storage/data-dir-lock.ts';

const HANDLERS: readonly ApiHandler[] = [
  produceHandler,
  fetchHandler,
  listOffsetsHandler,
  metadataHandler,
  apiVersionsHandler,
  createTopicsHandler,
  deleteTopicsHandler,
  describeConfigsHandler,
  alterConfigsHandler,
  createPartitionsHandler,
  electLeadersHandler,
  alterPartitionReassignmentsHandler,
  listPartitionReassignmentsHandler,
  incrementalAlterConfigsHandler,
  describeClusterHandler,
  deleteRecordsHandler,
  initProducerIdHandler,
  offsetForLeaderEpochHandler,
  describeLogDirsHandler,
  describeProducersHandler,
  addPartitionsToTxnHandler,
  addOffsetsToTxnHandler,
  endTxnHandler,
  writeTxnMarkersHandler,
  txnOffsetCommitHandler,
  describeTransactionsHandler,
  listTransactionsHandler,
  describeTopicPartitionsHandler,
  offsetCommitHandler,
  offsetFetchHandler,
  findCoordinatorHandler,
  joinGroupHandler,
  heartbeatHandler,
  leaveGroupHandler,
  syncGroupHandler,
  describeGroupsHandler,
  listGroupsHandler,
  deleteGroupsHandler,
  offsetDeleteHandler,
  consumerGroupHeartbeatHandler,
  consumerGroupDescribeHandler,
] as unknown as ApiHandler[];

export interface StartBrokerOptions extends ConfigSources {
  /** A fresh temporary data directory, removed on close (the default when no dataDir is given). */
  temporary?: boolean;
  logger?: Logger;
  logLevel?: string;
  /**
   * `HOST:PORT` of the HTTP listener serving /metrics, /health and /ready (port 0: a free port);
   * none when absent or 'none'.
   */
  httpListen?: string;
}

/**
 * The broker cannot start where or how it was told to (the port is in use, the data directory is
 * not a writable directory): the message says what is wrong and what to do, in one line.
 */
export class BrokerStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BrokerStartError';
  }
}

const START_OPTIONS: ReadonlySet<string> = new Set<keyof StartBrokerOptions>([
  'configFile',
  'overrides',
  'listen',
  'advertise',
  'dataDir',
  'nodeId',
  'defaultListen',
  'temporary',
  'logger',
  'logLevel',
  'httpListen',
]);

/** A misspelt option would otherwise be ignored silently (a `datadir` would run in a temporary directory). */
function checkOptionNames(options: object): void {
  for (const name of Object.keys(options)) {
    if (START_OPTIONS.has(name)) continue;
    const like = [...START_OPTIONS].find((known) => known.toLowerCase() === name.toLowerCase());
    throw new ConfigError(
      `startBroker: unknown option '${name}'${like === undefined ? '' : ` (did you mean '${like}'?)`}; ` +
        `the options are ${[...START_OPTIONS].join(', ')}`,
    );
  }
}

/**
 * The kernel's pseudo file systems hold no data, and mkdir there fails in odd ways (Node's
 * recursive mkdir under /proc never returns).
 */
const VIRTUAL_FILE_SYSTEMS = ['/proc', '/sys'];

/**
 * Makes `dir` (and its parents) and checks that it is a directory this process can write to.
 * Not `mkdir(dir, { recursive: true })`: under /proc that loops forever, mkdir answering ENOENT
 * for a parent that exists.
 */
async function prepareDataDirectory(dir: string): Promise<void> {
  const absolute = resolve(dir);
  const fs = VIRTUAL_FILE_SYSTEMS.find((root) => absolute === root || absolute.startsWith(`${root}/`));
  if (fs !== undefined)
    throw new BrokerStartError(
      `data directory ${dir} is under ${fs}, a virtual file system that cannot hold data: give --data-dir (dataDir) a directory on a disk`,
    );
  const make = async (path: string): Promise<void> => {
    try {
      await mkdir(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return;
      if (code !== 'ENOENT' || dirname(path) === path) throw err;
      await make(dirname(path));
      await mkdir(path).catch((again: NodeJS.ErrnoException) => {
        if (again.code !== 'EEXIST') throw again;
      });
    }
  };
  try {
    await make(absolute);
    if (!(await stat(absolute)).isDirectory())
      throw new BrokerStartError(
        `data directory ${dir} is a file, not a directory: give --data-dir (dataDir) a directory`,
      );
    await access(absolute, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw dataDirectoryError(err, dir);
  }
}

/** A file system error about the data directory as one line saying what to do. */
function dataDirectoryError(err: unknown, dir: string): unknown {
  if (err instanceof BrokerStartError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const why: Record<string, string> = {
    EACCES: 'is not writable by this user',
    EPERM: 'is not writable by this user',
    EROFS: 'is on a read-only file system',
    ENOTDIR: 'has a file where a parent directory should be',
    ENOSPC: 'is on a full disk',
    EDQUOT: 'is on a disk whose quota is used up',
    ENOENT: 'cannot be created there',
  };
  const reason = code === undefined ? undefined : why[code];
  if (reason === undefined) return err;
  return new BrokerStartError(
    `data directory ${dir} ${reason} (${code}): give --data-dir (dataDir) a directory this user can write to`,
  );
}

/** A listener that cannot be opened, as one line saying what to do (`option` names the flag that set it). */
function listenError(err: unknown, option = '--listen'): unknown {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = `${e.address?.includes(':') ? `[${e.address}]` : e.address}:${e.port}${option === '--listen' ? '' : ` (${option})`}`;
  switch (e.code) {
    case 'EADDRINUSE':
      return new BrokerStartError(
        `cannot listen on ${where}: the port is in use (another broker or program listens there); stop it or give ${option} another port`,
      );
    case 'EADDRNOTAVAIL':
      return new BrokerStartError(
        `cannot listen on ${where}: ${e.address} is not an address of this machine; give ${option} one of its addresses, or 0.0.0.0`,
      );
    case 'EACCES':
      return new BrokerStartError(
        `cannot listen on ${where}: permission denied (ports below 1024 need privileges); give ${option} a port above 1023`,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new BrokerStartError(
        `cannot listen on ${where}: the host name does not resolve; give ${option} an address`,
      );
    default:
      return err;
  }
}

/**
 * The address clients are told to connect to when none is configured: the listener's, or for a
 * listener on every interface (0.0.0.0, ::) the host's name, as Kafka advertises its canonical
 * host name for a listener without a host.
 */
function defaultAdvertised(listener: HostPort): HostPort {
  const any = listener.host === '0.0.0.0' || listener.host === '::' || listener.host === '';
  return { host: any ? hostname() : listener.host, port: listener.port };
}

export interface RunningBroker {
  /** `host:port` advertised for the first listener, for clients' bootstrap servers. */
  readonly bootstrap: string;
  /** The address given to clients in metadata. */
  readonly advertised: HostPort;
  /** The bound listeners (a port 0 resolved to the real port). */
  readonly listeners: readonly HostPort[];
  readonly config: BrokerConfig;
  readonly dataDir: string;
  /** Per-API request timings (Kafka's TotalTimeMs / LocalTimeMs), since start or the last reset. */
  readonly requestMetrics: RequestMetrics;
  /** Bytes the network layer holds for clients now (requests, unparsed bytes, unwritten responses). */
  networkStats(): NetworkStats;
  /** The bound HTTP listener (/metrics, /health, /ready), when `httpListen` asked for one. */
  readonly httpAddress: HostPort | undefined;
  close(): Promise<void>;
}

/**
 * Starts a broker. Embedded use (tests): listens on 127.0.0.1 port 0 in a temporary directory
 * unless told otherwise.
 */
export async function startBroker(options: StartBrokerOptions = {}): Promise<RunningBroker> {
  checkOptionNames(options);
  const httpListen =
    options.httpListen === undefined || options.httpListen === 'none'
      ? undefined
      : parseHostPort(options.httpListen, 'httpListen');
  const temporary = options.temporary ?? options.dataDir === undefined;
  // Validated before the temporary directory exists: a bad value leaves nothing behind.
  const { config, unknownKeys } = loadBrokerConfig({
    ...options,
    ...(temporary ? { dataDir: '(temporary)' } : {}),
    // Embedded brokers listen on a free port unless a listener is configured.
    defaultListen: options.defaultListen ?? ['127.0.0.1:0'],
  });
  if (temporary) config.dataDir = await mkdtemp(join(tmpdir(), 'samsa-'));
  const log = options.logger ?? pino({ level: options.logLevel ?? 'warn' });
  if (unknownKeys.length > 0)
    log.warn({ keys: unknownKeys }, `unknown configuration keys ignored: ${unknownKeys.join(', ')}`);

  // Held for the broker's lifetime: a second broker on this directory refuses to start.
  let lock: DataDirectoryLock | undefined;
  try {
    await prepareDataDirectory(config.dataDir);
    lock = await lockDataDirectory(config.dataDir);
  } catch (err) {
    if (temporary) await rm(config.dataDir, { recursive: true, force: true });
    throw dataDirectoryError(err, config.dataDir);
  }
  // What was opened so far, closed again (last first) if the start fails.
  const opened: Array<() => Promise<void>> = [];
  try {
    return await startLockedBroker(config, log, temporary, lock, opened, unknownKeys, httpListen);
  } catch (err) {
    for (const close of opened.reverse()) await close().catch(() => undefined);
    await lock.release();
    if (temporary) await rm(config.dataDir, { recursive: true, force: true });
    throw err;
  }
}

async function startLockedBroker(
  config: BrokerConfig,
  log: Logger,
  temporary: boolean,
  lock: DataDirectoryLock,
  opened: Array<() => Promise<void>>,
  unknownKeys: readonly string[],
  httpListen: HostPort | undefined,
): Promise<RunningBroker> {
  // What /ready and /metrics see, filled in as the services come up.
  const stage: BrokerStage = { listening: false, closing: false, groupsFailed: false };
  const topicStats = new BrokerTopicStats();
  // Loading fastify and prom-client takes longer (~0.1 s) than the rest of a start on an empty
  // data directory, so the HTTP listener opens once the Kafka listeners are bound, or during the
  // recovery of the logs if that takes longer than HTTP_EARLY_MS: then /health answers and /ready
  // says what the broker is doing while it recovers, as an orchestrator's probes need.
  let openHttp: (open: boolean) => void = () => undefined;
  const httpStarting =
    httpListen === undefined
      ? undefined
      : new Promise<boolean>((resolve) => {
          openHttp = resolve;
        }).then((open) =>
          open ? openHttpListener(httpListen, metricsView(config.nodeId, stage, topicStats)) : undefined,
        );
  const early = httpStarting === undefined ? undefined : setTimeout(() => openHttp(true), HTTP_EARLY_MS);
  if (httpStarting !== undefined) {
    // Handled now: a failure is reported when awaited below, or swallowed if the start fails first.
    httpStarting.catch(() => undefined);
    opened.push(async () => {
      clearTimeout(early);
      openHttp(false); // not opened yet: never
      await (await httpStarting.catch(() => undefined))?.close();
    });
  }
  // The one place that names a MetadataStore implementation.
  const clusterMember = config.metadataUrl !== null;
  const store: MetadataStore =
    config.metadataUrl === null
      ? await LocalMetadataStore.open(config.dataDir, config.nodeId).catch((err: unknown) => {
          throw dataDirectoryError(err, config.dataDir);
        })
      : await openClusterMetadata(config, config.metadataUrl, log);
  opened.push(() => store.close());
  log.info(
    {
      nodeId: config.nodeId,
      listeners: config.listeners.map((l) => `${l.host}:${l.port}`),
      ...(config.advertised === undefined ? {} : { advertised: `${config.advertised.host}:${config.advertised.port}` }),
      dataDir: config.dataDir,
      config: nonDefaultConfig(config.properties, unknownKeys),
      dynamicConfig: nonDefaultConfig(store.brokerConfigs()),
    },
    'configuration in effect (keys not listed are at their defaults)',
  );
  const logs = await ReplicaManager.open({
    nodeId: config.nodeId,
    dataDir: config.dataDir,
    properties: config.properties,
    logger: log,
    topicOverrides: (name) => store.topic(name)?.configs,
    clusterMember,
    ...(clusterMember
      ? {
          registrationLive: () => store.registrationLive(),
          replication: {
            replicaLagTimeMaxMs: Number(config.properties['replica.lag.time.max.ms'] ?? 30_000),
            isLiveBroker: (id) => store.broker(id) !== undefined,
            // KIP-392: Kafka's RackAwareReplicaSelector is the selector there is.
            ...(/RackAwareReplicaSelector$/.test(config.properties['replica.selector.class'] ?? '')
              ? { rackOf: (id: number) => store.broker(id)?.rack }
              : {}),
            alterPartition: async (topic, partition, expectedPartitionEpoch, next) => {
              await store.updatePartitionState(topic, partition, expectedPartitionEpoch, next);
            },
            // Follower fetches go to the leaders' advertised listeners.
            fetchers: new ReplicaFetcherManager({
              nodeId: config.nodeId,
              brokerEndpoint: (id) => store.broker(id),
              logger: log,
              maxWaitMs: Number(config.properties['replica.fetch.wait.max.ms'] ?? 500),
              maxBytesPerPartition: Number(config.properties['replica.fetch.max.bytes'] ?? 1_048_576),
              responseMaxBytes: Number(config.properties['replica.fetch.response.max.bytes'] ?? 10_485_760),
              backoffMs: Number(config.properties['replica.fetch.backoff.ms'] ?? 1000),
            }),
          },
        }
      : {}),
  });
  opened.push(() => logs.close());
  // Leadership and leader epochs reach the partitions through the metadata's change feed; a
  // cluster member's partitions (their logs) come and go with it too.
  const unsubscribePartitionStates = store.subscribe((change) => {
    if (!clusterMember) {
      if (change.type === 'partition-state') logs.applyPartitionState(change.topic, change.partition, change.state);
      return;
    }
    switch (change.type) {
      case 'partition-state':
      case 'topic-deleted':
        logs.onMetadataChange(change);
        break;
      // Config changes made through another broker (this broker's own are applied as it makes them).
      case 'topic-configs':
        logs.updateConfig(change.topic);
        break;
      case 'broker-configs':
        for (const t of store.topics()) logs.updateConfig(t);
        break;
      case 'registration':
        if (!change.live) {
          log.warn(
            { nodeId: config.nodeId },
            'registration in the cluster metadata lapsed: leading no partition until registered again',
          );
          logs.resignAll();
        } else {
          log.info({ nodeId: config.nodeId }, 'registered in the cluster metadata again');
          for (const t of store.topics())
            for (let p = 0; p < t.partitions; p++) {
              const state = store.partitionState(t.name, p);
              if (state !== undefined)
                logs.onMetadataChange({ type: 'partition-state', topic: t, partition: p, state });
            }
        }
        break;
      default:
        break;
    }
  });
  opened.push(async () => unsubscribePartitionStates());
  const configs = new ConfigManager(
    store,
    config.properties,
    (t) => logs.updateConfig(t),
    config.internalTopicChangesEnable,
    log,
  );
  const controller = clusterMember
    ? new Controller(store, config.nodeId, {
        autoLeaderRebalanceEnable: config.autoLeaderRebalanceEnable,
        // The topic's override, else the broker's (static or dynamic) default.
        uncleanLeaderElection: (t) => configs.logConfig(t).uncleanLeaderElectionEnable,
        logger: log,
      })
    : undefined;
  const channel = clusterMember ? new ControllerChannel(store, config.nodeId) : undefined;
  if (channel !== undefined) opened.push(async () => channel.close());
  // ElectLeaders and KIP-455 reassignments (a single node is its own controller).
  const reassignments = new ReassignmentController(store, {
    isController: () => controller?.active ?? true,
    logger: log,
  });
  const topics = new TopicManager(
    store,
    logs,
    () => 1,
    () => configs.brokerLogDefaults(),
    {
      maxBrokerPartitions: config.maxBrokerPartitions,
      internalTopicChangesEnable: config.internalTopicChangesEnable,
      logger: log,
      cluster:
        controller === undefined || channel === undefined
          ? undefined
          : {
              isController: () => controller.active,
              liveBrokers: () => store.brokers().map((b) => ({ nodeId: b.nodeId, rack: b.rack })),
              channel,
              // Bounded by the live brokers only.
              maxReplicationFactor: Number.MAX_SAFE_INTEGER,
            },
    },
  );
  logs.setTopicConfigs((t) => configs.logConfig(t));
  await logs.openAll(
    store.topics(),
    clusterMember ? (topic, partition) => store.partitionState(topic, partition) : undefined,
  );
  // The coordinators' own writes: trusted (no KIP-890 verification, no client sequences).
  const coordinatorLogs = {
    append: (topic: TopicMetadata, partition: number, records: Buffer, requiredAcks: number) =>
      logs.append(topic, partition, records, requiredAcks, undefined, { origin: 'coordinator' }),
    read: logs.read.bind(logs),
    readToLogEnd: logs.readToLogEnd.bind(logs),
    offsets: logs.offsets.bind(logs),
    appendTxnMarker: (topic: TopicMetadata, partition: number, marker: TxnMarkerInput, requiredAcks: number) =>
      logs.appendTxnMarker(topic, partition, marker, requiredAcks),
  };
  const groups = new GroupCoordinatorService({
    topics,
    logs: coordinatorLogs,
    config: groupCoordinatorConfigFrom(config.properties),
    clock: { now: () => Date.now() },
    logger: log,
    ...(clusterMember
      ? {
          ownership: 'elected' as const,
          // Kafka's offsets.topic.replication.factor (3), as far as there are live brokers.
          offsetsTopicReplicationFactor: () =>
            Math.max(
              1,
              Math.min(Number(config.properties['offsets.topic.replication.factor'] ?? 3), store.brokers().length),
            ),
        }
      : {}),
  });
  opened.push(() => groups.close());
  const producerIds = new ProducerIdManager(store);
  const liveBrokerCap = (configured: number) => Math.max(1, Math.min(configured, store.brokers().length));
  let txnChannel: TxnBrokerChannel | undefined;
  const transactions = new TransactionCoordinator({
    topics,
    logs: coordinatorLogs,
    markers: { writeMarkers: (marker, partitions) => txnChannel!.writeMarkers(marker, partitions) },
    allocateProducerId: () => producerIds.allocateProducerId(),
    config: txnCoordinatorConfigFrom(config.properties),
    logger: log,
    ownership: clusterMember ? 'elected' : 'all',
    // Kafka's transaction.state.log.replication.factor (3), as far as there are live brokers.
    replicationFactor: () =>
      clusterMember ? liveBrokerCap(Number(config.properties['transaction.state.log.replication.factor'] ?? 3)) : 1,
  });
  opened.push(() => transactions.close());
  /** A marker for a partition led here: __consumer_offsets' go through its group coordinator. */
  const writeLocalMarker = async (topic: TopicMetadata, partition: number, marker: TxnMarkerInput) => {
    if (topic.name === CONSUMER_OFFSETS_TOPIC)
      await groups.completeTransaction(
        partition,
        marker.producerId,
        marker.producerEpoch,
        marker.coordinatorEpoch,
        marker.commit,
      );
    else await logs.appendTxnMarker(topic, partition, marker);
  };
  txnChannel = new TxnBrokerChannel({
    localBrokerId: config.nodeId,
    leaderOf: (topic, partition) => {
      if (!clusterMember) return topics.get(topic) === undefined ? undefined : config.nodeId;
      return store.partitionState(topic, partition)?.leader;
    },
    broker: (nodeId) => store.broker(nodeId),
    topic: (name) => topics.get(name),
    writeLocalMarker,
    coordinator: transactions,
  });
  opened.push(async () => txnChannel?.close());
  if (clusterMember) {
    // Each __consumer_offsets / __transaction_state partition led here is a coordinator loaded
    // here (Kafka's onElection / onResignation).
    logs.onLeadershipChange((topic, partition, leader, leaderEpoch) => {
      if (topic === CONSUMER_OFFSETS_TOPIC) {
        if (leader) groups.onElection(partition, leaderEpoch).catch(() => undefined);
        else groups.onResignation(partition, leaderEpoch < 0 ? undefined : leaderEpoch);
      } else if (topic === TRANSACTION_STATE_TOPIC) {
        if (leader) transactions.onElection(partition, leaderEpoch).catch(() => undefined);
        else transactions.onResignation(partition, leaderEpoch < 0 ? undefined : leaderEpoch);
      }
    });
  }

  let advertised = config.advertised;
  let dispatcher: RequestDispatcher | undefined;
  const services: BrokerServices = {
    nodeId: config.nodeId,
    clusterId: store.clusterId,
    rack: config.rack,
    advertisedListener: () => advertised!,
    cluster: {
      // This broker is listed from the moment it listens, before its registration is written.
      brokers: () => {
        const all = store.brokers();
        if (advertised === undefined || all.some((b) => b.nodeId === config.nodeId))
          return all.sort((a, b) => a.nodeId - b.nodeId);
        const self = { nodeId: config.nodeId, host: advertised.host, port: advertised.port, rack: config.rack };
        return [...all, self].sort((a, b) => a.nodeId - b.nodeId);
      },
      broker: (nodeId) =>
        store.broker(nodeId) ??
        (nodeId === config.nodeId && advertised !== undefined
          ? { nodeId, host: advertised.host, port: advertised.port, rack: config.rack }
          : undefined),
      controllerId: () => (clusterMember ? store.controllerId() : config.nodeId),
      partitionState: (topic, partition) => store.partitionState(topic, partition),
    },
    supportedApis: () =>
      (dispatcher?.registered() ?? []).map((h) => ({
        apiKey: h.apiKey,
        minVersion: h.minVersion,
        maxVersion: h.maxVersion,
      })),
    topics,
    logs: meteredLogService(logs, topicStats),
    configs,
    groups,
    partitionAdmin: { controller: reassignments, forward: channel },
    producerIds,
    transactions: { coordinator: transactions, channel: txnChannel, writeLocalMarker },
    fetchSessions: new FetchSessionCache(config.maxIncrementalFetchSessionCacheSlots),
    autoCreateTopicsEnable: config.autoCreateTopicsEnable,
    defaultPartitions: config.numPartitions,
    defaultReplicationFactor: config.defaultReplicationFactor,
    transactionMaxTimeoutMs: config.transactionMaxTimeoutMs,
  };
  for (const h of HANDLERS) {
    const spec = apiKeyInfo(h.apiKey);
    if (spec === undefined || h.maxVersion > spec.maxVersion)
      throw new Error(`handler for ${h.apiKey} exceeds the schema`);
  }
  dispatcher = new RequestDispatcher(HANDLERS, services, log, config.clientLogIntervalMs);
  const server = new SocketServer(
    dispatcher.handleFrame,
    {
      ...DEFAULT_CONNECTION_LIMITS,
      maxFrameBytes: config.socketRequestMaxBytes,
      idleTimeoutMs: config.connectionsMaxIdleMs,
      clientLogIntervalMs: config.clientLogIntervalMs,
      queuedMaxRequestBytes: config.queuedMaxRequestBytes,
      queuedMaxResponseBytes: config.queuedMaxResponseBytes,
      // A Fetch response is as large as the client asks: one Fetch at a time per connection.
      exclusive: (apiKey) => apiKey === 1,
      // A Produce request's bytes are written to the log before its handler returns and are not
      // kept afterwards, so its frame buffer can be reused (API key 0 = Produce).
      recyclable: (frame) => frame.length >= 2 && frame.readInt16BE(0) === 0,
    },
    log,
  );
  opened.push(() => server.close());
  stage.running = {
    topics,
    logs,
    groups,
    transactions,
    server,
    ...(controller === undefined ? {} : { cluster: { store, controller } }),
  };
  const bound = await server.listen(config.listeners).catch((err: unknown) => {
    throw listenError(err);
  });
  stage.listening = true;
  clearTimeout(early);
  openHttp(true);
  const http = await httpStarting;
  // Loads __consumer_offsets in the background; group requests answer
  // COORDINATOR_LOAD_IN_PROGRESS until it is done, as in Kafka.
  groups.start().catch(() => {
    stage.groupsFailed = true;
  });
  transactions.start();
  const first = bound[0]!;
  advertised ??= defaultAdvertised(first);
  await store
    .registerBroker({
      nodeId: config.nodeId,
      host: advertised.host,
      port: advertised.port,
      rack: config.rack,
    })
    .catch((err: unknown) => {
      if (err instanceof DuplicateBrokerError) throw new BrokerStartError(err.message);
      throw err;
    });
  if (controller !== undefined) {
    controller.start();
    opened.push(() => controller.close());
  }
  reassignments.start();
  opened.push(() => reassignments.close());
  stage.advertised = `${advertised.host.includes(':') ? `[${advertised.host}]` : advertised.host}:${advertised.port}`;

  let closed = false;
  return {
    bootstrap: `${advertised.host.includes(':') ? `[${advertised.host}]` : advertised.host}:${advertised.port}`,
    advertised,
    listeners: bound,
    config,
    dataDir: config.dataDir,
    requestMetrics: server.requestMetrics,
    networkStats: () => server.stats(),
    httpAddress: http?.address,
    async close() {
      if (closed) return;
      closed = true;
      stage.closing = true;
      logs.stopWaiting();
      await controller?.close();
      await reassignments.close();
      await groups.close();
      if (clusterMember) {
        // Controlled shutdown: this broker stops leading (clients get NOT_LEADER_OR_FOLLOWER and
        // go to the new leader), then gives up its registration and controllership at once, so
        // the controller elects other in-sync replicas now instead of after the lease expires.
        logs.resignAll();
        await logs.stopFollowing();
        log.info({ nodeId: config.nodeId }, 'controlled shutdown: leadership given up, deregistering');
      }
      await store.close().catch((err: unknown) => log.warn({ err }, 'could not deregister from the cluster metadata'));
      await server.close();
      channel?.close();
      unsubscribePartitionStates();
      await logs.close();
      await http?.close();
      await lock.release();
      if (temporary) await rm(config.dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Opens the cluster metadata on etcd (loaded on demand: a single node never reads the etcd
 * client). The data directory remembers the cluster it belongs to and the incarnation of its last
 * registration (meta.properties, as Kafka's): a restart after kill -9 takes over its own stale
 * registration, and a data directory of another cluster is refused.
 */
async function openClusterMetadata(config: BrokerConfig, url: string, log: Logger): Promise<MetadataStore> {
  const location = parseMetadataUrl(url);
  const meta = await readMetaProperties(config.dataDir);
  const { EtcdMetadataStore } = await import('./metadata/etcd-metadata-store.ts');
  const where = `etcd at ${location.endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',')}`;
  let store: MetadataStore & { readonly incarnationId: string };
  try {
    store = await EtcdMetadataStore.open({
      endpoints: location.endpoints,
      prefix: location.prefix,
      nodeId: config.nodeId,
      sessionTimeoutMs: config.brokerSessionTimeoutMs,
      heartbeatIntervalMs: config.brokerHeartbeatIntervalMs,
      previousIncarnation: meta['samsa.incarnation.id'],
      logger: log,
    });
  } catch (err) {
    throw new BrokerStartError(
      `cannot open the cluster metadata on ${where}${location.prefix === '/samsa' ? '' : ` (prefix ${location.prefix})`}: ${err instanceof Error ? err.message : String(err)}; start etcd there or give --metadata the address of a running one`,
    );
  }
  const known = meta['cluster.id'];
  if (known !== undefined && known !== store.clusterId) {
    await store.close().catch(() => undefined);
    throw new BrokerStartError(
      `data directory ${config.dataDir} belongs to cluster ${known}, but the metadata on ${where} is cluster ${store.clusterId}: give this broker an empty --data-dir, or the --metadata of its own cluster`,
    );
  }
  await writeMetaProperties(config.dataDir, {
    'cluster.id': store.clusterId,
    'node.id': String(config.nodeId),
    'samsa.incarnation.id': store.incarnationId,
  });
  return store;
}

const META_PROPERTIES = 'meta.properties';

async function readMetaProperties(dir: string): Promise<Record<string, string>> {
  const text = await readFile(join(dir, META_PROPERTIES), 'utf8').catch(() => '');
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !line.startsWith('#')) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

async function writeMetaProperties(dir: string, props: Record<string, string>): Promise<void> {
  const path = join(dir, META_PROPERTIES);
  const text = `#Samsa cluster member\n${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

/** A start whose logs take longer than this to recover opens the HTTP listener meanwhile. */
const HTTP_EARLY_MS = 500;

/** Loaded only when enabled: a broker without the HTTP listener reads neither fastify nor prom-client. */
async function openHttpListener(
  address: HostPort,
  view: BrokerMetricsView,
): Promise<{ address: HostPort; close(): Promise<void> }> {
  // The one import of src/admin/ by the composition root (test/unit/layering.test.ts).
  const { startHttpServer } = await import('./admin/http/http-server.ts');
  return startHttpServer(address, view).catch((err: unknown) => {
    throw listenError(err, '--http-listen');
  });
}

/** How far the broker got (for /ready), and the services the metrics read once they exist. */
interface BrokerStage {
  advertised?: string;
  running?: {
    topics: TopicManager;
    logs: ReplicaManager;
    groups: GroupCoordinatorService;
    transactions: TransactionCoordinator;
    server: SocketServer;
    /** A cluster member's metadata store and controller. */
    cluster?: { store: MetadataStore; controller: Controller };
  };
  listening: boolean;
  closing: boolean;
  groupsFailed: boolean;
}

/** The read-only view of the broker that the HTTP listener serves (src/admin/http/). */
function metricsView(nodeId: number, stage: BrokerStage, topicStats: BrokerTopicStats): BrokerMetricsView {
  return {
    nodeId,
    readiness(): Readiness {
      const running = stage.running;
      if (stage.closing) return { ready: false, reason: 'shutting down' };
      if (running === undefined) return { ready: false, reason: 'recovering the partition logs' };
      if (!stage.listening) return { ready: false, reason: 'the Kafka listeners are not bound yet' };
      if (stage.groupsFailed)
        return { ready: false, reason: 'the group coordinator could not load __consumer_offsets (see the log)' };
      if (running.cluster !== undefined && !running.cluster.store.registrationLive())
        return {
          ready: false,
          reason: 'not registered in the cluster metadata (is etcd reachable? see the log)',
        };
      if (!running.groups.loaded)
        return { ready: false, reason: 'the group coordinator is loading __consumer_offsets' };
      if (!running.transactions.loaded)
        return { ready: false, reason: 'the transaction coordinator is loading __transaction_state' };
      return { ready: true };
    },
    topicStats() {
      const topics = stage.running?.topics;
      if (topics !== undefined) topicStats.retainTopics((name) => topics.get(name) !== undefined);
      return topicStats;
    },
    requestMetrics: () => stage.running?.server.requestMetrics,
    networkStats: () => stage.running?.server.stats(),
    topicCount: () => stage.running?.topics.list().length ?? 0,
    partitions() {
      const running = stage.running;
      if (running === undefined) return [];
      const out = [];
      for (const t of running.topics.list()) {
        for (let p = 0; p < t.partitions; p++) {
          try {
            const offsets = running.logs.offsets(t, p);
            out.push({
              topic: t.name,
              partition: p,
              size: running.logs.partitionSize(t, p),
              logStartOffset: offsets.logStartOffset,
              logEndOffset: offsets.logEndOffset,
              highWatermark: offsets.highWatermark,
              offline: running.logs.isOffline(t, p),
              leader: running.logs.isLeader(t, p),
              ...(running.logs.replicaCounts(t, p) ?? { replicas: 1, isr: 1, minIsr: 1 }),
            });
          } catch {
            // A partition whose log is being created or deleted right now: shown next time.
          }
        }
      }
      return out;
    },
    controller() {
      const running = stage.running;
      if (running === undefined)
        return { active: false, globalTopicCount: 0, globalPartitionCount: 0, offlinePartitionCount: 0 };
      const cluster = running.cluster;
      if (cluster === undefined) {
        // A single node is its own controller; a partition is offline when its log directory is.
        let partitions = 0;
        let offline = 0;
        const topics = running.topics.list();
        for (const t of topics) {
          partitions += t.partitions;
          for (let p = 0; p < t.partitions; p++) if (running.logs.isOffline(t, p)) offline++;
        }
        return {
          active: true,
          globalTopicCount: topics.length,
          globalPartitionCount: partitions,
          offlinePartitionCount: offline,
        };
      }
      if (!cluster.controller.active)
        return { active: false, globalTopicCount: 0, globalPartitionCount: 0, offlinePartitionCount: 0 };
      const live = new Set(cluster.store.brokers().map((b) => b.nodeId));
      const topics = cluster.store.topics();
      let partitions = 0;
      let offline = 0;
      for (const t of topics) {
        partitions += t.partitions;
        for (let p = 0; p < t.partitions; p++) {
          const leader = cluster.store.partitionState(t.name, p)?.leader ?? NO_LEADER;
          if (!live.has(leader)) offline++;
        }
      }
      return {
        active: true,
        globalTopicCount: topics.length,
        globalPartitionCount: partitions,
        offlinePartitionCount: offline,
      };
    },
    advertisedAddress: () => stage.advertised,
    groupOffsets: () => (stage.running?.groups.loaded ? stage.running.groups.committedOffsets() : []),
  };
}
