/**
 * A real etcd (Debian's etcd-server) for cluster tests: one member on free loopback ports in a
 * temporary directory, started and removed by the test. Signals stand for faults: stop (SIGTERM),
 * kill (SIGKILL), pause/resume (SIGSTOP/SIGCONT); halt/restart stop it and start it again on the
 * same ports with the same data (an etcd outage that loses nothing).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EtcdProcess {
  /** `http://127.0.0.1:PORT`, for etcd3's `hosts`. */
  readonly endpoint: string;
  readonly dataDir: string;
  /** The current process (a new one after `restart`). */
  readonly child: ChildProcess;
  /** Everything etcd wrote to stderr so far (its log, across restarts), for failure messages. */
  log(): string;
  pause(): void;
  resume(): void;
  /** SIGKILL, then removes the data directory. */
  kill(): Promise<void>;
  /** SIGTERM, waits for the exit, then removes the data directory. */
  stop(): Promise<void>;
}

/** The etcd `startEtcd` runs: it can also be stopped and started again with its data. */
export interface RestartableEtcdProcess extends EtcdProcess {
  /** SIGTERM and waits for the exit, keeping the data directory for `restart`. */
  halt(): Promise<void>;
  /** Starts etcd again on the same ports with the same data; resolves once it answers /health. */
  restart(): Promise<void>;
}

/** Whether an `etcd` binary is on PATH (CI installs Debian's etcd-server). */
export function etcdAvailable(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
}

/** Starts etcd and resolves once it answers /health, or rejects with its log after 20 s. */
export async function startEtcd(): Promise<RestartableEtcdProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let log = '';
  const cleanUp = () => rm(dataDir, { recursive: true, force: true });
  // The same arguments every time: a restart finds its member in the data directory and comes
  // back as the same one-member cluster, with every key and lease it had.
  const launch = async (): Promise<Running> => {
    const child = spawn(
      'etcd',
      [
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
    child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      log += c;
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 20_000;
    while (!(await healthy(endpoint))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`etcd did not start on ${endpoint}:\n${log.slice(-2000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { child, exited };
  };
  let running: Running;
  try {
    running = await launch();
  } catch (err) {
    await cleanUp();
    throw err;
  }
  const signal = async (sig: NodeJS.Signals) => {
    const { child, exited } = running;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill(sig);
    }
    await exited;
  };
  return {
    endpoint,
    dataDir,
    get child() {
      return running.child;
    },
    log: () => log,
    pause: () => running.child.kill('SIGSTOP'),
    resume: () => running.child.kill('SIGCONT'),
    kill: () => signal('SIGKILL').then(cleanUp),
    stop: () => signal('SIGTERM').then(cleanUp),
    halt: () => signal('SIGTERM'),
    async restart() {
      await signal('SIGTERM');
      running = await launch();
    },
  };
}
