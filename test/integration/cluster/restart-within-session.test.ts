// A leader killed (kill -9) and restarted at once: whichever broker leads its partitions next (a
// follower promoted with the high watermark it had learnt, or the restarted broker itself with the
// one of its checkpoint, 0 when none was written) may hold a high watermark from the past. As
// Kafka does (KIP-207), a leader answers ListOffsets with the retriable OFFSET_NOT_AVAILABLE until
// its high watermark reaches where its leader epoch began; before, a partition holding 200 records
// was answered with 0 (a consumer resetting to "latest" would have gone back in time).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { createReplicatedTopic } from '../../helpers/ack-checker.ts';
import { startCluster } from '../../helpers/cluster.ts';
import { brokerClients, clientOf, metadataFrom, mustProduce, waitForMembership } from './helpers.ts';

test('after a leader is killed and restarted at once, ListOffsets never answers a high watermark from the past', {
  timeout: 120_000,
}, async (t) => {
  const cluster = await startCluster({ brokers: 3 });
  t.after(() => cluster.close());
  const clients = await brokerClients(cluster);
  await waitForMembership(cluster, clients, [1, 2, 3]);
  const topic = 'restart-within-session';
  await createReplicatedTopic(clientOf(clients, 1), topic, 3, 3, 2);
  await cluster.waitFor('leaders and full ISRs', async () => {
    const md = await metadataFrom(clientOf(clients, 1), [topic]);
    return md.topics.get(topic)?.partitions.every((p) => p.leaderId > 0 && p.isr.length === 3) ?? false;
  });
  const before = (await metadataFrom(clientOf(clients, 1), [topic])).topics.get(topic)!.partitions;
  for (const p of before)
    await mustProduce(
      clientOf(clients, p.leaderId),
      topic,
      p.partition,
      Array.from({ length: 200 }, (_, i) => `v${i}`),
    );
  const victimId = before[0]!.leaderId;
  const victim = cluster.brokers.find((b) => b.nodeId === victimId)!;
  const led = before.filter((p) => p.leaderId === victimId).map((p) => p.partition);
  await victim.kill('SIGKILL');
  await victim.start(); // well within the 3 s session

  // From the moment it listens, every answer is 200, NOT_LEADER_OR_FOLLOWER or OFFSET_NOT_AVAILABLE.
  const wrong: string[] = [];
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    for (const b of cluster.brokers)
      for (let p = 0; p < 3; p++) {
        const r = await clientOf(clients, b.nodeId)
          .request(ApiKey.ListOffsets, 5, {
            replicaId: -1,
            isolationLevel: 0,
            topics: [{ name: topic, partitions: [{ partitionIndex: p, currentLeaderEpoch: -1, timestamp: -1n }] }],
          })
          .catch(() => undefined);
        const x = r?.topics[0]?.partitions[0];
        if (x?.errorCode === ErrorCode.NONE && x.offset !== 200n)
          wrong.push(`broker ${b.nodeId} p${p}: offset ${x.offset}`);
      }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (wrong.length > 0)
    t.diagnostic(
      `victim ${victimId} led ${led.join(',')}; its log: ${victim
        .output()
        .split('\n')
        .filter((l) => /restarted within|taking over|leave the partition/.test(l))
        .join(' | ')}`,
    );
  assert.deepEqual(wrong, [], 'no broker answered an offset other than the leader high watermark');
  // It catches up and is in every ISR again.
  await cluster.waitFor('back in every ISR', async () => {
    const md = await metadataFrom(clientOf(clients, victimId === 1 ? 2 : 1), [topic]);
    return md.topics.get(topic)?.partitions.every((p) => p.isr.includes(victimId)) ?? false;
  });
});
