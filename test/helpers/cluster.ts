/**
 * A real Samsa cluster for tests: a real etcd (test/helpers/etcd.ts) and N broker processes
 * (`node src/cli.ts start --metadata etcd://...`) on fixed free loopback ports, each with its own
 * data directory, so a broker killed and started again comes back at the same address with its
 * data. Faults are signals: kill -9, SIGSTOP/SIGCONT, SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaClient } from '../../src/network/kafka-client.ts';
import { REPO_ROOT } from './broker-process.ts';
import { type EtcdProcess, type RestartableEtcdProcess, startEtcd } from './etcd.ts';

export interface ClusterBroker {
  readonly nodeId: number;
  readonly port: number;
  readonly address: string;
  readonly dataDir: string;
  /** The running process, if any. */
  child(): ChildProcess | undefined;
  /** Everything the current (or last) process wrote to stderr and stdout. */
  output(): string;
  /** `http://127.0.0.1:PORT` of its HTTP listener, when the cluster was started with `http`. */
  httpAddress(): string | undefined;
  /** Starts the broker (again), resolving once it listens. */
  start(): Promise<void>;
  /** kill -9 (or another signal), resolving once the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM: a clean shutdown. */
  stop(): Promise<void>;
  pause(): void;
  resume(): void;
}

export interface Cluster {
  readonly etcd: EtcdProcess;
  readonly metadataUrl: string;
  readonly brokers: readonly ClusterBroker[];
  /** Every broker's address, comma-separated (clients' bootstrap.servers). */
  readonly bootstrap: string;
  /**
   * A client of the project's own (Metadata and raw requests), closed with the cluster. With a
   * broker, that broker is its only bootstrap address, so `request` asks exactly that broker.
   */
  client(broker?: ClusterBroker): Promise<KafkaClient>;
  /** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
  waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

/** The cluster `startCluster` runs: its etcd can be stopped and started again with its data. */
export interface LocalCluster extends Cluster {
  readonly etcd: RestartableEtcdProcess;
}

export interface ClusterOptions {
  brokers: number;
  /** Extra --override KEY=VALUE for every broker. */
  overrides?: Readonly<Record<string, string>>;
  /** Per-broker overrides (e.g. broker.rack), by node id. */
  brokerOverrides?: Readonly<Record<number, Readonly<Record<string, string>>>>;
  logLevel?: string;
  /** Serve /metrics, /health and /ready on a free port per broker (`ClusterBroker.httpAddress()`). */
  http?: boolean;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** Short leases so failure detection takes seconds in tests. */
const TEST_SESSION_OVERRIDES = {
  'broker.session.timeout.ms': '3000',
  'broker.heartbeat.interval.ms': '500',
};

export async function startCluster(options: ClusterOptions): Promise<LocalCluster> {
  const etcd = await startEtcd();
  const root = await mkdtemp(join(tmpdir(), 'samsa-cluster-'));
  const metadataUrl = `etcd://${etcd.endpoint.replace('http://', '')}`;
  const brokers: ClusterBroker[] = [];
  const clients: KafkaClient[] = [];
  for (let nodeId = 1; nodeId <= options.brokers; nodeId++) {
    brokers.push(
      clusterBroker(
        nodeId,
        await freePort(),
        join(root, `broker-${nodeId}`),
        metadataUrl,
        {
          ...TEST_SESSION_OVERRIDES,
          ...options.overrides,
          ...options.brokerOverrides?.[nodeId],
        },
        options.logLevel ?? 'warn',
        options.http ?? false,
      ),
    );
  }
  const cluster: LocalCluster = {
    etcd,
    metadataUrl,
    brokers,
    bootstrap: brokers.map((b) => b.address).join(','),
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
    async close() {
      for (const c of clients) c.close();
      await Promise.all(brokers.map((b) => b.kill('SIGKILL')));
      await etcd.kill();
      await rm(root, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(brokers.map((b) => b.start()));
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}

function clusterBroker(
  nodeId: number,
  port: number,
  dataDir: string,
  metadataUrl: string,
  overrides: Readonly<Record<string, string>>,
  logLevel: string,
  http: boolean,
): ClusterBroker {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  const address = `127.0.0.1:${port}`;
  return {
    nodeId,
    port,
    address,
    dataDir,
    child: () => child,
    output: () => output,
    httpAddress: () => /Samsa HTTP listening on (http:\/\/\S+)/.exec(output)?.[1],
    async start() {
      const args = ['src/cli.ts', 'start', '--node-id', String(nodeId), '--listen', address, '--data-dir', dataDir];
      args.push('--metadata', metadataUrl, '--log-level', logLevel, '--http-listen', http ? '127.0.0.1:0' : 'none');
      for (const [k, v] of Object.entries(overrides)) args.push('--override', `${k}=${v}`);
      const proc = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
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
