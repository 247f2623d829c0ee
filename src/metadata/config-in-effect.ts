/**
 * The start-up line saying which configuration the broker runs with: every key set (in the
 * config file, by --override, or dynamically through IncrementalAlterConfigs and kept in the
 * metadata store) whose value is not the default, secrets masked. Keys left at their defaults
 * are not listed; unknown keys are not in effect (a warning names them).
 */
import { LOG_CONFIG_DEFS } from '../storage/log-config.ts';
import { isSensitiveBrokerKey } from './dynamic-broker-configs.ts';

export const HIDDEN_VALUE = '[hidden]';

const LOG_DEFAULTS: ReadonlyMap<string, string> = new Map(LOG_CONFIG_DEFS.map((d) => [d.brokerName, d.defaultValue]));

/** The keys of `props` not at their default value, secrets masked, sorted by name. */
export function nonDefaultConfig(
  props: Readonly<Record<string, string>>,
  ignored: readonly string[] = [],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(props).sort()) {
    if (ignored.includes(name)) continue;
    const value = props[name]!;
    if (LOG_DEFAULTS.get(name) === value) continue;
    out[name] = isSensitiveBrokerKey(name) ? HIDDEN_VALUE : value;
  }
  return out;
}
