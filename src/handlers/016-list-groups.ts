/**
 * ListGroups (key 16), versions 0-5: every group this coordinator owns.
 * v1: throttle time. v2: same as v1. v3: flexible. v4: state filter and group state (KIP-518).
 * v5: type filter and group type, classic or consumer (KIP-848). Filters match case-insensitively.
 * Not implemented: nothing.
 */
import {
  type ListGroupsRequest,
  type ListGroupsResponseInput,
  readListGroupsRequest,
  writeListGroupsResponse,
} from '../protocol/messages/016-list-groups.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const listGroupsHandler = defineHandler<ListGroupsRequest, ListGroupsResponseInput>({
  apiKey: 16,
  readRequest: readListGroupsRequest,
  writeResponse: writeListGroupsResponse,
  minVersion: 0,
  maxVersion: 5,
  handle(ctx, request) {
    const v = ctx.apiVersion;
    return orErrorResponse<ListGroupsResponseInput>(
      async () => {
        const groups = await ctx.services.groups.listGroups(
          requestInfo(ctx),
          v >= 4 ? request.statesFilter : [],
          v >= 5 ? request.typesFilter : [],
        );
        return {
          throttleTimeMs: 0,
          errorCode: 0,
          groups: groups.map((g) => ({
            groupId: g.groupId,
            protocolType: g.protocolType,
            ...(v >= 4 ? { groupState: g.groupState } : {}),
            ...(v >= 5 ? { groupType: g.groupType } : {}),
          })),
        };
      },
      (errorCode) => this.errorResponse(ctx, request, errorCode),
    );
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode, groups: [] };
  },
});
