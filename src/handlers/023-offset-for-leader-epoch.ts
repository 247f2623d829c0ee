/**
 * OffsetForLeaderEpoch (key 23), versions 0-4.
 * v1: the epoch of the returned end offset (KIP-279). v2: current leader epoch for fencing
 * (KIP-320): older than ours -> FENCED_LEADER_EPOCH, newer -> UNKNOWN_LEADER_EPOCH.
 * v3: replica id (consumers send -1). v4: flexible.
 * Consumers use it after a leader change to detect log truncation; it must answer for past
 * and future epochs (a future epoch gets UNDEFINED_EPOCH_OFFSET -1 with epoch -1).
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type OffsetForLeaderEpochRequest,
  type OffsetForLeaderEpochResponseEpochEndOffsetInput,
  type OffsetForLeaderEpochResponseInput,
  readOffsetForLeaderEpochRequest,
  writeOffsetForLeaderEpochResponse,
} from '../protocol/messages/023-offset-for-leader-epoch.ts';
import { defineHandler } from './handler.ts';

export const offsetForLeaderEpochHandler = defineHandler<
  OffsetForLeaderEpochRequest,
  OffsetForLeaderEpochResponseInput
>({
  apiKey: 23,
  readRequest: readOffsetForLeaderEpochRequest,
  writeResponse: writeOffsetForLeaderEpochResponse,
  minVersion: 0,
  maxVersion: 4,
  handle(ctx, request) {
    const { topics, logs } = ctx.services;
    return {
      throttleTimeMs: 0,
      topics: request.topics.map((t) => {
        const topic = topics.get(t.topic);
        return {
          topic: t.topic,
          partitions: t.partitions.map((p): OffsetForLeaderEpochResponseEpochEndOffsetInput => {
            const fail = (errorCode: number) => ({
              partition: p.partition,
              errorCode,
              leaderEpoch: -1,
              endOffset: -1n,
            });
            if (topic === undefined || p.partition < 0 || p.partition >= topic.partitions) {
              return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
            }
            try {
              // The partition checks the epoch the client knows (KIP-320 fencing).
              const current = ctx.apiVersion >= 2 ? p.currentLeaderEpoch : -1;
              const r = logs.endOffsetForEpoch(topic, p.partition, p.leaderEpoch, current);
              return {
                partition: p.partition,
                errorCode: 0,
                leaderEpoch: ctx.apiVersion >= 1 ? r.epoch : -1,
                endOffset: r.endOffset,
              };
            } catch (err) {
              if (!(err instanceof KafkaError)) throw err;
              return fail(err.errorCode);
            }
          }),
        };
      }),
    };
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      topics: request.topics.map((t) => ({
        topic: t.topic,
        partitions: t.partitions.map((p) => ({ partition: p.partition, errorCode })),
      })),
    };
  },
});
