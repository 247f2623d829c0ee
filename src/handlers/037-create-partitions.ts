/**
 * CreatePartitions (key 37), versions 0-3 (KIP-195). v1: same as v0. v2: flexible. v3: same.
 * Manual assignments must name this broker.
 */
import { excessivePartitionsError, MAX_PARTITIONS_PER_REQUEST } from '../metadata/topic-manager.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type CreatePartitionsRequest,
  type CreatePartitionsResponseInput,
  readCreatePartitionsRequest,
  writeCreatePartitionsResponse,
} from '../protocol/messages/037-create-partitions.ts';
import { defineHandler } from './handler.ts';

export const createPartitionsHandler = defineHandler<CreatePartitionsRequest, CreatePartitionsResponseInput>({
  apiKey: 37,
  readRequest: readCreatePartitionsRequest,
  writeResponse: writeCreatePartitionsResponse,
  minVersion: 0,
  maxVersion: 3,
  async handle(ctx, request) {
    const { services } = ctx;
    const results = [];
    // As CreateTopics: at most 10,000 new partitions per request (KAFKA-17870).
    let adding = 0;
    for (const t of request.topics)
      adding += Math.max(0, t.count - (services.topics.get(t.name)?.partitions ?? t.count));
    if (adding > MAX_PARTITIONS_PER_REQUEST) {
      const err = excessivePartitionsError();
      return {
        throttleTimeMs: 0,
        results: request.topics.map((t) => ({ name: t.name, errorCode: err.errorCode, errorMessage: err.message })),
      };
    }
    for (const t of request.topics) {
      try {
        if (t.assignments?.some((a) => a.brokerIds.some((id) => id !== services.nodeId))) {
          throw new KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, 'assignment names an unknown broker');
        }
        await services.topics.createPartitions(t.name, t.count, request.validateOnly);
        results.push({ name: t.name, errorCode: 0, errorMessage: null });
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        results.push({ name: t.name, errorCode: err.errorCode, errorMessage: err.message });
      }
    }
    return { throttleTimeMs: 0, results };
  },
  errorResponse(_ctx, request, errorCode) {
    return { results: request.topics.map((t) => ({ name: t.name, errorCode })) };
  },
});
