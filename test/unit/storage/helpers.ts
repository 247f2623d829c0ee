/** Shared helpers for the storage tests: temp dirs, batch builders, log readers. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { iterateBatches } from '../../../src/protocol/records/iterate-batches.ts';
import { decodeRecordsSync, type Record as KafkaRecord } from '../../../src/protocol/records/record.ts';
import type { PartitionLog } from '../../../src/storage/partition-log.ts';

const closers = new WeakMap<TestContext, Array<() => Promise<unknown> | unknown>>();

/**
 * A temp dir removed after the test, once every closer registered with `onCleanup` has run
 * (in reverse order; node:test runs `t.after` hooks first-in first-out, which would remove the
 * dir under still-open logs).
 */
export async function tempDir(t: TestContext, prefix = 'samsa-storage-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  if (!closers.has(t)) {
    const list: Array<() => Promise<unknown> | unknown> = [];
    closers.set(t, list);
    t.after(async () => {
      for (const fn of list.reverse()) await fn();
    });
  }
  onCleanup(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Registers `fn` to run after the test, before the temp dirs created earlier are removed. */
export function onCleanup(t: TestContext, fn: () => Promise<unknown> | unknown): void {
  let list = closers.get(t);
  if (!list) {
    list = [];
    closers.set(t, list);
    const l = list;
    t.after(async () => {
      for (const f of l.reverse()) await f();
    });
  }
  list.push(fn);
}

export interface SimpleRecord {
  key?: string | null;
  value: string | null;
  timestamp?: number;
}

/** An uncompressed batch of records (base offset 0: the log assigns offsets). */
export function batch(records: readonly SimpleRecord[], timestamp = Date.now()): Buffer {
  return buildRecordBatchSync({
    records: records.map((r) => ({
      key: r.key === undefined || r.key === null ? null : Buffer.from(r.key),
      value: r.value === null ? null : Buffer.from(r.value),
      timestamp: BigInt(r.timestamp ?? timestamp),
    })),
  });
}

/** A batch of `count` records with values `${prefix}-${i}`, each `size` bytes or so. */
export function valuesBatch(prefix: string, count: number, timestamp = Date.now(), key?: string): Buffer {
  const recs: SimpleRecord[] = [];
  for (let i = 0; i < count; i++) recs.push({ key: key ?? null, value: `${prefix}-${i}`, timestamp });
  return batch(recs, timestamp);
}

export function decodeAll(records: Buffer): KafkaRecord[] {
  const out: KafkaRecord[] = [];
  for (const { offset, size } of iterateBatches(records)) {
    out.push(...decodeRecordsSync(records.subarray(offset, offset + size)));
  }
  return out;
}

/** Reads the whole log from logStartOffset to the bound, returning every record. */
export async function readAll(
  log: PartitionLog,
  isolation: 'logEnd' | 'highWatermark' = 'logEnd',
  from?: bigint,
): Promise<KafkaRecord[]> {
  const out: KafkaRecord[] = [];
  let offset = from ?? log.logStartOffset;
  const end = isolation === 'logEnd' ? log.logEndOffset : log.highWatermark;
  while (offset < end) {
    const r = await log.read(offset, 1 << 20, { isolation });
    if (r.records.length === 0) break;
    const recs = decodeAll(r.records).filter((x) => x.offset >= offset);
    out.push(...recs);
    const batches = [...iterateBatches(r.records)];
    const last = batches.at(-1)!;
    offset = last.header.baseOffset + BigInt(last.header.lastOffsetDelta) + 1n;
  }
  return out;
}

export function str(b: Buffer | null): string | null {
  return b === null ? null : b.toString();
}
