/**
 * Moved to src/config/broker-config.ts (the settings table is src/config/settings.ts); this
 * re-export keeps importers that have not moved yet working.
 */
export * from './config/broker-config.ts';
