/**
 * Cluster benchmark (issue 13), all in one run on this machine:
 *   node bench/cluster.bench.ts [--mb 256] [--kills 5] [--session-ms 3000]
 *  - produce and consume throughput (`samsa perf`, 1 KiB records, acks=1, 12 partitions, RF 1)
 *    of one broker without etcd against a 3-broker cluster on etcd (all on this machine's 2 cores);
 *  - broker start-to-ready (spawn to first accepted connection) without and with etcd;
 *  - time for a broker to see a topic created through another (CreateTopics answered at the
 *    controller to the topic with leaders in another broker's Metadata);
 *  - controller failover: kill -9 of the controller to a successful topic creation (median, max).
 * Needs `etcd` on PATH (Debian etcd-server). Runs the source CLI (src/cli.ts) as the tests do.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiKey } from '../src/network/api-message-types.ts';
import { BrokerConnection } from '../src/network/kafka-client.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const totalMb = opt('--mb', 256);
const kills = opt('--kills', 5);
/** broker.session.timeout.ms of the cluster members (Samsa's and KRaft's default: 9000). */
const sessionMs = opt('--session-ms', 3000);
const work = mkdtempSync(join(tmpdir(), 'samsa-cluster-bench-'));
const cli = join(root, 'src/cli.ts');
const children = new Set<ChildProcess>();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startEtcd(): Promise<{ url: string; child: ChildProcess }> {
  const [client, peer] = [await freePort(), await freePort()];
  const child = spawn(
    'etcd',
    [
      '--data-dir',
      join(work, 'etcd'),
      '--listen-client-urls',
      `http://127.0.0.1:${client}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${client}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${peer}`,
    ],
    { stdio: 'ignore' },
  );
  children.add(child);
  while (!(await accepts(client))) await sleep(50);
  return { url: `etcd://127.0.0.1:${client}`, child };
}

interface Broker {
  nodeId: number;
  port: number;
  child: ChildProcess;
}

/** Starts a broker; resolves with the time from spawn to its first accepted connection. */
async function startBroker(nodeId: number, port: number, dataDir: string, metadata?: string) {
  const argv = ['start', '--node-id', String(nodeId), '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir];
  argv.push('--http-listen', 'none', '--log-level', 'warn');
  if (metadata !== undefined)
    argv.push(
      '--metadata',
      metadata,
      '--override',
      `broker.session.timeout.ms=${sessionMs}`,
      '--override',
      'broker.heartbeat.interval.ms=500',
    );
  const started = performance.now();
  const child = spawn(process.execPath, [cli, ...argv], { stdio: 'ignore' });
  children.add(child);
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`broker ${nodeId} exited with ${child.exitCode}`);
    await sleep(5);
  }
  return { broker: { nodeId, port, child } as Broker, ms: performance.now() - started };
}

async function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
  children.delete(child);
}

function perf(
  kind: 'produce' | 'consume',
  bootstrap: string,
  topic: string,
): { mbPerSec: number; recordsPerSec: number; p50?: number; p99?: number } {
  const records = totalMb * 1024;
  const argv =
    kind === 'produce'
      ? ['--topic', topic, '--num-records', String(records), '--record-size', '1024', '--acks=1', '--partitions', '12']
      : ['--topic', topic, '--messages', String(records)];
  const out = execFileSync(
    process.execPath,
    [cli, 'perf', kind, '--bootstrap', bootstrap, ...argv, '--reporting-interval', '600000'],
    {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    },
  );
  const lines = out.trim().split('\n');
  if (kind === 'produce') {
    const last = lines.at(-1)!;
    const num = (re: RegExp) => Number(re.exec(last)?.[1] ?? Number.NaN);
    return {
      recordsPerSec: num(/([\d.]+) records\/sec/),
      mbPerSec: num(/\(([\d.]+) MB\/sec\)/),
      p50: num(/([\d.]+) ms 50th/),
      p99: num(/([\d.]+) ms 99th/),
    };
  }
  const cols = lines
    .at(-1)!
    .split(',')
    .map((s) => s.trim());
  return { mbPerSec: Number(cols[3]), recordsPerSec: Number(cols[5]) };
}

async function metadata(port: number, topics: string[] | null) {
  const conn = await BrokerConnection.connect('127.0.0.1', port, { requestTimeoutMs: 5000 });
  try {
    return await conn.request(ApiKey.Metadata, { topics: topics?.map((name) => ({ name })) ?? null });
  } finally {
    conn.close();
  }
}

async function createTopic(port: number, name: string): Promise<number> {
  const conn = await BrokerConnection.connect('127.0.0.1', port, { requestTimeoutMs: 5000, connectTimeoutMs: 1000 });
  try {
    const r = await conn.request(ApiKey.CreateTopics, {
      topics: [{ name, numPartitions: 3, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 5000,
    });
    return r.topics[0]!.errorCode;
  } finally {
    conn.close();
  }
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const fmt = (n: number) => n.toFixed(1);

async function main() {
  const rows: string[] = [];
  // Start-to-ready, 5 runs each.
  const etcd = await startEtcd();
  const single: number[] = [];
  const member: number[] = [];
  for (let i = 0; i < 5; i++) {
    const port = await freePort();
    const s = await startBroker(1, port, join(work, `start-single-${i}`));
    single.push(s.ms);
    await kill(s.broker.child, 'SIGTERM');
    const port2 = await freePort();
    const m = await startBroker(100 + i, port2, join(work, `start-member-${i}`), `${etcd.url}/start-${i}`);
    member.push(m.ms);
    await kill(m.broker.child, 'SIGTERM');
  }
  rows.push(
    `start-to-ready, single node (no etcd): median ${fmt(pct(single, 0.5))} ms, max ${fmt(Math.max(...single))} ms`,
  );
  rows.push(
    `start-to-ready, cluster member (etcd): median ${fmt(pct(member, 0.5))} ms, max ${fmt(Math.max(...member))} ms`,
  );

  // One broker without etcd.
  const sp = await freePort();
  const one = await startBroker(1, sp, join(work, 'single'));
  const p1 = perf('produce', `127.0.0.1:${sp}`, 'bench');
  const c1 = perf('consume', `127.0.0.1:${sp}`, 'bench');
  await kill(one.broker.child, 'SIGTERM');
  rmSync(join(work, 'single'), { recursive: true, force: true });

  // Three brokers on etcd.
  const brokers: Broker[] = [];
  const ports = [await freePort(), await freePort(), await freePort()];
  const url = `${etcd.url}/bench`;
  const dirs = ports.map((_, i) => join(work, `cluster-${i + 1}`));
  for (let i = 0; i < 3; i++) brokers.push((await startBroker(i + 1, ports[i]!, dirs[i]!, url)).broker);
  while ((await metadata(ports[0]!, [])).brokers.length < 3) await sleep(100);
  const bootstrap = ports.map((p) => `127.0.0.1:${p}`).join(',');
  const p3 = perf('produce', bootstrap, 'bench');
  const c3 = perf('consume', bootstrap, 'bench');
  rows.push(
    `produce 1 KiB acks=1 12 partitions: 1 broker ${fmt(p1.mbPerSec)} MB/s ${Math.round(p1.recordsPerSec)} rec/s p50 ${p1.p50} ms p99 ${p1.p99} ms; 3 brokers ${fmt(p3.mbPerSec)} MB/s ${Math.round(p3.recordsPerSec)} rec/s p50 ${p3.p50} ms p99 ${p3.p99} ms (${fmt(p3.mbPerSec / p1.mbPerSec)}x)`,
  );
  rows.push(
    `consume 12 partitions: 1 broker ${fmt(c1.mbPerSec)} MB/s ${Math.round(c1.recordsPerSec)} rec/s; 3 brokers ${fmt(c3.mbPerSec)} MB/s ${Math.round(c3.recordsPerSec)} rec/s (${fmt(c3.mbPerSec / c1.mbPerSec)}x)`,
  );

  // Topic visibility: created through the controller, seen with leaders by another broker.
  const visibility: number[] = [];
  for (let i = 0; i < 10; i++) {
    const md = await metadata(ports[0]!, []);
    const controller = md.controllerId;
    const at = ports[controller - 1]!;
    const other = ports[controller % 3]!;
    const started = performance.now();
    const code = await createTopic(at, `visible-${i}`);
    if (code !== 0) throw new Error(`CreateTopics failed with ${code}`);
    for (;;) {
      const t = (await metadata(other, [`visible-${i}`])).topics[0];
      if (
        t !== undefined &&
        t.errorCode === 0 &&
        t.partitions.length === 3 &&
        t.partitions.every((p) => p.leaderId >= 0)
      )
        break;
      await sleep(1);
    }
    visibility.push(performance.now() - started);
  }
  rows.push(
    `topic created at the controller, visible with leaders at another broker: median ${fmt(pct(visibility, 0.5))} ms, max ${fmt(Math.max(...visibility))} ms (10 topics)`,
  );

  // Controller failover.
  const failovers: number[] = [];
  for (let i = 0; i < kills; i++) {
    const controller = (await metadata(ports[0]!, [])).controllerId;
    const victim = brokers[controller - 1]!;
    const survivor = ports[controller % 3]!;
    const started = performance.now();
    await kill(victim.child);
    for (;;) {
      const code = await createTopic(survivor, `failover-${i}`).catch(() => -2);
      if (code === 0) break;
      await sleep(20);
    }
    failovers.push(performance.now() - started);
    brokers[controller - 1] = (
      await startBroker(controller, ports[controller - 1]!, dirs[controller - 1]!, url)
    ).broker;
    while ((await metadata(survivor, [])).brokers.length < 3) await sleep(100);
  }
  rows.push(
    `controller failover (kill -9 of the controller to a successful CreateTopics, session timeout ${sessionMs} ms): median ${fmt(pct(failovers, 0.5))} ms, max ${fmt(Math.max(...failovers))} ms over ${kills} kills`,
  );
  for (const b of brokers) await kill(b.child, 'SIGTERM');
  await kill(etcd.child, 'SIGTERM');
  console.log(rows.join('\n'));
}

try {
  await main();
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
