/**
 * DeleteGroups (key 42), versions 0-2: deletes empty groups and their committed offsets
 * (tombstones in `__consumer_offsets`); a group with members answers NON_EMPTY_GROUP.
 * v1: same as v0. v2: flexible.
 * Not implemented: nothing.
 */
import {
  type DeleteGroupsRequest,
  type DeleteGroupsResponseInput,
  readDeleteGroupsRequest,
  writeDeleteGroupsResponse,
} from '../protocol/messages/042-delete-groups.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const deleteGroupsHandler = defineHandler<DeleteGroupsRequest, DeleteGroupsResponseInput>({
  apiKey: 42,
  readRequest: readDeleteGroupsRequest,
  writeResponse: writeDeleteGroupsResponse,
  minVersion: 0,
  maxVersion: 2,
  handle(ctx, request) {
    return orErrorResponse<DeleteGroupsResponseInput>(
      async () => ({
        throttleTimeMs: 0,
        results: await ctx.services.groups.deleteGroups(requestInfo(ctx), request.groupsNames),
      }),
      (errorCode) => this.errorResponse(ctx, request, errorCode),
    );
  },
  errorResponse(_ctx, request, errorCode) {
    return { throttleTimeMs: 0, results: request.groupsNames.map((groupId) => ({ groupId, errorCode })) };
  },
});
