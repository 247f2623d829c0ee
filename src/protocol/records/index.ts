export * from './batch-header.ts';
export * from './builder.ts';
export * from './compression.ts';
export * from './control-record.ts';
export * from './crc32c.ts';
export * from './iterate-batches.ts';
export * from './record.ts';
