/**
 * Composition root: builds the services (metadata store, storage engine, topic manager),
 * registers one handler per API key, starts the listeners. `startBroker` is also the embedding
 * API: `const broker = await startBroker(); ... await broker.close()`.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { type BrokerConfig, type ConfigSources, loadBrokerConfig } from './broker-config.ts';
import { groupCoordinatorConfigFrom } from './coordinator/group/group-config.ts';
import { GroupCoordinatorService } from './coordinator/group/group-coordinator-service.ts';
import { ProducerIdManager } from './coordinator/txn/producer-id-manager.ts';
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
import { describeConfigsHandler } from './handlers/032-describe-configs.ts';
import { alterConfigsHandler } from './handlers/033-alter-configs.ts';
import { describeLogDirsHandler } from './handlers/035-describe-log-dirs.ts';
import { createPartitionsHandler } from './handlers/037-create-partitions.ts';
import { deleteGroupsHandler } from './handlers/042-delete-groups.ts';
import { incrementalAlterConfigsHandler } from './handlers/044-incremental-alter-configs.ts';
import { offsetDeleteHandler } from './handlers/047-offset-delete.ts';
import { describeClusterHandler } from './handlers/060-describe-cluster.ts';
import { describeProducersHandler } from './handlers/061-describe-producers.ts';
import { consumerGroupHeartbeatHandler } from './handlers/068-consumer-group-heartbeat.ts';
import { consumerGroupDescribeHandler } from './handlers/069-consumer-group-describe.ts';
import { describeTopicPartitionsHandler } from './handlers/075-describe-topic-partitions.ts';
import type { BrokerServices } from './handlers/broker-services.ts';
import { RequestDispatcher } from './handlers/dispatcher.ts';
import { FetchSessionCache } from './handlers/fetch-session-cache.ts';
import type { ApiHandler } from './handlers/handler.ts';
import { PartitionLogService } from './log-service.ts';
import { ConfigManager } from './metadata/config-manager.ts';
import { LocalMetadataStore } from './metadata/local-metadata-store.ts';
import { TopicManager } from './metadata/topic-manager.ts';
import type { RequestMetrics } from './network/request-metrics.ts';
import { DEFAULT_CONNECTION_LIMITS, type NetworkStats, SocketServer } from './network/socket-server.ts';
import { apiKeyInfo } from './protocol/messages/api-keys.ts';
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
  incrementalAlterConfigsHandler,
  describeClusterHandler,
  deleteRecordsHandler,
  initProducerIdHandler,
  offsetForLeaderEpochHandler,
  describeLogDirsHandler,
  describeProducersHandler,
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
}

export interface RunningBroker {
  /** `host:port` of the first listener, for clients' bootstrap servers. */
  readonly bootstrap: string;
  readonly config: BrokerConfig;
  readonly dataDir: string;
  /** Per-API request timings (Kafka's TotalTimeMs / LocalTimeMs), since start or the last reset. */
  readonly requestMetrics: RequestMetrics;
  /** Bytes the network layer holds for clients now (requests, unparsed bytes, unwritten responses). */
  networkStats(): NetworkStats;
  close(): Promise<void>;
}

/**
 * Starts a broker. Embedded use (tests): listens on 127.0.0.1 port 0 in a temporary directory
 * unless told otherwise.
 */
export async function startBroker(options: StartBrokerOptions = {}): Promise<RunningBroker> {
  const temporary = options.temporary ?? options.dataDir === undefined;
  const dataDir = temporary ? await mkdtemp(join(tmpdir(), 'samsa-')) : options.dataDir;
  const { config, unknownKeys } = loadBrokerConfig({
    ...options,
    dataDir,
    // Embedded brokers listen on a free port unless a listener is configured.
    defaultListen: options.defaultListen ?? ['127.0.0.1:0'],
  });
  const log = options.logger ?? pino({ level: options.logLevel ?? 'warn' });
  if (unknownKeys.length > 0)
    log.warn({ keys: unknownKeys }, `unknown configuration keys ignored: ${unknownKeys.join(', ')}`);

  // Held for the broker's lifetime: a second broker on this directory refuses to start.
  let lock: DataDirectoryLock | undefined;
  try {
    await mkdir(config.dataDir, { recursive: true });
    lock = await lockDataDirectory(config.dataDir);
  } catch (err) {
    if (temporary) await rm(config.dataDir, { recursive: true, force: true });
    throw err;
  }
  try {
    return await startLockedBroker(config, log, temporary, lock);
  } catch (err) {
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
): Promise<RunningBroker> {
  const store = await LocalMetadataStore.open(config.dataDir);
  const logs = await PartitionLogService.open(config, log, (name) => store.topic(name)?.configs);
  const configs = new ConfigManager(store, config.properties, (t) => logs.updateConfig(t));
  const topics = new TopicManager(
    store,
    logs,
    () => 1,
    () => configs.brokerLogDefaults(),
  );
  logs.setTopicConfigs((t) => configs.logConfig(t));
  await logs.openAll(store.topics());
  const groups = new GroupCoordinatorService({
    topics,
    logs,
    config: groupCoordinatorConfigFrom(config.properties),
    clock: { now: () => Date.now() },
    logger: log,
  });

  let advertised = config.advertised;
  let dispatcher: RequestDispatcher | undefined;
  const services: BrokerServices = {
    nodeId: config.nodeId,
    clusterId: store.clusterId,
    rack: config.rack,
    advertisedListener: () => advertised!,
    supportedApis: () =>
      (dispatcher?.registered() ?? []).map((h) => ({
        apiKey: h.apiKey,
        minVersion: h.minVersion,
        maxVersion: h.maxVersion,
      })),
    topics,
    logs,
    configs,
    groups,
    producerIds: new ProducerIdManager(store),
    fetchSessions: new FetchSessionCache(
      Number(config.properties['max.incremental.fetch.session.cache.slots'] ?? 1000),
    ),
    autoCreateTopicsEnable: config.autoCreateTopicsEnable,
    defaultPartitions: config.numPartitions,
    defaultReplicationFactor: config.defaultReplicationFactor,
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
  const bound = await server.listen(config.listeners);
  // Loads __consumer_offsets in the background; group requests answer
  // COORDINATOR_LOAD_IN_PROGRESS until it is done, as in Kafka.
  groups.start().catch(() => undefined);
  const first = bound[0]!;
  advertised ??= { host: first.host === '0.0.0.0' || first.host === '::' ? '127.0.0.1' : first.host, port: first.port };

  let closed = false;
  return {
    bootstrap: `${advertised.host}:${advertised.port}`,
    config,
    dataDir: config.dataDir,
    requestMetrics: server.requestMetrics,
    networkStats: () => server.stats(),
    async close() {
      if (closed) return;
      closed = true;
      logs.stopWaiting();
      await groups.close();
      await server.close();
      await logs.close();
      await lock.release();
      if (temporary) await rm(config.dataDir, { recursive: true, force: true });
    },
  };
}
