/**
 * Fetch (key 1), versions 0-17.
 * v3: response max bytes (KIP-74: the first batch is returned even if larger). v4: isolation
 * level, last stable offset, aborted transactions (KIP-98). v5: log start offset. v7:
 * incremental fetch sessions (KIP-227). v9: current leader epoch (KIP-320). v11: rack id
 * (KIP-392). v12: flexible, diverging epoch. v13: topic IDs instead of names (KIP-516).
 * v15: replica state (KIP-903). v17: replica directory id.
 * A request below min.bytes parks until an append to one of its partitions or max.wait.ms.
 * Not implemented yet: incremental sessions — every response carries session id 0, which
 * Kafka's protocol defines as "no session was created" (clients then send full requests).
 */
import type { TopicMetadata } from '../metadata/local-metadata-store.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import type {
  FetchRequest,
  FetchResponseFetchableTopicResponseInput,
  FetchResponseInput,
  FetchResponsePartitionDataInput,
} from '../protocol/messages/001-fetch.ts';
import { ZERO_UUID } from '../protocol/uuid.ts';
import type { RequestContext } from './handler.ts';
import { defineHandler } from './handler.ts';

interface PartitionRead {
  topic: TopicMetadata | undefined;
  partition: number;
  fetchOffset: bigint;
  partitionMaxBytes: number;
}

function topicsOf(
  ctx: RequestContext,
  request: FetchRequest,
): { key: FetchResponseFetchableTopicResponseInput; reads: PartitionRead[] }[] {
  const byId = ctx.apiVersion >= 13;
  return request.topics.map((t) => {
    const topic = byId ? ctx.services.topics.getById(t.topicId) : ctx.services.topics.get(t.topic);
    return {
      key: { topic: t.topic, topicId: topic?.topicId ?? t.topicId },
      reads: t.partitions.map((p) => ({
        topic,
        partition: p.partition,
        fetchOffset: p.fetchOffset,
        partitionMaxBytes: p.partitionMaxBytes,
      })),
    };
  });
}

function partitionError(partition: number, errorCode: number): FetchResponsePartitionDataInput {
  return {
    partitionIndex: partition,
    errorCode,
    highWatermark: -1n,
    lastStableOffset: -1n,
    logStartOffset: -1n,
    records: null,
  };
}

export const fetchHandler = defineHandler<FetchRequest, FetchResponseInput>({
  apiKey: 1,
  minVersion: 0,
  maxVersion: 17,
  async handle(ctx, request) {
    const { logs } = ctx.services;
    const readCommitted = ctx.apiVersion >= 4 && request.isolationLevel === 1;
    const unknownTopicError = ctx.apiVersion >= 13 ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    const topics = topicsOf(ctx, request);
    const deadline = Date.now() + Math.max(0, request.maxWaitMs);

    let keepWaiting = true;
    for (;;) {
      let budget = ctx.apiVersion >= 3 ? request.maxBytes : 0x7fffffff;
      let total = 0;
      let sawError = false;
      const responses: FetchResponseFetchableTopicResponseInput[] = [];
      for (const t of topics) {
        const partitions: FetchResponsePartitionDataInput[] = [];
        for (const p of t.reads) {
          if (p.topic === undefined || p.partition < 0 || p.partition >= p.topic.partitions) {
            partitions.push(partitionError(p.partition, unknownTopicError));
            sawError = true;
            continue;
          }
          try {
            const maxBytes = Math.min(p.partitionMaxBytes, budget);
            // KIP-74: the first batch of the response is returned even if it exceeds the limits.
            const result = await logs.read(p.topic, p.partition, p.fetchOffset, maxBytes, readCommitted, total === 0);
            total += result.bytes;
            budget = Math.max(0, budget - result.bytes);
            partitions.push({
              partitionIndex: p.partition,
              errorCode: 0,
              highWatermark: result.highWatermark,
              lastStableOffset: result.lastStableOffset,
              logStartOffset: result.logStartOffset,
              abortedTransactions: readCommitted ? [] : null,
              records: result.records.length === 1 ? result.records[0]! : Buffer.concat(result.records, result.bytes),
            });
          } catch (err) {
            if (!(err instanceof KafkaError)) throw err;
            sawError = true;
            const offsets = logs.offsets(p.topic, p.partition);
            partitions.push({
              ...partitionError(p.partition, err.errorCode),
              highWatermark: offsets.highWatermark,
              lastStableOffset: offsets.lastStableOffset,
              logStartOffset: offsets.logStartOffset,
            });
          }
        }
        responses.push({ ...t.key, partitions });
      }
      const remaining = deadline - Date.now();
      if (total >= request.minBytes || sawError || remaining <= 0 || topics.length === 0 || !keepWaiting) {
        return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses };
      }
      const waitOn = topics.flatMap((t) =>
        t.reads.filter((p) => p.topic !== undefined).map((p) => ({ topic: p.topic!, partition: p.partition })),
      );
      keepWaiting = await logs.waitForData(waitOn, remaining);
    }
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      errorCode,
      responses: request.topics.map((t) => ({
        topic: t.topic,
        topicId: t.topicId === ZERO_UUID ? ZERO_UUID : t.topicId,
        partitions: t.partitions.map((p) => partitionError(p.partition, errorCode)),
      })),
    };
  },
});
