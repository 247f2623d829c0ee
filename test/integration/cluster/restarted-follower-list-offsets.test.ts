// A broker restarted after kill -9 is a follower of partitions it used to lead, and its high
// watermark restarts from its checkpoint (0 when none was written). ListOffsets must not answer
// from it: as in Kafka, only the leader answers (NOT_LEADER_OR_FOLLOWER elsewhere), else a client
// asking it right after the restart reads a log end of 0 (a pipeline once took that for the end
// of its input and stopped, issue 15).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import { createReplicatedTopic } from '../../helpers/ack-checker.ts';
import { startCluster } from '../../helpers/cluster.ts';
import { brokerClients, clientOf, metadataFrom, mustProduce, waitForMembership } from './helpers.ts';

test('a restarted follower answers ListOffsets with NOT_LEADER_OR_FOLLOWER, never its own offsets', {
  timeout: 120_000,
}, async (t) => {
  const cluster = await startCluster({ brokers: 3 });
  t.after(() => cluster.close());
  const clients = await brokerClients(cluster);
  await waitForMembership(cluster, clients, [1, 2, 3]);
  const topic = 'restarted-follower';
  await createReplicatedTopic(clientOf(clients, 1), topic, 3, 3, 2);
  await cluster.waitFor('leaders', async () => {
    const md = await metadataFrom(clientOf(clients, 1), [topic]);
    return md.topics.get(topic)?.partitions.every((p) => p.leaderId > 0) ?? false;
  });
  const md = await metadataFrom(clientOf(clients, 1), [topic]);
  for (const p of md.topics.get(topic)!.partitions)
    await mustProduce(
      clientOf(clients, p.leaderId),
      topic,
      p.partition,
      Array.from({ length: 200 }, (_, i) => `v${i}`),
    );
  const victim = cluster.brokers[1]!;
  await victim.kill('SIGKILL');
  // Restarted once the controller has moved its leaderships away and dropped it from the ISRs
  // (a broker back within its lease would keep them: no broker epochs yet).
  const other = cluster.brokers.find((b) => b.nodeId !== victim.nodeId)!.nodeId;
  await cluster.waitFor('its partitions led elsewhere, itself out of the ISRs', async () => {
    const now = await metadataFrom(clientOf(clients, other), [topic]);
    return now.topics
      .get(topic)
      ?.partitions.every((p) => p.leaderId > 0 && p.leaderId !== victim.nodeId && !p.isr.includes(victim.nodeId));
  });
  await victim.start();
  const wrong: string[] = [];
  let answered = 0;
  const deadline = Date.now() + 4000;
  while (Date.now() < deadline) {
    for (let p = 0; p < 3; p++) {
      for (const isolationLevel of [0, 1]) {
        const r = await clientOf(clients, victim.nodeId)
          .request(ApiKey.ListOffsets, 5, {
            replicaId: -1,
            isolationLevel,
            topics: [{ name: topic, partitions: [{ partitionIndex: p, currentLeaderEpoch: -1, timestamp: -1n }] }],
          })
          .catch(() => undefined);
        const x = r?.topics[0]?.partitions[0];
        if (x === undefined) continue;
        answered++;
        if (x.errorCode === ErrorCode.NONE && x.offset !== 200n)
          wrong.push(`p${p} isolation ${isolationLevel}: offset ${x.offset}`);
        else if (x.errorCode !== ErrorCode.NONE && x.errorCode !== ErrorCode.NOT_LEADER_OR_FOLLOWER)
          assert.ok(
            [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.LEADER_NOT_AVAILABLE].includes(x.errorCode as never),
            `unexpected error ${x.errorCode}`,
          );
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(answered > 0, 'the restarted broker answered');
  assert.deepEqual(wrong, [], 'no answer from a replica that does not lead');
});
