/**
 * LeaveGroup (key 13), versions 0-5: members leave a classic group at once (no waiting for
 * their session to expire), which starts a rebalance.
 * v1: throttle time. v2: same as v1. v3: batched members with group.instance.id (KIP-345; the
 * admin client removes static members this way). v4: flexible. v5: reason (KIP-800).
 * Not implemented: nothing.
 */
import { ErrorCode } from '../protocol/error-codes.ts';
import {
  type LeaveGroupRequest,
  type LeaveGroupResponseInput,
  readLeaveGroupRequest,
  writeLeaveGroupResponse,
} from '../protocol/messages/013-leave-group.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const leaveGroupHandler = defineHandler<LeaveGroupRequest, LeaveGroupResponseInput>({
  apiKey: 13,
  readRequest: readLeaveGroupRequest,
  writeResponse: writeLeaveGroupResponse,
  minVersion: 0,
  maxVersion: 5,
  handle(ctx, request) {
    const batched = ctx.apiVersion >= 3;
    return orErrorResponse<LeaveGroupResponseInput>(
      async () => {
        const members = batched
          ? request.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId }))
          : [{ memberId: request.memberId, groupInstanceId: null }];
        const result = await ctx.services.groups.leaveGroup(requestInfo(ctx), { groupId: request.groupId, members });
        if (batched) return { throttleTimeMs: 0, errorCode: result.errorCode, members: result.members };
        const errorCode =
          result.errorCode !== ErrorCode.NONE ? result.errorCode : (result.members[0]?.errorCode ?? ErrorCode.NONE);
        return { throttleTimeMs: 0, errorCode };
      },
      (errorCode) => this.errorResponse(ctx, request, errorCode),
    );
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode, members: [] };
  },
});
