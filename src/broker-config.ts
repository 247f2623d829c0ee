/**
 * Broker configuration: Kafka's server.properties names where they mean the same thing,
 * plus command-line flags layered on top (flags > --override > --config file > defaults).
 * Unknown keys are reported (a warning names them); invalid values are errors.
 */
import { readFileSync } from 'node:fs';
import { isLogConfigName, LOG_CONFIG_DEFS, logConfigDefaultsFromBroker } from './storage/log-config.ts';

export interface HostPort {
  host: string;
  port: number;
}

export interface BrokerConfig {
  nodeId: number;
  listeners: HostPort[];
  advertised: HostPort | undefined;
  dataDir: string;
  autoCreateTopicsEnable: boolean;
  numPartitions: number;
  defaultReplicationFactor: number;
  socketRequestMaxBytes: number;
  connectionsMaxIdleMs: number;
  /** samsa.client.log.interval.ms: at most one line per client host per interval for what a client causes. */
  clientLogIntervalMs: number;
  /** queued.max.request.bytes: request bytes the broker holds before it reads no new frame (-1: no bound). */
  queuedMaxRequestBytes: number;
  /** samsa.queued.max.response.bytes: unwritten response bytes before no request is dispatched (-1: no bound). */
  queuedMaxResponseBytes: number;
  rack: string | null;
  /** transaction.max.timeout.ms (Kafka's default 15 minutes). */
  transactionMaxTimeoutMs: number;
  /** samsa.max.broker.partitions: partitions of all topics together (a bound against one client's request). */
  maxBrokerPartitions: number;
  /** samsa.internal.topic.changes.enable: clients may delete internal topics or add partitions to them. */
  internalTopicChangesEnable: boolean;
  /** Every property as given (for DescribeConfigs and the storage engine's log.* settings). */
  properties: Record<string, string>;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Broker keys Samsa understands besides the log.* ones the storage engine validates. */
const BROKER_KEYS = new Set([
  'node.id',
  'broker.id',
  'listeners',
  'advertised.listeners',
  'log.dirs',
  'log.dir',
  'auto.create.topics.enable',
  'num.partitions',
  'default.replication.factor',
  'socket.request.max.bytes',
  'connections.max.idle.ms',
  'broker.rack',
  'log.flush.interval.messages',
  'log.flush.interval.ms',
  'log.flush.scheduler.interval.ms',
  'log.flush.offset.checkpoint.interval.ms',
  'log.retention.hours',
  'log.retention.minutes',
  'log.roll.hours',
  'log.roll.jitter.hours',
  'log.retention.check.interval.ms',
  'log.cleaner.enable',
  'log.cleaner.backoff.ms',
  'num.io.threads',
  'num.network.threads',
  'num.recovery.threads.per.data.dir',
  'offsets.topic.replication.factor',
  'transaction.state.log.replication.factor',
  'transaction.state.log.min.isr',
  'group.initial.rebalance.delay.ms',
  // Group coordinator (src/coordinator/group/group-config.ts)
  'group.min.session.timeout.ms',
  'group.max.session.timeout.ms',
  'group.max.size',
  'group.consumer.session.timeout.ms',
  'group.consumer.heartbeat.interval.ms',
  'group.consumer.max.size',
  'group.consumer.assignors',
  'offsets.topic.num.partitions',
  'offsets.retention.minutes',
  'offsets.retention.check.interval.ms',
  'offset.metadata.max.bytes',
  'process.roles',
  'controller.quorum.voters',
  'controller.listener.names',
  'inter.broker.listener.name',
  'listener.security.protocol.map',
  'socket.send.buffer.bytes',
  'socket.receive.buffer.bytes',
  'max.incremental.fetch.session.cache.slots',
  'producer.id.expiration.ms',
  'transactional.id.expiration.ms',
  'transaction.max.timeout.ms',
  'offsets.topic.num.partitions',
  'offsets.retention.minutes',
  'group.max.size',
  'group.min.session.timeout.ms',
  'group.max.session.timeout.ms',
  // Samsa's own storage settings (src/storage/log-config.ts, LogManagerSettings)
  'samsa.log.max.open.segment.files',
  'samsa.log.inline.write.max.bytes',
  'samsa.log.reserve.ahead.bytes',
  // Samsa's own network settings (src/network/socket-server.ts)
  'samsa.client.log.interval.ms',
  'queued.max.request.bytes',
  'samsa.queued.max.response.bytes',
  // Samsa's own limits (src/metadata/topic-manager.ts)
  'samsa.max.broker.partitions',
  'samsa.internal.topic.changes.enable',
]);
const BROKER_LOG_KEYS = new Set(LOG_CONFIG_DEFS.map((d) => d.brokerName));

/** Parses a Java-properties style file: `key=value` or `key: value`, `#`/`!` comments. */
export function parseProperties(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let pending = '';
  for (const rawLine of text.split(/\r?\n/)) {
    let line = pending + rawLine.trimStart();
    pending = '';
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    if (line.endsWith('\\')) {
      pending = line.slice(0, -1);
      continue;
    }
    line = line.trimEnd();
    const m = /^([^=:\s]+)\s*[=:\s]\s*(.*)$/.exec(line);
    if (m === null) out[line] = '';
    else out[m[1]!] = m[2]!;
  }
  return out;
}

/** Kafka's default listener.security.protocol.map. */
const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'];

/**
 * The security protocol of a listener `NAME://host:port` (through listener.security.protocol.map
 * when given, as in Kafka). Only PLAINTEXT is served yet: anything else would silently be served
 * in plaintext to clients that expect TLS or SASL, so it is refused.
 */
function checkPlaintext(text: string, what: string, protocolMap: string | undefined): void {
  const m = /^([A-Za-z0-9_]+):\/\//.exec(text.trim());
  if (m === null) return;
  const name = m[1]!.toUpperCase();
  const mapped = new Map<string, string>();
  for (const entry of (protocolMap ?? '').split(',')) {
    const [k, v] = entry.split(':').map((x) => x.trim().toUpperCase());
    if (k && v) mapped.set(k, v);
  }
  const protocol = mapped.get(name) ?? (SECURITY_PROTOCOLS.includes(name) ? name : undefined);
  if (protocol === undefined) {
    throw new ConfigError(
      `${what}: listener name ${name} has no security protocol; map it in listener.security.protocol.map (e.g. ${name}:PLAINTEXT)`,
    );
  }
  if (protocol !== 'PLAINTEXT') {
    throw new ConfigError(
      `${what}: '${text.trim()}' uses ${protocol}, which Samsa does not serve yet (TLS and SASL are planned); use a PLAINTEXT listener`,
    );
  }
}

export function parseHostPort(text: string, what: string): HostPort {
  // Accept Kafka's listener syntax too: PLAINTEXT://host:port
  const stripped = text.replace(/^[A-Za-z_]+:\/\//, '');
  const m = /^(.*):(\d+)$/.exec(stripped);
  if (m === null) throw new ConfigError(`${what}: '${text}' is not HOST:PORT`);
  const port = Number(m[2]);
  if (port > 65535) throw new ConfigError(`${what}: port ${port} is out of range`);
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
  return { host: host === '' ? '0.0.0.0' : host, port };
}

function intValue(props: Record<string, string>, key: string, fallback: number, min: number): number {
  const raw = props[key];
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${key}: '${raw}' is not an integer`);
  const n = Number(raw.trim());
  if (n < min) throw new ConfigError(`${key}: ${n} must be at least ${min}`);
  return n;
}

function boolValue(props: Record<string, string>, key: string, fallback: boolean): boolean {
  const raw = props[key];
  if (raw === undefined) return fallback;
  const v = raw.trim().toLowerCase();
  if (v !== 'true' && v !== 'false') throw new ConfigError(`${key}: '${raw}' is not true or false`);
  return v === 'true';
}

export interface ConfigSources {
  configFile?: string | undefined;
  overrides?: Record<string, string> | undefined;
  listen?: string[] | undefined;
  advertise?: string | undefined;
  dataDir?: string | undefined;
  nodeId?: number | undefined;
  /** Listeners when neither the flags nor the properties name any (CLI: 127.0.0.1:9092). */
  defaultListen?: string[] | undefined;
}

export interface LoadedConfig {
  config: BrokerConfig;
  unknownKeys: string[];
}

export function loadBrokerConfig(sources: ConfigSources): LoadedConfig {
  let props: Record<string, string> = {};
  if (sources.configFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(sources.configFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${sources.configFile}: ${(err as Error).message}`);
    }
    props = parseProperties(text);
  }
  props = { ...props, ...sources.overrides };
  const unknownKeys = Object.keys(props).filter(
    (k) => !BROKER_KEYS.has(k) && !BROKER_LOG_KEYS.has(k) && !isLogConfigName(k),
  );
  try {
    logConfigDefaultsFromBroker(props);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }

  const protocolMap = props['listener.security.protocol.map'];
  for (const l of sources.listen ?? []) checkPlaintext(l, '--listen', protocolMap);
  for (const l of props.listeners?.split(',') ?? []) checkPlaintext(l, 'listeners', protocolMap);
  if (sources.advertise !== undefined) checkPlaintext(sources.advertise, '--advertise', protocolMap);
  for (const l of props['advertised.listeners']?.split(',') ?? [])
    checkPlaintext(l, 'advertised.listeners', protocolMap);
  const listeners =
    sources.listen !== undefined && sources.listen.length > 0
      ? sources.listen.map((l) => parseHostPort(l, '--listen'))
      : props.listeners !== undefined
        ? props.listeners.split(',').map((l) => parseHostPort(l.trim(), 'listeners'))
        : (sources.defaultListen ?? ['127.0.0.1:9092']).map((l) => parseHostPort(l, 'default listener'));
  const advertisedText = sources.advertise ?? props['advertised.listeners']?.split(',')[0];
  const advertised =
    advertisedText !== undefined ? parseHostPort(advertisedText.trim(), 'advertised listener') : undefined;
  const nodeId = sources.nodeId ?? intValue(props, 'node.id', intValue(props, 'broker.id', 1, 0), 0);
  const dataDir = sources.dataDir ?? props['log.dirs']?.split(',')[0]?.trim() ?? props['log.dir'] ?? './data';

  return {
    unknownKeys,
    config: {
      nodeId,
      listeners,
      advertised,
      dataDir,
      autoCreateTopicsEnable: boolValue(props, 'auto.create.topics.enable', true),
      numPartitions: intValue(props, 'num.partitions', 1, 1),
      defaultReplicationFactor: intValue(props, 'default.replication.factor', 1, 1),
      socketRequestMaxBytes: intValue(props, 'socket.request.max.bytes', 104857600, 1),
      connectionsMaxIdleMs: intValue(props, 'connections.max.idle.ms', 600000, 1),
      clientLogIntervalMs: intValue(props, 'samsa.client.log.interval.ms', 10000, 0),
      // As in Kafka, 0 or below means no bound (Kafka's default is -1; Samsa's is 256 MiB).
      queuedMaxRequestBytes: Math.max(-1, intValue(props, 'queued.max.request.bytes', 268435456, -1) || -1),
      queuedMaxResponseBytes: Math.max(-1, intValue(props, 'samsa.queued.max.response.bytes', 268435456, -1) || -1),
      rack: props['broker.rack'] ?? null,
      transactionMaxTimeoutMs: intValue(props, 'transaction.max.timeout.ms', 900_000, 1),
      maxBrokerPartitions: intValue(props, 'samsa.max.broker.partitions', 100_000, 1),
      internalTopicChangesEnable: boolValue(props, 'samsa.internal.topic.changes.enable', false),
      properties: props,
    },
  };
}
