/**
 * Metadata (key 3), versions 0-12 (v0 is served too although Kafka's schema marks it old).
 * v1: controller id, rack, internal flag; null topics = all. v2: cluster id. v4: auto-creation
 * flag. v5: offline replicas. v7: leader epoch (KIP-320). v8: authorized operations (KIP-430).
 * v9: flexible. v10: topic IDs (KIP-516). v11: cluster authorized operations removed. v12: topics
 * by ID (name null). Topics requested by name that do not exist are auto-created when
 * auto.create.topics.enable and the request allows it (v4+; always for older versions).
 * Authorized operations: without an authorizer, every operation (as Kafka), when asked.
 * A name that is not a legal topic name gets INVALID_TOPIC_EXCEPTION, as in Kafka.
 */

import type { TopicMetadata } from '../metadata/metadata-store.ts';
import { isInternalTopic, validateTopicName } from '../metadata/topic-manager.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type MetadataRequest,
  type MetadataResponseInput,
  type MetadataResponseTopicInput,
  readMetadataRequest,
  writeMetadataResponse,
} from '../protocol/messages/003-metadata.ts';
import { ZERO_UUID } from '../protocol/uuid.ts';
import { authorizedOperations, CLUSTER_OPERATIONS, TOPIC_OPERATIONS } from './authorized-operations.ts';
import type { BrokerServices } from './broker-services.ts';
import { defineHandler } from './handler.ts';
import { partitionMetadata } from './partition-leaders.ts';

/**
 * A topic's entry: each partition's leader, epoch, replicas and ISR as the cluster view has them
 * (partition-leaders.ts: LEADER_NOT_AVAILABLE with leader -1 while its leader is none or not live).
 */
function topicEntry(
  services: BrokerServices,
  t: TopicMetadata,
  operations: number,
  version: number,
): MetadataResponseTopicInput {
  const partitions = [];
  for (let p = 0; p < t.partitions; p++) {
    // Kafka answers v0 with only the live replicas (errorUnavailableEndpoints): v0 clients
    // connect to every broker listed.
    partitions.push({ partitionIndex: p, ...partitionMetadata(services.cluster, t.name, p, version === 0) });
  }
  return {
    errorCode: 0,
    name: t.name,
    topicId: t.topicId,
    isInternal: isInternalTopic(t.name),
    partitions,
    topicAuthorizedOperations: operations,
  };
}

/** INVALID_TOPIC_EXCEPTION for a name no topic can have, else undefined. */
function invalidName(name: string): MetadataResponseTopicInput | undefined {
  try {
    validateTopicName(name);
    return undefined;
  } catch (err) {
    if (!(err instanceof KafkaError)) throw err;
    return { errorCode: err.errorCode, name, topicId: ZERO_UUID, partitions: [] };
  }
}

export const metadataHandler = defineHandler<MetadataRequest, MetadataResponseInput>({
  apiKey: 3,
  readRequest: readMetadataRequest,
  writeResponse: writeMetadataResponse,
  minVersion: 0,
  maxVersion: 12,
  async handle(ctx, request) {
    const { services } = ctx;
    const v = ctx.apiVersion;
    const topicOperations = authorizedOperations(request.includeTopicAuthorizedOperations, TOPIC_OPERATIONS);
    const topics: MetadataResponseTopicInput[] = [];
    // v0 used an empty array to mean "all topics"; v1+ use null.
    const all = request.topics === null || (v === 0 && request.topics.length === 0);
    if (all) {
      for (const t of services.topics.list()) topics.push(topicEntry(services, t, topicOperations, v));
    } else {
      const allowCreate = services.autoCreateTopicsEnable && (v < 4 || request.allowAutoTopicCreation);
      for (const requested of request.topics ?? []) {
        // Only v12+ may leave the name out (null) and ask by topic ID.
        if (requested.name === null) {
          const t = requested.topicId !== ZERO_UUID ? services.topics.getById(requested.topicId) : undefined;
          if (t === undefined) {
            topics.push({ errorCode: ErrorCode.UNKNOWN_TOPIC_ID, name: null, topicId: requested.topicId });
          } else topics.push(topicEntry(services, t, topicOperations, v));
          continue;
        }
        let t = services.topics.get(requested.name);
        if (t === undefined) {
          const invalid = invalidName(requested.name);
          if (invalid !== undefined) {
            topics.push(invalid);
            continue;
          }
        }
        if (t === undefined && allowCreate) {
          try {
            // Concurrent requests for one new topic all get it (creation is serialised). Its
            // partitions are answered as the cluster view has them: served at once when their
            // leaders are already live, else Kafka's transient LEADER_NOT_AVAILABLE.
            t = await services.topics.getOrCreate(
              requested.name,
              services.defaultPartitions,
              services.defaultReplicationFactor,
            );
          } catch (err) {
            if (!(err instanceof KafkaError)) throw err;
            topics.push({ errorCode: err.errorCode, name: requested.name, topicId: ZERO_UUID, partitions: [] });
            continue;
          }
        }
        if (t === undefined) topics.push({ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name: requested.name });
        else topics.push(topicEntry(services, t, topicOperations, v));
      }
    }
    const { cluster } = services;
    return {
      throttleTimeMs: 0,
      // Every live broker (Kafka's getAliveBrokerNodes), so clients find each partition's leader.
      brokers: cluster.brokers().map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack })),
      clusterId: services.clusterId,
      controllerId: cluster.controllerId(),
      topics,
      clusterAuthorizedOperations: authorizedOperations(request.includeClusterAuthorizedOperations, CLUSTER_OPERATIONS),
    };
  },
  errorResponse(_ctx, request, errorCode) {
    return { topics: (request.topics ?? []).map((t) => ({ errorCode, name: t.name, topicId: t.topicId })) };
  },
});
