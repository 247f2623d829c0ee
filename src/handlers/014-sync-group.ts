/**
 * SyncGroup (key 14), versions 0-5: the leader hands in the assignment; every member's request
 * parks until then and gets its own part.
 * v1: throttle time. v2: same as v1. v3: group.instance.id (KIP-345). v4: flexible.
 * v5: protocol type and name in request and response, checked against the group's (KIP-559).
 * Not implemented: nothing.
 */
import {
  readSyncGroupRequest,
  type SyncGroupRequest,
  type SyncGroupResponseInput,
  writeSyncGroupResponse,
} from '../protocol/messages/014-sync-group.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const syncGroupHandler = defineHandler<SyncGroupRequest, SyncGroupResponseInput>({
  apiKey: 14,
  readRequest: readSyncGroupRequest,
  writeResponse: writeSyncGroupResponse,
  minVersion: 0,
  maxVersion: 5,
  handle(ctx, request) {
    const v = ctx.apiVersion;
    return orErrorResponse<SyncGroupResponseInput>(
      async () => {
        const result = await ctx.services.groups.syncGroup(requestInfo(ctx), {
          groupId: request.groupId,
          generationId: request.generationId,
          memberId: request.memberId,
          groupInstanceId: v >= 3 ? request.groupInstanceId : null,
          protocolType: v >= 5 ? request.protocolType : null,
          protocolName: v >= 5 ? request.protocolName : null,
          assignments: request.assignments,
        });
        const response: SyncGroupResponseInput = {
          throttleTimeMs: 0,
          errorCode: result.errorCode,
          assignment: result.assignment,
        };
        if (v >= 5) {
          response.protocolType = result.protocolType;
          response.protocolName = result.protocolName;
        }
        return response;
      },
      (errorCode) => this.errorResponse(ctx, request, errorCode),
    );
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode, assignment: Buffer.alloc(0) };
  },
});
