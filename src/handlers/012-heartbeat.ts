/**
 * Heartbeat (key 12), versions 0-4: keeps a classic group member's session alive and tells it
 * when a rebalance began (REBALANCE_IN_PROGRESS).
 * v1: throttle time. v2: same as v1. v3: group.instance.id (KIP-345). v4: flexible.
 * Not implemented: nothing.
 */
import {
  type HeartbeatRequest,
  type HeartbeatResponseInput,
  readHeartbeatRequest,
  writeHeartbeatResponse,
} from '../protocol/messages/012-heartbeat.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const heartbeatHandler = defineHandler<HeartbeatRequest, HeartbeatResponseInput>({
  apiKey: 12,
  readRequest: readHeartbeatRequest,
  writeResponse: writeHeartbeatResponse,
  minVersion: 0,
  maxVersion: 4,
  handle(ctx, request) {
    return orErrorResponse<HeartbeatResponseInput>(
      async () => {
        const errorCode = await ctx.services.groups.heartbeat(requestInfo(ctx), {
          groupId: request.groupId,
          generationId: request.generationId,
          memberId: request.memberId,
          groupInstanceId: ctx.apiVersion >= 3 ? request.groupInstanceId : null,
        });
        return { throttleTimeMs: 0, errorCode };
      },
      (errorCode) => ({ throttleTimeMs: 0, errorCode }),
    );
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode };
  },
});
