/** Samsa's public API: embed a real broker (for example in a test suite). */
export { type RunningBroker, type StartBrokerOptions, startBroker } from './broker.ts';
