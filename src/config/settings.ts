/**
 * The broker's settings, one table: each row names a server.properties key (Kafka's name where it
 * means the same thing), its type, default, validator and what it does. Parsing, validation, the
 * unknown-key warning and the typed part of BrokerConfig all come from this table; the topic
 * defaults (`log.*` names of LOG_CONFIG_DEFS) are validated by the storage engine's log-config.
 */
import { ConfigError } from './config-error.ts';
import { parseMetadataUrl } from './metadata-url.ts';

export type SettingType = 'int' | 'long' | 'boolean' | 'string' | 'list' | 'password';

/** A key Samsa understands. */
export interface SettingDef {
  /** The server.properties name. */
  readonly key: string;
  readonly type: SettingType;
  /** The default as Kafka writes it in server.properties (null: none). */
  readonly defaultText: string | null;
  readonly doc: string;
}

/** A setting with a field of the typed BrokerConfig: its value is parsed and validated at load. */
export interface TypedSetting<T> extends SettingDef {
  /** Older names read when `key` is not set (Kafka's aliases, e.g. broker.id for node.id). */
  readonly aliases: readonly string[];
  readonly defaultValue: T;
  /** Parses and validates a value given under `name` (the key or an alias); throws ConfigError. */
  parse(raw: string, name: string): T;
}

interface IntOptions {
  readonly min: number;
  readonly aliases?: readonly string[];
  readonly type?: 'int' | 'long';
  /** Applied to the validated number (e.g. Kafka's "0 or below means no bound"). */
  readonly map?: (n: number) => number;
}

function parseInteger(raw: string, name: string, min: number): number {
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name}: '${raw}' is not an integer`);
  const n = Number(raw.trim());
  if (n < min) throw new ConfigError(`${name}: ${n} must be at least ${min}`);
  return n;
}

function intSetting(key: string, defaultValue: number, doc: string, o: IntOptions): TypedSetting<number> {
  const map = o.map ?? ((n: number) => n);
  return {
    key,
    type: o.type ?? 'int',
    defaultText: String(defaultValue),
    doc,
    aliases: o.aliases ?? [],
    defaultValue: map(defaultValue),
    parse: (raw, name) => map(parseInteger(raw, name, o.min)),
  };
}

function boolSetting(key: string, defaultValue: boolean, doc: string): TypedSetting<boolean> {
  return {
    key,
    type: 'boolean',
    defaultText: String(defaultValue),
    doc,
    aliases: [],
    defaultValue,
    parse: (raw, name) => {
      const v = raw.trim().toLowerCase();
      if (v !== 'true' && v !== 'false') throw new ConfigError(`${name}: '${raw}' is not true or false`);
      return v === 'true';
    },
  };
}

function optionalStringSetting(key: string, doc: string): TypedSetting<string | null> {
  return { key, type: 'string', defaultText: null, doc, aliases: [], defaultValue: null, parse: (raw) => raw };
}

/** As in Kafka, 0 or below means no bound (-1). */
const noBoundAtZero = (n: number): number => Math.max(-1, n || -1);

/** The settings with a field of BrokerConfig, by field name. */
export const TYPED_SETTINGS = {
  nodeId: intSetting('node.id', 1, 'The id of this broker (broker.id is the older name; --node-id overrides).', {
    min: 0,
    aliases: ['broker.id'],
  }),
  dataDir: {
    key: 'log.dirs',
    type: 'list',
    defaultText: './data',
    doc: 'The data directory: the first of log.dirs, else log.dir (--data-dir overrides). Samsa uses one directory.',
    aliases: ['log.dir'],
    defaultValue: './data',
    parse: (raw: string, name: string) => (name === 'log.dirs' ? raw.split(',')[0]!.trim() : raw),
  } satisfies TypedSetting<string>,
  autoCreateTopicsEnable: boolSetting(
    'auto.create.topics.enable',
    true,
    'Metadata and Produce requests for an unknown topic create it.',
  ),
  numPartitions: intSetting('num.partitions', 1, 'Partitions of an automatically created topic.', { min: 1 }),
  defaultReplicationFactor: intSetting(
    'default.replication.factor',
    1,
    'Replication factor of an automatically created topic.',
    { min: 1 },
  ),
  socketRequestMaxBytes: intSetting('socket.request.max.bytes', 104857600, 'The largest request frame accepted.', {
    min: 1,
  }),
  connectionsMaxIdleMs: intSetting('connections.max.idle.ms', 600000, 'Idle connections are closed after this.', {
    min: 1,
    type: 'long',
  }),
  clientLogIntervalMs: intSetting(
    'samsa.client.log.interval.ms',
    10000,
    'At most one log line per client host per interval for what a client causes.',
    { min: 0, type: 'long' },
  ),
  queuedMaxRequestBytes: intSetting(
    'queued.max.request.bytes',
    268435456,
    'Request bytes the broker holds before it reads no new frame; 0 or -1: no bound (Kafka: -1; Samsa: 256 MiB).',
    { min: -1, type: 'long', map: noBoundAtZero },
  ),
  queuedMaxResponseBytes: intSetting(
    'samsa.queued.max.response.bytes',
    268435456,
    'Unwritten response bytes before no request is dispatched; 0 or -1: no bound.',
    { min: -1, type: 'long', map: noBoundAtZero },
  ),
  rack: optionalStringSetting('broker.rack', 'The rack of this broker, given to clients in metadata.'),
  transactionMaxTimeoutMs: intSetting(
    'transaction.max.timeout.ms',
    900_000,
    'The longest transaction timeout a producer may ask for (Kafka: 15 minutes).',
    { min: 1 },
  ),
  maxBrokerPartitions: intSetting(
    'samsa.max.broker.partitions',
    100_000,
    "Partitions of all topics together (a bound against one client's request).",
    { min: 1 },
  ),
  maxIncrementalFetchSessionCacheSlots: intSetting(
    'max.incremental.fetch.session.cache.slots',
    1000,
    'Incremental fetch sessions (KIP-227) the broker keeps.',
    { min: 0 },
  ),
  metadataUrl: {
    ...optionalStringSetting(
      'samsa.metadata.url',
      'etcd://HOST:PORT[,HOST:PORT...][/PREFIX]: the cluster metadata on etcd (--metadata overrides); unset: a single node with its metadata in the data directory.',
    ),
    parse: (raw: string, name: string) => {
      parseMetadataUrl(raw, name); // a bad URL fails at start, in one line
      return raw.trim();
    },
  } satisfies TypedSetting<string | null>,
  brokerSessionTimeoutMs: intSetting(
    'broker.session.timeout.ms',
    9000,
    'A broker whose registration lease is not renewed for this long is gone (its etcd lease TTL, in whole seconds).',
    { min: 1000 },
  ),
  brokerHeartbeatIntervalMs: intSetting(
    'broker.heartbeat.interval.ms',
    2000,
    'How often a broker renews its registration lease.',
    { min: 100 },
  ),
  autoLeaderRebalanceEnable: boolSetting(
    'auto.leader.rebalance.enable',
    true,
    'The controller moves leadership back to the preferred (first) replica when it is live and in sync.',
  ),
  uncleanLeaderElectionEnable: boolSetting(
    'unclean.leader.election.enable',
    false,
    'A replica outside the ISR may become leader when no in-sync replica is live (data may be lost).',
  ),
  internalTopicChangesEnable: boolSetting(
    'samsa.internal.topic.changes.enable',
    false,
    'Clients may delete internal topics or add partitions to them.',
  ),
} as const;

export type TypedSettings = {
  -readonly [F in keyof typeof TYPED_SETTINGS]: (typeof TYPED_SETTINGS)[F]['defaultValue'] extends infer V
    ? V extends string
      ? string
      : V extends number
        ? number
        : V extends boolean
          ? boolean
          : V
    : never;
};

function known(key: string, type: SettingType, defaultText: string | null, doc: string): SettingDef {
  return { key, type, defaultText, doc };
}

const GROUP = 'Read by the group coordinator (src/coordinator/group/group-config.ts).';
const STORAGE = 'Read by the storage engine (src/storage/log-config.ts, LogManagerSettings).';
const REPLICATION = 'Read by a cluster member (src/replication/, src/broker.ts).';
const TXN = 'Read by the transaction coordinator (src/coordinator/txn/transaction-coordinator.ts).';
const ACCEPTED = 'Accepted for server.properties compatibility; no effect in a single Samsa broker.';

/**
 * Keys without a field of BrokerConfig: read from `properties` by the listeners, the storage
 * engine, the group coordinator or the producer state, or accepted from Kafka's server.properties
 * without effect here. Listed so that they are not reported as unknown.
 */
export const OTHER_SETTINGS: readonly SettingDef[] = [
  known('listeners', 'list', null, 'Listener addresses, Kafka syntax NAME://HOST:PORT (--listen overrides).'),
  known('advertised.listeners', 'list', null, 'The address given to clients in metadata (--advertise overrides).'),
  known('listener.security.protocol.map', 'list', null, 'Security protocol of each listener name.'),
  known('log.flush.interval.messages', 'long', '9223372036854775807', STORAGE),
  known('log.flush.interval.ms', 'long', null, STORAGE),
  known('log.flush.scheduler.interval.ms', 'long', '1000', STORAGE),
  known('log.flush.offset.checkpoint.interval.ms', 'int', '60000', STORAGE),
  known('log.retention.hours', 'int', '168', STORAGE),
  known('log.retention.minutes', 'int', null, STORAGE),
  known('log.roll.hours', 'int', '168', STORAGE),
  known('log.roll.jitter.hours', 'int', '0', STORAGE),
  known('log.retention.check.interval.ms', 'long', '300000', STORAGE),
  known('log.cleaner.enable', 'boolean', 'true', STORAGE),
  known('log.cleaner.backoff.ms', 'long', '15000', STORAGE),
  known('samsa.log.max.open.segment.files', 'int', '4096', STORAGE),
  known('samsa.log.inline.write.max.bytes', 'int', '1048576', STORAGE),
  known('samsa.log.reserve.ahead.bytes', 'long', '67108864', STORAGE),
  known('group.initial.rebalance.delay.ms', 'int', '3000', GROUP),
  known('group.min.session.timeout.ms', 'int', '6000', GROUP),
  known('group.max.session.timeout.ms', 'int', '1800000', GROUP),
  known('group.max.size', 'int', '2147483647', GROUP),
  known('group.consumer.session.timeout.ms', 'int', '45000', GROUP),
  known('group.consumer.heartbeat.interval.ms', 'int', '5000', GROUP),
  known('group.consumer.max.size', 'int', '2147483647', GROUP),
  known('group.consumer.assignors', 'list', 'uniform,range', GROUP),
  known('offsets.topic.num.partitions', 'int', '50', GROUP),
  known('offsets.retention.minutes', 'int', '10080', GROUP),
  known('offsets.retention.check.interval.ms', 'long', '600000', GROUP),
  known('offset.metadata.max.bytes', 'int', '4096', GROUP),
  known('producer.id.expiration.ms', 'int', '86400000', 'Producer state of an idle producer id is dropped after this.'),
  known('transactional.id.expiration.ms', 'int', '604800000', TXN),
  known('transaction.state.log.num.partitions', 'int', '50', TXN),
  known('transaction.state.log.segment.bytes', 'int', '104857600', TXN),
  known('transaction.abort.timed.out.transaction.cleanup.interval.ms', 'int', '10000', TXN),
  known('transaction.remove.expired.transaction.cleanup.interval.ms', 'int', '3600000', TXN),
  known('num.io.threads', 'int', '8', ACCEPTED),
  known('num.network.threads', 'int', '3', ACCEPTED),
  known('num.recovery.threads.per.data.dir', 'int', '1', ACCEPTED),
  known('offsets.topic.replication.factor', 'int', '3', REPLICATION),
  known('replica.lag.time.max.ms', 'long', '30000', REPLICATION),
  known('replica.fetch.wait.max.ms', 'int', '500', REPLICATION),
  known('replica.fetch.max.bytes', 'int', '1048576', REPLICATION),
  known('replica.fetch.response.max.bytes', 'int', '10485760', REPLICATION),
  known('replica.fetch.backoff.ms', 'int', '1000', REPLICATION),
  known('replica.selector.class', 'string', null, REPLICATION),
  known('transaction.state.log.replication.factor', 'int', '3', TXN),
  known('transaction.state.log.min.isr', 'int', '2', TXN),
  known('process.roles', 'list', null, ACCEPTED),
  known('controller.quorum.voters', 'list', null, ACCEPTED),
  known('controller.listener.names', 'list', null, ACCEPTED),
  known('inter.broker.listener.name', 'string', null, ACCEPTED),
  known('socket.send.buffer.bytes', 'int', '102400', ACCEPTED),
  known('socket.receive.buffer.bytes', 'int', '102400', ACCEPTED),
];

/** Every row of the table: the typed settings (with their aliases) and the others. */
export const ALL_SETTINGS: readonly SettingDef[] = [
  ...Object.values(TYPED_SETTINGS).flatMap((s: TypedSetting<unknown>) => [
    s,
    ...s.aliases.map((alias) => ({ ...s, key: alias })),
  ]),
  ...OTHER_SETTINGS,
];

const KNOWN_KEYS: ReadonlySet<string> = new Set(ALL_SETTINGS.map((s) => s.key));

export function isBrokerSettingKey(key: string): boolean {
  return KNOWN_KEYS.has(key);
}

/**
 * The typed settings from properties: each from its key, else its first alias set, else its
 * default. Every name given is validated, aliases first (so a bad broker.id is an error even with
 * node.id set). A field in `given` (a command-line flag) is taken as it is, its keys unread.
 */
export function typedSettingsFrom(
  props: Readonly<Record<string, string>>,
  given: Partial<TypedSettings> = {},
): TypedSettings {
  const out: Record<string, unknown> = {};
  for (const [field, setting] of Object.entries(TYPED_SETTINGS) as [string, TypedSetting<unknown>][]) {
    const flag = (given as Record<string, unknown>)[field];
    if (flag !== undefined) {
      out[field] = flag;
      continue;
    }
    let value: unknown = setting.defaultValue;
    for (const name of [...setting.aliases].reverse().concat(setting.key)) {
      const raw = props[name];
      if (raw !== undefined) value = setting.parse(raw, name);
    }
    out[field] = value;
  }
  return out as TypedSettings;
}
