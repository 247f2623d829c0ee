/**
 * Storage benchmark: append throughput of PartitionLog for 1 KiB records in 16 KiB and 1 MiB
 * batches under each flush policy, sequential read throughput, and the raw disk figure from
 * `dd if=/dev/zero of=FILE bs=1M count=N conv=fdatasync` measured in the same run.
 *
 *   node bench/storage.bench.ts [--gb 2] [--dir /path/on/the/disk] [--sync-gb 0.25] [--pool-writes]
 *
 * --gb      data per no-fsync / flush.ms scenario and for dd (default 2)
 * --sync-gb data per flush.messages=1 scenario (default min(gb, 0.25): each append waits for fdatasync)
 * --dir     where to write (default the OS temp dir)
 * --pool-writes  thread-pool writes, no block reservation (the broker's file layer is the default)
 *
 * Appenders: "seq" awaits each append before the next (one producer connection, one request in
 * flight); "N inflight" keeps N appends outstanding (N producers, or pipelined requests), which lets
 * the log coalesce them into one pwritev and, with flush.messages=1, one fdatasync (group commit).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRecordBatchSync } from '../src/protocol/records/builder.ts';
import { DEFAULT_LOG_MANAGER_SETTINGS, LogConfig } from '../src/storage/log-config.ts';
import { realFilesFor } from '../src/storage/log-manager.ts';
import { PartitionLog } from '../src/storage/partition-log.ts';

// The file layer the broker uses (inline writes, blocks reserved ahead); `--pool-writes` measures
// thread-pool writes without reservation, as before those existed.
const files = process.argv.includes('--pool-writes')
  ? realFilesFor({ inlineWriteMaxBytes: 0, reserveAheadBytes: 0 })
  : realFilesFor(DEFAULT_LOG_MANAGER_SETTINGS);

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const GB = Number(arg('gb', '2'));
const SYNC_GB = Number(arg('sync-gb', String(Math.min(GB, 0.25))));
const BASE_DIR = arg('dir', tmpdir());
const RECORD_SIZE = 1024;
const MB = 1_000_000;

function template(batchBytes: number): Buffer {
  const count = Math.max(1, Math.floor(batchBytes / (RECORD_SIZE + 16)));
  const value = Buffer.alloc(RECORD_SIZE, 7);
  return buildRecordBatchSync({
    records: Array.from({ length: count }, () => ({ key: null, value, timestamp: BigInt(Date.now()) })),
  });
}

async function dd(dir: string, gb: number): Promise<number> {
  const file = join(dir, 'dd.bin');
  const count = Math.max(1, Math.round(gb * 1024));
  const stderr = await new Promise<string>((resolve, reject) => {
    execFile('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${count}`, 'conv=fdatasync'], (err, _out, errOut) =>
      err ? reject(err) : resolve(errOut),
    );
  });
  await rm(file, { force: true });
  // "2147483648 bytes (2.1 GB, 2.0 GiB) copied, 4.9 s, 437 MB/s"
  const m = /(\d+) bytes .* copied, ([\d.,]+) s/.exec(stderr);
  if (!m) throw new Error(`cannot parse dd output: ${stderr}`);
  return Number(m[1]) / Number(m[2]!.replace(',', '.')) / MB;
}

interface Scenario {
  label: string;
  batchBytes: number;
  config: Record<string, string>;
  inflight: number;
  totalBytes: number;
}

async function runAppend(dir: string, s: Scenario): Promise<{ mbps: number; log: PartitionLog; seconds: number }> {
  const log = await PartitionLog.open({
    dir: join(dir, `${s.label.replace(/[^a-z0-9]+/gi, '_')}-0`),
    topic: 'bench',
    partition: 0,
    files,
    config: new LogConfig({ 'message.timestamp.after.max.ms': '9223372036854775807', ...s.config }),
  });
  const tpl = template(s.batchBytes);
  const appends = Math.max(1, Math.round(s.totalBytes / tpl.length));
  let issued = 0;
  const start = performance.now();
  // Each appender reuses its own buffer: append rewrites only the base offset in place, and a
  // fresh 1 MiB allocation per append would measure the allocator, not the log.
  const worker = async (): Promise<void> => {
    const buf = Buffer.from(tpl);
    while (issued < appends) {
      issued++;
      await log.append(buf);
    }
  };
  await Promise.all(Array.from({ length: s.inflight }, worker));
  const seconds = (performance.now() - start) / 1000;
  return { mbps: (appends * tpl.length) / MB / seconds, log, seconds };
}

async function readAllSequential(log: PartitionLog, maxBytes: number): Promise<number> {
  let offset = log.logStartOffset;
  let bytes = 0;
  const start = performance.now();
  while (offset < log.highWatermark) {
    const r = await log.read(offset, maxBytes);
    if (r.records.length === 0) break;
    bytes += r.records.length;
    // Next offset: walk to the last batch header in the returned bytes.
    let pos = 0;
    let last = 0;
    while (pos < r.records.length) {
      last = pos;
      pos += 12 + r.records.readInt32BE(pos + 8);
    }
    offset = r.records.readBigInt64BE(last) + BigInt(r.records.readInt32BE(last + 23)) + 1n;
  }
  return bytes / MB / ((performance.now() - start) / 1000);
}

const root = await mkdtemp(join(BASE_DIR, 'samsa-bench-'));
try {
  console.log(`storage bench: ${GB} GB per scenario (${SYNC_GB} GB with flush.messages=1), dir ${root}`);
  const ddMbps = await dd(root, GB);
  console.log(`dd bs=1M conv=fdatasync: ${ddMbps.toFixed(0)} MB/s\n`);
  const rows: Array<[string, number]> = [];
  const fmt = (label: string, mbps: number): void => {
    rows.push([label, mbps]);
    console.log(
      `${label.padEnd(52)} ${mbps.toFixed(0).padStart(6)} MB/s   ${((mbps / ddMbps) * 100).toFixed(0).padStart(4)}% of dd`,
    );
  };
  for (const [name, batchBytes] of [
    ['16 KiB', 16 * 1024],
    ['1 MiB', 1024 * 1024],
  ] as const) {
    const total = GB * 1e9;
    const noSync = await runAppend(root, {
      label: `${name} nofsync seq`,
      batchBytes,
      config: {},
      inflight: 1,
      totalBytes: total,
    });
    fmt(`append ${name} batches, no fsync, seq`, noSync.mbps);
    const readMbps = await readAllSequential(noSync.log, 1024 * 1024);
    await noSync.log.close();
    await rm(noSync.log.dir, { recursive: true, force: true });
    const noSync8 = await runAppend(root, {
      label: `${name} nofsync 8`,
      batchBytes,
      config: {},
      inflight: 8,
      totalBytes: total,
    });
    fmt(`append ${name} batches, no fsync, 8 inflight`, noSync8.mbps);
    await noSync8.log.close();
    await rm(noSync8.log.dir, { recursive: true, force: true });
    const timed = await runAppend(root, {
      label: `${name} flushms`,
      batchBytes,
      config: { 'flush.ms': '1000' },
      inflight: 1,
      totalBytes: total,
    });
    fmt(`append ${name} batches, flush.ms=1000, seq`, timed.mbps);
    await timed.log.close();
    await rm(timed.log.dir, { recursive: true, force: true });
    for (const inflight of [1, 8, 64]) {
      const r = await runAppend(root, {
        label: `${name} sync ${inflight}`,
        batchBytes,
        config: { 'flush.messages': '1' },
        inflight,
        totalBytes: SYNC_GB * 1e9,
      });
      fmt(`append ${name} batches, flush.messages=1, ${inflight} appender(s)`, r.mbps);
      await r.log.close();
      await rm(r.log.dir, { recursive: true, force: true });
    }
    fmt(`sequential read ${name}-batch log, 1 MiB fetches`, readMbps);
  }
  console.log(`\n(${new Date().toISOString()}, node ${process.version}, ${process.platform} ${process.arch})`);
} finally {
  await rm(root, { recursive: true, force: true });
}
