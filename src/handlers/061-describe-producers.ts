/**
 * DescribeProducers (key 61), version 0 (KIP-664): the active idempotent producers of each
 * partition with their epoch, last sequence and last timestamp, the coordinator epoch of their
 * last transaction marker (-1: none) and the first offset of their ongoing transaction (-1: none).
 */
import { ErrorCode } from '../protocol/error-codes.ts';
import {
  type DescribeProducersRequest,
  type DescribeProducersResponseInput,
  readDescribeProducersRequest,
  writeDescribeProducersResponse,
} from '../protocol/messages/061-describe-producers.ts';
import { defineHandler } from './handler.ts';

export const describeProducersHandler = defineHandler<DescribeProducersRequest, DescribeProducersResponseInput>({
  apiKey: 61,
  readRequest: readDescribeProducersRequest,
  writeResponse: writeDescribeProducersResponse,
  minVersion: 0,
  maxVersion: 0,
  async handle(ctx, request) {
    const { topics, logs } = ctx.services;
    return {
      throttleTimeMs: 0,
      topics: await Promise.all(
        request.topics.map(async (t) => {
          const topic = topics.get(t.name);
          return {
            name: t.name,
            partitions: await Promise.all(
              t.partitionIndexes.map(async (p) => {
                if (topic === undefined || p < 0 || p >= topic.partitions) {
                  return { partitionIndex: p, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: null };
                }
                return {
                  partitionIndex: p,
                  errorCode: 0,
                  errorMessage: null,
                  activeProducers: (await logs.producers(topic, p)).map((e) => ({
                    producerId: e.producerId,
                    producerEpoch: e.producerEpoch,
                    lastSequence: e.batches.at(-1)?.lastSeq ?? -1,
                    lastTimestamp: e.batches.at(-1)?.timestamp ?? -1n,
                    coordinatorEpoch: e.coordinatorEpoch,
                    currentTxnStartOffset: e.currentTxnStartOffset,
                  })),
                };
              }),
            ),
          };
        }),
      ),
    };
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      topics: request.topics.map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((p) => ({ partitionIndex: p, errorCode })),
      })),
    };
  },
});
