// Issue 14, fault 5: etcd stopped and started again while producing. Three brokers on a real etcd
// (lease 3 s in the harness), a topic of 3 partitions, replication factor 3, min.insync.replicas
// 2, the ack checker producing acks=all with idempotence (test/helpers/ack-checker.ts). etcd gets
// SIGTERM and stays down for twice the lease, then comes back on the same ports with the same data
// directory. While the brokers' leases are still valid as far as they can tell, leaders keep
// acknowledging; once a lease lapsed, its broker stops leading until it is registered again (README,
// Cluster), so writes pause until etcd is back and the brokers re-registered. Measured: what was
// acknowledged while etcd was down, and how long after etcd answered again writes resumed on
// every partition. Afterwards every replica is read: nothing acknowledged lost or duplicated, no
// record read then lost, replicas agreeing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AckChecker, createReplicatedTopic, describeReport, reportIsClean } from '../../helpers/ack-checker.ts';
import { type LocalCluster, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import { brokerClients, brokerLogs, clientOf, NO_ETCD, uniqueName, waitForMembership } from '../cluster/helpers.ts';

const PARTITIONS = 3;
const SESSION_TIMEOUT_MS = 3000;
/** Twice the lease: every broker's lease lapses (as far as it can tell) while etcd is down. */
const OUTAGE_MS = 2 * SESSION_TIMEOUT_MS;

const skip = etcdAvailable() ? false : NO_ETCD;
let cluster: LocalCluster;
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

test('etcd stopped past the brokers lease and started again with its data: writes resume, nothing acknowledged lost or duplicated', {
  skip,
  timeout: 90_000,
}, async (t) => {
  const topic = uniqueName('etcd-restart');
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
  await cluster.waitFor('200 acknowledged records before the fault', async () => ck.acknowledged >= 200);
  const md = await ck.topicMetadata();
  const all = md.partitions.map((p) => p.partition);

  const ackedBefore = ck.acknowledged;
  const stoppedAt = Date.now();
  await cluster.etcd.halt();
  const haltedMs = Date.now() - stoppedAt;
  // etcd must be back even when an assertion below fails, or close() and the next tests would
  // find no etcd.
  let restartedAt = 0;
  try {
    await new Promise((r) => setTimeout(r, OUTAGE_MS - haltedMs));
  } finally {
    await cluster.etcd.restart();
    restartedAt = Date.now();
  }
  const down = ck.attempts.filter((a) => a.sentAt >= stoppedAt && a.sentAt < restartedAt);
  const ackedDown = down.filter((a) => a.outcome === 'NONE');
  // Acknowledgements given while etcd was down (an attempt sent then may be answered after).
  const lastAckDown = ackedDown.reduce((m, a) => (a.endedAt < restartedAt ? Math.max(m, a.endedAt) : m), stoppedAt);
  const outcomes = new Map<string, number>();
  for (const a of down) {
    const key = a.outcome.startsWith('transport:') ? 'transport error' : a.outcome;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }
  t.diagnostic(
    `etcd down ${restartedAt - stoppedAt} ms (SIGTERM took ${haltedMs} ms): ${ackedDown.length} batches acknowledged while it was down, ` +
      `the last ${lastAckDown - stoppedAt} ms after the stop; outcomes of the ${down.length} attempts sent meanwhile: ` +
      [...outcomes].map(([k, n]) => `${k} ${n}`).join(', '),
  );

  // Writes resumed: an attempt sent after etcd answered again, acknowledged, on every partition.
  const resumedMs = await cluster.waitFor(
    'writes to every partition to resume after etcd restarted',
    async () => ck.allResumedAfter(restartedAt, all),
    30_000,
  );
  // The longest stretch without any acknowledgement on a partition, around the outage: how long
  // producers actually waited.
  let longestGap = 0;
  for (const p of all) {
    const acks = ck.attempts
      .filter((a) => a.partition === p && a.outcome === 'NONE' && a.endedAt >= stoppedAt - 1000)
      .map((a) => a.endedAt)
      .sort((a, b) => a - b);
    for (let i = 1; i < acks.length; i++) longestGap = Math.max(longestGap, acks[i]! - acks[i - 1]!);
  }
  t.diagnostic(
    `writes resumed on every partition ${resumedMs} ms after etcd answered again (${restartedAt - stoppedAt + resumedMs} ms after it stopped); ` +
      `longest stretch without an acknowledgement on a partition: ${longestGap} ms`,
  );

  await cluster.waitFor('every replica back in the ISR of every partition', () => ck.fullIsr(), 30_000);
  await cluster.waitFor(
    'more acknowledged records after the recovery',
    async () => ck.acknowledged >= ackedBefore + ackedDown.length * 5 + 300,
  );

  await ck.stop();
  const report = await ck.verify(30_000);
  t.diagnostic(describeReport(report));
  assert.ok(reportIsClean(report), `${describeReport(report)}\n${brokerLogs(cluster)}`);
  assert.equal(report.unresolved, 0, 'every batch was acknowledged before stop gave up');
  // A lapsed lease stops a broker leading, so no broker may acknowledge long past its lease with
  // etcd gone: a margin of a heartbeat and a produce timeout over the lease.
  assert.ok(
    lastAckDown - stoppedAt < SESSION_TIMEOUT_MS + 500 + 2000,
    `a broker acknowledged ${lastAckDown - stoppedAt} ms after etcd stopped`,
  );
});
