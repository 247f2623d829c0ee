/**
 * ConsumerGroupDescribe (key 69), version 0 (KIP-848): a consumer group's state, epochs,
 * assignor, and per member its subscription, current and target assignment. Classic groups and
 * unknown groups answer GROUP_ID_NOT_FOUND, as in Kafka.
 * Not implemented: authorized operations (no ACLs yet: always "not provided").
 */
import {
  type ConsumerGroupDescribeRequest,
  type ConsumerGroupDescribeResponseInput,
  readConsumerGroupDescribeRequest,
  writeConsumerGroupDescribeResponse,
} from '../protocol/messages/069-consumer-group-describe.ts';
import { authorizedOperations, GROUP_OPERATIONS } from './authorized-operations.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const consumerGroupDescribeHandler = defineHandler<
  ConsumerGroupDescribeRequest,
  ConsumerGroupDescribeResponseInput
>({
  apiKey: 69,
  readRequest: readConsumerGroupDescribeRequest,
  writeResponse: writeConsumerGroupDescribeResponse,
  minVersion: 0,
  maxVersion: 0,
  handle(ctx, request) {
    return orErrorResponse<ConsumerGroupDescribeResponseInput>(
      async () => {
        const groups = await ctx.services.groups.consumerGroupDescribe(requestInfo(ctx), request.groupIds);
        return {
          throttleTimeMs: 0,
          groups: groups.map((g) => ({
            errorCode: g.errorCode,
            errorMessage: g.errorMessage,
            groupId: g.groupId,
            groupState: g.groupState,
            groupEpoch: g.groupEpoch,
            assignmentEpoch: g.assignmentEpoch,
            assignorName: g.assignorName,
            members: g.members.map((m) => ({
              memberId: m.memberId,
              instanceId: m.instanceId,
              rackId: m.rackId,
              memberEpoch: m.memberEpoch,
              clientId: m.clientId,
              clientHost: m.clientHost,
              subscribedTopicNames: m.subscribedTopicNames,
              subscribedTopicRegex: m.subscribedTopicRegex,
              assignment: { topicPartitions: m.assignment },
              targetAssignment: { topicPartitions: m.targetAssignment },
            })),
            authorizedOperations: authorizedOperations(
              request.includeAuthorizedOperations && g.errorCode === 0,
              GROUP_OPERATIONS,
            ),
          })),
        };
      },
      (errorCode) => this.errorResponse(ctx, request, errorCode),
    );
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      groups: request.groupIds.map((groupId) => ({
        errorCode,
        groupId,
        groupState: '',
        groupEpoch: -1,
        assignmentEpoch: -1,
        assignorName: '',
        members: [],
      })),
    };
  },
});
