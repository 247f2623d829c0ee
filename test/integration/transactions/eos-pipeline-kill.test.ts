// Issue 15: exactly-once consume-transform-produce under process crashes. One broker (a child
// process); 3,000 unique records on 3 partitions of topic IN; the kafkajs pipeline of
// test/helpers/eos-pipeline.ts (read_committed consumer in group G, transactional producer with a
// fixed transactional id, one transaction per 10 input records carrying their output and the
// group's next offset) gets kill -9 twenty times, each at a random moment 300-1500 ms after it
// started processing, and is started again at once; the new instance fences the old one and its
// open transaction is aborted. Then it runs to the end. As in Kafka: a read_committed read of OUT
// (raw Fetch with isolation_level 1, aborted transactions dropped as a consumer drops them) holds
// every input record exactly once, transformed, and the group's committed offsets are the input's
// log end offsets.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaClient } from '../../../src/network/kafka-client.ts';
import { type BrokerProcess, spawnBroker } from '../../helpers/broker-process.ts';
import {
  type CommittedRecord,
  exactlyOnce,
  latestOffset,
  PipelineSupervisor,
  type RawRequest,
  readCommitted,
} from '../../helpers/eos-pipeline.ts';
import { randomTopic, waitFor } from '../groups/helpers.ts';

const PARTITIONS = 3;
const PER_PARTITION = 1000;
const KILLS = 20;
const KILL_MIN_MS = 300;
const KILL_MAX_MS = 1500;

/** A small seeded generator (mulberry32), so a failing run's kill delays can be told. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test(`kill -9 of an exactly-once pipeline ${KILLS} times: every input record in the output once, offsets at the log end`, {
  timeout: 170_000,
}, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-eos-kill-'));
  let broker: BrokerProcess | undefined;
  let supervisor: PipelineSupervisor | undefined;
  const client = () => new KafkaClient({ bootstrap: broker!.bootstrap, requestTimeoutMs: 10_000 });
  let raw: KafkaClient | undefined;
  t.after(async () => {
    await supervisor?.stop();
    raw?.close();
    await broker?.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });
  broker = await spawnBroker(dataDir, {
    'offsets.topic.num.partitions': '3',
    'transaction.state.log.num.partitions': '3',
    'group.initial.rebalance.delay.ms': '0',
    // The killed member leaves no LeaveGroup behind: the restarted one joins once its session
    // (2 s here) expires.
    'group.min.session.timeout.ms': '1000',
  });
  raw = client();
  const request: RawRequest = (k, v, body) => raw!.request(k as never, v, body as never);

  const input = randomTopic('eos-in');
  const output = randomTopic('eos-out');
  const group = randomTopic('eos-group');
  const kafka = new Kafka({ clientId: 'eos-kill-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [
      { topic: input, numPartitions: PARTITIONS },
      { topic: output, numPartitions: PARTITIONS },
    ],
  });
  const producer = kafka.producer();
  await producer.connect();
  const tag = Math.random().toString(36).slice(2, 8);
  for (let p = 0; p < PARTITIONS; p++)
    for (let i = 0; i < PER_PARTITION; i += 250)
      await producer.send({
        topic: input,
        acks: -1,
        messages: Array.from({ length: 250 }, (_, j) => ({ partition: p, value: `v-${tag}-p${p}-${i + j}` })),
      });
  await producer.disconnect();
  // The input as the log holds it: `partition:offset` -> value.
  const inputRecords = new Map<string, string>();
  const inputEnd: bigint[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const r = await readCommitted(request, input, p);
    for (const rec of r.records) inputRecords.set(`${p}:${rec.offset}`, rec.value ?? '');
    inputEnd.push(r.highWatermark);
  }
  assert.equal(inputRecords.size, PARTITIONS * PER_PARTITION);

  const seed = Math.floor(Math.random() * 2 ** 31);
  const rand = random(seed);
  t.diagnostic(`kill delays seeded with ${seed}`);
  const sup = new PipelineSupervisor({
    bootstrap: broker.bootstrap,
    input,
    output,
    group,
    transactionalId: `eos-pipeline-${tag}`,
    recordsPerTxn: 10,
    // The end offsets the group must reach (as in txn-coordinator-kill.test.ts, given, not asked).
    inputEnd,
    transactionTimeoutMs: 10_000,
    sessionTimeoutMs: 2000,
    // Each transaction stays open a while (records and offsets sent, not committed), so the
    // pipeline takes long enough for every kill to land while it processes.
    pauseMs: 60,
  });
  supervisor = sup;
  const startedAt = Date.now();
  let kills = 0;
  const killedAtCommits: number[] = [];
  const pendingKills: Promise<void>[] = [];
  sup.onLine((line, run) => {
    if (!line.startsWith('processing') || kills >= KILLS || run.killed) return;
    const delay = KILL_MIN_MS + Math.floor(rand() * (KILL_MAX_MS - KILL_MIN_MS));
    setTimeout(() => {
      if (run !== sup.current || run.exit !== undefined || kills >= KILLS) return;
      kills++;
      killedAtCommits.push(run.commits);
      pendingKills.push(sup.kill(true));
    }, delay);
  });
  sup.start();
  const finalRun = await Promise.race([
    sup.done(),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`the pipeline did not finish within 120 s\n${sup.output()}`)), 120_000).unref(),
    ),
  ]);
  await Promise.all(pendingKills);
  const elapsed = Date.now() - startedAt;
  const errorRuns = sup.runs.filter((r) => r.errors.length > 0);
  t.diagnostic(
    `${sup.runs.length} runs in ${elapsed} ms: ${kills} killed (after ${killedAtCommits.join(',')} commits), ` +
      `${errorRuns.length} ended on an error, the last committed ${finalRun.commits} transactions`,
  );
  for (const r of errorRuns) t.diagnostic(`run ${r.pid}: ${r.errors.join(' | ')}`);
  const toProcessing = sup.runs.filter((r) => r.processingAt !== undefined).map((r) => r.processingAt! - r.startedAt);
  t.diagnostic(
    `start to first batch: ${Math.min(...toProcessing)}-${Math.max(...toProcessing)} ms ` +
      `(mean ${Math.round(toProcessing.reduce((a, b) => a + b, 0) / toProcessing.length)} ms)`,
  );
  assert.equal(kills, KILLS, `the pipeline was killed ${KILLS} times before it finished\n${sup.output()}`);

  // No transaction left open: every OUT partition's last stable offset (ListOffsets isolation 1)
  // reaches its high watermark (isolation 0) within the transaction timeout. The last commit's
  // markers are written after EndTxn is answered, so this is waited for.
  const doneAt = Date.now();
  let stableAfter = '';
  await waitFor(
    async () => {
      const views: string[] = [];
      for (let p = 0; p < PARTITIONS; p++) {
        const [stable, high] = [await latestOffset(request, output, p, 1), await latestOffset(request, output, p, 0)];
        if (stable !== high) return false;
        views.push(`${p}:${high}`);
      }
      stableAfter = `${views.join(' ')} after ${Date.now() - doneAt} ms`;
      return true;
    },
    10_000,
    'the LSO of every OUT partition to reach its high watermark',
  );
  t.diagnostic(`OUT: LSO = high watermark (${stableAfter})`);

  // The output, read_committed.
  const out: CommittedRecord[] = [];
  let aborted = 0;
  let markers = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    const r = await readCommitted(request, output, p);
    out.push(...r.records);
    aborted += r.aborted;
    markers += r.markers;
  }
  const report = exactlyOnce(inputRecords, out);
  t.diagnostic(
    `OUT read_committed: ${report.read} records for ${report.expected} inputs, ${report.duplicates} duplicates, ` +
      `${report.missing} missing, ${report.unexpected} unexpected; ${aborted} aborted records skipped, ${markers} markers`,
  );
  assert.deepEqual(
    { duplicates: report.duplicates, missing: report.missing, unexpected: report.unexpected },
    { duplicates: 0, missing: 0, unexpected: 0 },
    `${report.examples.join('\n')}\n${sup.output()}`,
  );
  assert.equal(report.read, report.expected);

  // The group's committed offsets (the last commit's marker may still be on its way to the group).
  const committedOffsets = async () =>
    ((await admin.fetchOffsets({ groupId: group, topics: [input] })).find((o) => o.topic === input)?.partitions ?? [])
      .sort((a, b) => a.partition - b.partition)
      .map((p) => BigInt(p.offset));
  await waitFor(
    async () => (await committedOffsets()).join(',') === inputEnd.join(','),
    10_000,
    "the group's committed offsets to be the input's log end offsets",
  ).catch(() => undefined);
  assert.deepEqual(await committedOffsets(), inputEnd, "the group's committed offsets are the input's log end offsets");
  await admin.disconnect();
});
