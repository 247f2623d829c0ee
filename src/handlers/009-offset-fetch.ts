/**
 * OffsetFetch (key 9), versions 0-9. Partitions without a committed offset answer offset -1.
 * v1: offsets from `__consumer_offsets` (v0 read ZooKeeper in Kafka; here both read the same
 * store). v2: null topics = every committed offset; top-level error code. v3: throttle time.
 * v4: same as v3. v5: leader epoch (KIP-320). v6: flexible. v7: require_stable (KIP-447:
 * UNSTABLE_OFFSET_COMMIT while a transactional commit is pending). v8: several groups per
 * request. v9: KIP-848 member id and epoch, checked for consumer groups.
 * A partition with a pending transactional offset (TxnOffsetCommit not committed nor aborted
 * yet) answers, with require_stable, UNSTABLE_OFFSET_COMMIT per partition (offset -1; v8+ too,
 * as Kafka); without it, the last committed offset (pending ones are never visible).
 * Not implemented: nothing.
 */
import type { OffsetFetchGroupResult } from '../coordinator/group/group-coordinator.ts';
import { ErrorCode } from '../protocol/error-codes.ts';
import {
  type OffsetFetchRequest,
  type OffsetFetchResponseInput,
  type OffsetFetchResponseTopicInput,
  readOffsetFetchRequest,
  writeOffsetFetchResponse,
} from '../protocol/messages/009-offset-fetch.ts';
import { orErrorResponse, requestInfo } from './group-common.ts';
import { defineHandler } from './handler.ts';

export const offsetFetchHandler = defineHandler<OffsetFetchRequest, OffsetFetchResponseInput>({
  apiKey: 9,
  readRequest: readOffsetFetchRequest,
  writeResponse: writeOffsetFetchResponse,
  minVersion: 0,
  maxVersion: 9,
  handle(ctx, request) {
    const v = ctx.apiVersion;
    const info = requestInfo(ctx);
    const requireStable = v >= 7 ? request.requireStable : false;
    return orErrorResponse<OffsetFetchResponseInput>(
      async () => {
        if (v >= 8) {
          const groups = await Promise.all(
            request.groups.map(async (g) => {
              try {
                const r = await ctx.services.groups.offsetFetch(info, {
                  groupId: g.groupId,
                  topics: g.topics,
                  requireStable,
                  memberId: v >= 9 ? g.memberId : null,
                  memberEpoch: v >= 9 ? g.memberEpoch : -1,
                });
                return r;
              } catch (err) {
                const code = (err as { errorCode?: number }).errorCode;
                if (code === undefined) throw err;
                return { groupId: g.groupId, errorCode: code, topics: [] } satisfies OffsetFetchGroupResult;
              }
            }),
          );
          return { throttleTimeMs: 0, groups };
        }
        const result = await ctx.services.groups.offsetFetch(info, {
          groupId: request.groupId,
          // v0-1 cannot ask for every topic: null only means that from v2.
          topics: request.topics ?? (v >= 2 ? null : []),
          requireStable,
          memberId: null,
          memberEpoch: -1,
        });
        return singleGroupResponse(v, result);
      },
      (errorCode) => this.errorResponse(ctx, request, errorCode),
    );
  },
  errorResponse(ctx, request, errorCode) {
    const v = ctx.apiVersion;
    if (v >= 8) return { groups: request.groups.map((g) => ({ groupId: g.groupId, errorCode, topics: [] })) };
    return singleGroupResponse(v, {
      groupId: request.groupId,
      errorCode,
      topics: (request.topics ?? []).map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((p) => ({
          partitionIndex: p,
          committedOffset: -1n,
          committedLeaderEpoch: -1,
          metadata: '',
          errorCode: ErrorCode.NONE,
        })),
      })),
    });
  },
});

/** v0-7 shape; v0-1 have no top-level error, so a group error goes on every partition. */
function singleGroupResponse(v: number, result: OffsetFetchGroupResult): OffsetFetchResponseInput {
  const topics: OffsetFetchResponseTopicInput[] = result.topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((p) => ({
      partitionIndex: p.partitionIndex,
      committedOffset: p.committedOffset,
      metadata: p.metadata,
      errorCode: v < 2 && result.errorCode !== ErrorCode.NONE ? result.errorCode : p.errorCode,
      ...(v >= 5 ? { committedLeaderEpoch: p.committedLeaderEpoch } : {}),
    })),
  }));
  return v >= 2 ? { throttleTimeMs: 0, topics, errorCode: result.errorCode } : { topics };
}
