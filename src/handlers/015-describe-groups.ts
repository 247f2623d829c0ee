/**
 * DescribeGroups (key 15), versions 0-5: state, protocol and members of classic groups (a
 * member's metadata and assignment only while the group is Stable, as in Kafka). An unknown
 * group is described as Dead with no error. A KIP-848 group shows its state only
 * (ConsumerGroupDescribe describes it fully).
 * v1: throttle time. v2: same as v1. v3: authorized operations (KIP-430). v4: group.instance.id.
 * v5: flexible.
 * Authorized operations: without an authorizer, every group operation (as Kafka).
 */
import {
  type DescribeGroupsRequest,
  type DescribeGroupsResponseInput,
  readDescribeGroupsRequest,
  writeDescribeGroupsResponse,
} from '../protocol/messages/015-describe-groups.ts';
import { authorizedOperations, GROUP_OPERATIONS } from './authorized-operations.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const describeGroupsHandler = defineHandler<DescribeGroupsRequest, DescribeGroupsResponseInput>({
  apiKey: 15,
  readRequest: readDescribeGroupsRequest,
  writeResponse: writeDescribeGroupsResponse,
  minVersion: 0,
  maxVersion: 5,
  handle(ctx, request) {
    const v = ctx.apiVersion;
    return orErrorResponse<DescribeGroupsResponseInput>(
      async () => {
        const groups = await ctx.services.groups.describeGroups(requestInfo(ctx), request.groups);
        return {
          throttleTimeMs: 0,
          groups: groups.map((g) => ({
            errorCode: g.errorCode,
            groupId: g.groupId,
            groupState: g.groupState,
            protocolType: g.protocolType,
            protocolData: g.protocolData,
            members: g.members.map((m) => ({
              memberId: m.memberId,
              clientId: m.clientId,
              clientHost: m.clientHost,
              memberMetadata: m.memberMetadata,
              memberAssignment: m.memberAssignment,
              ...(v >= 4 ? { groupInstanceId: m.groupInstanceId } : {}),
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
      groups: request.groups.map((groupId) => ({
        errorCode,
        groupId,
        groupState: '',
        protocolType: '',
        protocolData: '',
        members: [],
      })),
    };
  },
});
