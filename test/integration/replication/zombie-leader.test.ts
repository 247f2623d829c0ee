// Issue 14, fault 2: a zombie leader. Three brokers on a real etcd (session timeout 3 s in the
// harness), a topic of 3 partitions, replication factor 3, min.insync.replicas 2, the ack
// checker producing acks=all with idempotence (test/helpers/ack-checker.ts). The leader of
// partition 0 is stopped with SIGSTOP for twice its lease while the checker keeps producing
// through the cluster: another ISR member must take over. Produce requests sent to the stopped
// broker meanwhile (acks=all and acks=1, answered only once it resumes) must all fail: it cannot
// acknowledge anything under its old epoch. After SIGCONT it must rejoin the ISR, and the checker
// must find nothing acknowledged lost or duplicated, no record read then lost, replicas agreeing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import type { KafkaClient } from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/index.ts';
import { AckChecker, createReplicatedTopic, describeReport, reportIsClean } from '../../helpers/ack-checker.ts';
import { type Cluster, startCluster } from '../../helpers/cluster.ts';
import { etcdAvailable } from '../../helpers/etcd.ts';
import {
  brokerById,
  brokerClients,
  brokerLogs,
  clientOf,
  errorName,
  NO_ETCD,
  uniqueName,
  waitForMembership,
} from '../cluster/helpers.ts';

const PARTITIONS = 3;
const SESSION_TIMEOUT_MS = 3000;
/** Twice the lease: the cluster must have moved on well before the zombie wakes up. */
const PAUSE_MS = 2 * SESSION_TIMEOUT_MS;

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

/** A Produce with `acks` of one plain batch; the error name, or the transport failure. */
async function probe(client: KafkaClient, topic: string, partition: number, acks: number, value: string) {
  try {
    const res = await client.request(
      ApiKey.Produce,
      {
        transactionalId: null,
        acks,
        timeoutMs: 5000,
        topicData: [
          {
            name: topic,
            partitionData: [
              {
                index: partition,
                records: buildRecordBatchSync({ records: [{ key: null, value: Buffer.from(value) }] }),
              },
            ],
          },
        ],
      },
      { timeoutMs: 60_000 },
    );
    const p = res.responses[0]?.partitionResponses[0];
    if (p === undefined) return { outcome: 'no partition in the answer', answeredAt: Date.now() };
    return {
      outcome: p.errorCode === ErrorCode.NONE ? `NONE at offset ${p.baseOffset}` : errorName(p.errorCode),
      answeredAt: Date.now(),
    };
  } catch (err) {
    return { outcome: `transport: ${err instanceof Error ? err.message : String(err)}`, answeredAt: Date.now() };
  }
}

test('a leader stopped past its lease, then resumed, acknowledges nothing under its old epoch; nothing acknowledged is lost or duplicated', {
  skip,
  timeout: 90_000,
}, async (t) => {
  const topic = uniqueName('zombie');
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
  const zombie = brokerById(cluster, md.partitions[0]!.leaderId);
  const zombieParts = md.partitions.filter((p) => p.leaderId === zombie.nodeId).map((p) => p.partition);
  // The probes' connection exists before the pause: a connection opened to a stopped broker
  // would send its requests only after SIGCONT, too late to be queued at the zombie.
  const probeClient = clientOf(clients, zombie.nodeId);
  await probeClient.metadata([]);

  const pausedAt = Date.now();
  zombie.pause();
  const probes = [
    probe(probeClient, topic, zombieParts[0]!, -1, 'zombie-probe-acks-all'),
    probe(probeClient, topic, zombieParts[0]!, 1, 'zombie-probe-acks-1'),
  ];
  let resumedMs: number;
  try {
    resumedMs = await cluster.waitFor(
      `writes to partitions ${zombieParts.join(',')} to resume on another broker while broker ${zombie.nodeId} is stopped`,
      async () => ck.allResumedAfter(pausedAt, zombieParts),
      PAUSE_MS + 10_000,
    );
    const rest = PAUSE_MS - (Date.now() - pausedAt);
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  } finally {
    zombie.resume();
  }
  const resumedAt = Date.now();
  t.diagnostic(
    `broker ${zombie.nodeId} (leader of ${zombieParts.join(',')}) stopped ${resumedAt - pausedAt} ms; writes resumed on another broker after ${resumedMs} ms`,
  );
  assert.ok(resumedMs < resumedAt - pausedAt, 'writes resumed while the zombie was still stopped');
  const during = await ck.topicMetadata();
  for (const p of zombieParts) {
    assert.notEqual(during.partitions[p]!.leaderId, zombie.nodeId, `partition ${p} moved to another leader`);
    assert.ok(during.partitions[p]!.leaderEpoch > md.partitions[p]!.leaderEpoch, `partition ${p}: leader epoch bumped`);
  }

  // What the zombie answered to what was queued at it while it was stopped.
  const answers = await Promise.all(probes);
  t.diagnostic(`probes queued at the zombie answered: ${answers.map((a) => a.outcome).join('; ')}`);
  for (const a of answers) assert.ok(!a.outcome.startsWith('NONE'), `the zombie acknowledged a probe: ${a.outcome}`);
  // The checker's own requests to the zombie: none sent before SIGCONT may have been
  // acknowledged after the pause began (answers already on the wire at SIGSTOP aside).
  const zombieAcks = ck.attempts.filter(
    (a) => a.nodeId === zombie.nodeId && a.outcome === 'NONE' && a.sentAt <= resumedAt && a.endedAt > pausedAt + 200,
  );
  assert.deepEqual(
    zombieAcks.map(
      (a) =>
        `partition ${a.partition} seq ${a.baseSequence} sent +${a.sentAt - pausedAt} ms answered +${a.endedAt - pausedAt} ms`,
    ),
    [],
    'acknowledgements by the zombie of requests sent to it while stopped',
  );

  const ackedAtResume = ck.acknowledged;
  await cluster.waitFor(`broker ${zombie.nodeId} back in the ISR of every partition`, () => ck.fullIsr(), 30_000);
  await cluster.waitFor(
    'more acknowledged records after the rejoin',
    async () => ck.acknowledged >= ackedAtResume + 300,
  );

  await ck.stop();
  const report = await ck.verify(30_000);
  t.diagnostic(describeReport(report));
  assert.ok(reportIsClean(report), `${describeReport(report)}\n${brokerLogs(cluster)}`);
  assert.equal(report.unresolved, 0, 'every batch was acknowledged before stop gave up');
  // The probes were refused, so their records are nowhere.
  for (const pc of report.partitions)
    for (const r of pc.replicas)
      for (const v of r.records.values())
        assert.ok(!v.startsWith('zombie-probe'), `broker ${r.nodeId} holds ${v} in partition ${pc.partition}`);
});
