/**
 * OffsetDelete (key 47), version 0 (KIP-496): deletes a group's committed offsets for
 * partitions of topics the group no longer subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise;
 * NON_EMPTY_GROUP for a non-empty group whose subscriptions cannot be known).
 * Not implemented: nothing.
 */
import {
  type OffsetDeleteRequest,
  type OffsetDeleteResponseInput,
  readOffsetDeleteRequest,
  writeOffsetDeleteResponse,
} from '../protocol/messages/047-offset-delete.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const offsetDeleteHandler = defineHandler<OffsetDeleteRequest, OffsetDeleteResponseInput>({
  apiKey: 47,
  readRequest: readOffsetDeleteRequest,
  writeResponse: writeOffsetDeleteResponse,
  minVersion: 0,
  maxVersion: 0,
  handle(ctx, request) {
    return orErrorResponse<OffsetDeleteResponseInput>(
      async () => {
        const result = await ctx.services.groups.offsetDelete(requestInfo(ctx), request);
        return { errorCode: result.errorCode, throttleTimeMs: 0, topics: result.topics };
      },
      (errorCode) => this.errorResponse(ctx, request, errorCode),
    );
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode, throttleTimeMs: 0, topics: [] };
  },
});
