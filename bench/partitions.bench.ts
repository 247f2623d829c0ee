/**
 * Many partitions on one broker (issue 11, items 7 and 18): a topic of 10,000 partitions with one
 * record each, then what the broker spends on them while idle, at a clean stop, at a clean
 * restart and after a kill -9.
 *   node bench/partitions.bench.ts [--partitions 10000] [--entry bin/samsa.js] [--no-passes]
 *
 * Prints:
 *  - producer-state snapshot passes (the broker takes one every 30 s): the broker's CPU time in
 *    the 30 s window holding the pass after one plain record per partition, after one idempotent
 *    record per partition, and with nothing new; with the pass's own duration where the broker
 *    logs it (debug line 'producer state snapshot pass');
 *  - clean stop (SIGTERM to exit), clean restart (spawn to the listening line, and to every
 *    partition answering a Fetch with its records), and the same after kill -9;
 *  - disk blocks held: allocated (st_blocks * 512) against file sizes over the data directory,
 *    while running, after the clean stop, after kill -9 and after the restart that follows.
 * The broker runs as `samsa start` does (bin/samsa.js: the bundle in dist/bin when it is newer
 * than the sources, else the sources), with bin/samsa.js's --single-threaded-gc.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiKey } from '../src/network/api-message-types.ts';
import { KafkaClient } from '../src/network/kafka-client.ts';
import { ErrorCode, errorName } from '../src/protocol/error-codes.ts';
import { buildRecordBatchSync } from '../src/protocol/records/builder.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const partitions = Number(opt('--partitions', '10000'));
const entry = opt('--entry', 'bin/samsa.js');
const passes = !args.includes('--no-passes');
const topic = 'many';
const dataDir = mkdtempSync(join(tmpdir(), 'samsa-partitions-'));
const SNAPSHOT_INTERVAL_MS = 30_000;
const MiB = 1024 * 1024;

interface Broker {
  child: ChildProcess;
  bootstrap: string;
  /** ms from spawn to the listening line. */
  listeningMs: number;
  spawnedAt: number;
  exited: Promise<void>;
  /** Debug lines 'producer state snapshot pass' seen so far. */
  passes: Array<Record<string, unknown>>;
  logLines: string[];
}

async function startBroker(): Promise<Broker> {
  const spawnedAt = performance.now();
  const child = spawn(
    process.execPath,
    [
      '--single-threaded-gc',
      join(root, entry),
      'start',
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      dataDir,
      '--log-level',
      'debug',
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const broker: Partial<Broker> & { passes: Broker['passes']; logLines: string[] } = {
    child,
    spawnedAt,
    passes: [],
    logLines: [],
  };
  broker.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  let errBuf = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    errBuf += chunk;
    let nl = errBuf.indexOf('\n');
    while (nl >= 0) {
      const line = errBuf.slice(0, nl);
      errBuf = errBuf.slice(nl + 1);
      nl = errBuf.indexOf('\n');
      if (line.includes('"socket error"')) continue;
      broker.logLines.push(line);
      if (line.includes('producer state snapshot pass')) broker.passes.push(JSON.parse(line));
    }
  });
  let out = '';
  broker.bootstrap = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const m = /listening on (\S+)/.exec(out);
      if (m !== null) resolve(m[1]!);
    });
    void broker.exited!.then(() => reject(new Error(`broker exited before listening:\n${broker.logLines.join('\n')}`)));
  });
  broker.listeningMs = performance.now() - spawnedAt;
  return broker as Broker;
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ = 100 on Linux
}

function client(b: Broker): KafkaClient {
  return new KafkaClient({ bootstrap: b.bootstrap, requestTimeoutMs: 600_000, clientId: 'partitions-bench' });
}

async function createTopic(b: Broker): Promise<void> {
  const c = client(b);
  try {
    const res = await c.request(ApiKey.CreateTopics, {
      topics: [{ name: topic, numPartitions: partitions, replicationFactor: -1, assignments: [], configs: [] }],
      timeoutMs: 600_000,
      validateOnly: false,
    });
    const r = res.topics[0]!;
    if (r.errorCode !== ErrorCode.NONE) throw new Error(`CreateTopics: ${errorName(r.errorCode)} ${r.errorMessage}`);
  } finally {
    c.close();
  }
}

/** One record per partition, 1,000 partitions per Produce request; idempotent with a producer id. */
async function produceOnePerPartition(b: Broker, idempotent: boolean): Promise<void> {
  const c = client(b);
  try {
    let producerId = -1n;
    let producerEpoch = -1;
    if (idempotent) {
      const init = await c.request(ApiKey.InitProducerId, { transactionalId: null, transactionTimeoutMs: 60_000 });
      if (init.errorCode !== ErrorCode.NONE) throw new Error(`InitProducerId: ${errorName(init.errorCode)}`);
      producerId = init.producerId;
      producerEpoch = init.producerEpoch;
    }
    for (let from = 0; from < partitions; from += 1000) {
      const partitionData = [];
      for (let p = from; p < Math.min(partitions, from + 1000); p++) {
        const records = buildRecordBatchSync({
          records: [{ key: null, value: Buffer.from(`record of partition ${p}`), timestamp: BigInt(Date.now()) }],
          ...(idempotent ? { producerId, producerEpoch, baseSequence: 0 } : {}),
        });
        partitionData.push({ index: p, records });
      }
      const res = await c.request(ApiKey.Produce, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 600_000,
        topicData: [{ name: topic, partitionData }],
      });
      for (const t of res.responses)
        for (const p of t.partitionResponses)
          if (p.errorCode !== ErrorCode.NONE) throw new Error(`Produce ${p.index}: ${errorName(p.errorCode)}`);
    }
  } finally {
    c.close();
  }
}

/** Fetches offset 0 of every partition (Fetch v12, by name) until each returns its records. */
async function readAllPartitions(b: Broker, expectRecords: number): Promise<void> {
  const c = client(b);
  try {
    for (let from = 0; from < partitions; from += 1000) {
      const wanted = new Set<number>();
      for (let p = from; p < Math.min(partitions, from + 1000); p++) wanted.add(p);
      const deadline = performance.now() + 120_000;
      while (wanted.size > 0) {
        if (performance.now() > deadline) throw new Error(`partitions not readable: ${[...wanted].slice(0, 10)}`);
        const res = await c.request(ApiKey.Fetch, 12, {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 0,
          maxBytes: 64 * MiB,
          isolationLevel: 0,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [
            {
              topic,
              partitions: [...wanted].map((p) => ({ partition: p, fetchOffset: 0n, partitionMaxBytes: 65536 })),
            },
          ],
          forgottenTopicsData: [],
          rackId: '',
        });
        for (const t of res.responses) {
          for (const p of t.partitions) {
            if (p.errorCode !== ErrorCode.NONE) continue; // not yet readable: asked again
            if (p.highWatermark < BigInt(expectRecords))
              throw new Error(`partition ${p.partitionIndex}: HW ${p.highWatermark}`);
            if ((p.records?.length ?? 0) > 0) wanted.delete(p.partitionIndex);
          }
        }
      }
    }
  } finally {
    c.close();
  }
}

/**
 * Allocated bytes (st_blocks * 512) of every file under the data directory, and how much of that
 * lies past the files' ends (blocks reserved with fallocate's keep-size; sizes are rounded up to
 * 4 KiB blocks). Index files are sparse at their maximum size, so sizes alone mean little.
 */
function diskUsage(): { allocated: number; pastEnd: number; files: number } {
  let allocated = 0;
  let pastEnd = 0;
  let files = 0;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const s = statSync(p);
        allocated += s.blocks * 512;
        pastEnd += Math.max(0, s.blocks * 512 - Math.ceil(s.size / 4096) * 4096);
        files++;
      }
    }
  };
  walk(dataDir);
  return { allocated, pastEnd, files };
}

function diskLine(what: string): string {
  const d = diskUsage();
  return `${what}: ${(d.allocated / MiB).toFixed(1)} MiB allocated in ${d.files} files, ${(d.pastEnd / MiB).toFixed(1)} MiB of it past the files' ends`;
}

/** Waits for the broker's next snapshot pass; returns its CPU window and the pass line. */
async function snapshotWindow(b: Broker): Promise<string> {
  const before = b.passes.length;
  const cpu0 = cpuSeconds(b.child.pid!);
  const t0 = performance.now();
  // Passes run every 30 s from start-up; with the debug line, wait for it, else a whole interval.
  const deadline = t0 + SNAPSHOT_INTERVAL_MS + 15_000;
  while (b.passes.length === before && performance.now() < deadline) await sleep(100);
  const pass = b.passes[before];
  const waitedUntil = performance.now();
  if (pass === undefined) {
    const cpu = cpuSeconds(b.child.pid!) - cpu0;
    return `no pass line logged; broker CPU ${cpu.toFixed(2)} s over ${((waitedUntil - t0) / 1000).toFixed(1)} s`;
  }
  // Fill the window up to 30 s so windows compare (the rest is the idle background).
  const rest = t0 + SNAPSHOT_INTERVAL_MS - performance.now();
  if (rest > 0) await sleep(rest);
  const cpu = cpuSeconds(b.child.pid!) - cpu0;
  const window = (performance.now() - t0) / 1000;
  return `pass ${JSON.stringify({ written: pass.written, partitions: pass.partitions, ms: pass.ms })}; broker CPU ${cpu.toFixed(2)} s over ${window.toFixed(1)} s`;
}

async function stop(b: Broker, signal: NodeJS.Signals): Promise<number> {
  const t0 = performance.now();
  b.child.kill(signal);
  await b.exited;
  return performance.now() - t0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function loadedLine(b: Broker): string {
  const line = b.logLines.find((l) => l.includes('"loaded log directory"'));
  if (line === undefined) return '';
  const j = JSON.parse(line) as { ms: number; cleanShutdown: boolean };
  return ` (log manager: ${j.ms} ms, cleanShutdown ${j.cleanShutdown})`;
}

const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const gitHead = (() => {
  try {
    return readFileSync(join(root, '.git/HEAD'), 'utf8').trim();
  } catch {
    return '?';
  }
})();
console.log(`partitions bench: ${partitions} partitions, entry ${entry}, node ${process.version}, ${gitHead}`);
try {
  let b = await startBroker();
  console.log(`fresh start: listening after ${fmt(b.listeningMs)}`);
  let t = performance.now();
  await createTopic(b);
  console.log(`CreateTopics of ${partitions} partitions: ${fmt(performance.now() - t)}`);
  t = performance.now();
  await produceOnePerPartition(b, false);
  console.log(`one plain record per partition produced: ${fmt(performance.now() - t)}`);
  if (passes) console.log(`snapshot pass after plain records: ${await snapshotWindow(b)}`);
  t = performance.now();
  await produceOnePerPartition(b, true);
  console.log(`one idempotent record per partition produced: ${fmt(performance.now() - t)}`);
  if (passes) {
    console.log(`snapshot pass after idempotent records: ${await snapshotWindow(b)}`);
    console.log(`snapshot pass with nothing new: ${await snapshotWindow(b)}`);
  }
  console.log(diskLine('disk while running'));
  console.log(`clean stop (SIGTERM to exit): ${fmt(await stop(b, 'SIGTERM'))}`);
  console.log(diskLine('disk after the clean stop'));

  b = await startBroker();
  let readable = performance.now() - b.spawnedAt;
  await readAllPartitions(b, 2);
  readable = performance.now() - b.spawnedAt;
  console.log(
    `clean restart: listening after ${fmt(b.listeningMs)}, every partition readable after ${fmt(readable)}${loadedLine(b)}`,
  );
  console.log(`clean stop (nothing new since start): ${fmt(await stop(b, 'SIGTERM'))}`);

  b = await startBroker();
  await readAllPartitions(b, 2);
  console.log(`second clean restart: listening after ${fmt(b.listeningMs)}${loadedLine(b)}`);
  await produceOnePerPartition(b, false);
  await stop(b, 'SIGKILL');
  console.log(diskLine('disk after kill -9 (one more record per partition)'));
  b = await startBroker();
  await readAllPartitions(b, 3);
  readable = performance.now() - b.spawnedAt;
  console.log(
    `restart after kill -9: listening after ${fmt(b.listeningMs)}, every partition readable after ${fmt(readable)}${loadedLine(b)}`,
  );
  console.log(diskLine('disk after that restart'));
  console.log(`clean stop: ${fmt(await stop(b, 'SIGTERM'))}`);
  console.log(diskLine('disk after the clean stop'));
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
