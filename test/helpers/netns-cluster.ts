/**
 * A real Samsa cluster whose members are separate hosts on a private network, for faults that
 * signals cannot make (issue 14, fault 3: a network partition). Linux network namespaces: etcd
 * in one, each broker in one of its own, each joined by a veth pair to one bridge in the root
 * namespace, where the test process (the clients) reaches everyone through the bridge's address.
 * `partition(nodeId)` installs nftables rules inside that broker's namespace dropping everything
 * to and from etcd and the other brokers, but not the bridge's address, so clients still reach
 * it; `heal(nodeId)` removes them.
 *
 * Needs root, `ip` (iproute2) and `nft` (nftables) and etcd (etcd-server); `netnsUnavailable()`
 * says what is missing so the test can skip with the reason. Nothing outside the bridge's own
 * /24 (10.213.X.0/24, X random and not routed on this machine yet) is touched: no default route,
 * no forwarding, no NAT, no rule in the root namespace. Names carry the creating process's pid
 * (`samsa-nt<tag>-…` namespaces, `samsa-br<tag>` bridge, `samsa-v<tag><n>` veths; the tag is
 * the pid as 6 hex digits plus a counter, to fit the 15-character interface names), so a run removes what a crashed earlier run
 * left behind (its pid is gone) without touching another run in progress.
 *
 * The cluster satisfies test/helpers/cluster.ts's `Cluster`, so the cluster tests' helpers
 * (brokerClients, waitForMembership, brokerLogs) work on it unchanged.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaClient } from '../../src/network/kafka-client.ts';
import { REPO_ROOT } from './broker-process.ts';
import type { Cluster, ClusterBroker } from './cluster.ts';
import type { EtcdProcess } from './etcd.ts';

export interface NetnsCluster extends Cluster {
  /** The bridge's address: where the test process's connections come from. */
  readonly clientAddress: string;
  /** The network namespace a broker runs in. */
  namespaceOf(nodeId: number): string;
  /** Cuts broker `nodeId` off from etcd and the other brokers (both directions); clients still reach it. */
  partition(nodeId: number): Promise<void>;
  /** Removes the rules `partition` installed. */
  heal(nodeId: number): Promise<void>;
}

export interface NetnsClusterOptions {
  brokers: number;
  /** Extra --override KEY=VALUE for every broker. */
  overrides?: Readonly<Record<string, string>>;
  logLevel?: string;
}

/** Every broker listens on this port of its own address. */
export const BROKER_PORT = 9092;
const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;
/** The nftables table `partition` installs in a broker's namespace. */
const PARTITION_TABLE = 'samsa_partition';
/** `samsa-nt…`, `samsa-br…`, `samsa-v…`/`samsa-p…` followed by the run's tag: 6 hex digits of the pid, one of a counter. */
const NAME_RE = /^samsa-(?:nt|br|v|p)(([0-9a-f]{6})[0-9a-z])/;
/** Tags of the clusters this process has running (their names must survive `removeLeftovers`). */
const liveTags = new Set<string>();
let clustersStarted = 0;

/** Short leases, as test/helpers/cluster.ts: failure detection within seconds. */
const TEST_SESSION_OVERRIDES = {
  'broker.session.timeout.ms': '3000',
  'broker.heartbeat.interval.ms': '500',
};

function run(cmd: string, args: readonly string[], input = ''): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 10_000 });
  if (r.error !== undefined) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Like `run`, for cleanup: what is already gone is not an error there. */
function tryRun(cmd: string, args: readonly string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
}

function commandWorks(cmd: string, args: readonly string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/**
 * Why this machine cannot run a namespace cluster (false when it can): not root, or a tool
 * missing, or namespaces refused (an unprivileged container).
 */
export function netnsUnavailable(): string | false {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root (CI runs as root)';
  if (!commandWorks('ip', ['-V'])) return '`ip` is not installed (Debian package iproute2)';
  if (!commandWorks('nft', ['--version'])) return '`nft` is not installed (Debian package nftables)';
  if (!commandWorks('etcd', ['--version'])) return 'etcd is not installed (Debian package etcd-server)';
  // A counter character no cluster uses ('-'), so a cluster of this process is never mistaken for it.
  const probe = `samsa-nt${pidTag(process.pid)}--probe`;
  const ok = commandWorks('ip', ['netns', 'add', probe]);
  tryRun('ip', ['netns', 'del', probe]);
  return ok ? false : 'creating a network namespace failed (`ip netns add`: no CAP_SYS_ADMIN here?)';
}

function pidTag(pid: number): string {
  return pid.toString(16).padStart(6, '0').slice(-6);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGKILLs every process inside namespace `ns` (etcd or a broker left running by a crashed run). */
function killNamespacePids(ns: string): void {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 10_000 });
  for (const line of (r.stdout ?? '').split('\n')) {
    const pid = Number(line.trim());
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

/**
 * Deletes the namespaces and links of runs whose process is gone, and of runs that carry this
 * process's pid but are not running here (a pid reused since a crashed run).
 */
export function removeLeftovers(): void {
  const stale = (name: string) => {
    const m = NAME_RE.exec(name);
    if (m === null) return false;
    if (m[2] === pidTag(process.pid)) return !liveTags.has(m[1]!);
    return !alive(Number.parseInt(m[2]!, 16));
  };
  const namespaces = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of namespaces.split('\n')) {
    const ns = line.trim().split(/\s+/)[0] ?? '';
    if (!stale(ns)) continue;
    killNamespacePids(ns);
    tryRun('ip', ['netns', 'del', ns]);
  }
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of links.split('\n')) {
    // "12: samsa-v00abcd1@if11: <...>": the name ends at '@' or ':'.
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '';
    if (stale(name)) tryRun('ip', ['link', 'del', name]);
  }
  // The data directories (`samsa-netns-<tag>-XXXXXX`, see startNetnsCluster).
  for (const entry of readdirSync(tmpdir())) {
    const m = /^samsa-netns-([0-9a-f]{6}[0-9a-z])-/.exec(entry);
    if (m !== null && stale(`samsa-nt${m[1]}`)) rmSync(join(tmpdir(), entry), { recursive: true, force: true });
  }
}

/** A /24 under 10.213.0.0/16 that this machine has no route into yet. */
function pickSubnet(): string {
  const routes = run('ip', ['-4', '-o', 'route', 'show', 'table', 'all']);
  for (let i = 0; i < 50; i++) {
    const prefix = `10.213.${1 + Math.floor(Math.random() * 254)}`;
    if (!routes.includes(`${prefix}.`)) return prefix;
  }
  throw new Error('no free 10.213.X.0/24 subnet on this machine');
}

interface Network {
  readonly tag: string;
  readonly prefix: string;
  readonly bridge: string;
  /** Each namespace built and the root end of its veth pair. */
  readonly hosts: { ns: string; veth: string }[];
}

/** A namespace `ns` joined to the bridge by a veth pair, with address `ip`/24 and loopback up. */
function addHost(net: Network, ns: string, index: number, ip: string): void {
  const host = `samsa-v${net.tag}${index}`;
  run('ip', ['netns', 'add', ns]);
  net.hosts.push({ ns, veth: host });
  const peer = `samsa-p${net.tag}${index}`;
  run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
  run('ip', ['link', 'set', peer, 'netns', ns]);
  run('ip', ['link', 'set', host, 'master', net.bridge]);
  run('ip', ['link', 'set', host, 'up']);
  run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  run('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${ip}/24`, 'dev', peer]);
  run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', peer, 'up']);
}

function removeNetwork(net: Network): void {
  for (const { ns, veth } of net.hosts) {
    killNamespacePids(ns);
    // The pair goes with either end. Deleting the namespace alone is not enough: the kernel
    // destroys a namespace (and the veth end inside it) only once nothing holds it any more,
    // which was seen to leave the root end behind.
    tryRun('ip', ['link', 'del', veth]);
    tryRun('ip', ['netns', 'del', ns]);
  }
  tryRun('ip', ['link', 'del', net.bridge]);
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

async function startNamespacedEtcd(ns: string, ip: string, dataDir: string): Promise<EtcdProcess> {
  const endpoint = `http://${ip}:${ETCD_CLIENT_PORT}`;
  // The peer URL stays on the namespace's loopback: a one-member cluster has no peers to reach.
  const peer = `http://127.0.0.1:${ETCD_PEER_PORT}`;
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'etcd',
      '--name',
      'test',
      '--data-dir',
      join(dataDir, 'data'),
      '--listen-client-urls',
      endpoint,
      '--advertise-client-urls',
      endpoint,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `test=${peer}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    log += c;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 20_000;
  // Reached through the bridge, as the brokers will: this also proves the network works.
  while (!(await healthy(endpoint))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`etcd did not start on ${endpoint} in namespace ${ns}:\n${log.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill(sig);
    }
    await exited;
  };
  return {
    endpoint,
    dataDir,
    child,
    log: () => log,
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    kill: () => signal('SIGKILL'),
    stop: () => signal('SIGTERM'),
  };
}

function namespacedBroker(
  nodeId: number,
  ns: string,
  ip: string,
  dataDir: string,
  metadataUrl: string,
  overrides: Readonly<Record<string, string>>,
  logLevel: string,
): ClusterBroker {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  const address = `${ip}:${BROKER_PORT}`;
  return {
    nodeId,
    port: BROKER_PORT,
    address,
    dataDir,
    child: () => child,
    output: () => output,
    httpAddress: () => undefined,
    async start() {
      // `ip netns exec` execs node after entering the namespace: the child's pid is the broker's,
      // so signals reach the broker itself.
      const args = ['netns', 'exec', ns, process.execPath, 'src/cli.ts', 'start', '--node-id', String(nodeId)];
      args.push('--listen', address, '--advertise', address, '--data-dir', dataDir, '--metadata', metadataUrl);
      args.push('--log-level', logLevel, '--http-listen', 'none');
      for (const [k, v] of Object.entries(overrides)) args.push('--override', `${k}=${v}`);
      const proc = spawn('ip', args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      output = '';
      let stdout = '';
      proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
        output += c;
      });
      exited = new Promise((resolve) => proc.once('exit', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          proc.kill('SIGKILL');
          reject(new Error(`broker ${nodeId} did not start within 30 s:\n${output}`));
        }, 30_000);
        proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
          stdout += c;
          output += c;
          if (/listening on /.test(stdout)) {
            clearTimeout(timer);
            resolve();
          }
        });
        proc.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`broker ${nodeId} exited (${code ?? signal}) before listening:\n${output}`));
        });
      });
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const proc = child;
      if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGCONT');
        proc.kill(signal);
      }
      await exited;
    },
    stop() {
      return this.kill('SIGTERM');
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
  };
}

/**
 * Builds the network, starts etcd and the brokers in it (node ids 1..N at `<prefix>.11`,
 * `.12`, ...; etcd at `<prefix>.2`). Everything built is removed by `close()`, also when the
 * start fails, and by a process 'exit' hook if the test process ends without calling it.
 */
export async function startNetnsCluster(options: NetnsClusterOptions): Promise<NetnsCluster> {
  if (options.brokers < 1 || options.brokers > 9) throw new Error('1 to 9 brokers (one digit in the veth names)');
  removeLeftovers();
  const tag = `${pidTag(process.pid)}${(clustersStarted++ % 36).toString(36)}`;
  liveTags.add(tag);
  const net: Network = { tag, prefix: pickSubnet(), bridge: `samsa-br${tag}`, hosts: [] };
  const root = await mkdtemp(join(tmpdir(), `samsa-netns-${tag}-`));
  const brokers: ClusterBroker[] = [];
  const clients: KafkaClient[] = [];
  const namespaces = new Map<number, string>();
  const addresses = new Map<number, string>();
  let etcd: EtcdProcess | undefined;
  let closed = false;

  const teardownSync = () => {
    for (const b of brokers) b.child()?.kill('SIGKILL');
    etcd?.child.kill('SIGKILL');
    removeNetwork(net);
    liveTags.delete(tag);
  };
  // A test process ending without close() (an uncaught error, the runner's timeout) must not
  // leave namespaces, the bridge or processes behind.
  const onExit = () => {
    if (!closed) teardownSync();
  };
  process.once('exit', onExit);

  const close = async () => {
    if (closed) return;
    closed = true;
    process.removeListener('exit', onExit);
    for (const c of clients) c.close();
    await Promise.all(brokers.map((b) => b.kill('SIGKILL')));
    await etcd?.kill();
    removeNetwork(net);
    liveTags.delete(tag);
    await rm(root, { recursive: true, force: true });
  };

  try {
    run('ip', ['link', 'add', net.bridge, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${net.prefix}.1/24`, 'dev', net.bridge]);
    run('ip', ['link', 'set', net.bridge, 'up']);
    const etcdNs = `samsa-nt${tag}-etcd`;
    const etcdIp = `${net.prefix}.2`;
    addHost(net, etcdNs, 0, etcdIp);
    for (let nodeId = 1; nodeId <= options.brokers; nodeId++) {
      const ns = `samsa-nt${tag}-b${nodeId}`;
      const ip = `${net.prefix}.${10 + nodeId}`;
      addHost(net, ns, nodeId, ip);
      namespaces.set(nodeId, ns);
      addresses.set(nodeId, ip);
    }
    etcd = await startNamespacedEtcd(etcdNs, etcdIp, join(root, 'etcd'));
    const metadataUrl = `etcd://${etcdIp}:${ETCD_CLIENT_PORT}`;
    for (const [nodeId, ns] of namespaces) {
      brokers.push(
        namespacedBroker(
          nodeId,
          ns,
          addresses.get(nodeId)!,
          join(root, `broker-${nodeId}`),
          metadataUrl,
          { ...TEST_SESSION_OVERRIDES, ...options.overrides },
          options.logLevel ?? 'warn',
        ),
      );
    }
    await Promise.all(brokers.map((b) => b.start()));
  } catch (err) {
    await close();
    throw err;
  }
  const etcdProcess = etcd;

  const namespaceOf = (nodeId: number) => {
    const ns = namespaces.get(nodeId);
    if (ns === undefined) throw new Error(`no broker ${nodeId} in the cluster`);
    return ns;
  };

  return {
    etcd: etcdProcess,
    metadataUrl: `etcd://${net.prefix}.2:${ETCD_CLIENT_PORT}`,
    brokers,
    bootstrap: brokers.map((b) => b.address).join(','),
    clientAddress: `${net.prefix}.1`,
    namespaceOf,
    async partition(nodeId) {
      const ns = namespaceOf(nodeId);
      const others = [`${net.prefix}.2`, ...[...addresses].filter(([id]) => id !== nodeId).map(([, ip]) => ip)];
      const set = `{ ${others.join(', ')} }`;
      // Rules in the broker's own namespace, so nothing outside it changes. No conntrack
      // exception: established connections (the etcd lease stream, the fetchers) go silent too,
      // as a pulled cable would make them. The bridge's address (the clients) is not in the set.
      const rules = [
        `table inet ${PARTITION_TABLE} {`,
        '  chain input {',
        '    type filter hook input priority 0; policy accept;',
        `    ip saddr ${set} drop`,
        '  }',
        '  chain output {',
        '    type filter hook output priority 0; policy accept;',
        `    ip daddr ${set} drop`,
        '  }',
        '}',
      ].join('\n');
      run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], rules);
    },
    async heal(nodeId) {
      run('ip', ['netns', 'exec', namespaceOf(nodeId), 'nft', 'delete', 'table', 'inet', PARTITION_TABLE]);
    },
    async client(broker) {
      const bootstrap = broker === undefined ? brokers.map((b) => b.address) : [broker.address];
      const client = new KafkaClient({ bootstrap, requestTimeoutMs: 10_000 });
      clients.push(client);
      return client;
    },
    async waitFor(what, check, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      for (;;) {
        try {
          const v = await check();
          if (v !== undefined && v !== false) return v as never;
        } catch (err) {
          last = err;
        }
        if (Date.now() > deadline)
          throw new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${String(last)})`}\n` +
              brokers.map((b) => `--- broker ${b.nodeId}:\n${b.output().slice(-3000)}`).join('\n'),
          );
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    close,
  };
}
