/**
 * OffsetCommit (key 8), versions 0-9. Commits are checked against the member's generation
 * (classic groups) or member epoch (KIP-848 groups); a group-less consumer (generation or
 * member epoch -1, with or without a member id) commits under a simple group. The response
 * leaves after the commit is appended to `__consumer_offsets`.
 * v1: generation, member id (v1's commit timestamp is ignored, as in Kafka 3+). v2: retention
 * time (until v4; the offset then expires at commit time + retention, saturated at 2^63-1 ms
 * where Kafka's long would wrap). v3: throttle time.
 * v4: same as v3. v5: retention time removed (offsets.retention.minutes only). v6: leader epoch
 * (KIP-320). v7: group.instance.id (KIP-345). v8: flexible. v9: KIP-848 member epochs;
 * GROUP_ID_NOT_FOUND and STALE_MEMBER_EPOCH.
 * Every version: partitions of topics that do not exist, or beyond the partition count, answer
 * UNKNOWN_TOPIC_OR_PARTITION and are not committed (Kafka checks this in KafkaApis, before the
 * coordinator; the admin client's AlterConsumerGroupOffsets is this request too).
 * Not implemented: nothing.
 */
import type { OffsetCommitInput, TopicPartitionErrors } from '../coordinator/group/group-coordinator.ts';
import { ErrorCode } from '../protocol/error-codes.ts';
import {
  type OffsetCommitRequest,
  type OffsetCommitResponseInput,
  readOffsetCommitRequest,
  writeOffsetCommitResponse,
} from '../protocol/messages/008-offset-commit.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

/** Kafka's OffsetCommitResponse.Builder: partitions grouped by topic, in first-seen order. */
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

  get topics(): TopicPartitionErrors[] {
    return [...this.#byName.values()];
  }
}

export const offsetCommitHandler = defineHandler<OffsetCommitRequest, OffsetCommitResponseInput>({
  apiKey: 8,
  readRequest: readOffsetCommitRequest,
  writeResponse: writeOffsetCommitResponse,
  minVersion: 0,
  maxVersion: 9,
  handle(ctx, request) {
    const v = ctx.apiVersion;
    // As KafkaApis does before the coordinator: a topic that does not exist, or a partition
    // beyond its partition count, is answered UNKNOWN_TOPIC_OR_PARTITION and never committed.
    const response = new ResponseTopics();
    const topics: OffsetCommitInput['topics'][number][] = [];
    for (const t of request.topics) {
      const metadata = ctx.services.topics.get(t.name);
      if (metadata === undefined) {
        for (const p of t.partitions) response.add(t.name, p.partitionIndex, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
        continue;
      }
      const partitions: OffsetCommitInput['topics'][number]['partitions'][number][] = [];
      for (const p of t.partitions) {
        if (p.partitionIndex < 0 || p.partitionIndex >= metadata.partitions) {
          response.add(t.name, p.partitionIndex, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
          continue;
        }
        partitions.push({
          partitionIndex: p.partitionIndex,
          committedOffset: p.committedOffset,
          committedLeaderEpoch: v >= 6 ? p.committedLeaderEpoch : -1,
          committedMetadata: p.committedMetadata,
        });
      }
      if (partitions.length > 0) topics.push({ name: t.name, partitions });
    }
    if (topics.length === 0) return { throttleTimeMs: 0, topics: response.topics };
    return orErrorResponse<OffsetCommitResponseInput>(
      async () => {
        const committed = await ctx.services.groups.offsetCommit(requestInfo(ctx), {
          groupId: request.groupId,
          generationIdOrMemberEpoch: v >= 1 ? request.generationIdOrMemberEpoch : -1,
          memberId: v >= 1 ? request.memberId : '',
          groupInstanceId: v >= 7 ? request.groupInstanceId : null,
          retentionTimeMs: v >= 2 && v <= 4 ? request.retentionTimeMs : -1n,
          topics,
        });
        return { throttleTimeMs: 0, topics: response.merge(committed).topics };
      },
      (errorCode) => ({
        throttleTimeMs: 0,
        topics: response.merge(
          topics.map((t) => ({
            name: t.name,
            partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
          })),
        ).topics,
      }),
    );
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      topics: request.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
      })),
    };
  },
});
