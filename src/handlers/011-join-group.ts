/**
 * JoinGroup (key 11), versions 0-9. The request parks until the group's join phase completes.
 * v1: rebalance timeout. v2: throttle time. v3: same as v2. v4: member id required first
 * (KIP-394: an unknown member gets MEMBER_ID_REQUIRED with its id and joins again with it; older
 * versions join at once). v5: group.instance.id (KIP-345 static membership). v6: flexible.
 * v7: protocol type in the response (KIP-559). v8: reason (KIP-800). v9: skip assignment for a
 * static leader that rejoins a stable group.
 * Not implemented: nothing.
 */
import {
  type JoinGroupRequest,
  type JoinGroupResponseInput,
  readJoinGroupRequest,
  writeJoinGroupResponse,
} from '../protocol/messages/011-join-group.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const joinGroupHandler = defineHandler<JoinGroupRequest, JoinGroupResponseInput>({
  apiKey: 11,
  readRequest: readJoinGroupRequest,
  writeResponse: writeJoinGroupResponse,
  minVersion: 0,
  maxVersion: 9,
  handle(ctx, request) {
    const v = ctx.apiVersion;
    return orErrorResponse<JoinGroupResponseInput>(
      async () => {
        const result = await ctx.services.groups.joinGroup(requestInfo(ctx), {
          groupId: request.groupId,
          sessionTimeoutMs: request.sessionTimeoutMs,
          rebalanceTimeoutMs: v >= 1 ? request.rebalanceTimeoutMs : -1,
          memberId: request.memberId,
          groupInstanceId: v >= 5 ? request.groupInstanceId : null,
          protocolType: request.protocolType,
          protocols: request.protocols,
          reason: request.reason,
        });
        const response: JoinGroupResponseInput = {
          throttleTimeMs: 0,
          errorCode: result.errorCode,
          generationId: result.generationId,
          protocolName: v >= 7 ? result.protocolName : (result.protocolName ?? ''),
          leader: result.leader,
          memberId: result.memberId,
          members: result.members.map((m) => ({
            memberId: m.memberId,
            metadata: m.metadata,
            ...(v >= 5 ? { groupInstanceId: m.groupInstanceId } : {}),
          })),
        };
        if (v >= 7) response.protocolType = result.protocolType;
        if (v >= 9) response.skipAssignment = result.skipAssignment;
        return response;
      },
      (errorCode) => this.errorResponse(ctx, request, errorCode),
    );
  },
  errorResponse(ctx, request, errorCode) {
    return {
      errorCode,
      generationId: -1,
      protocolName: ctx.apiVersion >= 7 ? null : '',
      leader: '',
      memberId: request.memberId,
      members: [],
      ...(ctx.apiVersion >= 7 ? { protocolType: null } : {}),
    };
  },
});
