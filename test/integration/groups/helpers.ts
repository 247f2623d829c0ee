/**
 * Plumbing for the consumer group tests: consumers run as child processes (so a test can kill
 * -9 one), each reporting what it was assigned, consumed and committed as JSON lines; and the
 * bookkeeping that checks "every record consumed, none twice after its commit".
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A topic (or group) name nobody else uses. */
export function randomTopic(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export { type BrokerProcess, spawnBroker } from '../../helpers/broker-process.ts';

export interface ConsumerEvent {
  type: string;
  partition?: number;
  offset?: string;
  value?: string | null;
  partitions?: number[];
  memberId?: string;
  [k: string]: unknown;
}

/** A consumer child process and what it has reported so far. */
export class ConsumerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly events: ConsumerEvent[] = [];
  stderr = '';
  readonly exited: Promise<unknown>;

  /** The partitions owned now (after every eager or incremental assignment and revocation). */
  readonly owned = new Set<number>();
  #assignedOnce = false;

  constructor(
    name: string,
    command: string,
    args: string[],
    parse: {
      stdout: (line: string) => ConsumerEvent | undefined;
      stderr?: (line: string) => ConsumerEvent | undefined;
    },
  ) {
    this.name = name;
    this.child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = once(this.child, 'exit');
    const lines = (stream: NodeJS.ReadableStream, onLine: (line: string) => void): void => {
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffered += chunk;
        let nl = buffered.indexOf('\n');
        while (nl >= 0) {
          onLine(buffered.slice(0, nl).trim());
          buffered = buffered.slice(nl + 1);
          nl = buffered.indexOf('\n');
        }
      });
    };
    lines(this.child.stdout!, (line) => {
      const e = parse.stdout(line);
      if (e !== undefined) this.record(e);
    });
    lines(this.child.stderr!, (line) => {
      this.stderr += `${line}\n`;
      const e = parse.stderr?.(line);
      if (e !== undefined) this.record(e);
    });
  }

  record(e: ConsumerEvent): void {
    this.events.push(e);
    const parts = e.partitions ?? [];
    if (e.type === 'assigned') {
      this.owned.clear();
      for (const p of parts) this.owned.add(p);
      this.#assignedOnce = true;
    } else if (e.type === 'revoked') {
      for (const p of parts) this.owned.delete(p);
    } else if (e.type === 'added') {
      for (const p of parts) this.owned.add(p);
      this.#assignedOnce = true;
    }
  }

  /** The partitions owned now, sorted, or undefined before the first assignment. */
  assignment(): number[] | undefined {
    return this.#assignedOnce ? [...this.owned].sort((a, b) => a - b) : undefined;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive) return;
    this.child.kill(signal);
    await this.exited;
  }
}

function jsonLine(line: string): ConsumerEvent | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as ConsumerEvent;
  } catch {
    return undefined;
  }
}

/** Spawns the kafkajs fixture consumer. */
export function spawnKafkajsConsumer(name: string, bootstrap: string, topic: string, group: string): ConsumerProcess {
  return new ConsumerProcess(
    name,
    process.execPath,
    ['test/fixtures/kafkajs-group-consumer.ts', bootstrap, topic, group],
    {
      stdout: jsonLine,
    },
  );
}

/** Spawns the @platformatic/kafka fixture consumer, classic or KIP-848 (`consumer`) protocol. */
export function spawnPlatformaticConsumer(
  name: string,
  bootstrap: string,
  topic: string,
  group: string,
  protocol: 'classic' | 'consumer',
): ConsumerProcess {
  return new ConsumerProcess(
    name,
    process.execPath,
    ['test/fixtures/platformatic-group-consumer.ts', bootstrap, topic, group, protocol],
    { stdout: jsonLine },
  );
}

/**
 * Parses kcat's rebalance lines (stderr):
 *   % Group G rebalanced (memberid M): assigned: t [0], t [3]          eager
 *   % Group G rebalanced (memberid M): revoked: t [0], t [3]
 *   % Group G rebalanced: incremental assignment of 2 partition(s) (...): t [0], t [3]   cooperative
 *   % Group G rebalanced: incremental revoke of 1 partition(s) (...): t [0]
 */
export function parseKcatRebalance(line: string): ConsumerEvent | undefined {
  if (!line.startsWith('% Group ') || !line.includes(' rebalanced')) return undefined;
  const tail = line.slice(line.lastIndexOf('): ') + 3);
  const partitions = [...tail.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1]));
  if (line.includes('incremental assignment')) return { type: 'added', partitions };
  if (line.includes('incremental revoke')) return { type: 'revoked', partitions };
  if (tail.startsWith('assigned:')) return { type: 'assigned', partitions };
  if (tail.startsWith('revoked:')) return { type: 'revoked', partitions };
  return undefined;
}

/** Spawns `kcat -G` (librdkafka's balanced consumer) printing each record as JSON. */
export function spawnKcatConsumer(
  name: string,
  bootstrap: string,
  topic: string,
  group: string,
  extra: readonly string[] = [],
): ConsumerProcess {
  const args = [
    '-b',
    bootstrap,
    '-G',
    group,
    '-J',
    '-u',
    '-X',
    'auto.offset.reset=earliest',
    '-X',
    'session.timeout.ms=6000',
    '-X',
    'heartbeat.interval.ms=500',
    '-X',
    'auto.commit.interval.ms=100',
    ...extra,
    topic,
  ];
  return new ConsumerProcess(name, 'kcat', args, {
    stdout: (line) => {
      const r = jsonLine(line);
      if (r === undefined || typeof r.partition !== 'number') return undefined;
      return {
        type: 'message',
        partition: r.partition,
        offset: String(r.offset),
        value: (r.payload as string) ?? null,
      };
    },
    stderr: parseKcatRebalance,
  });
}

/** "partition:offset" of every consumed record, per consumer. */
export function consumedKeys(consumers: readonly ConsumerProcess[]): string[] {
  const out: string[] = [];
  for (const c of consumers) {
    for (const e of c.events) if (e.type === 'message') out.push(`${e.partition}:${e.offset}`);
  }
  return out;
}

/**
 * Checks exactly-once-after-commit: every produced record (partition -> count) was consumed, and a
 * record consumed twice was never committed before its second delivery, i.e. only a record
 * whose commit had not been confirmed when its consumer died may come again.
 */
export function assertDeliveredOnceAfterCommit(
  consumers: readonly ConsumerProcess[],
  produced: ReadonlyMap<number, number>,
  killed: readonly ConsumerProcess[] = [],
): void {
  const counts = new Map<string, number>();
  for (const key of consumedKeys(consumers)) counts.set(key, (counts.get(key) ?? 0) + 1);
  for (const [partition, n] of produced) {
    for (let o = 0; o < n; o++) {
      assert.ok(counts.has(`${partition}:${o}`), `record ${partition}:${o} was never consumed`);
    }
  }
  // Records consumed more than once must be ones a killed consumer received without a
  // confirmed commit.
  const uncommittedByKilled = new Set<string>();
  for (const c of killed) {
    const committed = new Set(c.events.filter((e) => e.type === 'committed').map((e) => `${e.partition}:${e.offset}`));
    for (const e of c.events) {
      if (e.type === 'message' && !committed.has(`${e.partition}:${e.offset}`)) {
        uncommittedByKilled.add(`${e.partition}:${e.offset}`);
      }
    }
  }
  for (const [key, n] of counts) {
    if (n > 1 && !uncommittedByKilled.has(key)) {
      const trace = consumers.map(
        (c) =>
          `${c.name}: ${JSON.stringify(c.events.filter((e) => e.type !== 'message' || `${e.partition}:${e.offset}` === key))}`,
      );
      assert.fail(`record ${key} was consumed ${n} times after its commit\n${trace.join('\n')}`);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
