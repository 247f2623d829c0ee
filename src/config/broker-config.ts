/**
 * Broker configuration: Kafka's server.properties names where they mean the same thing,
 * plus command-line flags layered on top (flags > --override > --config file > defaults).
 * The keys, types, defaults and validators are the table of settings.ts; unknown keys are
 * reported (a warning names them); invalid values are errors.
 */
import { readFileSync } from 'node:fs';
import { isLogConfigName, LOG_CONFIG_DEFS, logConfigDefaultsFromBroker } from '../storage/log-config.ts';
import { ConfigError } from './config-error.ts';
import { isBrokerSettingKey, type TypedSettings, typedSettingsFrom } from './settings.ts';

export { ConfigError } from './config-error.ts';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * The broker's configuration: the typed settings of settings.ts (nodeId, dataDir,
 * autoCreateTopicsEnable, numPartitions, ...), the listeners, and every property as given.
 */
export interface BrokerConfig extends TypedSettings {
  listeners: HostPort[];
  advertised: HostPort | undefined;
  /** Every property as given (for DescribeConfigs and the storage engine's log.* settings). */
  properties: Record<string, string>;
}

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
    (k) => !isBrokerSettingKey(k) && !BROKER_LOG_KEYS.has(k) && !isLogConfigName(k),
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
  const flags: Partial<TypedSettings> = {};
  if (sources.nodeId !== undefined) flags.nodeId = sources.nodeId;
  if (sources.dataDir !== undefined) flags.dataDir = sources.dataDir;
  return {
    unknownKeys,
    config: {
      ...typedSettingsFrom(props, flags),
      listeners,
      advertised,
      properties: props,
    },
  };
}
