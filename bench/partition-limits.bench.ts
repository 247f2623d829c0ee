/**
 * Issue 11 item 16: one CreateTopics for 2^31-1 partitions made the broker stop answering and die
 * of a V8 out-of-memory after 9 s; 3,000,000 partitions wedged it past restart. This measures, on
 * a broker in a child process: how fast requests beyond Kafka's limit are refused and the broker's
 * RSS around them, and, as the baseline of what the limit allows, one CreateTopics of 10,000
 * partitions (time until answered, RSS after) and a clean restart with them.
 *   node bench/partition-limits.bench.ts
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BrokerConnection } from '../src/network/kafka-client.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

async function startBroker(dataDir: string): Promise<{ child: ChildProcess; port: number; startMs: number }> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    ['src/cli.ts', 'start', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'warn'],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /listening on [^:]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`broker exited ${code}`)));
  });
  return { child, port, startMs: performance.now() - started };
}

async function stop(child: ChildProcess): Promise<number> {
  const started = performance.now();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  return performance.now() - started;
}

async function createTopic(conn: BrokerConnection, name: string, partitions: number) {
  const started = performance.now();
  const r = await conn.request(19, 5, {
    topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 600_000,
    validateOnly: false,
  });
  return { ms: performance.now() - started, errorCode: r.topics[0]!.errorCode, message: r.topics[0]!.errorMessage };
}

const dataDir = mkdtempSync(join(tmpdir(), 'samsa-limits-'));
try {
  const { child, port } = await startBroker(dataDir);
  const conn = await BrokerConnection.connect('127.0.0.1', port, { requestTimeoutMs: 600_000 });
  console.log(`idle RSS                                  ${rssMb(child.pid!).toFixed(1)} MB`);
  for (const n of [2 ** 31 - 1, 3_000_000, 10_001]) {
    const r = await createTopic(conn, `huge-${n}`, n);
    console.log(
      `CreateTopics ${String(n).padStart(10)} partitions: error ${r.errorCode} in ${r.ms.toFixed(1)} ms, RSS after ${rssMb(child.pid!).toFixed(1)} MB (${r.message})`,
    );
  }
  const big = await createTopic(conn, 'ten-thousand', 10_000);
  console.log(
    `CreateTopics      10000 partitions: error ${big.errorCode} in ${big.ms.toFixed(0)} ms, RSS after ${rssMb(child.pid!).toFixed(1)} MB`,
  );
  conn.close();
  console.log(`clean stop with 10,000 partitions         ${(await stop(child)).toFixed(0)} ms`);
  const again = await startBroker(dataDir);
  console.log(
    `clean restart until listening             ${again.startMs.toFixed(0)} ms, RSS ${rssMb(again.child.pid!).toFixed(1)} MB`,
  );
  await stop(again.child);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
