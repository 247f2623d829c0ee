/**
 * Per-topic log configuration with Kafka's names, defaults and validation (Kafka's LogConfig /
 * TopicConfig), plus the broker-wide `log.*` settings that supply the defaults (Kafka's
 * ServerLogConfigs). A `LogConfig` is immutable; changing a topic's config at runtime builds a new
 * one and hands it to the partition logs (`PartitionLog.updateConfig`), which read the current
 * config on every decision.
 *
 * Long values: Kafka's "no limit" default is Long.MAX_VALUE (9223372036854775807). The typed view
 * clamps it to Number.MAX_SAFE_INTEGER, which is just as unreachable for milliseconds, bytes and
 * message counts; the original string is kept for DescribeConfigs.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';

export const LONG_MAX_STRING = '9223372036854775807';
export const INT_MAX = 2147483647;

type ConfigType = 'int' | 'long' | 'double' | 'boolean' | 'string' | 'list';

interface ConfigDef {
  readonly name: string;
  readonly type: ConfigType;
  /** Kafka's default when neither the topic nor the broker sets it. */
  readonly defaultValue: string;
  /** The broker-wide setting that supplies the default (server.properties name). */
  readonly brokerName: string;
  readonly min?: number;
  readonly max?: number;
  readonly allowed?: readonly string[];
}

/** Topic-level configs the storage engine understands, in Kafka's names. */
export const LOG_CONFIG_DEFS: readonly ConfigDef[] = [
  { name: 'segment.bytes', type: 'int', defaultValue: '1073741824', brokerName: 'log.segment.bytes', min: 14 },
  { name: 'segment.ms', type: 'long', defaultValue: '604800000', brokerName: 'log.roll.ms', min: 1 },
  { name: 'segment.jitter.ms', type: 'long', defaultValue: '0', brokerName: 'log.roll.jitter.ms', min: 0 },
  {
    name: 'segment.index.bytes',
    type: 'int',
    defaultValue: '10485760',
    brokerName: 'log.index.size.max.bytes',
    min: 4,
  },
  {
    name: 'index.interval.bytes',
    type: 'int',
    defaultValue: '4096',
    brokerName: 'log.index.interval.bytes',
    min: 0,
  },
  { name: 'retention.ms', type: 'long', defaultValue: '604800000', brokerName: 'log.retention.ms', min: -1 },
  { name: 'retention.bytes', type: 'long', defaultValue: '-1', brokerName: 'log.retention.bytes' },
  {
    name: 'cleanup.policy',
    type: 'list',
    defaultValue: 'delete',
    brokerName: 'log.cleanup.policy',
    allowed: ['delete', 'compact'],
  },
  {
    name: 'delete.retention.ms',
    type: 'long',
    defaultValue: '86400000',
    brokerName: 'log.cleaner.delete.retention.ms',
    min: 0,
  },
  {
    name: 'min.cleanable.dirty.ratio',
    type: 'double',
    defaultValue: '0.5',
    brokerName: 'log.cleaner.min.cleanable.ratio',
    min: 0,
    max: 1,
  },
  {
    name: 'min.compaction.lag.ms',
    type: 'long',
    defaultValue: '0',
    brokerName: 'log.cleaner.min.compaction.lag.ms',
    min: 0,
  },
  {
    name: 'max.compaction.lag.ms',
    type: 'long',
    defaultValue: LONG_MAX_STRING,
    brokerName: 'log.cleaner.max.compaction.lag.ms',
    min: 1,
  },
  {
    name: 'flush.messages',
    type: 'long',
    defaultValue: LONG_MAX_STRING,
    brokerName: 'log.flush.interval.messages',
    min: 1,
  },
  { name: 'flush.ms', type: 'long', defaultValue: LONG_MAX_STRING, brokerName: 'log.flush.interval.ms', min: 0 },
  {
    name: 'message.timestamp.type',
    type: 'string',
    defaultValue: 'CreateTime',
    brokerName: 'log.message.timestamp.type',
    allowed: ['CreateTime', 'LogAppendTime'],
  },
  {
    name: 'message.timestamp.before.max.ms',
    type: 'long',
    defaultValue: LONG_MAX_STRING,
    brokerName: 'log.message.timestamp.before.max.ms',
    min: 0,
  },
  {
    // Kafka 4.0 (KIP-1030) lowered this default from Long.MAX_VALUE to one hour.
    name: 'message.timestamp.after.max.ms',
    type: 'long',
    defaultValue: '3600000',
    brokerName: 'log.message.timestamp.after.max.ms',
    min: 0,
  },
  { name: 'max.message.bytes', type: 'int', defaultValue: '1048588', brokerName: 'message.max.bytes', min: 0 },
  {
    name: 'file.delete.delay.ms',
    type: 'long',
    defaultValue: '60000',
    brokerName: 'log.segment.delete.delay.ms',
    min: 0,
  },
  { name: 'preallocate', type: 'boolean', defaultValue: 'false', brokerName: 'log.preallocate' },
  // Replication: read by the partition leader (acks=all) and the controller (leader election).
  { name: 'min.insync.replicas', type: 'int', defaultValue: '1', brokerName: 'min.insync.replicas', min: 1 },
  {
    name: 'unclean.leader.election.enable',
    type: 'boolean',
    defaultValue: 'false',
    brokerName: 'unclean.leader.election.enable',
  },
  {
    // Stored for DescribeConfigs; Samsa stores batches as produced ('producer') and does not recompress.
    name: 'compression.type',
    type: 'string',
    defaultValue: 'producer',
    brokerName: 'compression.type',
    allowed: ['uncompressed', 'zstd', 'lz4', 'snappy', 'gzip', 'producer'],
  },
];

const DEFS_BY_NAME = new Map(LOG_CONFIG_DEFS.map((d) => [d.name, d]));

export function isLogConfigName(name: string): boolean {
  return DEFS_BY_NAME.has(name);
}

function invalidConfig(message: string): KafkaError {
  return new KafkaError(ErrorCode.INVALID_CONFIG, message);
}

function parseNumber(def: ConfigDef, raw: string): number {
  const text = raw.trim();
  let value: number;
  if (def.type === 'double') {
    value = Number(text);
    if (text === '' || !Number.isFinite(value)) throw invalidConfig(`${def.name}: '${raw}' is not a number`);
  } else {
    if (!/^-?\d+$/.test(text)) throw invalidConfig(`${def.name}: '${raw}' is not an integer`);
    const big = BigInt(text);
    const limit = def.type === 'int' ? 2147483647n : 9223372036854775807n;
    if (big > limit || big < -limit - 1n) throw invalidConfig(`${def.name}: ${raw} is out of range for ${def.type}`);
    value = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
  }
  if (def.min !== undefined && value < def.min) throw invalidConfig(`${def.name}: ${raw} must be at least ${def.min}`);
  if (def.max !== undefined && value > def.max) throw invalidConfig(`${def.name}: ${raw} must be at most ${def.max}`);
  return value;
}

function checkValue(def: ConfigDef, raw: string): void {
  switch (def.type) {
    case 'int':
    case 'long':
    case 'double':
      parseNumber(def, raw);
      return;
    case 'boolean':
      if (!/^(true|false)$/i.test(raw.trim())) throw invalidConfig(`${def.name}: '${raw}' is not a boolean`);
      return;
    case 'string':
      if (def.allowed && !def.allowed.includes(raw.trim())) {
        throw invalidConfig(`${def.name}: '${raw}' is not one of ${def.allowed.join(', ')}`);
      }
      return;
    case 'list': {
      const items = raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      for (const item of items) {
        if (def.allowed && !def.allowed.includes(item)) {
          throw invalidConfig(`${def.name}: '${item}' is not one of ${def.allowed.join(', ')}`);
        }
      }
      return;
    }
  }
}

/**
 * Broker-wide defaults for topic configs, from server properties. Kafka's derived names are
 * honoured with Kafka's precedence: log.roll.ms over log.roll.hours; log.retention.ms over
 * log.retention.minutes over log.retention.hours; log.flush.interval.ms falls back to
 * log.flush.scheduler.interval.ms.
 */
export function logConfigDefaultsFromBroker(props: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const def of LOG_CONFIG_DEFS) {
    const v = props[def.brokerName];
    if (v !== undefined) out[def.name] = v;
  }
  const hoursToMs = (h: string): string => (BigInt(h.trim()) * 3_600_000n).toString();
  const minutesToMs = (m: string): string => (BigInt(m.trim()) * 60_000n).toString();
  if (out['segment.ms'] === undefined && props['log.roll.hours'] !== undefined) {
    out['segment.ms'] = hoursToMs(props['log.roll.hours']);
  }
  if (out['segment.jitter.ms'] === undefined && props['log.roll.jitter.hours'] !== undefined) {
    out['segment.jitter.ms'] = hoursToMs(props['log.roll.jitter.hours']);
  }
  if (out['retention.ms'] === undefined) {
    if (props['log.retention.minutes'] !== undefined) out['retention.ms'] = minutesToMs(props['log.retention.minutes']);
    else if (props['log.retention.hours'] !== undefined) out['retention.ms'] = hoursToMs(props['log.retention.hours']);
  }
  if (out['flush.ms'] === undefined && props['log.flush.scheduler.interval.ms'] !== undefined) {
    out['flush.ms'] = props['log.flush.scheduler.interval.ms'];
  }
  for (const [name, value] of Object.entries(out)) checkValue(DEFS_BY_NAME.get(name)!, value);
  return out;
}

export type TimestampTypeName = 'CreateTime' | 'LogAppendTime';

/** An immutable, validated set of topic configs. */
export class LogConfig {
  /** Effective string values (topic override, else broker default, else Kafka default). */
  readonly values: Readonly<Record<string, string>>;
  /** Names set explicitly on the topic. */
  readonly overrides: Readonly<Record<string, string>>;

  readonly segmentBytes: number;
  readonly segmentMs: number;
  readonly segmentJitterMs: number;
  readonly segmentIndexBytes: number;
  readonly indexIntervalBytes: number;
  readonly retentionMs: number;
  readonly retentionBytes: number;
  readonly compact: boolean;
  readonly delete: boolean;
  readonly deleteRetentionMs: number;
  readonly minCleanableDirtyRatio: number;
  readonly minCompactionLagMs: number;
  readonly maxCompactionLagMs: number;
  readonly flushMessages: number;
  readonly flushMs: number;
  readonly messageTimestampType: TimestampTypeName;
  readonly messageTimestampBeforeMaxMs: number;
  readonly messageTimestampAfterMaxMs: number;
  readonly maxMessageBytes: number;
  readonly fileDeleteDelayMs: number;
  readonly preallocate: boolean;
  readonly minInsyncReplicas: number;
  readonly uncleanLeaderElectionEnable: boolean;
  readonly compressionType: string;

  /**
   * @param overrides topic-level settings (Kafka names); unknown names are rejected.
   * @param brokerDefaults output of logConfigDefaultsFromBroker, or topic-named defaults.
   * Throws KafkaError(INVALID_CONFIG) for an unknown name or a bad value.
   */
  constructor(overrides: Readonly<Record<string, string>> = {}, brokerDefaults: Readonly<Record<string, string>> = {}) {
    const values: Record<string, string> = {};
    for (const def of LOG_CONFIG_DEFS) values[def.name] = brokerDefaults[def.name] ?? def.defaultValue;
    for (const [name, value] of Object.entries(overrides)) {
      const def = DEFS_BY_NAME.get(name);
      if (!def) throw invalidConfig(`unknown topic config '${name}'`);
      values[name] = value;
    }
    for (const def of LOG_CONFIG_DEFS) checkValue(def, values[def.name]!);
    this.values = Object.freeze(values);
    this.overrides = Object.freeze({ ...overrides });

    const num = (name: string): number => parseNumber(DEFS_BY_NAME.get(name)!, values[name]!);
    this.segmentBytes = num('segment.bytes');
    this.segmentMs = num('segment.ms');
    this.segmentJitterMs = num('segment.jitter.ms');
    this.segmentIndexBytes = num('segment.index.bytes');
    this.indexIntervalBytes = num('index.interval.bytes');
    this.retentionMs = num('retention.ms');
    this.retentionBytes = num('retention.bytes');
    const policies = values['cleanup.policy']!.split(',').map((s) => s.trim());
    this.compact = policies.includes('compact');
    this.delete = policies.includes('delete');
    this.deleteRetentionMs = num('delete.retention.ms');
    this.minCleanableDirtyRatio = num('min.cleanable.dirty.ratio');
    this.minCompactionLagMs = num('min.compaction.lag.ms');
    this.maxCompactionLagMs = num('max.compaction.lag.ms');
    this.flushMessages = num('flush.messages');
    this.flushMs = num('flush.ms');
    this.messageTimestampType = values['message.timestamp.type'] as TimestampTypeName;
    this.messageTimestampBeforeMaxMs = num('message.timestamp.before.max.ms');
    this.messageTimestampAfterMaxMs = num('message.timestamp.after.max.ms');
    this.maxMessageBytes = num('max.message.bytes');
    this.fileDeleteDelayMs = num('file.delete.delay.ms');
    this.preallocate = values.preallocate!.trim().toLowerCase() === 'true';
    this.minInsyncReplicas = num('min.insync.replicas');
    this.uncleanLeaderElectionEnable = values['unclean.leader.election.enable']!.trim().toLowerCase() === 'true';
    this.compressionType = values['compression.type']!.trim();
  }

  /** A new config with `changes` applied on top of this one's overrides (null removes an override). */
  with(
    changes: Readonly<Record<string, string | null>>,
    brokerDefaults: Readonly<Record<string, string>> = {},
  ): LogConfig {
    const next: Record<string, string> = { ...this.overrides };
    for (const [k, v] of Object.entries(changes)) {
      if (v === null) delete next[k];
      else next[k] = v;
    }
    return new LogConfig(next, brokerDefaults);
  }

  /** Whether flush.messages / flush.ms ask for fsyncs at all. */
  get flushesOnMessages(): boolean {
    return this.flushMessages < Number.MAX_SAFE_INTEGER;
  }
}

/** Broker-wide storage settings that are not per-topic (Kafka's ServerLogConfigs / CleanerConfig). */
export interface LogManagerSettings {
  /** log.flush.scheduler.interval.ms: how often logs are checked against flush.ms. */
  flushSchedulerIntervalMs: number;
  /** log.flush.offset.checkpoint.interval.ms */
  flushOffsetCheckpointIntervalMs: number;
  /** log.flush.start.offset.checkpoint.interval.ms */
  flushStartOffsetCheckpointIntervalMs: number;
  /** log.retention.check.interval.ms */
  retentionCheckIntervalMs: number;
  /** log.cleaner.enable */
  cleanerEnable: boolean;
  /** log.cleaner.backoff.ms: sleep between cleaner passes when there is nothing to clean. */
  cleanerBackoffMs: number;
  /** log.cleaner.dedupe.buffer.size: caps the keys one cleaning pass holds in memory. */
  cleanerDedupeBufferSize: number;
  /** Bound on open segment file handles across all logs (Samsa-specific; Kafka relies on the OS limit). */
  maxOpenSegmentFiles: number;
  /**
   * samsa.log.inline.write.max.bytes: appends up to this size are blocking pwrites on the event
   * loop rather than thread-pool writes (see inline-writes.ts); 0 sends every write to the pool.
   */
  inlineWriteMaxBytes: number;
  /**
   * samsa.log.reserve.ahead.bytes: disk blocks reserved ahead of each active segment's end
   * (block-reservation.ts), up to this much; 0 turns reservation off.
   */
  reserveAheadBytes: number;
}

export const DEFAULT_LOG_MANAGER_SETTINGS: Readonly<LogManagerSettings> = Object.freeze({
  flushSchedulerIntervalMs: 1000,
  flushOffsetCheckpointIntervalMs: 60_000,
  flushStartOffsetCheckpointIntervalMs: 60_000,
  retentionCheckIntervalMs: 300_000,
  cleanerEnable: true,
  cleanerBackoffMs: 15_000,
  cleanerDedupeBufferSize: 134_217_728,
  maxOpenSegmentFiles: 4096,
  inlineWriteMaxBytes: 1024 * 1024,
  reserveAheadBytes: 64 * 1024 * 1024,
});

export function logManagerSettingsFromBroker(props: Readonly<Record<string, string>>): LogManagerSettings {
  const n = (name: string, fallback: number): number => {
    const v = props[name];
    if (v === undefined) return fallback;
    const parsed = Number(v);
    if (!Number.isFinite(parsed) || parsed < 0) throw invalidConfig(`${name}: '${v}' is not a non-negative number`);
    return Math.min(parsed, Number.MAX_SAFE_INTEGER);
  };
  const d = DEFAULT_LOG_MANAGER_SETTINGS;
  return {
    flushSchedulerIntervalMs: n('log.flush.scheduler.interval.ms', d.flushSchedulerIntervalMs),
    flushOffsetCheckpointIntervalMs: n('log.flush.offset.checkpoint.interval.ms', d.flushOffsetCheckpointIntervalMs),
    flushStartOffsetCheckpointIntervalMs: n(
      'log.flush.start.offset.checkpoint.interval.ms',
      d.flushStartOffsetCheckpointIntervalMs,
    ),
    retentionCheckIntervalMs: n('log.retention.check.interval.ms', d.retentionCheckIntervalMs),
    cleanerEnable: (props['log.cleaner.enable'] ?? 'true').trim().toLowerCase() === 'true',
    cleanerBackoffMs: n('log.cleaner.backoff.ms', d.cleanerBackoffMs),
    cleanerDedupeBufferSize: n('log.cleaner.dedupe.buffer.size', d.cleanerDedupeBufferSize),
    maxOpenSegmentFiles: n('samsa.log.max.open.segment.files', d.maxOpenSegmentFiles),
    inlineWriteMaxBytes: n('samsa.log.inline.write.max.bytes', d.inlineWriteMaxBytes),
    reserveAheadBytes: n('samsa.log.reserve.ahead.bytes', d.reserveAheadBytes),
  };
}
