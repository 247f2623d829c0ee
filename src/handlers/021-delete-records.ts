/**
 * DeleteRecords (key 21), versions 0-2 (KIP-107): moves each partition's log start offset
 * (-1: to the high watermark); whole segments below it are deleted. v1: same. v2: flexible.
 * Offsets above the high watermark fail with OFFSET_OUT_OF_RANGE.
 */
import { isInternalTopic } from '../metadata/topic-manager.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type DeleteRecordsRequest,
  type DeleteRecordsResponseInput,
  readDeleteRecordsRequest,
  writeDeleteRecordsResponse,
} from '../protocol/messages/021-delete-records.ts';
import { defineHandler } from './handler.ts';

export const deleteRecordsHandler = defineHandler<DeleteRecordsRequest, DeleteRecordsResponseInput>({
  apiKey: 21,
  readRequest: readDeleteRecordsRequest,
  writeResponse: writeDeleteRecordsResponse,
  minVersion: 0,
  maxVersion: 2,
  async handle(ctx, request) {
    const { topics, logs } = ctx.services;
    const out = await Promise.all(
      request.topics.map(async (t) => {
        const topic = topics.get(t.name);
        const partitions = await Promise.all(
          t.partitions.map(async (p) => {
            if (topic === undefined || p.partitionIndex < 0 || p.partitionIndex >= topic.partitions) {
              return {
                partitionIndex: p.partitionIndex,
                lowWatermark: -1n,
                errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
              };
            }
            // Kafka's ReplicaManager refuses this too: the coordinators' state would be gone.
            if (isInternalTopic(topic.name)) {
              return {
                partitionIndex: p.partitionIndex,
                lowWatermark: -1n,
                errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION,
              };
            }
            try {
              const lowWatermark = await logs.deleteRecordsBefore(topic, p.partitionIndex, p.offset);
              return { partitionIndex: p.partitionIndex, lowWatermark, errorCode: 0 };
            } catch (err) {
              if (!(err instanceof KafkaError)) throw err;
              return { partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode: err.errorCode };
            }
          }),
        );
        return { name: t.name, partitions };
      }),
    );
    return { throttleTimeMs: 0, topics: out };
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      topics: request.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, lowWatermark: -1n, errorCode })),
      })),
    };
  },
});
