// Issue 13, a broker that comes back from the dead (SIGSTOP longer than its 3 s lease, then
// SIGCONT) must not act on its old view of the cluster:
//   - while it is stopped the controller moves on: its partitions go leaderless with a bumped
//     leader epoch (and a new controller is elected when it was the controller);
//   - a Produce sent to it while it is stopped (processed the moment it resumes) either fails
//     with a retriable error or is appended under a leader epoch newer than the one the cluster
//     gave the partition while it was gone, i.e. only once it was re-elected;
//   - leader epochs in every broker's Metadata never go backwards, and none ends below the
//     highest any broker reported (the stale broker did not write older partition state back);
//   - it rejoins and leads its partitions again, its data intact.
// Also: a second broker started with a live broker's node id refuses to start (exit code 2,
// one line naming the node id) and the live one keeps its registration.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { KafkaClient } from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { REPO_ROOT } from '../../helpers/broker-process.ts';
import { type Cluster, type ClusterBroker, freePort, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import {
  brokerById,
  brokerClients,
  brokerLogs,
  clientOf,
  errorName,
  fetchAll,
  isRetriable,
  leaders,
  metadataFrom,
  mustCreateTopic,
  mustProduce,
  NO_ETCD,
  produce,
  uniqueName,
  waitForMembership,
} from './helpers.ts';

const SESSION_TIMEOUT_MS = 3000;
const PARTITIONS = 6;
const BEFORE = ['before-0', 'before-1'];

const skip = etcdAvailable() ? false : NO_ETCD;
let cluster: Cluster;
let clients: Map<number, KafkaClient>;
const topic = uniqueName('stale');

/**
 * Polls every broker's Metadata for `topic` on its own loop (a stopped broker only delays its
 * own), remembering per broker and partition the last leader epoch, and every time one went
 * backwards.
 */
class EpochWatch {
  readonly regressions: string[] = [];
  /** Highest epoch any broker reported, per partition. */
  readonly highest = new Map<number, number>();
  private readonly last = new Map<string, number>();
  private stopped = false;
  private readonly loops: Promise<void>[] = [];

  constructor(brokers: readonly ClusterBroker[]) {
    for (const b of brokers) this.loops.push(this.poll(b.nodeId));
  }

  private async poll(nodeId: number): Promise<void> {
    while (!this.stopped) {
      try {
        const md = await clientOf(clients, nodeId).metadata([topic]);
        for (const p of md.topics.get(topic)?.partitions ?? []) {
          const key = `${nodeId}/${p.partition}`;
          const previous = this.last.get(key);
          if (previous !== undefined && p.leaderEpoch < previous) {
            this.regressions.push(`broker ${nodeId}: ${topic}/${p.partition} epoch ${previous} -> ${p.leaderEpoch}`);
          }
          this.last.set(key, p.leaderEpoch);
          this.highest.set(p.partition, Math.max(this.highest.get(p.partition) ?? -1, p.leaderEpoch));
        }
      } catch {
        // Stopped or restarting: nothing to compare.
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

before(async () => {
  if (skip !== false) return;
  cluster = await startCluster({ brokers: 3 });
  clients = await brokerClients(cluster);
  await waitForMembership(cluster, clients, allIds());
  await mustCreateTopic(clientOf(clients, 1), topic, PARTITIONS);
  const l = await cluster.waitFor('a leader for every partition', async () => {
    const x = leaders(await metadataFrom(clientOf(clients, 1), [topic]), topic);
    return x.length === PARTITIONS && x.every((id) => id > 0) ? x : undefined;
  });
  for (let p = 0; p < PARTITIONS; p++) await mustProduce(clientOf(clients, l[p]!), topic, p, BEFORE);
});

after(async () => {
  await cluster?.close();
});

function allIds(): number[] {
  return cluster.brokers.map((b) => b.nodeId);
}

async function staleScenario(
  victim: ClusterBroker,
  wasController: boolean,
  diagnostic: (m: string) => void,
): Promise<void> {
  const survivors = cluster.brokers.filter((b) => b !== victim);
  const md = await metadataFrom(clientOf(clients, survivors[0]!.nodeId), [topic]);
  const victimParts = md.topics
    .get(topic)!
    .partitions.filter((p) => p.leaderId === victim.nodeId)
    .map((p) => p.partition);
  assert.ok(victimParts.length > 0, `broker ${victim.nodeId} leads some of ${topic}`);
  const watch = new EpochWatch(cluster.brokers);
  const victimClient = clientOf(clients, victim.nodeId);
  await victimClient.connect();

  victim.pause();
  const pausedAt = Date.now();
  // The controller moves on: the victim's partitions leaderless under a newer epoch.
  const leaderlessEpoch = await cluster.waitFor(
    `the survivors to drop stopped broker ${victim.nodeId} and its leadership`,
    async () => {
      const epochs = new Map<number, number>();
      for (const s of survivors) {
        const m = await metadataFrom(clientOf(clients, s.nodeId), [topic]);
        if (m.brokers.has(victim.nodeId)) return undefined;
        if (m.controllerId === victim.nodeId || !survivors.some((x) => x.nodeId === m.controllerId)) return undefined;
        for (const p of m.topics.get(topic)?.partitions ?? []) {
          if (!victimParts.includes(p.partition)) continue;
          const before = md.topics.get(topic)!.partitions[p.partition]!.leaderEpoch;
          if (p.leaderId !== -1 || p.leaderEpoch <= before) return undefined;
          epochs.set(p.partition, p.leaderEpoch);
        }
      }
      return epochs;
    },
    SESSION_TIMEOUT_MS + 10_000,
  );
  diagnostic(
    `broker ${victim.nodeId}${wasController ? ' (controller)' : ''} stopped: its partitions leaderless after ${Date.now() - pausedAt} ms, epochs ${JSON.stringify([...leaderlessEpoch])}`,
  );
  // Sent while it is stopped: the victim reads it the moment it resumes, before anything else.
  const target = victimParts[0]!;
  const staleProduce = produce(victimClient, topic, target, ['while-stale'], 20_000);
  await new Promise((r) => setTimeout(r, 300));
  victim.resume();
  const answer = await staleProduce;
  diagnostic(
    `produce to ${topic}/${target} on the resumed broker: ${errorName(answer.errorCode)} at ${answer.baseOffset}`,
  );
  if (answer.errorCode !== ErrorCode.NONE) {
    assert.ok(
      isRetriable(answer.errorCode),
      `the stale broker refused retriably, not ${errorName(answer.errorCode)}\n${brokerLogs(cluster)}`,
    );
  }

  // It rejoins and leads its partitions again under a newer epoch, as every broker says.
  await cluster.waitFor(`broker ${victim.nodeId} to rejoin and lead ${victimParts.join(',')} again`, async () => {
    for (const c of clients.values()) {
      const m = await metadataFrom(c, [topic]);
      if (m.brokers.size !== cluster.brokers.length) return false;
      for (const p of m.topics.get(topic)?.partitions ?? []) {
        if (!victimParts.includes(p.partition)) continue;
        if (p.leaderId !== victim.nodeId || p.leaderEpoch <= leaderlessEpoch.get(p.partition)!) return false;
      }
    }
    return true;
  });
  await waitForMembership(cluster, clients, allIds());
  // Let the watch see the settled state from every broker.
  await new Promise((r) => setTimeout(r, 500));
  await watch.stop();
  assert.deepEqual(watch.regressions, [], `leader epochs in Metadata never went backwards\n${brokerLogs(cluster)}`);
  const final = await metadataFrom(clientOf(clients, survivors[0]!.nodeId), [topic]);
  for (const p of final.topics.get(topic)!.partitions) {
    assert.ok(
      p.leaderEpoch >= (watch.highest.get(p.partition) ?? -1),
      `${topic}/${p.partition} ends at epoch ${p.leaderEpoch}, below the ${watch.highest.get(p.partition)} a broker reported`,
    );
  }

  for (const p of victimParts) {
    const records = await fetchAll(victimClient, topic, p);
    const values = records.map((r) => r.value);
    assert.deepEqual(values.slice(0, BEFORE.length), BEFORE, `${topic}/${p} kept its records`);
    for (const r of records.slice(BEFORE.length)) {
      if (r.value !== 'while-stale') continue;
      // Appended only once the broker was leader again, under the epoch of that election.
      assert.equal(answer.errorCode, ErrorCode.NONE, 'a refused produce left no record');
      assert.ok(
        r.leaderEpoch > leaderlessEpoch.get(p)!,
        `the record produced while stale (offset ${r.offset}) carries epoch ${r.leaderEpoch}, not newer than the leaderless epoch ${leaderlessEpoch.get(p)}\n${brokerLogs(cluster)}`,
      );
    }
    if (answer.errorCode === ErrorCode.NONE && p === target) {
      assert.ok(values.includes('while-stale'), 'an acknowledged produce is in the log');
    }
  }
}

test('a non-controller stopped past its lease does not act on its stale state when it resumes; it rejoins', {
  skip,
}, async (t) => {
  const controller = (await metadataFrom(clientOf(clients, 1), [])).controllerId;
  const victim = cluster.brokers.find((b) => b.nodeId !== controller)!;
  await staleScenario(victim, false, (m) => t.diagnostic(m));
});

test('the controller stopped past its lease: a new one is elected, the stale one writes no older state back', {
  skip,
}, async (t) => {
  const controller = (await metadataFrom(clientOf(clients, 1), [])).controllerId;
  await staleScenario(brokerById(cluster, controller), true, (m) => t.diagnostic(m));
});

test('a second broker with a live node id refuses to start: exit code 2, one line naming the id', {
  skip,
}, async (t) => {
  const taken = cluster.brokers[1]!;
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-duplicate-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const args = ['src/cli.ts', 'start', '--node-id', String(taken.nodeId), '--listen', `127.0.0.1:${await freePort()}`];
  args.push('--data-dir', dataDir, '--metadata', cluster.metadataUrl, '--http-listen', 'none', '--log-level', 'warn');
  const startedAt = Date.now();
  const result = await new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    });
  });
  t.diagnostic(`duplicate broker exited ${result.code} after ${Date.now() - startedAt} ms: ${result.stderr.trim()}`);
  assert.equal(result.code, 2, `exit code of the duplicate broker:\n${result.stderr}${result.stdout}`);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr:\n${result.stderr}`);
  assert.match(lines[0]!, new RegExp(`\\b${taken.nodeId}\\b`), 'the line names the node id');
  assert.match(lines[0]!, /node|broker/i);

  // The live broker keeps its registration, past a whole session timeout.
  await new Promise((r) => setTimeout(r, SESSION_TIMEOUT_MS + 1000));
  await waitForMembership(cluster, clients, allIds(), 5000);
  for (const c of clients.values()) {
    const listed = (await metadataFrom(c, [])).brokers.get(taken.nodeId);
    assert.equal(
      `${listed?.host}:${listed?.port}`,
      taken.address,
      `broker ${taken.nodeId} still listed at its address`,
    );
  }
});
