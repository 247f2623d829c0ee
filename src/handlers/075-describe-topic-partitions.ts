/**
 * DescribeTopicPartitions (key 75), version 0 (KIP-966): topic metadata with paging — at most
 * `responsePartitionLimit` partitions per response, continued from `cursor`; topics sorted by
 * name. Each partition's leader, epoch, replicas and ISR as the cluster view has them, with
 * LEADER_NOT_AVAILABLE and leader -1 while its leader is none or not live (Kafka's
 * KRaftMetadataCache.describeTopicResponse). Eligible leader replicas (KIP-966 ELR) are not kept:
 * empty, as Kafka answers with eligible.leader.replicas.version 0.
 */
import type { TopicMetadata } from '../metadata/metadata-store.ts';
import { isInternalTopic } from '../metadata/topic-manager.ts';
import { ErrorCode } from '../protocol/error-codes.ts';
import {
  type DescribeTopicPartitionsRequest,
  type DescribeTopicPartitionsResponseInput,
  type DescribeTopicPartitionsResponseTopicInput,
  readDescribeTopicPartitionsRequest,
  writeDescribeTopicPartitionsResponse,
} from '../protocol/messages/075-describe-topic-partitions.ts';
import { TOPIC_OPERATIONS } from './authorized-operations.ts';
import { defineHandler } from './handler.ts';
import { partitionMetadata } from './partition-leaders.ts';

export const describeTopicPartitionsHandler = defineHandler<
  DescribeTopicPartitionsRequest,
  DescribeTopicPartitionsResponseInput
>({
  apiKey: 75,
  readRequest: readDescribeTopicPartitionsRequest,
  writeResponse: writeDescribeTopicPartitionsResponse,
  minVersion: 0,
  maxVersion: 0,
  handle(ctx, request) {
    const { services } = ctx;
    const names = (
      request.topics.length > 0 ? request.topics.map((t) => t.name) : services.topics.list().map((t) => t.name)
    ).sort();
    const cursor = request.cursor;
    let budget = Math.max(1, request.responsePartitionLimit);
    const out: DescribeTopicPartitionsResponseTopicInput[] = [];
    let nextCursor: { topicName: string; partitionIndex: number } | null = null;
    for (const name of names) {
      if (cursor !== null && name < cursor.topicName) continue;
      const t: TopicMetadata | undefined = services.topics.get(name);
      if (t === undefined) {
        out.push({ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, partitions: [] });
        continue;
      }
      const start = cursor !== null && name === cursor.topicName ? cursor.partitionIndex : 0;
      const partitions = [];
      for (let p = start; p < t.partitions; p++) {
        if (budget === 0) {
          nextCursor = { topicName: name, partitionIndex: p };
          break;
        }
        budget--;
        partitions.push({
          partitionIndex: p,
          ...partitionMetadata(services.cluster, name, p),
          eligibleLeaderReplicas: [],
          lastKnownElr: [],
        });
      }
      out.push({
        errorCode: 0,
        name,
        topicId: t.topicId,
        isInternal: isInternalTopic(name),
        partitions,
        // Kafka fills this for every DescribeTopicPartitions (there is no flag to ask).
        topicAuthorizedOperations: TOPIC_OPERATIONS,
      });
      if (nextCursor !== null) break;
    }
    return { throttleTimeMs: 0, topics: out, nextCursor };
  },
  errorResponse(_ctx, request, errorCode) {
    return { topics: request.topics.map((t) => ({ errorCode, name: t.name })) };
  },
});
