/**
 * Metadata (key 3), versions 0-12 (v0 is served too although Kafka's schema marks it old).
 * v1: controller id, rack, internal flag; null topics = all. v2: cluster id. v4: auto-creation
 * flag. v5: offline replicas. v7: leader epoch (KIP-320). v8: authorized operations (KIP-430).
 * v9: flexible. v10: topic IDs (KIP-516). v11: cluster authorized operations removed. v12: topics
 * by ID (name null). Topics requested by name that do not exist are auto-created when
 * auto.create.topics.enable and the request allows it (v4+; always for older versions).
 * Not implemented: authorized operations (no ACLs yet: -2147483648 = not requested).
 */

import type { TopicMetadata } from '../metadata/local-metadata-store.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type MetadataRequest,
  type MetadataResponseInput,
  type MetadataResponseTopicInput,
  readMetadataRequest,
  writeMetadataResponse,
} from '../protocol/messages/003-metadata.ts';
import { ZERO_UUID } from '../protocol/uuid.ts';
import type { BrokerServices } from './broker-services.ts';
import { defineHandler } from './handler.ts';

function topicEntry(services: BrokerServices, t: TopicMetadata): MetadataResponseTopicInput {
  const partitions = [];
  for (let p = 0; p < t.partitions; p++) {
    partitions.push({
      errorCode: 0,
      partitionIndex: p,
      leaderId: services.nodeId,
      leaderEpoch: t.leaderEpochs[p] ?? 0,
      replicaNodes: [services.nodeId],
      isrNodes: [services.nodeId],
      offlineReplicas: [],
    });
  }
  return { errorCode: 0, name: t.name, topicId: t.topicId, isInternal: t.name.startsWith('__'), partitions };
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
    const topics: MetadataResponseTopicInput[] = [];
    // v0 used an empty array to mean "all topics"; v1+ use null.
    const all = request.topics === null || (v === 0 && request.topics.length === 0);
    if (all) {
      for (const t of services.topics.list()) topics.push(topicEntry(services, t));
    } else {
      const allowCreate = services.autoCreateTopicsEnable && (v < 4 || request.allowAutoTopicCreation);
      for (const requested of request.topics ?? []) {
        if (requested.name === null || requested.name === '') {
          const t = requested.topicId !== ZERO_UUID ? services.topics.getById(requested.topicId) : undefined;
          if (t === undefined) {
            topics.push({ errorCode: ErrorCode.UNKNOWN_TOPIC_ID, name: null, topicId: requested.topicId });
          } else topics.push(topicEntry(services, t));
          continue;
        }
        let t = services.topics.get(requested.name);
        if (t === undefined && allowCreate) {
          try {
            t = await services.topics.create(
              requested.name,
              services.defaultPartitions,
              services.defaultReplicationFactor,
              {},
              false,
            );
          } catch (err) {
            if (!(err instanceof KafkaError)) throw err;
            // A concurrent request may have created it meanwhile.
            t = services.topics.get(requested.name);
            if (t === undefined) {
              topics.push({ errorCode: err.errorCode, name: requested.name });
              continue;
            }
          }
          // Creation is complete (logs exist, this node leads), so the topic is served at once
          // instead of Kafka's transient LEADER_NOT_AVAILABLE.
        }
        if (t === undefined) topics.push({ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name: requested.name });
        else topics.push(topicEntry(services, t));
      }
    }
    const self = services.advertisedListener();
    return {
      throttleTimeMs: 0,
      brokers: [{ nodeId: services.nodeId, host: self.host, port: self.port, rack: services.rack }],
      clusterId: services.clusterId,
      controllerId: services.nodeId,
      topics,
    };
  },
  errorResponse(_ctx, request, errorCode) {
    return { topics: (request.topics ?? []).map((t) => ({ errorCode, name: t.name, topicId: t.topicId })) };
  },
});
