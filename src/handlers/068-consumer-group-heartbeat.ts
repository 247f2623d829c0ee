/**
 * ConsumerGroupHeartbeat (key 68), versions 0-1 (KIP-848, the consumer rebalance protocol):
 * joins, heartbeats, changes subscriptions and leaves (epoch -1; -2 for a static member leaving
 * temporarily). The coordinator assigns partitions server side (assignors `uniform`, `range`)
 * and reconciles each member revoking before assigning.
 * v0: first version; an empty member id gets one from the coordinator.
 * v1: subscribed topic regex (Java regex syntax, matched against whole names; JavaScript RegExp
 * here); the client generates its member id (KIP-1082).
 * Not implemented: client-side assignors (TopicPartitions of classic members, KIP-848 upgrade
 * of a non-empty classic group online), rack-aware assignment.
 */
import {
  type ConsumerGroupHeartbeatRequest,
  type ConsumerGroupHeartbeatResponseInput,
  readConsumerGroupHeartbeatRequest,
  writeConsumerGroupHeartbeatResponse,
} from '../protocol/messages/068-consumer-group-heartbeat.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const consumerGroupHeartbeatHandler = defineHandler<
  ConsumerGroupHeartbeatRequest,
  ConsumerGroupHeartbeatResponseInput
>({
  apiKey: 68,
  readRequest: readConsumerGroupHeartbeatRequest,
  writeResponse: writeConsumerGroupHeartbeatResponse,
  minVersion: 0,
  maxVersion: 1,
  handle(ctx, request) {
    return orErrorResponse<ConsumerGroupHeartbeatResponseInput>(
      async () => {
        const r = await ctx.services.groups.consumerGroupHeartbeat(requestInfo(ctx), {
          groupId: request.groupId,
          memberId: request.memberId,
          memberEpoch: request.memberEpoch,
          instanceId: request.instanceId,
          rackId: request.rackId,
          rebalanceTimeoutMs: request.rebalanceTimeoutMs,
          subscribedTopicNames: request.subscribedTopicNames,
          subscribedTopicRegex: ctx.apiVersion >= 1 ? request.subscribedTopicRegex : null,
          serverAssignor: request.serverAssignor,
          topicPartitions: request.topicPartitions,
        });
        return {
          throttleTimeMs: 0,
          errorCode: r.errorCode,
          errorMessage: r.errorMessage,
          memberId: r.memberId,
          memberEpoch: r.memberEpoch,
          heartbeatIntervalMs: r.heartbeatIntervalMs,
          assignment: r.assignment === null ? null : { topicPartitions: r.assignment },
        };
      },
      (errorCode) => this.errorResponse(ctx, request, errorCode),
    );
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode, memberId: null, memberEpoch: -1, heartbeatIntervalMs: 0, assignment: null };
  },
});
