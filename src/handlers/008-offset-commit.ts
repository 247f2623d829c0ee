/**
 * OffsetCommit (key 8), versions 0-9. Commits are checked against the member's generation
 * (classic groups) or member epoch (KIP-848 groups); a group-less consumer (generation -1, no
 * member id) commits under a simple group. The response leaves after the commit is appended to
 * `__consumer_offsets`.
 * v1: generation, member id (v1's commit timestamp is ignored, as in Kafka 3+). v2: retention
 * time (until v4; the offset then expires at commit time + retention). v3: throttle time.
 * v4: same as v3. v5: retention time removed (offsets.retention.minutes only). v6: leader epoch
 * (KIP-320). v7: group.instance.id (KIP-345). v8: flexible. v9: KIP-848 member epochs;
 * GROUP_ID_NOT_FOUND and STALE_MEMBER_EPOCH.
 * Not implemented: nothing.
 */
import {
  type OffsetCommitRequest,
  type OffsetCommitResponseInput,
  readOffsetCommitRequest,
  writeOffsetCommitResponse,
} from '../protocol/messages/008-offset-commit.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const offsetCommitHandler = defineHandler<OffsetCommitRequest, OffsetCommitResponseInput>({
  apiKey: 8,
  readRequest: readOffsetCommitRequest,
  writeResponse: writeOffsetCommitResponse,
  minVersion: 0,
  maxVersion: 9,
  handle(ctx, request) {
    const v = ctx.apiVersion;
    return orErrorResponse<OffsetCommitResponseInput>(
      async () => {
        const topics = await ctx.services.groups.offsetCommit(requestInfo(ctx), {
          groupId: request.groupId,
          generationIdOrMemberEpoch: v >= 1 ? request.generationIdOrMemberEpoch : -1,
          memberId: v >= 1 ? request.memberId : '',
          groupInstanceId: v >= 7 ? request.groupInstanceId : null,
          retentionTimeMs: v >= 2 && v <= 4 ? request.retentionTimeMs : -1n,
          topics: request.topics.map((t) => ({
            name: t.name,
            partitions: t.partitions.map((p) => ({
              partitionIndex: p.partitionIndex,
              committedOffset: p.committedOffset,
              committedLeaderEpoch: v >= 6 ? p.committedLeaderEpoch : -1,
              committedMetadata: p.committedMetadata,
            })),
          })),
        });
        return { throttleTimeMs: 0, topics };
      },
      (errorCode) => this.errorResponse(ctx, request, errorCode),
    );
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      topics: request.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
      })),
    };
  },
});
