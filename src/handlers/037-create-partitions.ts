/**
 * CreatePartitions (key 37), versions 0-3 (KIP-195). v1: same as v0. v2: flexible. v3: same.
 * Manual assignments of the new partitions are validated as Kafka's controller does
 * (replica-assignments.ts: one per new partition, live brokers, each once, the topic's
 * replication factor).
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
import { validateManualAssignment } from './replica-assignments.ts';

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
        // Checked only where Kafka gets to them: an unknown topic or a count that does not grow it
        // fails as such in createPartitions.
        const topic = services.topics.get(t.name);
        if (t.assignments !== null && topic !== undefined && t.count > topic.partitions) {
          const additional = t.count - topic.partitions;
          if (t.assignments.length !== additional) {
            throw new KafkaError(
              ErrorCode.INVALID_REPLICA_ASSIGNMENT,
              `Attempted to add ${additional} additional partition(s), but only ${t.assignments.length} assignment(s) were specified.`,
            );
          }
          for (const a of t.assignments)
            validateManualAssignment(services.cluster, a.brokerIds, topic.replicationFactor);
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
