/**
 * CreateTopics (key 19), versions 0-7.
 * v1: validateOnly, error messages. v2: throttle time. v4 (KIP-464): -1 partitions/replication
 * factor mean the broker defaults. v5: flexible; configs, partition count and replication factor
 * echoed back (KIP-525). v7: topic IDs in the response (KIP-516).
 * Manual replica assignments are validated as Kafka's controller does (replica-assignments.ts:
 * live brokers, each once, one replication factor, partitions 0..n-1).
 */
import { excessivePartitionsError, MAX_PARTITIONS_PER_REQUEST } from '../metadata/topic-manager.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type CreateTopicsRequest,
  type CreateTopicsResponseCreatableTopicResultInput,
  type CreateTopicsResponseInput,
  readCreateTopicsRequest,
  writeCreateTopicsResponse,
} from '../protocol/messages/019-create-topics.ts';
import { defineHandler } from './handler.ts';
import { validateTopicAssignments } from './replica-assignments.ts';

export const createTopicsHandler = defineHandler<CreateTopicsRequest, CreateTopicsResponseInput>({
  apiKey: 19,
  readRequest: readCreateTopicsRequest,
  writeResponse: writeCreateTopicsResponse,
  minVersion: 0,
  maxVersion: 7,
  async handle(ctx, request) {
    const { services } = ctx;
    const results: CreateTopicsResponseCreatableTopicResultInput[] = [];
    // Kafka refuses the whole request past 10,000 new partitions (KAFKA-17870): a single request
    // for 2^31-1 partitions took the broker down.
    let requested = 0;
    for (const t of request.topics) {
      const n =
        t.assignments.length > 0
          ? t.assignments.length
          : t.numPartitions === -1
            ? services.defaultPartitions
            : t.numPartitions;
      requested += Math.max(0, n);
    }
    if (requested > MAX_PARTITIONS_PER_REQUEST) {
      const err = excessivePartitionsError();
      return {
        throttleTimeMs: 0,
        topics: request.topics.map((t) => ({
          name: t.name,
          errorCode: err.errorCode,
          errorMessage: err.message,
          numPartitions: -1,
          replicationFactor: -1,
        })),
      };
    }
    const seen = new Set<string>();
    for (const t of request.topics) {
      if (seen.has(t.name)) {
        results.push({
          name: t.name,
          errorCode: ErrorCode.INVALID_REQUEST,
          errorMessage: 'duplicate topic in request',
        });
        continue;
      }
      seen.add(t.name);
      try {
        let partitions = t.numPartitions === -1 ? services.defaultPartitions : t.numPartitions;
        let replicationFactor = t.replicationFactor === -1 ? services.defaultReplicationFactor : t.replicationFactor;
        if (t.assignments.length > 0) {
          if (t.numPartitions !== -1 || t.replicationFactor !== -1) {
            throw new KafkaError(ErrorCode.INVALID_REQUEST, 'both assignments and partitions/replication factor given');
          }
          partitions = t.assignments.length;
          replicationFactor = t.assignments[0]?.brokerIds.length ?? 1;
          // A name already taken is TOPIC_ALREADY_EXISTS whatever its assignments (Kafka checks
          // names first); creation says so.
          if (services.topics.get(t.name) === undefined) validateTopicAssignments(services.cluster, t.assignments);
        }
        const configs: Record<string, string> = {};
        for (const c of t.configs) if (c.value !== null) configs[c.name] = c.value;
        const created = await services.topics.create(
          t.name,
          partitions,
          replicationFactor,
          configs,
          request.validateOnly,
        );
        results.push({
          name: t.name,
          topicId: created.topicId,
          errorCode: 0,
          errorMessage: null,
          numPartitions: created.partitions,
          replicationFactor: created.replicationFactor,
          configs: Object.entries(created.configs).map(([name, value]) => ({
            name,
            value,
            readOnly: false,
            configSource: 1, // DYNAMIC_TOPIC_CONFIG
            isSensitive: false,
          })),
        });
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        results.push({
          name: t.name,
          errorCode: err.errorCode,
          errorMessage: err.message,
          numPartitions: -1,
          replicationFactor: -1,
        });
      }
    }
    return { throttleTimeMs: 0, topics: results };
  },
  errorResponse(_ctx, request, errorCode) {
    return { topics: request.topics.map((t) => ({ name: t.name, errorCode })) };
  },
});
