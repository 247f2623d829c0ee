/**
 * `samsa cluster up`: a development cluster on this machine, in one terminal. It starts an etcd
 * (unless --metadata names a running one) and N `samsa start` processes that share it, waits
 * until every broker answers and the cluster's metadata lists all of them, prints the bootstrap
 * list and stays in the foreground. Ctrl-C stops the brokers first (each flushes and closes its
 * logs and leaves the cluster while etcd is still there to record it), then etcd.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { ConfigError } from '../config/config-error.ts';
import { parseMetadataUrl } from '../config/metadata-url.ts';
import { KafkaClient, parseHostPort } from '../network/kafka-client.ts';
import { intOption, keyValue, sleep, UsageError } from './cli-common.ts';

export const CLUSTER_UP_OPTIONS = {
  brokers: { type: 'string' },
  'data-dir': { type: 'string' },
  port: { type: 'string' },
  'http-port': { type: 'string' },
  etcd: { type: 'string' },
  metadata: { type: 'string' },
  override: { type: 'string', multiple: true },
  'timeout-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ClusterUpValues {
  brokers?: string | undefined;
  'data-dir'?: string | undefined;
  port?: string | undefined;
  'http-port'?: string | undefined;
  etcd?: string | undefined;
  metadata?: string | undefined;
  override?: string[] | undefined;
  'timeout-ms'?: string | undefined;
}

const MAX_BROKERS = 100;
const DEFAULT_DATA_DIR = './samsa-cluster';
const DEFAULT_FIRST_PORT = 9092;
/** How long a stopping broker may take to flush and close before it is killed. */
const BROKER_STOP_TIMEOUT_MS = 30_000;
const ETCD_START_TIMEOUT_MS = 20_000;
const ETCD_STOP_TIMEOUT_MS = 10_000;

/** What went wrong outside the command line (a child that failed, a port in use): one line, exit code 1. */
class ClusterUpError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'ClusterUpError';
    this.exitCode = exitCode;
  }
}

interface Child {
  /** `broker 2` or `etcd`. */
  readonly name: string;
  readonly process: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Set once this command asked it to stop: its exit is then expected. */
  stopping: boolean;
}

interface Plan {
  brokers: number;
  dataDir: string;
  firstPort: number;
  httpFirstPort: number | undefined;
  /** etcd://... given with --metadata, or undefined: start one. */
  metadataUrl: string | undefined;
  etcdClient: { host: string; port: number } | undefined;
  overrides: string[];
  timeoutMs: number;
}

function plan(values: ClusterUpValues): Plan {
  const brokers = intOption(values.brokers, 'brokers', { min: 1, max: MAX_BROKERS });
  if (brokers === undefined) throw new UsageError('--brokers N is required (e.g. --brokers 3)');
  const firstPort = intOption(values.port, 'port', { min: 1, max: 65536 - brokers }) ?? DEFAULT_FIRST_PORT;
  const httpFirstPort =
    values['http-port'] === undefined || values['http-port'] === 'none'
      ? undefined
      : intOption(values['http-port'], 'http-port', { min: 1, max: 65536 - brokers });
  if (values.etcd !== undefined && values.metadata !== undefined)
    throw new UsageError('--etcd (the etcd to start) and --metadata (a running one) exclude each other');
  if (values.metadata !== undefined) {
    try {
      parseMetadataUrl(values.metadata, '--metadata');
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(err.message);
      throw err;
    }
  }
  let etcdClient: { host: string; port: number } | undefined;
  if (values.etcd !== undefined) {
    try {
      etcdClient = parseHostPort(values.etcd, 0);
    } catch (err) {
      throw new UsageError(`--etcd: ${(err as Error).message}`);
    }
  }
  const overrides = values.override ?? [];
  for (const o of overrides) keyValue('override', o);
  return {
    brokers,
    dataDir: resolve(values['data-dir'] ?? DEFAULT_DATA_DIR),
    firstPort,
    httpFirstPort,
    metadataUrl: values.metadata,
    etcdClient,
    overrides,
    timeoutMs: intOption(values['timeout-ms'], 'timeout-ms', { min: 1 }) ?? 30_000,
  };
}

export async function clusterUp(values: ClusterUpValues): Promise<number> {
  const p = plan(values);
  try {
    return await run(p);
  } catch (err) {
    if (err instanceof ClusterUpError) {
      console.error(`samsa cluster: ${err.message}`);
      return err.exitCode;
    }
    throw err;
  }
}

async function run(p: Plan): Promise<number> {
  const brokerPorts = Array.from({ length: p.brokers }, (_, i) => p.firstPort + i);
  const httpPorts = p.httpFirstPort === undefined ? [] : brokerPorts.map((_, i) => p.httpFirstPort! + i);
  // A taken port would only show up as one broker failing after etcd started: say it first.
  for (const port of [...brokerPorts, ...httpPorts]) {
    if (!(await portFree('127.0.0.1', port)))
      throw new ClusterUpError(
        `port ${port} is in use (another cluster or broker? stop it, or give --port/--http-port another first port)`,
        2,
      );
  }
  const etcdPath = p.metadataUrl === undefined ? findOnPath('etcd') : undefined;
  if (p.metadataUrl === undefined && etcdPath === undefined)
    throw new ClusterUpError(
      'etcd not found on PATH: install it (Debian/Ubuntu: apt-get install etcd-server) or give --metadata etcd://HOST:PORT of a running one',
      2,
    );
  try {
    mkdirSync(p.dataDir, { recursive: true });
  } catch (err) {
    throw new ClusterUpError(`cannot create ${p.dataDir}: ${(err as Error).message}`, 2);
  }

  const children: Child[] = [];
  // A crash of this process must not leave brokers and etcd behind in their own process groups.
  const killAll = () => {
    for (const c of children) if (running(c)) c.process.kill('SIGKILL');
  };
  process.on('exit', killAll);
  // Signals from here on stop what has been started; before the foreground they abort the start.
  let signalled: NodeJS.Signals | undefined;
  let onSignal: ((signal: NodeJS.Signals) => void) | undefined;
  const handler = (signal: NodeJS.Signals) => {
    if (signalled !== undefined) {
      // Second Ctrl-C: whoever is in a hurry gets everything killed at once.
      console.error(`samsa cluster: ${signal} again: killing brokers and etcd`);
      killAll();
      process.exit(1);
    }
    signalled = signal;
    onSignal?.(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, handler);
  const interrupted = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = resolve;
  });
  try {
    let metadataUrl: string;
    let etcdEndpoint: string;
    if (p.metadataUrl === undefined) {
      etcdEndpoint = await startEtcd(etcdPath!, p, children, interrupted);
      metadataUrl = `etcd://${etcdEndpoint.slice('http://'.length)}`;
    } else {
      metadataUrl = p.metadataUrl;
      const { endpoints } = parseMetadataUrl(metadataUrl);
      etcdEndpoint = endpoints.join(',');
      await waitForExistingEtcd(endpoints, interrupted);
    }
    const brokers = brokerPorts.map((port, i) =>
      startBrokerProcess(i + 1, port, httpPorts[i], metadataUrl, p, children),
    );
    const clusterId = await waitForCluster(brokers, brokerPorts, p, interrupted);
    const bootstrap = brokerPorts.map((port) => `127.0.0.1:${port}`).join(',');
    const lines = [
      `Samsa cluster of ${p.brokers} broker${p.brokers === 1 ? '' : 's'} up${clusterId === null ? '' : ` (cluster id ${clusterId})`}`,
      `  bootstrap: ${bootstrap}`,
      p.metadataUrl === undefined
        ? `  etcd:      ${etcdEndpoint} (data in ${join(p.dataDir, 'etcd')}); more brokers join with --metadata ${metadataUrl}`
        : `  etcd:      ${etcdEndpoint} (--metadata ${metadataUrl})`,
      `  logs:      ${join(p.dataDir, p.brokers === 1 ? 'broker-1.log' : `broker-{1..${p.brokers}}.log`)}${p.metadataUrl === undefined ? `, ${join(p.dataDir, 'etcd.log')}` : ''}`,
      ...brokers.map(
        (b, i) =>
          `  ${b.name}: 127.0.0.1:${brokerPorts[i]}${httpPorts[i] === undefined ? '' : ` (http ${httpPorts[i]})`}, pid ${b.process.pid}, data in ${join(p.dataDir, `broker-${i + 1}`)}`,
      ),
      `Try: samsa cluster info -b ${bootstrap}`,
      'Ctrl-C stops the brokers, then etcd.',
    ];
    console.log(lines.join('\n'));
    // From here on an exit nobody asked for is reported, and the rest keep running.
    for (const c of children) {
      void c.exited.then(({ code, signal }) => {
        if (c.stopping) return;
        const how = signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
        const consequence =
          c.name === 'etcd'
            ? 'metadata changes fail until an etcd is back'
            : 'its partitions have no leader until it is back';
        console.error(`samsa cluster: ${c.name} ${how} (${consequence}; see ${c.logFile})`);
      });
    }
    const signal = await interrupted;
    return await stopAll(children, `${signal}: stopping`);
  } catch (err) {
    if (err instanceof Interrupted) return await stopAll(children, `${err.signal} during start: stopping`);
    await stopAll(children, undefined);
    throw err;
  } finally {
    for (const s of signals) process.off(s, handler);
    process.off('exit', killAll);
  }
}

class Interrupted extends Error {
  readonly signal: NodeJS.Signals;
  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.signal = signal;
  }
}

/** Rejects with Interrupted when `interrupted` settles first. */
function unlessInterrupted<T>(work: Promise<T>, interrupted: Promise<NodeJS.Signals>): Promise<T> {
  return Promise.race([
    work,
    interrupted.then((signal) => {
      throw new Interrupted(signal);
    }),
  ]);
}

function running(c: Child): boolean {
  return c.process.exitCode === null && c.process.signalCode === null;
}

/**
 * Spawns a child in its own process group with stdout and stderr appended to its log file. Its
 * own group keeps the terminal's Ctrl-C away from it: this command decides the order in which
 * brokers and etcd stop, and a broker that got SIGINT from the terminal would take the SIGTERM
 * that follows as a second signal and exit at once.
 */
function spawnChild(name: string, command: string, args: string[], logFile: string, children: Child[]): Child {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { stdio: ['ignore', fd, fd], detached: true });
  } finally {
    // The child has its own copy of the descriptor.
    closeSync(fd);
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    // ENOENT and the like: no process, and no 'exit' event to wait for.
    child.once('error', () => resolve({ code: 127, signal: null }));
  });
  const c: Child = { name, process: child, logFile, exited, stopping: false };
  children.push(c);
  return c;
}

async function startEtcd(
  etcdPath: string,
  p: Plan,
  children: Child[],
  interrupted: Promise<NodeJS.Signals>,
): Promise<string> {
  const host = p.etcdClient?.host ?? '127.0.0.1';
  const clientPort = p.etcdClient !== undefined && p.etcdClient.port !== 0 ? p.etcdClient.port : await freePort();
  if (!(await portFree(host, clientPort)))
    throw new ClusterUpError(`port ${clientPort} for etcd is in use (give --etcd HOST:PORT another port)`, 2);
  const peerPort = await freePort();
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const endpoint = `http://${urlHost}:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const logFile = join(p.dataDir, 'etcd.log');
  // A restart reuses DIR/etcd (the cluster's metadata) whatever ports were free this time: a
  // single member keeps working when its peer address changes.
  const etcd = spawnChild(
    'etcd',
    etcdPath,
    [
      '--name',
      'samsa-dev',
      '--data-dir',
      join(p.dataDir, 'etcd'),
      '--logger',
      'zap',
      '--listen-client-urls',
      endpoint,
      '--advertise-client-urls',
      endpoint,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `samsa-dev=${peer}`,
    ],
    logFile,
    children,
  );
  const deadline = Date.now() + ETCD_START_TIMEOUT_MS;
  while (!(await unlessInterrupted(etcdHealthy(endpoint), interrupted))) {
    if (!running(etcd)) {
      const { code, signal } = await etcd.exited;
      throw new ClusterUpError(
        `etcd ${signal !== null ? `was killed by ${signal}` : `exited with code ${code}`} before it was ready${lastLine(logFile)} (see ${logFile})`,
      );
    }
    if (Date.now() > deadline)
      throw new ClusterUpError(
        `etcd did not answer on ${endpoint} within ${ETCD_START_TIMEOUT_MS / 1000} s (see ${logFile})`,
      );
    await unlessInterrupted(sleep(100), interrupted);
  }
  return endpoint;
}

async function waitForExistingEtcd(endpoints: readonly string[], interrupted: Promise<NodeJS.Signals>): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    for (const e of endpoints) if (await unlessInterrupted(etcdHealthy(e), interrupted)) return;
    if (Date.now() > deadline)
      throw new ClusterUpError(`no etcd answers at ${endpoints.map((e) => `${e}/health`).join(', ')}: is it running?`);
    await unlessInterrupted(sleep(200), interrupted);
  }
}

async function etcdHealthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

function startBrokerProcess(
  nodeId: number,
  port: number,
  httpPort: number | undefined,
  metadataUrl: string,
  p: Plan,
  children: Child[],
): Child {
  // The same Node with the same flags (bin/samsa.js's --single-threaded-gc) running the same
  // entry point (bin/samsa.js, or src/cli.ts run directly). A debugger flag would make every
  // broker fight for the inspector's port.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect'));
  const args = [
    ...execArgv,
    cliEntry(),
    'start',
    '--node-id',
    String(nodeId),
    '--listen',
    `127.0.0.1:${port}`,
    '--data-dir',
    join(p.dataDir, `broker-${nodeId}`),
    '--metadata',
    metadataUrl,
    '--http-listen',
    httpPort === undefined ? 'none' : `127.0.0.1:${httpPort}`,
  ];
  for (const o of p.overrides) args.push('--override', o);
  return spawnChild(`broker ${nodeId}`, process.execPath, args, join(p.dataDir, `broker-${nodeId}.log`), children);
}

/** The script this process runs: bin/samsa.js, src/cli.ts, or dist/bin/cli.js. */
function cliEntry(): string {
  const entry = process.argv[1];
  if (entry === undefined) throw new ClusterUpError('cannot tell which script runs samsa (process.argv[1] is empty)');
  return resolve(entry);
}

/**
 * Waits until every broker answers Metadata and lists all N brokers, so that the bootstrap list
 * printed after it works at once. Returns the cluster id.
 */
async function waitForCluster(
  brokers: Child[],
  ports: number[],
  p: Plan,
  interrupted: Promise<NodeJS.Signals>,
): Promise<string | null> {
  const deadline = Date.now() + p.timeoutMs;
  const want = Array.from({ length: p.brokers }, (_, i) => i + 1);
  let clusterId: string | null = null;
  for (let i = 0; i < brokers.length; i++) {
    const b = brokers[i]!;
    let seen: number[] = [];
    for (;;) {
      if (!running(b)) {
        const { code, signal } = await b.exited;
        throw new ClusterUpError(
          `${b.name} ${signal !== null ? `was killed by ${signal}` : `exited with code ${code}`} before it was ready${lastLine(b.logFile)} (see ${b.logFile})`,
        );
      }
      const listed = await unlessInterrupted(brokersListed(ports[i]!), interrupted);
      if (listed !== undefined) {
        seen = listed.nodeIds;
        clusterId = listed.clusterId;
        if (want.every((id) => seen.includes(id))) break;
      }
      if (Date.now() > deadline) {
        const why =
          listed === undefined
            ? `does not answer on 127.0.0.1:${ports[i]}`
            : `answers, but its metadata lists ${seen.length === 0 ? 'no broker' : `only broker${seen.length === 1 ? '' : 's'} ${seen.join(', ')}`} of 1..${p.brokers}`;
        throw new ClusterUpError(`${b.name} ${why} after ${p.timeoutMs / 1000} s (see ${b.logFile})`);
      }
      await unlessInterrupted(sleep(200), interrupted);
    }
  }
  return clusterId;
}

/** The node ids in one broker's Metadata, or undefined while it does not answer. */
async function brokersListed(port: number): Promise<{ nodeIds: number[]; clusterId: string | null } | undefined> {
  const client = new KafkaClient({
    bootstrap: `127.0.0.1:${port}`,
    clientId: 'samsa-cluster-up',
    connectTimeoutMs: 1000,
    requestTimeoutMs: 2000,
  });
  try {
    const md = await client.metadata([]);
    return { nodeIds: [...md.brokers.keys()].sort((a, b) => a - b), clusterId: md.clusterId };
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

/**
 * Stops brokers (SIGTERM, all at once: each flushes and leaves the cluster on its own), then
 * etcd, which the brokers need until they are gone. Returns the exit code: 0 when everything
 * stopped when asked.
 */
async function stopAll(children: Child[], announce: string | undefined): Promise<number> {
  const live = children.filter(running);
  if (announce !== undefined && live.length > 0) console.log(`${announce} ${describe(live)}`);
  let clean = true;
  const stop = async (c: Child, timeoutMs: number) => {
    c.stopping = true;
    if (!running(c)) return;
    c.process.kill('SIGTERM');
    const timer = setTimeout(() => {
      console.error(
        `samsa cluster: ${c.name} did not stop within ${timeoutMs / 1000} s: killing it (see ${c.logFile})`,
      );
      clean = false;
      c.process.kill('SIGKILL');
    }, timeoutMs);
    await c.exited;
    clearTimeout(timer);
  };
  await Promise.all(children.filter((c) => c.name !== 'etcd').map((c) => stop(c, BROKER_STOP_TIMEOUT_MS)));
  await Promise.all(children.filter((c) => c.name === 'etcd').map((c) => stop(c, ETCD_STOP_TIMEOUT_MS)));
  if (announce !== undefined && live.length > 0) console.log('Stopped.');
  return clean ? 0 : 1;
}

function describe(children: Child[]): string {
  const brokers = children.filter((c) => c.name !== 'etcd').length;
  const parts = [];
  if (brokers > 0) parts.push(`${brokers} broker${brokers === 1 ? '' : 's'}`);
  if (children.some((c) => c.name === 'etcd')) parts.push(brokers > 0 ? 'then etcd' : 'etcd');
  return parts.join(', ');
}

/** `: <last line of the log>`, when it is a short message (a broker's one-line start error). */
function lastLine(logFile: string): string {
  try {
    const lines = readFileSync(logFile, 'utf8').trimEnd().split('\n');
    const last = lines.at(-1)?.trim() ?? '';
    return last !== '' && last.length <= 300 && !last.startsWith('{') ? `: ${last}` : '';
  } catch {
    return '';
  }
}

function findOnPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
