/**
 * Soak form of the leader-kill fault test (issue 14, fault 1; the CI form is
 * test/integration/replication/leader-kill.test.ts): a real etcd and three brokers, a topic of 3
 * partitions with replication factor 3 and min.insync.replicas 2, the ack checker
 * (test/helpers/ack-checker.ts) producing acks=all with idempotence and consuming from the
 * leaders, and N kills -9 of a partition leader in a row (each time the killed broker is started
 * again and must rejoin the ISR of every partition before the next kill). At the end every
 * replica is read and checked. Not run in CI.
 *
 *   node scripts/soak-leader-kills.ts [KILLS=50] [--rate RECORDS_PER_SECOND=300]
 *
 * Prints one line per kill (time until writes resumed on the killed leader's partitions and on
 * all partitions), then the checker's figures; exits 1 when anything acknowledged was lost or
 * duplicated, a record read was lost, replicas diverged or the producer hit a fatal error.
 */
import { AckChecker, createReplicatedTopic, describeReport, reportIsClean } from '../test/helpers/ack-checker.ts';
import { type Cluster, startCluster } from '../test/helpers/cluster.ts';

const PARTITIONS = 3;

function parseArgs(argv: readonly string[]): { kills: number; rate: number } {
  let kills = 50;
  let rate = 300;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--rate') rate = Number(argv[++i]);
    else if (/^\d+$/.test(a)) kills = Number(a);
    else throw new Error(`usage: node scripts/soak-leader-kills.ts [KILLS] [--rate N] (got '${a}')`);
  }
  if (!Number.isInteger(kills) || kills < 1 || !(rate > 0)) throw new Error('KILLS must be >= 1 and --rate > 0');
  return { kills, rate };
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

async function soak(cluster: Cluster, kills: number, rate: number): Promise<boolean> {
  const topic = `soak-leader-kills-${Date.now()}`;
  const admin = await cluster.client(cluster.brokers[0]);
  // Registrations are written after the brokers listen: CreateTopics with RF 3 needs all three.
  await cluster.waitFor('all three brokers registered', async () => {
    const md = await admin.metadata([]);
    return md.brokers.size === 3 && md.controllerId >= 0;
  });
  await createReplicatedTopic(admin, topic, PARTITIONS, 3, 2);
  const ck = new AckChecker({
    bootstrap: cluster.brokers.map((b) => b.address),
    topic,
    partitions: PARTITIONS,
    recordsPerSecond: rate,
  });
  try {
    await cluster.waitFor('every partition led with its 3 replicas in the ISR', () => ck.fullIsr());
    await ck.start();
    await cluster.waitFor('200 acknowledged records', async () => ck.acknowledged >= 200);
    const resumed: number[] = [];
    for (let kill = 0; kill < kills; kill++) {
      const md = await ck.topicMetadata();
      const leaderId = md.partitions[kill % PARTITIONS]!.leaderId;
      const victim = cluster.brokers.find((b) => b.nodeId === leaderId);
      if (victim === undefined) throw new Error(`partition ${kill % PARTITIONS} led by unknown broker ${leaderId}`);
      const parts = md.partitions.filter((p) => p.leaderId === leaderId).map((p) => p.partition);
      const ackedBefore = ck.acknowledged;
      const killedAt = Date.now();
      await victim.kill('SIGKILL');
      const ms = await cluster.waitFor(
        `writes to ${parts.join(',')} to resume after kill ${kill + 1}`,
        async () => ck.allResumedAfter(killedAt, parts),
        30_000,
      );
      const allMs = await cluster.waitFor(
        'writes to every partition to resume',
        async () =>
          ck.allResumedAfter(
            killedAt,
            md.partitions.map((p) => p.partition),
          ),
        30_000,
      );
      resumed.push(ms);
      await victim.start();
      await cluster.waitFor(`broker ${leaderId} back in every ISR`, () => ck.fullIsr(), 60_000);
      await cluster.waitFor('load after the rejoin', async () => ck.acknowledged >= ackedBefore + 300, 60_000);
      console.log(
        `kill ${kill + 1}/${kills}: broker ${leaderId} (leader of ${parts.join(',')}): writes resumed after ${ms} ms on its partitions, ${allMs} ms on all; ${ck.acknowledged} acknowledged so far`,
      );
    }
    await ck.stop();
    const report = await ck.verify(60_000);
    const sorted = [...resumed].sort((a, b) => a - b);
    console.log(
      `${kills} leader kills: writes resumed after median ${percentile(sorted, 0.5)} ms, p90 ${percentile(sorted, 0.9)} ms, max ${sorted.at(-1)} ms`,
    );
    console.log(describeReport(report));
    return reportIsClean(report) && report.unresolved === 0;
  } finally {
    ck.close();
  }
}

const { kills, rate } = parseArgs(process.argv.slice(2));
const cluster = await startCluster({ brokers: 3 });
let clean = false;
try {
  clean = await soak(cluster, kills, rate);
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
} finally {
  await cluster.close();
}
console.log(clean ? 'PASS: 0 lost, 0 duplicated' : 'FAIL');
process.exitCode = clean ? 0 : 1;
