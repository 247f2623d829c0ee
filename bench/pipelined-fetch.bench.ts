/**
 * Issue 11 item 17: clients that pipeline Fetches and never read the responses. The broker runs
 * in its own process (`node src/cli.ts start` of --root, default this checkout, so a checkout of
 * an older commit can be measured the same way); this process writes the Fetches and reads the
 * broker's RSS from /proc.
 *   node bench/pipelined-fetch.bench.ts [--root DIR] [--clients 1] [--fetches 1500] [--seconds 10]
 * Prints the broker's RSS before the clients connect, its peak while they hold their unread
 * responses, and after they have closed, and the time one Fetch of another client takes meanwhile.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FetchRequestInput } from '../src/protocol/messages/001-fetch.ts';
import { buildRecordBatchSync } from '../src/protocol/records/index.ts';
import {
  ApiKeys,
  createTopic,
  encodeRequest,
  fetchPartition,
  produceBatch,
  RawConnection,
} from '../test/integration/broker/helpers.ts';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
function option(name: string, fallback: string): string {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1]! : fallback;
}
const root = resolve(option('root', here));
const clients = Number(option('clients', '1'));
const fetches = Number(option('fetches', '1500'));
const seconds = Number(option('seconds', '10'));
// Under the default max.message.bytes (1 MiB + 12) with the batch's overhead.
const RECORD_BYTES = 1_000_000;
const BATCHES = 16;
const TOPIC = 'pipelined';

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startBroker(dataDir: string): Promise<{ child: ChildProcess; bootstrap: string }> {
  const child = spawn(
    process.execPath,
    [
      '--single-threaded-gc',
      join(root, 'src/cli.ts'),
      'start',
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  const bootstrap = await new Promise<string>((ok, fail) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m !== null) ok(m[1]!);
    });
    child.once('exit', (code) => fail(new Error(`broker exited with ${code}: ${out}`)));
  });
  return { child, bootstrap };
}

function fetchFrames(count: number): Buffer {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    frames.push(
      encodeRequest(ApiKeys.Fetch, 11, i, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: RECORD_BYTES,
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [
          { topic: TOPIC, partitions: [{ partition: 0, fetchOffset: BigInt(i % BATCHES), partitionMaxBytes: 1 }] },
        ],
        forgottenTopicsData: [],
        rackId: '',
      } satisfies FetchRequestInput),
    );
  }
  return Buffer.concat(frames);
}

const dataDir = mkdtempSync(join(tmpdir(), 'samsa-pipelined-'));
const { child, bootstrap } = await startBroker(dataDir);
const pid = child.pid!;
let commit = 'unknown';
try {
  commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  if (execFileSync('git', ['-C', root, 'status', '--porcelain', 'src'], { encoding: 'utf8' }).trim() !== '') {
    commit += ' (src modified)';
  }
} catch {}
console.log(`broker: ${root} at ${commit}, ${new Date().toISOString()}`);
console.log(`${clients} client(s), each pipelining ${fetches} Fetches of one 1 MB batch and reading nothing`);

const setup = await RawConnection.connect(bootstrap);
await createTopic(setup, TOPIC, 1);
for (let i = 0; i < BATCHES; i++) {
  const batch = buildRecordBatchSync({ records: [{ key: null, value: Buffer.alloc(RECORD_BYTES, i) }] });
  const p = await produceBatch(setup, 9, TOPIC, 0, batch);
  if (p.errorCode !== 0) throw new Error(`produce failed with error ${p.errorCode}`);
}
// A consumer reading the whole partition once, as the bystander will.
await fetchPartition(setup, TOPIC, 0, 0n);
await sleep(2000);
const before = rssMb(pid);
const timedFetch = async (): Promise<string> => {
  const started = performance.now();
  return await Promise.race([
    fetchPartition(setup, TOPIC, 0, 0n).then(() => `${(performance.now() - started).toFixed(1)} ms`),
    sleep(30_000).then(() => 'not served within 30 s'),
  ]);
};
const idleFetch = await timedFetch();

const sockets: Socket[] = [];
const frames = fetchFrames(fetches);
for (let c = 0; c < clients; c++) {
  const socket = connect({ host: '127.0.0.1', port: Number(bootstrap.split(':')[1]) });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.pause();
  socket.write(frames);
  sockets.push(socket);
}
let peak = before;
const deadline = performance.now() + seconds * 1000;
while (performance.now() < deadline) {
  peak = Math.max(peak, rssMb(pid));
  await sleep(200);
}
const during = rssMb(pid);
const served = await timedFetch();
setup.close();

for (const s of sockets) s.destroy();
await sleep(5000);
const after5 = rssMb(pid);
await sleep(10_000);
const after15 = rssMb(pid);

console.log(`RSS before: ${before.toFixed(0)} MB`);
console.log(
  `RSS while the clients hold their responses: peak ${peak.toFixed(0)} MB, at ${seconds} s ${during.toFixed(0)} MB`,
);
console.log(`another client's Fetch of 4 MB: ${idleFetch} before, ${served} meanwhile`);
console.log(`RSS after the clients closed: ${after5.toFixed(0)} MB at 5 s, ${after15.toFixed(0)} MB at 15 s`);

child.kill('SIGTERM');
const exited = await Promise.race([once(child, 'exit').then(() => true), sleep(20_000).then(() => false)]);
if (!exited) {
  console.log('the broker did not stop within 20 s of SIGTERM: killed');
  child.kill('SIGKILL');
}
rmSync(dataDir, { recursive: true, force: true });
