/**
 * ListOffsets for some partitions of one topic, asked of each partition's leader (per the
 * client's latest metadata), one request per leader. Shared by `samsa topic` and `samsa group`.
 */
import { ApiKey } from '../network/api-message-types.ts';
import type { KafkaClient } from '../network/kafka-client.ts';
import { ErrorCode } from '../protocol/error-codes.ts';

/** ListOffsets special timestamps. */
export const EARLIEST = -2n;
export const LATEST = -1n;

/** An offset, or the Kafka error code the leader answered (a partition without leader: LEADER_NOT_AVAILABLE). */
export type OffsetResult = { offset: bigint } | { errorCode: number };

export async function listPartitionOffsets(
  client: KafkaClient,
  topic: string,
  partitions: readonly number[],
  timestamp: bigint,
): Promise<Map<number, OffsetResult>> {
  const out = new Map<number, OffsetResult>();
  const byLeader = new Map<number, number[]>();
  for (const p of partitions) {
    const leader = client.leaderOf(topic, p);
    if (leader < 0) {
      out.set(p, { errorCode: ErrorCode.LEADER_NOT_AVAILABLE });
      continue;
    }
    if (!byLeader.has(leader)) byLeader.set(leader, []);
    byLeader.get(leader)!.push(p);
  }
  await Promise.all(
    [...byLeader].map(async ([leader, list]) => {
      const conn = await client.connection(leader);
      const v = conn.versionFor(ApiKey.ListOffsets);
      const r = await conn.request(ApiKey.ListOffsets, {
        replicaId: -1,
        ...(v >= 2 ? { isolationLevel: 0 } : {}),
        topics: [{ name: topic, partitions: list.map((partitionIndex) => ({ partitionIndex, timestamp })) }],
      });
      for (const t of r.topics) {
        for (const p of t.partitions) {
          out.set(
            p.partitionIndex,
            p.errorCode === ErrorCode.NONE
              ? { offset: v === 0 ? (p.oldStyleOffsets[0] ?? -1n) : p.offset }
              : { errorCode: p.errorCode },
          );
        }
      }
    }),
  );
  return out;
}

/** Only the offsets found (errors left out). */
export async function listOffsets(
  client: KafkaClient,
  topic: string,
  partitions: readonly number[],
  timestamp: bigint,
): Promise<Map<number, bigint>> {
  const out = new Map<number, bigint>();
  for (const [p, r] of await listPartitionOffsets(client, topic, partitions, timestamp)) {
    if ('offset' in r) out.set(p, r.offset);
  }
  return out;
}
