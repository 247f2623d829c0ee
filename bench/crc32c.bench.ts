/**
 * CRC-32C and record batch throughput: `node bench/crc32c.bench.ts`.
 * Prints MB/s (10^6 bytes per second) for
 *   - crc32c over 1 MiB buffers,
 *   - building an uncompressed 1 MiB batch of 1 KiB records (size, encode, CRC),
 *   - verifying it (header walk + CRC, what Produce validation does), and
 *   - decoding its records (not on the broker's hot path; for reference).
 */
import { randomFillSync } from 'node:crypto';
import {
  buildRecordBatchSync,
  crc32c,
  decodeRecordsSync,
  iterateBatches,
  type RecordInput,
  verifyBatchCrc,
} from '../src/protocol/records/index.ts';

const MIB = 1024 * 1024;
const MIN_SECONDS = 1;

/** Runs `fn` (which processes `bytes` bytes) repeatedly for at least MIN_SECONDS; returns MB/s. */
function measure(bytes: number, fn: () => void): number {
  for (let i = 0; i < 5; i++) fn(); // warm up the JIT
  let iterations = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < MIN_SECONDS) {
    for (let i = 0; i < 10; i++) fn();
    iterations += 10;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  return (bytes * iterations) / elapsed / 1e6;
}

function report(name: string, mbPerSecond: number): void {
  console.log(`${name.padEnd(52)} ${mbPerSecond.toFixed(0).padStart(8)} MB/s`);
}

const buffer = randomFillSync(Buffer.allocUnsafe(MIB));
let sink = 0;
report(
  'crc32c, 1 MiB buffers',
  measure(MIB, () => (sink ^= crc32c(buffer))),
);

const value = randomFillSync(Buffer.allocUnsafe(1024));
const records: RecordInput[] = Array.from({ length: MIB / 1024 }, (_, i) => ({
  key: Buffer.from(`key-${i}`),
  value,
  timestamp: 1_700_000_000_000n + BigInt(i),
}));
const batch = buildRecordBatchSync({ records });
const batchBytes = batch.length;

report(
  `build batch, ${records.length} x 1 KiB records (uncompressed)`,
  measure(batchBytes, () => {
    sink ^= buildRecordBatchSync({ records }).length;
  }),
);
report(
  'verify batch (verifyBatchCrc)',
  measure(batchBytes, () => {
    sink ^= verifyBatchCrc(batch) ? 1 : 0;
  }),
);
report(
  'walk + validate + CRC (iterateBatches)',
  measure(batchBytes, () => {
    for (const entry of iterateBatches(batch)) sink ^= entry.size;
  }),
);
report(
  'decode records (decodeRecordsSync, with CRC)',
  measure(batchBytes, () => {
    sink ^= decodeRecordsSync(batch).length;
  }),
);
console.log(`(batch size ${batchBytes} bytes; node ${process.version}; checksum sink ${sink & 1})`);
