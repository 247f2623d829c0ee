/**
 * Replication benchmark (issue 14, "Figures"), all in one run on this machine: etcd and three
 * brokers run from src/cli.ts as in bench/cluster.bench.ts.
 *
 *   node bench/replication.bench.ts [--mb 512] [--kills 20] [--catchup-mb 1024]
 *        [--session-ms 3000] [--parts throughput,failover,catchup]
 *
 *  1. throughput and latency: `samsa perf produce` of 1 KiB records to 12 partitions, RF 3 with
 *     acks=all (min.insync.replicas=2) against RF 1 with acks=1 on the same cluster, RF 3 with
 *     acks=1, both paced at 2,000 records/s (replication latency without queueing), the
 *     brokers' CPU seconds per GiB, and `samsa perf consume` of each topic;
 *  2. failover: kill -9 of a partition leader to the first successful acks=all produce to that
 *     partition, from a loop sending one small batch every ~10 ms to the leader it knows of
 *     (metadata refreshed on errors); the killed broker is restarted and must rejoin the ISR of
 *     every partition before the next kill;
 *  3. follower catch-up: one broker stopped (SIGTERM), --catchup-mb written with acks=all to an
 *     RF 3 topic, the broker started again: time until it is in every partition's ISR.
 *
 * The brokers run with broker.session.timeout.ms=--session-ms (default 3000, Samsa's and KRaft's
 * default is 9000) and broker.heartbeat.interval.ms=500: the session timeout is what failover
 * waits for, since a kill -9 is only noticed when the broker's etcd lease expires.
 * Needs `etcd` on PATH (Debian etcd-server). Broker logs (level warn) are kept in a directory
 * printed at the end when something failed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiKey } from '../src/network/api-message-types.ts';
import { KafkaClient, type TopicMetadata } from '../src/network/kafka-client.ts';
import { ErrorCode, errorName } from '../src/protocol/error-codes.ts';
import { buildRecordBatchSync } from '../src/protocol/records/builder.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const totalMb = opt('--mb', 512);
const kills = opt('--kills', 20);
const catchupMb = opt('--catchup-mb', 1024);
const sessionMs = opt('--session-ms', 3000);
const parts = new Set(
  (args.includes('--parts') ? args[args.indexOf('--parts') + 1]! : 'throughput,failover,catchup').split(','),
);
const work = mkdtempSync(join(tmpdir(), 'samsa-replication-bench-'));
const logDir = join(work, 'logs');
mkdirSync(logDir);
const cli = join(root, 'src/cli.ts');
const children = new Set<ChildProcess>();
const MB = 1024 * 1024;

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

async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  describe?: () => Promise<string>,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (performance.now() > deadline) {
      const state = describe === undefined ? '' : `: ${await describe().catch((err: unknown) => String(err))}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${state}`);
    }
    await sleep(20);
  }
}

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
  return { url: `etcd://127.0.0.1:${client}/replication-bench`, child };
}

class Cluster {
  readonly ports: number[];
  readonly dirs: string[];
  readonly procs: (ChildProcess | undefined)[] = [undefined, undefined, undefined];
  /** For metadata and admin requests; its bootstrap list names every broker, so it outlives a kill. */
  readonly admin: KafkaClient;
  readonly metadataUrl: string;

  constructor(metadataUrl: string, ports: number[]) {
    this.metadataUrl = metadataUrl;
    this.ports = ports;
    this.dirs = ports.map((_, i) => join(work, `broker-${i + 1}`));
    this.admin = new KafkaClient({ bootstrap: this.bootstrap, requestTimeoutMs: 5000, connectTimeoutMs: 1000 });
  }

  get bootstrap(): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(',');
  }

  /** Starts broker `nodeId` (1-3); resolves with the time from spawn to its first accepted connection. */
  async start(nodeId: number): Promise<number> {
    const port = this.ports[nodeId - 1]!;
    const argv = ['start', '--node-id', String(nodeId), '--listen', `127.0.0.1:${port}`];
    argv.push('--data-dir', this.dirs[nodeId - 1]!, '--http-listen', 'none', '--log-level', 'warn');
    argv.push('--metadata', this.metadataUrl, '--override', `broker.session.timeout.ms=${sessionMs}`);
    argv.push('--override', 'broker.heartbeat.interval.ms=500');
    // Appended across restarts: the log of a failed kill/restart cycle is what explains it.
    const log = openSync(join(logDir, `broker-${nodeId}.log`), 'a');
    const started = performance.now();
    const child = spawn(process.execPath, [cli, ...argv], { stdio: ['ignore', log, log] });
    closeSync(log);
    children.add(child);
    this.procs[nodeId - 1] = child;
    while (!(await accepts(port))) {
      if (child.exitCode !== null) throw new Error(`broker ${nodeId} exited with ${child.exitCode}`);
      await sleep(5);
    }
    return performance.now() - started;
  }

  /**
   * CPU seconds (user + system) the running brokers have used, from /proc (Linux): with three
   * brokers, etcd and the load generator on two cores, CPU per MiB is what bounds throughput.
   */
  cpuSeconds(): number {
    let ticks = 0;
    for (const child of this.procs) {
      if (child?.pid === undefined) continue;
      // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    return ticks / 100; // USER_HZ is 100 on Linux
  }

  async stop(nodeId: number, signal: NodeJS.Signals): Promise<void> {
    const child = this.procs[nodeId - 1];
    if (child === undefined) return;
    this.procs[nodeId - 1] = undefined;
    children.delete(child);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }

  async topic(name: string): Promise<TopicMetadata> {
    const md = await this.admin.metadata([name]);
    const t = md.topics.get(name);
    if (t === undefined || t.errorCode !== ErrorCode.NONE)
      throw new Error(`topic ${name}: ${t === undefined ? 'missing' : errorName(t.errorCode)}`);
    return t;
  }

  async createTopic(name: string, partitions: number, rf: number, configs: Record<string, string> = {}) {
    const md = await this.admin.metadata([]);
    const r = await this.admin.requestTo(md.controllerId, ApiKey.CreateTopics, {
      topics: [
        {
          name,
          numPartitions: partitions,
          replicationFactor: rf,
          assignments: [],
          configs: Object.entries(configs).map(([n, value]) => ({ name: n, value })),
        },
      ],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    const t = r.topics[0]!;
    if (t.errorCode !== ErrorCode.NONE)
      throw new Error(`CreateTopics ${name}: ${errorName(t.errorCode)} ${t.errorMessage ?? ''}`);
    const created = performance.now();
    await waitFor(
      `${name} led with full ISRs`,
      30_000,
      () => this.settled(name, rf),
      () => this.describe(name),
    );
    // The leaders must also serve it: see produceToEach.
    let failures: string[] = [];
    await waitFor(
      `every partition of ${name} taking an acks=all produce`,
      300_000,
      async () => {
        failures = await this.produceToEach(name);
        return failures.length === 0;
      },
      async () => failures.join('; '),
    );
    const ms = performance.now() - created;
    if (ms > 1000) console.error(`topic ${name}: ${fmt(ms)} ms from CreateTopics to every partition taking produce`);
    return ms;
  }

  /**
   * Sends one acks=all record to every partition of `name` through its leader: a new topic's
   * ISR is all its replicas from the start, so a full ISR alone does not show the leaders serve it.
   * Resolves with the failures, `partition: ERROR message` (empty when every partition took it).
   */
  async produceToEach(name: string): Promise<string[]> {
    const t = await this.topic(name);
    const failures: string[] = [];
    for (const p of t.partitions) {
      const batch = buildRecordBatchSync({ records: [{ key: null, value: Buffer.from('check') }] });
      const r = await this.admin
        .requestTo(p.leaderId, ApiKey.Produce, {
          transactionalId: null,
          acks: -1,
          timeoutMs: 5000,
          topicData: [{ name, partitionData: [{ index: p.partition, records: batch }] }],
        })
        .then(
          (res) => res.responses[0]?.partitionResponses[0],
          (err: unknown) => ({ errorCode: -1, errorMessage: String(err) }),
        );
      if (r === undefined || r.errorCode !== ErrorCode.NONE)
        failures.push(
          `${name}-${p.partition} at leader ${p.leaderId}: ${r === undefined ? 'no answer' : `${errorName(r.errorCode)} ${r.errorMessage ?? ''}`}`,
        );
    }
    return failures;
  }

  /** Leader, replicas and ISR of every partition, for a timeout's message. */
  async describe(name: string): Promise<string> {
    const t = await this.topic(name);
    return t.partitions
      .map((p) => `${name}-${p.partition} leader ${p.leaderId} replicas [${p.replicas}] isr [${p.isr}]`)
      .join('; ');
  }

  async deleteTopic(name: string): Promise<void> {
    const md = await this.admin.metadata([]);
    await this.admin.requestTo(md.controllerId, ApiKey.DeleteTopics, {
      topics: [{ name }],
      topicNames: [name],
      timeoutMs: 10_000,
    });
  }

  /**
   * Every partition has a leader and all `rf` replicas in its ISR. Not "led by its preferred
   * replica": the controller reconsiders preferred leaders only on broker and topic events, not
   * when a restarted broker rejoins an ISR, so leadership stays where the failover put it.
   */
  async settled(name: string, rf: number): Promise<boolean> {
    const t = await this.topic(name);
    return t.partitions.every((p) => p.isr.length === rf && p.leaderId >= 0);
  }
}

interface ProduceFigures {
  /** Broker CPU seconds (all three) per GiB produced; set by `measured`. */
  cpuPerGiB?: number;
  mbPerSec: number;
  recordsPerSec: number;
  p50: number;
  p99: number;
}

/** Runs `samsa perf`; a non-zero exit (failed records, a timeout) is an error carrying its stderr. */
function runPerf(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'perf', ...argv, '--reporting-interval', '600000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('exit', (code) => {
      children.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`samsa perf ${argv.join(' ')} exited with ${code}:\n${err}${out}`));
    });
  });
}

/** `samsa perf produce` of `records` 1 KiB records; `rate` records/s, or unthrottled. */
async function perfProduce(
  bootstrap: string,
  topic: string,
  records: number,
  acks: string,
  rate?: number,
): Promise<ProduceFigures> {
  const out = await runPerf([
    'produce',
    '--bootstrap',
    bootstrap,
    '--topic',
    topic,
    '--num-records',
    String(records),
    '--record-size',
    '1024',
    `--acks=${acks}`,
    ...(rate === undefined ? [] : ['--throughput', String(rate)]),
  ]);
  const last = out.trim().split('\n').at(-1)!;
  const num = (re: RegExp) => Number(re.exec(last)?.[1] ?? Number.NaN);
  return {
    recordsPerSec: num(/([\d.]+) records\/sec/),
    mbPerSec: num(/\(([\d.]+) MB\/sec\)/),
    p50: num(/([\d.]+) ms 50th/),
    p99: num(/([\d.]+) ms 99th/),
  };
}

async function perfConsume(bootstrap: string, topic: string, mb: number) {
  const out = await runPerf(['consume', '--bootstrap', bootstrap, '--topic', topic, '--messages', String(mb * 1024)]);
  const cols = out
    .trim()
    .split('\n')
    .at(-1)!
    .split(',')
    .map((s) => s.trim());
  return { mbPerSec: Number(cols[3]), recordsPerSec: Number(cols[5]) };
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const fmt = (n: number, d = 1) => n.toFixed(d);

/** Runs a perf produce of `records` 1 KiB records and adds the brokers' CPU seconds per GiB. */
async function measured(c: Cluster, records: number, run: () => Promise<ProduceFigures>): Promise<ProduceFigures> {
  const before = c.cpuSeconds();
  const p = await run();
  return { ...p, cpuPerGiB: (c.cpuSeconds() - before) / ((records * 1024) / (1024 * MB)) };
}

async function throughput(c: Cluster, rows: string[][]): Promise<void> {
  const rf3 = { 'min.insync.replicas': '2' };
  const createdMs = await c.createTopic('rf3', 12, 3, rf3);
  rows.push(['CreateTopics RF 3, 12 partitions → every leader takes acks=all (new cluster)', `${fmt(createdMs)} ms`]);
  await c.createTopic('rf1', 12, 1);
  await c.createTopic('rf3-acks1', 12, 3, rf3);
  await c.createTopic('rf3-paced', 12, 3, rf3);
  await c.createTopic('rf1-paced', 12, 1);
  // RF 1 first: its log files then do not compete with RF 3's for the page cache being written.
  const n = totalMb * 1024;
  const p1 = await measured(c, n, () => perfProduce(c.bootstrap, 'rf1', n, '1'));
  const p3 = await measured(c, n, () => perfProduce(c.bootstrap, 'rf3', n, '-1'));
  // Separates the cost of the replicas' work (three times the writes, two follower fetch
  // streams per leader) from that of waiting for the followers (acks=all).
  const p3a1 = await measured(c, n, () => perfProduce(c.bootstrap, 'rf3-acks1', n, '1'));
  // At a rate far below saturation, latency is the replication round trip, not queueing.
  const paced1 = await perfProduce(c.bootstrap, 'rf1-paced', 10_000, '1', 2000);
  const paced3 = await perfProduce(c.bootstrap, 'rf3-paced', 10_000, '-1', 2000);
  const c1 = await perfConsume(c.bootstrap, 'rf1', totalMb);
  const c3 = await perfConsume(c.bootstrap, 'rf3', totalMb);
  const line = (p: ProduceFigures) =>
    `${fmt(p.mbPerSec)} MB/s, ${Math.round(p.recordsPerSec)} rec/s, p50 ${fmt(p.p50)} ms, p99 ${fmt(p.p99)} ms, broker CPU ${fmt(p.cpuPerGiB ?? Number.NaN)} s/GiB`;
  const latency = (p: ProduceFigures) => `p50 ${fmt(p.p50)} ms, p99 ${fmt(p.p99)} ms`;
  rows.push([`Produce RF 1 acks=1 (${totalMb} MiB)`, line(p1)]);
  rows.push([`Produce RF 3 acks=all, min.insync.replicas=2 (${totalMb} MiB)`, line(p3)]);
  rows.push(['RF 3 acks=all / RF 1 acks=1 (LinkedIn: 0.54x)', `${fmt(p3.mbPerSec / p1.mbPerSec, 2)}x`]);
  rows.push([`Produce RF 3 acks=1 (${totalMb} MiB)`, `${line(p3a1)} (${fmt(p3a1.mbPerSec / p1.mbPerSec, 2)}x)`]);
  rows.push(['Produce at 2,000 rec/s (2 MB/s), 10,000 records: RF 1 acks=1', latency(paced1)]);
  rows.push(['Produce at 2,000 rec/s (2 MB/s), 10,000 records: RF 3 acks=all', latency(paced3)]);
  rows.push(['Consume RF 1', `${fmt(c1.mbPerSec)} MB/s, ${Math.round(c1.recordsPerSec)} rec/s`]);
  rows.push([
    'Consume RF 3 (from the leaders)',
    `${fmt(c3.mbPerSec)} MB/s, ${Math.round(c3.recordsPerSec)} rec/s (${fmt(c3.mbPerSec / c1.mbPerSec, 2)}x)`,
  ]);
  // Their replicas would only slow the restarts of the failover part (more logs to open).
  for (const t of ['rf1', 'rf3', 'rf3-acks1', 'rf1-paced', 'rf3-paced']) await c.deleteTopic(t);
}

/**
 * Sends one single-record acks=all batch to `partition` every ~10 ms to the leader the client
 * last heard of, without waiting for earlier ones (a request parked on a dead leader must not
 * hold the loop); any error refreshes the metadata. `firstSuccessAfter(t)` resolves at the first
 * success of a request sent at or after `t`.
 */
class ProbeLoop {
  private readonly client: KafkaClient;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<unknown> | undefined;
  private inFlight = 0;
  private waiter: { after: number; resolve: (at: number) => void } | undefined;
  readonly errors = new Map<string, number>();
  private readonly topic: string;
  private readonly partition: number;

  constructor(bootstrap: string, topic: string, partition: number) {
    this.topic = topic;
    this.partition = partition;
    // A request timeout of 2 s: acks=all waits on the ISR, and a probe parked on a leader that
    // lost its followers must not pile up for the default 30 s.
    this.client = new KafkaClient({ bootstrap, requestTimeoutMs: 2000, connectTimeoutMs: 500 });
  }

  async start(): Promise<void> {
    await this.client.metadata([this.topic]);
    this.timer = setInterval(() => this.tick(), 10);
  }

  firstSuccessAfter(after: number): Promise<number> {
    return new Promise((resolve) => {
      this.waiter = { after, resolve };
    });
  }

  private refresh(): void {
    this.refreshing ??= this.client
      .metadata([this.topic])
      .catch(() => undefined)
      .finally(() => {
        this.refreshing = undefined;
      });
  }

  private tick(): void {
    // Bounded: a leader that accepts connections but answers nothing would otherwise collect 200.
    if (this.inFlight >= 50) return;
    const leader = this.client.leaderOf(this.topic, this.partition);
    if (leader < 0) {
      this.refresh();
      return;
    }
    const sentAt = performance.now();
    const batch = buildRecordBatchSync({ records: [{ key: null, value: Buffer.from(`probe ${sentAt}`) }] });
    this.inFlight++;
    this.client
      .requestTo(leader, ApiKey.Produce, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 2000,
        topicData: [{ name: this.topic, partitionData: [{ index: this.partition, records: batch }] }],
      })
      .then(
        (r) => {
          const code = r.responses[0]?.partitionResponses[0]?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
          if (code === ErrorCode.NONE) return this.succeeded(sentAt);
          this.count(errorName(code));
          this.refresh();
        },
        (err: unknown) => {
          this.count(err instanceof Error ? err.message.replace(/\d+/g, 'N') : String(err));
          this.refresh();
        },
      )
      .finally(() => {
        this.inFlight--;
      });
  }

  private succeeded(sentAt: number): void {
    const w = this.waiter;
    if (w !== undefined && sentAt >= w.after) {
      this.waiter = undefined;
      w.resolve(performance.now());
    }
  }

  private count(what: string): void {
    this.errors.set(what, (this.errors.get(what) ?? 0) + 1);
  }

  stop(): void {
    clearInterval(this.timer);
    this.client.close();
  }
}

async function failover(c: Cluster, rows: string[][]): Promise<void> {
  const topic = 'failover';
  const partitions = 3;
  // Right after the DeleteTopics of the throughput part (when it ran): a deletion's log removal
  // goes through the same change feed as the new topic's partitions.
  const createdMs = await c.createTopic(topic, partitions, 3, { 'min.insync.replicas': '2' });
  rows.push([
    `CreateTopics RF 3, ${partitions} partitions → every leader takes acks=all${parts.has('throughput') ? ' (after deleting the throughput topics)' : ''}`,
    `${fmt(createdMs)} ms`,
  ]);
  const times: number[] = [];
  const restarts: number[] = [];
  const rejoins: number[] = [];
  const errors = new Map<string, number>();
  for (let i = 0; i < kills; i++) {
    const partition = i % partitions;
    await waitFor(
      `${topic} settled before kill ${i + 1}`,
      60_000,
      () => c.settled(topic, 3),
      () => c.describe(topic),
    );
    const victim = (await c.topic(topic)).partitions[partition]!.leaderId;
    const probe = new ProbeLoop(c.bootstrap, topic, partition);
    await probe.start();
    try {
      // The loop is warm (connection open, a produce acknowledged) before the kill.
      await probe.firstSuccessAfter(performance.now());
      const killedAt = performance.now();
      const resumed = probe.firstSuccessAfter(killedAt);
      await c.stop(victim, 'SIGKILL');
      const at = await Promise.race([
        resumed,
        sleep(sessionMs + 60_000).then(() => {
          throw new Error(`kill ${i + 1} (broker ${victim}, partition ${partition}): no acks=all produce in 60 s`);
        }),
      ]);
      times.push(at - killedAt);
      console.error(
        `kill ${i + 1}: broker ${victim} led ${topic}-${partition}; resumed after ${fmt(at - killedAt)} ms`,
      );
    } finally {
      probe.stop();
      for (const [k, v] of probe.errors) errors.set(k, (errors.get(k) ?? 0) + v);
    }
    restarts.push(await c.start(victim));
    const restartedAt = performance.now();
    await waitFor(`broker ${victim} back in every ISR of ${topic}`, 120_000, async () =>
      (await c.topic(topic)).partitions.every((p) => p.isr.includes(victim)),
    );
    rejoins.push(performance.now() - restartedAt);
  }
  rows.push([
    `Failover, kill -9 of a leader → first acks=all produce to its partition (session ${sessionMs} ms, ${kills} kills)`,
    `median ${fmt(pct(times, 0.5))} ms, max ${fmt(Math.max(...times))} ms, min ${fmt(Math.min(...times))} ms`,
  ]);
  rows.push([
    'Restarted broker: spawn → listening; listening → back in every ISR',
    `median ${fmt(pct(restarts, 0.5))} ms; median ${fmt(pct(rejoins, 0.5))} ms, max ${fmt(Math.max(...rejoins))} ms`,
  ]);
  console.error(`probe errors during the kills: ${JSON.stringify(Object.fromEntries(errors))}`);
  await c.deleteTopic(topic);
}

/** Bytes of the `.log` segment files of `topic`'s partitions in a data directory. */
function logBytes(dataDir: string, topic: string): number {
  let total = 0;
  for (const d of readdirSync(dataDir)) {
    if (!d.startsWith(`${topic}-`)) continue;
    for (const f of readdirSync(join(dataDir, d))) if (f.endsWith('.log')) total += statSync(join(dataDir, d, f)).size;
  }
  return total;
}

async function catchup(c: Cluster, rows: string[][]): Promise<void> {
  const topic = 'catchup';
  // Created while all three brokers are up: an RF 3 topic needs three live brokers.
  await c.createTopic(topic, 12, 3, { 'min.insync.replicas': '2' });
  const stopped = 3;
  await c.stop(stopped, 'SIGTERM');
  const survivors = c.ports
    .slice(0, 2)
    .map((p) => `127.0.0.1:${p}`)
    .join(',');
  await waitFor(`broker ${stopped} out of every ISR`, 60_000, async () =>
    (await c.topic(topic)).partitions.every((p) => !p.isr.includes(stopped) && p.leaderId >= 0),
  );
  const p = await measured(c, catchupMb * 1024, () => perfProduce(survivors, topic, catchupMb * 1024, '-1')).catch(
    async (err: unknown) => {
      // What each survivor says and holds: a failed produce here is a finding to report.
      const seen: string[] = [];
      for (const id of [1, 2]) {
        const own = new KafkaClient({ bootstrap: `127.0.0.1:${c.ports[id - 1]}`, requestTimeoutMs: 5000 });
        const t = await own.metadata([topic]).finally(() => own.close());
        const parts = t.topics.get(topic)?.partitions ?? [];
        seen.push(
          `broker ${id} metadata: ${parts.map((q) => `${q.partition}:L${q.leaderId}/e${q.leaderEpoch}/isr[${q.isr}]`).join(' ')}`,
        );
        seen.push(
          `broker ${id} logs: ${readdirSync(c.dirs[id - 1]!)
            .filter((d) => d.startsWith(topic))
            .sort()}`,
        );
      }
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${seen.join('\n')}`);
    },
  );
  const behind = logBytes(c.dirs[0]!, topic);
  const spawnedAt = performance.now();
  const listenMs = await c.start(stopped);
  await waitFor(`broker ${stopped} back in every ISR of ${topic}`, 600_000, async () =>
    (await c.topic(topic)).partitions.every((p) => p.isr.includes(stopped)),
  );
  const totalMs = performance.now() - spawnedAt;
  const copied = logBytes(c.dirs[stopped - 1]!, topic);
  rows.push([
    `Produce RF 3 acks=all with one broker down (${catchupMb} MiB)`,
    `${fmt(p.mbPerSec)} MB/s, p50 ${fmt(p.p50)} ms, p99 ${fmt(p.p99)} ms, broker CPU ${fmt(p.cpuPerGiB ?? Number.NaN)} s/GiB`,
  ]);
  rows.push([
    `Follower catch-up: ${fmt(copied / MB)} MiB of logs (leader holds ${fmt(behind / MB)} MiB), spawn → in every ISR`,
    `${fmt(totalMs / 1000, 2)} s = ${fmt(copied / MB / (totalMs / 1000))} MiB/s (listening after ${fmt(listenMs / 1000, 2)} s; ${fmt(copied / MB / ((totalMs - listenMs) / 1000))} MiB/s from then)`,
  ]);
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  const etcd = await startEtcd();
  const c = new Cluster(etcd.url, [await freePort(), await freePort(), await freePort()]);
  for (let id = 1; id <= 3; id++) await c.start(id);
  await waitFor('three brokers registered', 30_000, async () => {
    const md = await c.admin.metadata([]);
    return md.brokers.size === 3 && md.controllerId >= 0;
  });
  try {
    if (parts.has('throughput')) await throughput(c, rows);
    if (parts.has('failover')) await failover(c, rows);
    if (parts.has('catchup')) await catchup(c, rows);
  } finally {
    c.admin.close();
  }
  for (let id = 1; id <= 3; id++) await c.stop(id, 'SIGTERM');
  await new Promise((r) => {
    etcd.child.once('exit', r);
    etcd.child.kill('SIGTERM');
  });
  children.delete(etcd.child);
  const w = Math.max(...rows.map((r) => r[0]!.length));
  for (const [k, v] of rows) console.log(`${k!.padEnd(w)}  ${v}`);
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  throw err;
} finally {
  for (const ch of children) ch.kill('SIGKILL');
  if (failed) {
    // The broker logs are what a failure report needs; the data directories are too big to keep.
    const kept = mkdtempSync(join(tmpdir(), 'samsa-replication-bench-logs-'));
    cpSync(logDir, kept, { recursive: true });
    console.error(`broker logs kept in ${kept}`);
  }
  rmSync(work, { recursive: true, force: true });
}
