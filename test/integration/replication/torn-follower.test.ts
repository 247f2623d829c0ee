// Issue 14, fault 6: a follower's disk torn. Three brokers on a real etcd, a topic of 3
// partitions, replication factor 3, min.insync.replicas 2, the ack checker producing acks=all with
// idempotence (test/helpers/ack-checker.ts). A follower of partition 0 gets SIGKILL, then the
// active segment of its replica of partition 0 (the newest non-empty `*.log`) is cut in the middle
// of its last batch, as a crash between two writes of a batch leaves it. Restarted, the broker must
// recover the log (cut the torn batch), fetch what it lacks from the leader, rejoin the ISR and hold
// the same records as the leader up to the high watermark; the checker must find nothing
// acknowledged lost or duplicated, no record read then lost.
import assert from 'node:assert/strict';
import { open, readdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AckChecker, createReplicatedTopic, describeReport, reportIsClean } from '../../helpers/ack-checker.ts';
import { type Cluster, type ClusterBroker, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import {
  brokerById,
  brokerClients,
  brokerLogs,
  clientOf,
  NO_ETCD,
  uniqueName,
  waitForMembership,
} from '../cluster/helpers.ts';

const PARTITIONS = 3;
/** The partition whose follower replica is torn. */
const TORN = 0;
/** A record batch starts with its base offset (int64) and its length after that field (int32). */
const BATCH_LENGTH_OFFSET = 8;
const BATCH_PREFIX = 12;

const skip = etcdAvailable() ? false : NO_ETCD;
let cluster: Cluster;
let checker: AckChecker | undefined;

before(async () => {
  if (skip !== false) return;
  cluster = await startCluster({ brokers: 3 });
  const clients = await brokerClients(cluster);
  await waitForMembership(
    cluster,
    clients,
    cluster.brokers.map((b) => b.nodeId),
  );
});

after(async () => {
  checker?.close();
  await cluster?.close();
});

interface Tear {
  file: string;
  sizeBefore: number;
  sizeAfter: number;
  /** Complete batches left in the segment. */
  batchesKept: number;
  /** Base offset of the torn batch. */
  tornBaseOffset: bigint;
}

/**
 * Cuts the newest non-empty segment of `broker`'s replica of `topic`/`partition` in the middle
 * of its last complete batch. Batches are walked by their length fields only: the file is read as
 * the broker wrote it, so a tail a killed write left is ignored.
 */
async function tearActiveSegment(broker: ClusterBroker, topic: string, partition: number): Promise<Tear> {
  const dir = join(broker.dataDir, `${topic}-${partition}`);
  const logs = (await readdir(dir)).filter((f) => f.endsWith('.log')).sort();
  for (const name of logs.reverse()) {
    const file = join(dir, name);
    const size = (await stat(file)).size;
    if (size === 0) continue;
    const fh = await open(file, 'r');
    let starts: { at: number; end: number; baseOffset: bigint }[];
    try {
      const bytes = Buffer.alloc(size);
      await fh.read(bytes, 0, size, 0);
      starts = [];
      for (let at = 0; at + BATCH_PREFIX <= size; ) {
        const length = bytes.readInt32BE(at + BATCH_LENGTH_OFFSET);
        // Zeros past the end of the written data (a reservation) or a torn tail: stop.
        if (length <= 0 || at + BATCH_PREFIX + length > size) break;
        starts.push({ at, end: at + BATCH_PREFIX + length, baseOffset: bytes.readBigInt64BE(at) });
        at += BATCH_PREFIX + length;
      }
    } finally {
      await fh.close();
    }
    const last = starts.at(-1);
    if (last === undefined) continue;
    const cut = last.at + Math.floor((last.end - last.at) / 2);
    await truncate(file, cut);
    return {
      file,
      sizeBefore: size,
      sizeAfter: cut,
      batchesKept: starts.length - 1,
      tornBaseOffset: last.baseOffset,
    };
  }
  throw new Error(`no segment with a batch in ${dir}: ${logs.join(', ')}`);
}

test('a follower whose active segment was torn mid-batch recovers, rejoins the ISR and matches the leader; nothing acknowledged lost or duplicated', {
  skip,
  timeout: 90_000,
}, async (t) => {
  const topic = uniqueName('torn');
  const clients = await brokerClients(cluster);
  await createReplicatedTopic(clientOf(clients, 1), topic, PARTITIONS, 3, 2);
  const ck = new AckChecker({
    bootstrap: cluster.brokers.map((b) => b.address),
    topic,
    partitions: PARTITIONS,
    recordsPerSecond: 300,
  });
  checker = ck;
  await cluster.waitFor('every partition led with its 3 replicas in the ISR', () => ck.fullIsr());
  await ck.start();
  await cluster.waitFor('300 acknowledged records before the fault', async () => ck.acknowledged >= 300);

  const md = await ck.topicMetadata();
  const p0 = md.partitions[TORN]!;
  const victim = brokerById(cluster, p0.replicas.find((id) => id !== p0.leaderId)!);
  const victimLeads = md.partitions.filter((p) => p.leaderId === victim.nodeId).map((p) => p.partition);
  const killedAt = Date.now();
  await victim.kill('SIGKILL');
  const tear = await tearActiveSegment(victim, topic, TORN);
  t.diagnostic(
    `broker ${victim.nodeId} (follower of partition ${TORN}, leader of ${victimLeads.join(',') || 'none'}) killed; ` +
      `${tear.file} cut from ${tear.sizeBefore} to ${tear.sizeAfter} bytes, in the batch at offset ${tear.tornBaseOffset} ` +
      `(${tear.batchesKept} whole batches kept)`,
  );
  if (victimLeads.length > 0) {
    const resumedMs = await cluster.waitFor(
      `writes to partitions ${victimLeads.join(',')} to resume after kill -9 of broker ${victim.nodeId}`,
      async () => ck.allResumedAfter(killedAt, victimLeads),
      20_000,
    );
    t.diagnostic(`writes resumed on the partitions broker ${victim.nodeId} led after ${resumedMs} ms`);
  }
  const ackedWhileDown = ck.acknowledged;
  // Records the torn replica lacks, written while it is down, so its catch-up spans both.
  await cluster.waitFor('300 more acknowledged records while the follower is down', async () => {
    return ck.acknowledged >= ackedWhileDown + 300;
  });
  const allMs = ck.allResumedAfter(
    killedAt,
    md.partitions.map((p) => p.partition),
  );
  t.diagnostic(`writes on every partition resumed ${allMs} ms after the kill`);

  const restartedAt = Date.now();
  await victim.start();
  const rejoinedMs = await cluster.waitFor(
    `broker ${victim.nodeId} back in the ISR of every partition`,
    async () => ((await ck.fullIsr()) ? Date.now() - restartedAt : undefined),
    30_000,
  );
  t.diagnostic(`broker ${victim.nodeId} back in every ISR ${rejoinedMs} ms after its restart`);
  // What the broker said about the tear when it recovered the log (warn and above are logged).
  const recovery = victim
    .output()
    .split('\n')
    .filter((l) => /trunc|torn|corrupt|invalid|recover/i.test(l));
  t.diagnostic(`broker ${victim.nodeId} recovery log lines: ${recovery.length === 0 ? 'none' : recovery.join(' | ')}`);
  const ackedAtRejoin = ck.acknowledged;
  await cluster.waitFor(
    'more acknowledged records after the rejoin',
    async () => ck.acknowledged >= ackedAtRejoin + 300,
  );

  await ck.stop();
  const report = await ck.verify(30_000);
  t.diagnostic(describeReport(report));
  assert.ok(reportIsClean(report), `${describeReport(report)}\n${brokerLogs(cluster)}`);
  assert.equal(report.unresolved, 0, 'every batch was acknowledged before stop gave up');
  // The torn replica holds every record of the leader up to the high watermark, beyond the tear
  // (verify compares the replicas only up to the lowest high watermark; settle made them equal).
  const pc = report.partitions[TORN]!;
  const leader = pc.replicas.find((r) => r.nodeId === pc.leaderId)!;
  const torn = pc.replicas.find((r) => r.nodeId === victim.nodeId)!;
  assert.equal(torn.highWatermark, leader.highWatermark, 'the torn replica reports the leader high watermark');
  assert.ok(torn.highWatermark > tear.tornBaseOffset, 'records past the tear were replicated again');
  assert.equal(torn.records.size, leader.records.size, `broker ${victim.nodeId} holds every record of partition 0`);
});
