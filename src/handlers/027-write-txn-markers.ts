/**
 * WriteTxnMarkers (key 27), versions 0-1 (broker to broker): a transaction coordinator asks this
 * partition leader to append commit/abort markers. Each marker is appended as the partition's
 * leader (acks=all); `__consumer_offsets` partitions go through the group coordinator, which
 * then commits or drops the transaction's offsets. Per-partition errors are Kafka's
 * (NOT_LEADER_OR_FOLLOWER, INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED, ...); the
 * coordinator retries the retriable ones. v1: flexible.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  readWriteTxnMarkersRequest,
  type WriteTxnMarkersRequest,
  type WriteTxnMarkersResponseInput,
  writeWriteTxnMarkersResponse,
} from '../protocol/messages/027-write-txn-markers.ts';
import { defineHandler } from './handler.ts';

const NOT_LEADER_ALIASES: ReadonlySet<number> = new Set([
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
]);

export const writeTxnMarkersHandler = defineHandler<WriteTxnMarkersRequest, WriteTxnMarkersResponseInput>({
  apiKey: 27,
  readRequest: readWriteTxnMarkersRequest,
  writeResponse: writeWriteTxnMarkersResponse,
  minVersion: 0,
  maxVersion: 1,
  async handle(ctx, request) {
    const { topics, transactions } = ctx.services;
    return {
      markers: await Promise.all(
        request.markers.map(async (m) => ({
          producerId: m.producerId,
          topics: await Promise.all(
            m.topics.map(async (t) => {
              const topic = topics.get(t.name);
              return {
                name: t.name,
                partitions: await Promise.all(
                  t.partitionIndexes.map(async (p) => {
                    if (topic === undefined || p < 0 || p >= topic.partitions)
                      return { partitionIndex: p, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
                    try {
                      await transactions.writeLocalMarker(topic, p, {
                        producerId: m.producerId,
                        producerEpoch: m.producerEpoch,
                        coordinatorEpoch: m.coordinatorEpoch,
                        commit: m.transactionResult,
                      });
                      return { partitionIndex: p, errorCode: ErrorCode.NONE };
                    } catch (err) {
                      if (!(err instanceof KafkaError)) throw err;
                      // As Kafka's KafkaApis: the group coordinator's not-here answers become the
                      // error the transaction coordinator retries on.
                      const code = NOT_LEADER_ALIASES.has(err.errorCode)
                        ? ErrorCode.NOT_LEADER_OR_FOLLOWER
                        : err.errorCode;
                      return { partitionIndex: p, errorCode: code };
                    }
                  }),
                ),
              };
            }),
          ),
        })),
      ),
    };
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      markers: request.markers.map((m) => ({
        producerId: m.producerId,
        topics: m.topics.map((t) => ({
          name: t.name,
          partitions: t.partitionIndexes.map((p) => ({ partitionIndex: p, errorCode })),
        })),
      })),
    };
  },
});
