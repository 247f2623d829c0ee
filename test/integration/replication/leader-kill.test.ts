// Issue 14, fault 1 (short form; scripts/soak-leader-kills.ts is the long one): kill -9 of a
// partition leader under load, three times in a row. Three brokers on a real etcd, a topic of
// 3 partitions with replication factor 3 and min.insync.replicas 2, the ack checker producing
// acks=all with idempotence (test/helpers/ack-checker.ts) and consuming from the leaders. Each
// kill: the leader of the next partition gets SIGKILL, writes must resume on another ISR member
// (the time is printed), the killed broker is restarted and must rejoin the ISR of every
// partition before the next kill. Afterwards every replica is read and nothing acknowledged may
// be lost or duplicated, no record read may be lost, and the replicas must agree.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AckChecker, createReplicatedTopic, describeReport, reportIsClean } from '../../helpers/ack-checker.ts';
import { type Cluster, startCluster } from '../../helpers/cluster.ts';
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
const KILLS = 3;

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

test(`kill -9 of a partition leader under acks=all load, ${KILLS} times: nothing acknowledged lost or duplicated, replicas agree`, {
  skip,
  timeout: 90_000,
}, async (t) => {
  const topic = uniqueName('leader-kill');
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
  await cluster.waitFor('200 acknowledged records before the first kill', async () => ck.acknowledged >= 200);

  for (let kill = 0; kill < KILLS; kill++) {
    const partition = kill % PARTITIONS;
    const md = await ck.topicMetadata();
    const victim = brokerById(cluster, md.partitions[partition]!.leaderId);
    const victimParts = md.partitions.filter((p) => p.leaderId === victim.nodeId).map((p) => p.partition);
    const ackedBefore = ck.acknowledged;
    const killedAt = Date.now();
    await victim.kill('SIGKILL');
    const resumedMs = await cluster.waitFor(
      `writes to partitions ${victimParts.join(',')} to resume after kill -9 of broker ${victim.nodeId}`,
      async () => ck.allResumedAfter(killedAt, victimParts),
      20_000,
    );
    const allMs = await cluster.waitFor(
      'writes to every partition to resume',
      async () =>
        ck.allResumedAfter(
          killedAt,
          md.partitions.map((p) => p.partition),
        ),
      20_000,
    );
    t.diagnostic(
      `kill ${kill + 1}: broker ${victim.nodeId} (leader of ${victimParts.join(',')}) — writes resumed on its partitions after ${resumedMs} ms, on all after ${allMs} ms`,
    );
    const after = await ck.topicMetadata();
    for (const p of victimParts) {
      const now = after.partitions[p]!;
      assert.notEqual(now.leaderId, victim.nodeId, `partition ${p} has a new leader`);
      assert.ok(now.leaderEpoch > md.partitions[p]!.leaderEpoch, `partition ${p}: leader epoch bumped`);
    }
    await victim.start();
    await cluster.waitFor(`broker ${victim.nodeId} back in the ISR of every partition`, () => ck.fullIsr(), 30_000);
    // Some load with the full ISR before the next fault.
    await cluster.waitFor(
      'more acknowledged records after the rejoin',
      async () => ck.acknowledged >= ackedBefore + 300,
    );
  }

  await ck.stop();
  const report = await ck.verify(30_000);
  t.diagnostic(describeReport(report));
  assert.ok(reportIsClean(report), `${describeReport(report)}\n${brokerLogs(cluster)}`);
  assert.ok(report.acknowledged > 0);
  assert.equal(report.unresolved, 0, 'every batch was acknowledged before stop gave up');
});
