/**
 * DeleteTopics (key 20), versions 0-6.
 * v1: throttle time. v4: flexible. v5: error messages. v6 (KIP-516): topics by name or ID.
 * Partition data is removed from disk asynchronously by the log manager.
 */
import { ErrorCode, errorInfo, KafkaError } from '../protocol/error-codes.ts';
import {
  type DeleteTopicsRequest,
  type DeleteTopicsResponseDeletableTopicResultInput,
  type DeleteTopicsResponseInput,
  readDeleteTopicsRequest,
  writeDeleteTopicsResponse,
} from '../protocol/messages/020-delete-topics.ts';
import { ZERO_UUID } from '../protocol/uuid.ts';
import { defineHandler } from './handler.ts';

function requested(request: DeleteTopicsRequest): { name: string | null; topicId: string }[] {
  if (request.topics.length > 0) return request.topics;
  return request.topicNames.map((name) => ({ name, topicId: ZERO_UUID }));
}

export const deleteTopicsHandler = defineHandler<DeleteTopicsRequest, DeleteTopicsResponseInput>({
  apiKey: 20,
  readRequest: readDeleteTopicsRequest,
  writeResponse: writeDeleteTopicsResponse,
  minVersion: 0,
  maxVersion: 6,
  async handle(ctx, request) {
    const { topics } = ctx.services;
    const responses: DeleteTopicsResponseDeletableTopicResultInput[] = [];
    for (const r of requested(request)) {
      const byId = r.name === null || r.name === '';
      const t = byId ? topics.getById(r.topicId) : topics.get(r.name!);
      if (t === undefined) {
        // Kafka: new ApiError(code), whose message is the code's default message.
        const errorCode = byId ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        responses.push({
          name: r.name,
          topicId: r.topicId,
          errorCode,
          errorMessage: errorInfo(errorCode)?.message ?? null,
        });
        continue;
      }
      try {
        await topics.delete(t.name);
        responses.push({ name: t.name, topicId: t.topicId, errorCode: 0 });
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        responses.push({ name: t.name, topicId: t.topicId, errorCode: err.errorCode, errorMessage: err.message });
      }
    }
    return { throttleTimeMs: 0, responses };
  },
  errorResponse(_ctx, request, errorCode) {
    return { responses: requested(request).map((r) => ({ name: r.name, topicId: r.topicId, errorCode })) };
  },
});
