/** Samsa's public API: embed a real broker (for example in a test suite). */
export { BrokerStartError, type RunningBroker, type StartBrokerOptions, startBroker } from './broker.ts';
// What a failed start rejects with besides BrokerStartError: a bad option or value, and a data
// directory another broker holds.
export { ConfigError } from './config/config-error.ts';
export { DataDirectoryLockedError } from './storage/data-dir-lock.ts';
