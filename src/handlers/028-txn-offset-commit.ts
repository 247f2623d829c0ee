/**
 * TxnOffsetCommit (key 28), versions 0-4: a transactional producer's offsets for a consumer group
 * (sendOffsetsToTransaction, KIP-98). They are written to the group's `__consumer_offsets`
 * partition as one transactional batch of the producer and stay pending (invisible to
 * OffsetFetch; UNSTABLE_OFFSET_COMMIT with require_stable) until the transaction coordinator's
 * marker commits or aborts them. The response leaves after the batch is appended.
 * v1: same as v0. v2: committed leader epoch. v3 (KIP-447): flexible; generation id, member id
 * and group.instance.id, checked as an OffsetCommit's (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
 * FENCED_INSTANCE_ID). v4 (KIP-890): same as v3.
 * Every version, as KafkaApis does before the coordinator: partitions of topics that do not
 * exist, or beyond the partition count, answer UNKNOWN_TOPIC_OR_PARTITION and are not committed;
 * v0-1 get COORDINATOR_NOT_AVAILABLE instead of COORDINATOR_LOAD_IN_PROGRESS (clients before 2.0
 * could not handle it).
 * Not implemented: KIP-890 transaction verification (that the partition was added to the
 * transaction); ACLs (none in the broker).
 */

import type { TopicPartitionErrors, TxnOffsetCommitInput } from '../coordinator/group/group-coordinator.ts';
import { CONSUMER_OFFSETS_TOPIC } from '../coordinator/group/group-coordinator-service.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  readTxnOffsetCommitRequest,
  type TxnOffsetCommitRequest,
  type TxnOffsetCommitResponseInput,
  writeTxnOffsetCommitResponse,
} from '../protocol/messages/028-txn-offset-commit.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

/** Partitions grouped by topic, in first-seen order (Kafka's TxnOffsetCommitResponse builder). */
class ResponseTopics {
  readonly #byName = new Map<string, TopicPartitionErrors>();

  add(name: string, partitionIndex: number, errorCode: number): void {
    let topic = this.#byName.get(name);
    if (topic === undefined) {
      topic = { name, partitions: [] };
      this.#byName.set(name, topic);
    }
    topic.partitions.push({ partitionIndex, errorCode });
  }

  merge(topics: readonly TopicPartitionErrors[]): this {
    for (const t of topics) for (const p of t.partitions) this.add(t.name, p.partitionIndex, p.errorCode);
    return this;
  }

  /** v0-1: COORDINATOR_LOAD_IN_PROGRESS becomes COORDINATOR_NOT_AVAILABLE (KafkaApis). */
  topics(version: number): TopicPartitionErrors[] {
    const out = [...this.#byName.values()];
    if (version >= 2) return out;
    return out.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        errorCode:
          p.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS ? ErrorCode.COORDINATOR_NOT_AVAILABLE : p.errorCode,
      })),
    }));
  }
}

export const txnOffsetCommitHandler = defineHandler<TxnOffsetCommitRequest, TxnOffsetCommitResponseInput>({
  apiKey: 28,
  readRequest: readTxnOffsetCommitRequest,
  writeResponse: writeTxnOffsetCommitResponse,
  minVersion: 0,
  maxVersion: 4,
  handle(ctx, request) {
    const v = ctx.apiVersion;
    const response = new ResponseTopics();
    const topics: TxnOffsetCommitInput['topics'][number][] = [];
    for (const t of request.topics) {
      const metadata = ctx.services.topics.get(t.name);
      if (metadata === undefined) {
        for (const p of t.partitions) response.add(t.name, p.partitionIndex, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
        continue;
      }
      const partitions: TxnOffsetCommitInput['topics'][number]['partitions'][number][] = [];
      for (const p of t.partitions) {
        if (p.partitionIndex < 0 || p.partitionIndex >= metadata.partitions) {
          response.add(t.name, p.partitionIndex, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
          continue;
        }
        partitions.push({
          partitionIndex: p.partitionIndex,
          committedOffset: p.committedOffset,
          committedLeaderEpoch: v >= 2 ? p.committedLeaderEpoch : -1,
          committedMetadata: p.committedMetadata,
        });
      }
      if (partitions.length > 0) topics.push({ name: t.name, partitions });
    }
    if (topics.length === 0) return { throttleTimeMs: 0, topics: response.topics(v) };
    return orErrorResponse<TxnOffsetCommitResponseInput>(
      async () => {
        // KIP-890 part 1: the offsets partition must be in the producer's ongoing transaction
        // (AddOffsetsToTxn), or its pending offsets would hold that partition's transaction open.
        await ctx.services.transactions.channel
          .verifyPartition(
            request.transactionalId,
            request.producerId,
            request.producerEpoch,
            CONSUMER_OFFSETS_TOPIC,
            ctx.services.groups.partitionFor(request.groupId),
          )
          .catch((err: unknown) => {
            // The coordinator could not answer now: a code the producer retries TxnOffsetCommit on.
            if (err instanceof KafkaError && err.errorCode === ErrorCode.NOT_ENOUGH_REPLICAS)
              throw new KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, err.message);
            throw err;
          });
        const committed = await ctx.services.groups.txnOffsetCommit(requestInfo(ctx), {
          transactionalId: request.transactionalId,
          groupId: request.groupId,
          producerId: request.producerId,
          producerEpoch: request.producerEpoch,
          generationId: v >= 3 ? request.generationId : -1,
          memberId: v >= 3 ? request.memberId : '',
          groupInstanceId: v >= 3 ? request.groupInstanceId : null,
          topics,
        });
        return { throttleTimeMs: 0, topics: response.merge(committed).topics(v) };
      },
      (errorCode) => ({
        throttleTimeMs: 0,
        // Kafka's getErrorResponse: every partition of the request gets the error.
        topics: new ResponseTopics()
          .merge(
            request.topics.map((t) => ({
              name: t.name,
              partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
            })),
          )
          .topics(v),
      }),
    );
  },
  errorResponse(ctx, request, errorCode) {
    return {
      topics: new ResponseTopics()
        .merge(
          request.topics.map((t) => ({
            name: t.name,
            partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
          })),
        )
        .topics(ctx.apiVersion),
    };
  },
});
