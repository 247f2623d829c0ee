/**
 * ListOffsets (key 2), versions 0-10.
 * v0: old-style offset arrays (max_num_offsets). v1: one offset + timestamp (KIP-79).
 * v2: isolation level (KIP-98). v4: leader epoch, current leader epoch fenced (KIP-320). v6: flexible.
 * v7: max timestamp, -3 (KIP-734). v8: earliest local, -4 (KIP-405; equals earliest here).
 * v9: earliest pending upload, -5 (KIP-1005: -1 offset, no tiered storage). v10: timeout.
 * Special timestamps: -1 latest (high watermark, or LSO for read_committed), -2 earliest.
 */
import type { TopicMetadata } from '../metadata/local-metadata-store.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type ListOffsetsRequest,
  type ListOffsetsResponseInput,
  type ListOffsetsResponseListOffsetsPartitionResponseInput,
  readListOffsetsRequest,
  writeListOffsetsResponse,
} from '../protocol/messages/002-list-offsets.ts';
import type { LogService } from './broker-services.ts';
import { defineHandler } from './handler.ts';

const LATEST = -1n;
const EARLIEST = -2n;
const MAX_TIMESTAMP = -3n;
const EARLIEST_LOCAL = -4n;
const EARLIEST_PENDING_UPLOAD = -5n;
/** Kafka's ListOffsetsRequest.DEBUGGING_REPLICA_ID. */
const DEBUGGING_REPLICA_ID = -2;
const LATEST_TIERED = -6n;

async function lookup(
  logs: LogService,
  topic: TopicMetadata,
  partition: number,
  timestamp: bigint,
  readCommitted: boolean,
  currentLeaderEpoch: number,
  fromFollower: boolean,
  debugging: boolean,
  isolationDefined: boolean,
): Promise<{ offset: bigint; timestamp: bigint; leaderEpoch: number }> {
  // Kafka answers only from the leader (fetchOnlyFromLeader), except Kafka's debugging replica id
  // (-2): a follower's offsets (a restarted one's high watermark may still be 0) would mislead.
  if (!debugging && !logs.isLeader(topic, partition)) {
    logs.offsets(topic, partition); // UNKNOWN_TOPIC_OR_PARTITION / NOT_LEADER_OR_FOLLOWER for a partition without a log
    throw new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, `this broker does not lead ${topic.name}-${partition}`);
  }
  // The last stable offset is exact once the partition's transactions are loaded.
  if (readCommitted && !fromFollower) await logs.loadTransactionState(topic, partition);
  const o = logs.offsets(topic, partition, currentLeaderEpoch);
  // KIP-207 (Kafka's fetchOffsetForTimestamp): a new leader whose high watermark has not reached
  // where its epoch began may still hold its stale follower high watermark: retriable
  // OFFSET_NOT_AVAILABLE (v2+, where the isolation level is defined) rather than an offset from the past.
  if (isolationDefined && !fromFollower && !debugging && (o.leaderEpochStartOffset ?? -1n) > o.highWatermark)
    throw new KafkaError(
      ErrorCode.OFFSET_NOT_AVAILABLE,
      `the new leader of ${topic.name}-${partition} has not caught its high watermark up yet (${o.highWatermark} < ${o.leaderEpochStartOffset})`,
    );
  const at = (offset: bigint, ts = -1n) => ({ offset, timestamp: ts, leaderEpoch: o.leaderEpoch });
  switch (timestamp) {
    case LATEST:
      // A follower (replica id >= 0) is told the log end, as Kafka's fetchOffsetForTimestamp does.
      return at(fromFollower ? o.logEndOffset : readCommitted ? o.lastStableOffset : o.highWatermark);
    case EARLIEST:
    case EARLIEST_LOCAL:
      return at(o.logStartOffset);
    case EARLIEST_PENDING_UPLOAD:
    case LATEST_TIERED:
      return at(-1n);
    case MAX_TIMESTAMP: {
      const found = await logs.maxTimestamp(topic, partition);
      return found === null ? at(-1n) : at(found.offset, found.timestamp);
    }
    default: {
      if (timestamp < 0n) throw new KafkaError(ErrorCode.INVALID_REQUEST, `unknown special timestamp ${timestamp}`);
      const found = await logs.offsetForTimestamp(topic, partition, timestamp);
      return found === null ? at(-1n) : at(found.offset, found.timestamp);
    }
  }
}

export const listOffsetsHandler = defineHandler<ListOffsetsRequest, ListOffsetsResponseInput>({
  apiKey: 2,
  readRequest: readListOffsetsRequest,
  writeResponse: writeListOffsetsResponse,
  minVersion: 0,
  maxVersion: 10,
  async handle(ctx, request) {
    const { topics, logs } = ctx.services;
    const readCommitted = ctx.apiVersion >= 2 && request.isolationLevel === 1;
    const out = await Promise.all(
      request.topics.map(async (t) => {
        const topic = topics.get(t.name);
        const partitions = await Promise.all(
          t.partitions.map(async (p): Promise<ListOffsetsResponseListOffsetsPartitionResponseInput> => {
            if (topic === undefined || p.partitionIndex < 0 || p.partitionIndex >= topic.partitions) {
              return {
                partitionIndex: p.partitionIndex,
                errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                offset: -1n,
                timestamp: -1n,
              };
            }
            try {
              const currentLeaderEpoch = ctx.apiVersion >= 4 ? p.currentLeaderEpoch : -1;
              const found = await lookup(
                logs,
                topic,
                p.partitionIndex,
                p.timestamp,
                readCommitted,
                currentLeaderEpoch,
                request.replicaId >= 0,
                request.replicaId === DEBUGGING_REPLICA_ID,
                ctx.apiVersion >= 2,
              );
              if (ctx.apiVersion === 0) {
                return {
                  partitionIndex: p.partitionIndex,
                  errorCode: 0,
                  oldStyleOffsets: found.offset >= 0n && p.maxNumOffsets > 0 ? [found.offset] : [],
                };
              }
              // The leader epoch field exists from v4 and is not ignorable below it.
              return {
                partitionIndex: p.partitionIndex,
                errorCode: 0,
                offset: found.offset,
                timestamp: found.timestamp,
                leaderEpoch: ctx.apiVersion >= 4 ? found.leaderEpoch : -1,
              };
            } catch (err) {
              if (!(err instanceof KafkaError)) throw err;
              return { partitionIndex: p.partitionIndex, errorCode: err.errorCode, offset: -1n, timestamp: -1n };
            }
          }),
        );
        return { name: t.name, partitions };
      }),
    );
    return { throttleTimeMs: 0, topics: out };
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
