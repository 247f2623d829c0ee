// Issue 14, fault 3: a network partition isolating a leader. Three brokers and etcd, each in a
// network namespace of its own (test/helpers/netns-cluster.ts), session timeout 3 s; a topic of
// 3 partitions, replication factor 3, min.insync.replicas 2, the ack checker producing acks=all
// with idempotence and consuming (test/helpers/ack-checker.ts). nftables rules inside the
// namespace of partition 0's leader cut it off from etcd and the other brokers while the test
// process (the clients) still reaches it. Unlike SIGSTOP (fault 2) the old leader keeps running
// and answering: it must acknowledge nothing, neither acks=all (its followers are gone, so its
// high watermark cannot move, and it cannot shrink the ISR without etcd) nor, once its lease
// has lapsed as far as it can tell, acks=1 (another broker leads by then). Meanwhile the others
// must elect a new leader within the session timeout and writes resume there. After the heal
// the old leader must rejoin as a follower, truncating what it appended while cut off, and the
// checker must find nothing acknowledged lost or duplicated and the replicas agreeing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import type { KafkaClient } from '../../../src/network/kafka-client.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/index.ts';
import { AckChecker, createReplicatedTopic, describeReport, reportIsClean } from '../../helpers/ack-checker.ts';
import { type NetnsCluster, netnsUnavailable, startNetnsCluster } from '../../helpers/netns-cluster.ts';
import {
  brokerById,
  brokerClients,
  brokerLogs,
  clientOf,
  errorName,
  metadataFrom,
  uniqueName,
  waitForMembership,
} from '../cluster/helpers.ts';

const PARTITIONS = 3;
const SESSION_TIMEOUT_MS = 3000;
/** How long the old leader stays cut off: well past its lease, so the acks=1 probe meets a lapsed lease. */
const PARTITION_MS = 3 * SESSION_TIMEOUT_MS;

const skip = netnsUnavailable();
let cluster: NetnsCluster | undefined;
let checker: AckChecker | undefined;

before(async () => {
  if (skip !== false) return;
  cluster = await startNetnsCluster({ brokers: 3 });
  const c = cluster;
  await waitForMembership(
    c,
    await brokerClients(c),
    c.brokers.map((b) => b.nodeId),
  );
});

after(async () => {
  checker?.close();
  await cluster?.close();
});

interface ProbeResult {
  outcome: string;
  /** The offset the broker acknowledged the record at, -1 when it did not. */
  offset: bigint;
  answeredAt: number;
}

/** A Produce with `acks` of one plain (non-idempotent) batch; the error name, or the transport failure. */
async function probe(
  client: KafkaClient,
  topic: string,
  partition: number,
  acks: number,
  value: string,
): Promise<ProbeResult> {
  try {
    const res = await client.request(
      ApiKey.Produce,
      {
        transactionalId: null,
        acks,
        timeoutMs: 4000,
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
      { timeoutMs: 30_000 },
    );
    const p = res.responses[0]?.partitionResponses[0];
    if (p === undefined) return { outcome: 'no partition in the answer', offset: -1n, answeredAt: Date.now() };
    return {
      outcome: p.errorCode === ErrorCode.NONE ? `NONE at offset ${p.baseOffset}` : errorName(p.errorCode),
      offset: p.errorCode === ErrorCode.NONE ? p.baseOffset : -1n,
      answeredAt: Date.now(),
    };
  } catch (err) {
    return {
      outcome: `transport: ${err instanceof Error ? err.message : String(err)}`,
      offset: -1n,
      answeredAt: Date.now(),
    };
  }
}

const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));

test('a leader cut off from etcd and its followers but reachable by clients acknowledges nothing; a new leader takes over; after the heal it truncates and rejoins; nothing acknowledged is lost or duplicated', {
  skip,
  timeout: 90_000,
}, async (t) => {
  const c = cluster!;
  const topic = uniqueName('netsplit');
  const clients = await brokerClients(c);
  await createReplicatedTopic(clientOf(clients, 1), topic, PARTITIONS, 3, 2);
  const md = await c.waitFor('every partition led with its 3 replicas in the ISR', async () => {
    const desc = (await metadataFrom(clientOf(clients, 1), [topic])).topics.get(topic);
    return desc?.partitions.length === PARTITIONS && desc.partitions.every((p) => p.leaderId >= 0 && p.isr.length === 3)
      ? desc
      : undefined;
  });
  const oldLeader = md.partitions[0]!.leaderId;
  const oldParts = md.partitions.filter((p) => p.leaderId === oldLeader).map((p) => p.partition);
  const others = c.brokers.map((b) => b.nodeId).filter((id) => id !== oldLeader);
  // The checker asks for metadata the first of its bootstrap brokers that answers, and the
  // cut-off broker still answers, with its stale view (itself leading at the old epoch), so the
  // checker would never learn of the new leader if it asked that broker (seen: writes never
  // resumed). Real clients rotate metadata requests over brokers and drop answers with an older
  // leader epoch (KIP-320); here the cut-off broker is simply the last one asked.
  const ck = new AckChecker({
    bootstrap: [...others, oldLeader].map((id) => brokerById(c, id).address),
    topic,
    partitions: PARTITIONS,
    recordsPerSecond: 300,
  });
  checker = ck;
  await ck.start();
  await c.waitFor('200 acknowledged records before the fault', async () => ck.acknowledged >= 200);
  assert.equal(ck.leaderOf(0), oldLeader, 'the leader of partition 0 did not change before the fault');
  // One connection per probe: a broker answers a connection's requests in order, so an acks=1
  // probe behind a parked acks=all one would be answered only when that one is, hiding when
  // the acks=1 append happened. Connected before the cut, which they do not depend on.
  const probeClients: KafkaClient[] = [];
  for (let i = 0; i < 4; i++) {
    const pc = await c.client(brokerById(c, oldLeader));
    await pc.metadata([]);
    probeClients.push(pc);
  }

  await c.partition(oldLeader);
  // After the rules are in: nothing sent from here on can reach the followers.
  const partitionedAt = Date.now();
  let healedAt = 0;
  const early: Promise<ProbeResult>[] = [];
  const late: Promise<ProbeResult>[] = [];
  let resumedMs: number;
  try {
    // The old leader cannot replicate these, so acks=all must fail; acks=1 before its lease
    // lapses may be acknowledged (acks=1 promises nothing against a leader's loss) and must
    // then be truncated after the heal.
    early.push(probe(probeClients[0]!, topic, oldParts[0]!, -1, 'netsplit-probe-acks-all-early'));
    early.push(probe(probeClients[1]!, topic, oldParts[0]!, 1, 'netsplit-probe-acks-1-early'));
    resumedMs = await c.waitFor(
      `writes to partitions ${oldParts.join(',')} to resume on brokers ${others.join(',')} while broker ${oldLeader} is cut off`,
      async () => ck.allResumedAfter(partitionedAt, oldParts),
      PARTITION_MS,
    );
    // Once its lease has lapsed by its own clock (session timeout after its last acknowledged
    // keepalive, which precedes the partition), the old leader must refuse even acks=1.
    await sleepUntil(partitionedAt + SESSION_TIMEOUT_MS + 1000);
    late.push(probe(probeClients[2]!, topic, oldParts[0]!, 1, 'netsplit-probe-acks-1-late'));
    late.push(probe(probeClients[3]!, topic, oldParts[0]!, -1, 'netsplit-probe-acks-all-late'));
    const during = await metadataFrom(clientOf(clients, others[0]!), [topic]);
    const duringTopic = during.topics.get(topic);
    for (const p of oldParts) {
      const now = duringTopic?.partitions[p];
      assert.ok(now !== undefined && others.includes(now.leaderId), `partition ${p} led by ${now?.leaderId}`);
      assert.ok(now.leaderEpoch > md.partitions[p]!.leaderEpoch, `partition ${p}: leader epoch bumped`);
    }
    await Promise.all(late);
    await sleepUntil(partitionedAt + PARTITION_MS);
  } finally {
    await c.heal(oldLeader);
    healedAt = Date.now();
  }
  t.diagnostic(
    `broker ${oldLeader} (leader of ${oldParts.join(',')}) cut off ${healedAt - partitionedAt} ms; writes resumed on brokers ${others.join(',')} after ${resumedMs} ms`,
  );

  const earlyAnswers = await Promise.all(early);
  const lateAnswers = await Promise.all(late);
  const when = (a: ProbeResult) => `${a.outcome} (+${a.answeredAt - partitionedAt} ms)`;
  t.diagnostic(
    `probes at the old leader: at the cut acks=all ${when(earlyAnswers[0]!)}, acks=1 ${when(earlyAnswers[1]!)}; ` +
      `after its lease acks=1 ${when(lateAnswers[0]!)}, acks=all ${when(lateAnswers[1]!)}`,
  );
  // Lease expiry (3 s after the last keepalive), the controller's election and the checker's
  // metadata refresh; twice the session timeout leaves room for a loaded machine.
  assert.ok(resumedMs < 2 * SESSION_TIMEOUT_MS, `writes resumed only after ${resumedMs} ms`);
  assert.ok(!earlyAnswers[0]!.outcome.startsWith('NONE'), `acks=all acknowledged: ${earlyAnswers[0]!.outcome}`);
  for (const a of lateAnswers) assert.ok(!a.outcome.startsWith('NONE'), `acknowledged after the lease: ${a.outcome}`);
  // The checker's own requests to the old leader sent while it was cut off: none acknowledged.
  const isolatedAcks = ck.attempts.filter(
    (a) => a.nodeId === oldLeader && a.outcome === 'NONE' && a.sentAt >= partitionedAt && a.sentAt < healedAt,
  );
  const isolatedAttempts = ck.attempts.filter(
    (a) => a.nodeId === oldLeader && a.sentAt >= partitionedAt && a.sentAt < healedAt,
  );
  t.diagnostic(
    `checker requests to broker ${oldLeader} while cut off: ${isolatedAttempts.length} (${[...new Set(isolatedAttempts.map((a) => a.outcome))].join(', ')})`,
  );
  assert.deepEqual(
    isolatedAcks.map(
      (a) =>
        `partition ${a.partition} seq ${a.baseSequence} sent +${a.sentAt - partitionedAt} ms answered +${a.endedAt - partitionedAt} ms`,
    ),
    [],
    'acknowledgements by the old leader of requests sent while it was cut off',
  );

  const ackedAtHeal = ck.acknowledged;
  await c.waitFor(`broker ${oldLeader} back in the ISR of every partition`, () => ck.fullIsr(), 30_000);
  t.diagnostic(`broker ${oldLeader} back in every ISR ${Date.now() - healedAt} ms after the heal`);
  await c.waitFor('more acknowledged records after the rejoin', async () => ck.acknowledged >= ackedAtHeal + 300);

  await ck.stop();
  const report = await ck.verify(30_000);
  t.diagnostic(describeReport(report));
  assert.ok(reportIsClean(report), `${describeReport(report)}\n${brokerLogs(c)}`);
  assert.equal(report.unresolved, 0, 'every batch was acknowledged before stop gave up');
  // Every probe, acknowledged or not, was appended only by the cut-off leader: the rejoin must
  // have truncated it from that broker's log, and no other broker ever had it.
  for (const pc of report.partitions)
    for (const r of pc.replicas)
      for (const v of r.records.values())
        assert.ok(!v.startsWith('netsplit-probe'), `broker ${r.nodeId} holds ${v} in partition ${pc.partition}`);
  // An acks=1 probe the old leader acknowledged before its lease lapsed sat in its log at that
  // offset; the new leader wrote other records there, which the old leader now holds instead.
  const acks1 = earlyAnswers[1]!;
  if (acks1.offset >= 0n) {
    const replica = report.partitions[oldParts[0]!]!.replicas.find((r) => r.nodeId === oldLeader)!;
    const now = replica.records.get(acks1.offset);
    assert.ok(
      now !== undefined,
      `broker ${oldLeader}'s high watermark ${replica.highWatermark} passed ${acks1.offset}`,
    );
    t.diagnostic(
      `broker ${oldLeader} truncated the acks=1 probe it acknowledged at offset ${acks1.offset} while cut off; it holds ${now} there now`,
    );
  }
});
