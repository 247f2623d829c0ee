/**
 * Topic and broker configuration as DescribeConfigs / AlterConfigs / IncrementalAlterConfigs
 * see it: effective values with their source (topic override, dynamic broker default, static
 * server.properties, Kafka default), validated changes persisted in the metadata store and
 * pushed to the live partition logs.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { LOG_CONFIG_DEFS, LogConfig, logConfigDefaultsFromBroker } from '../storage/log-config.ts';
import { isDynamicBrokerKey, isSensitiveBrokerKey } from './dynamic-broker-configs.ts';
import type { MetadataStore, TopicMetadata } from './metadata-store.ts';
import { isInternalTopic } from './topic-manager.ts';

/** Kafka's DescribeConfigsResponse.ConfigSource values. */
export const ConfigSource = {
  UNKNOWN: 0,
  TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
} as const;

/** Kafka's DescribeConfigsResponse.ConfigType values. */
const CONFIG_TYPE: Record<string, number> = { boolean: 1, string: 2, int: 3, long: 5, double: 6, list: 7 };

export interface ConfigEntry {
  name: string;
  value: string | null;
  source: number;
  isDefault: boolean;
  readOnly: boolean;
  /** A secret: its value is never shown (null), as in Kafka. */
  isSensitive: boolean;
  configType: number;
  synonyms: { name: string; value: string | null; source: number }[];
}

export const AlterOp = { SET: 0, DELETE: 1, APPEND: 2, SUBTRACT: 3 } as const;

export interface ConfigChange {
  name: string;
  op: number;
  value: string | null;
}

/**
 * What a change did to a set of overrides: keys set (new or changed, with their new values) and
 * keys removed. `mask`: secrets are shown as '[hidden]'.
 */
export function configDiff(
  before: Readonly<Record<string, string>>,
  after: Readonly<Record<string, string>>,
  mask: (name: string) => boolean = () => false,
): { set: Record<string, string>; removed: string[] } {
  const set: Record<string, string> = {};
  for (const [k, v] of Object.entries(after)) if (before[k] !== v) set[k] = mask(k) ? '[hidden]' : v;
  const removed = Object.keys(before).filter((k) => !(k in after));
  return { set, removed };
}

/** Where config changes are logged (the broker's pino logger). */
export interface ConfigChangeLogger {
  info(obj: object, msg: string): void;
}

export class ConfigManager {
  private readonly store: MetadataStore;
  private readonly staticProps: Readonly<Record<string, string>>;
  private readonly onTopicConfigChange: (topic: TopicMetadata) => void;
  private readonly internalTopicChangesEnable: boolean;
  private readonly logger: ConfigChangeLogger | undefined;

  /** `logger`: one info line per change that alters a topic's or the broker's configs. */
  constructor(
    store: MetadataStore,
    staticProps: Readonly<Record<string, string>>,
    onTopicConfigChange: (topic: TopicMetadata) => void,
    internalTopicChangesEnable = false,
    logger?: ConfigChangeLogger,
  ) {
    this.store = store;
    this.staticProps = staticProps;
    this.onTopicConfigChange = onTopicConfigChange;
    this.internalTopicChangesEnable = internalTopicChangesEnable;
    this.logger = logger;
  }

  /** Broker-level log defaults: dynamic broker configs over server.properties. */
  brokerLogDefaults(): Record<string, string> {
    return logConfigDefaultsFromBroker({ ...this.staticProps, ...this.store.brokerConfigs() });
  }

  logConfig(topic: TopicMetadata): LogConfig {
    return new LogConfig(topic.configs, this.brokerLogDefaults());
  }

  describeTopic(topic: TopicMetadata, keys: readonly string[] | null): ConfigEntry[] {
    const staticDefaults = logConfigDefaultsFromBroker(this.staticProps);
    const dynamicDefaults = logConfigDefaultsFromBroker({ ...this.store.brokerConfigs() });
    const out: ConfigEntry[] = [];
    for (const def of LOG_CONFIG_DEFS) {
      if (keys !== null && !keys.includes(def.name)) continue;
      const synonyms: ConfigEntry['synonyms'] = [];
      const override = topic.configs[def.name];
      if (override !== undefined) synonyms.push({ name: def.name, value: override, source: ConfigSource.TOPIC_CONFIG });
      const dyn = dynamicDefaults[def.name];
      if (dyn !== undefined)
        synonyms.push({ name: def.brokerName, value: dyn, source: ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG });
      const stat = staticDefaults[def.name];
      if (stat !== undefined)
        synonyms.push({ name: def.brokerName, value: stat, source: ConfigSource.STATIC_BROKER_CONFIG });
      synonyms.push({ name: def.brokerName, value: def.defaultValue, source: ConfigSource.DEFAULT_CONFIG });
      const effective = synonyms[0]!;
      out.push({
        name: def.name,
        value: effective.value,
        source: effective.source,
        isDefault: effective.source === ConfigSource.DEFAULT_CONFIG,
        readOnly: false,
        isSensitive: false,
        configType: CONFIG_TYPE[def.type] ?? 0,
        synonyms,
      });
    }
    return out;
  }

  describeBroker(keys: readonly string[] | null): ConfigEntry[] {
    const dynamic = this.store.brokerConfigs();
    const names = new Set([
      ...LOG_CONFIG_DEFS.map((d) => d.brokerName),
      ...Object.keys(this.staticProps),
      ...Object.keys(dynamic),
    ]);
    const out: ConfigEntry[] = [];
    for (const name of [...names].sort()) {
      if (keys !== null && !keys.includes(name)) continue;
      const def = LOG_CONFIG_DEFS.find((d) => d.brokerName === name);
      const synonyms: ConfigEntry['synonyms'] = [];
      if (dynamic[name] !== undefined)
        synonyms.push({ name, value: dynamic[name], source: ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG });
      if (this.staticProps[name] !== undefined)
        synonyms.push({ name, value: this.staticProps[name], source: ConfigSource.STATIC_BROKER_CONFIG });
      if (def !== undefined) synonyms.push({ name, value: def.defaultValue, source: ConfigSource.DEFAULT_CONFIG });
      const effective = synonyms[0];
      if (effective === undefined) continue;
      const isSensitive = isSensitiveBrokerKey(name);
      out.push({
        name,
        value: isSensitive ? null : effective.value,
        source: effective.source,
        isDefault: effective.source === ConfigSource.DEFAULT_CONFIG,
        readOnly: def === undefined && !isDynamicBrokerKey(name),
        isSensitive,
        configType: def !== undefined ? (CONFIG_TYPE[def.type] ?? 0) : 2,
        synonyms: isSensitive ? synonyms.map((s) => ({ ...s, value: null })) : synonyms,
      });
    }
    return out;
  }

  /** Applies changes to a topic's overrides. `replace`: AlterConfigs semantics (unset = removed). */
  async alterTopic(
    topic: TopicMetadata,
    changes: readonly ConfigChange[],
    replace: boolean,
    validateOnly: boolean,
  ): Promise<void> {
    const next = applyChanges(replace ? {} : { ...topic.configs }, changes, (name) => {
      const def = LOG_CONFIG_DEFS.find((d) => d.name === name);
      if (def === undefined) throw new KafkaError(ErrorCode.INVALID_CONFIG, `unknown topic config '${name}'`);
      return def.type === 'list';
    });
    const effective = new LogConfig(next, this.brokerLogDefaults()); // validates
    // The coordinators' state lives in internal topics as compacted records: a delete policy
    // would let retention remove committed offsets and group metadata.
    if (isInternalTopic(topic.name) && !this.internalTopicChangesEnable && (!effective.compact || effective.delete)) {
      throw new KafkaError(
        ErrorCode.INVALID_REQUEST,
        `Topic ${topic.name} is a kafka internal topic: its cleanup.policy must stay compact (samsa.internal.topic.changes.enable allows this)`,
      );
    }
    if (validateOnly) return;
    const before = this.store.topic(topic.name)?.configs ?? topic.configs;
    const updated = await this.store.setTopicConfigs(topic.name, next);
    this.onTopicConfigChange(updated);
    const { set, removed } = configDiff(before, next);
    if (Object.keys(set).length > 0 || removed.length > 0) {
      this.logger?.info(
        { topic: topic.name, keys: [...Object.keys(set), ...removed].sort(), set, removed },
        'topic configs altered',
      );
    }
  }

  /** Dynamic broker configs (the log.* defaults are changeable at runtime, as in Kafka). */
  async alterBroker(changes: readonly ConfigChange[], replace: boolean, validateOnly: boolean): Promise<void> {
    const next = applyChanges(replace ? {} : { ...this.store.brokerConfigs() }, changes, (name) => {
      const def = LOG_CONFIG_DEFS.find((d) => d.brokerName === name);
      if (def === undefined) {
        if (isDynamicBrokerKey(name)) return /(protocols|suites|mechanisms|reporters|providers|rules)$/.test(name);
        throw new KafkaError(ErrorCode.INVALID_CONFIG, `broker config '${name}' cannot be updated dynamically`);
      }
      return def.type === 'list';
    });
    logConfigDefaultsFromBroker({ ...this.staticProps, ...next }); // validates
    if (validateOnly) return;
    const before = { ...this.store.brokerConfigs() };
    await this.store.setBrokerConfigs(next);
    for (const t of this.store.topics()) this.onTopicConfigChange(t);
    const { set, removed } = configDiff(before, next, isSensitiveBrokerKey);
    if (Object.keys(set).length > 0 || removed.length > 0) {
      this.logger?.info({ keys: [...Object.keys(set), ...removed].sort(), set, removed }, 'broker configs altered');
    }
  }
}

function applyChanges(
  current: Record<string, string>,
  changes: readonly ConfigChange[],
  isList: (name: string) => boolean,
): Record<string, string> {
  for (const c of changes) {
    const list = isList(c.name);
    switch (c.op) {
      case AlterOp.SET:
        if (c.value === null) delete current[c.name];
        else current[c.name] = c.value;
        break;
      case AlterOp.DELETE:
        delete current[c.name];
        break;
      case AlterOp.APPEND:
      case AlterOp.SUBTRACT: {
        if (!list) throw new KafkaError(ErrorCode.INVALID_CONFIG, `${c.name} is not a list: cannot APPEND/SUBTRACT`);
        const items = (current[c.name] ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
        const given = (c.value ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
        const result =
          c.op === AlterOp.APPEND
            ? [...items, ...given.filter((g) => !items.includes(g))]
            : items.filter((i) => !given.includes(i));
        current[c.name] = result.join(',');
        break;
      }
      default:
        throw new KafkaError(ErrorCode.INVALID_REQUEST, `unknown config operation ${c.op}`);
    }
  }
  return current;
}
