/**
 * Sending ready-made record batches with Produce: one request per partition leader, each
 * carrying one batch per partition. Shared by `samsa produce` and `samsa perf produce`.
 */

import { ApiKey } from '../network/api-message-types.ts';
import { type KafkaClient, KafkaClientError, KafkaClientErrorCodes } from '../network/kafka-client.ts';
import { ErrorCode } from '../protocol/error-codes.ts';
import type { ProduceResponse } from '../protocol/messages/000-produce.ts';
import { Compression, type CompressionType } from '../protocol/records/batch-header.ts';
import { UsageError } from './cli-common.ts';

export interface PartitionBatch {
  partition: number;
  /** One complete v2 record batch. */
  batch: Buffer;
}

export interface PartitionProduceResult {
  partition: number;
  errorCode: number;
  errorMessage: string | null;
  /** -1 with acks=0. */
  baseOffset: bigint;
}

/** Errors after which resending the same batch (after a metadata refresh) may succeed. */
export const RETRIABLE_PRODUCE_ERRORS: ReadonlySet<number> = new Set([
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.REQUEST_TIMED_OUT,
  ErrorCode.NOT_ENOUGH_REPLICAS,
  ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
  ErrorCode.KAFKA_STORAGE_ERROR,
  ErrorCode.NETWORK_EXCEPTION,
]);

const TRANSPORT_FAILURES: ReadonlySet<string> = new Set([
  KafkaClientErrorCodes.closed,
  KafkaClientErrorCodes.timeout,
  KafkaClientErrorCodes.connect,
]);

export function compressionOption(value: string | undefined): CompressionType {
  if (value === undefined) return Compression.none;
  const codec = (Compression as Record<string, CompressionType>)[value];
  if (codec === undefined)
    throw new UsageError(`--compression: '${value}' is not one of none, gzip, snappy, lz4, zstd`);
  return codec;
}

/**
 * Sends `batches` (at most one per partition) to the partitions' leaders per the client's
 * current metadata and resolves with one result per partition. A partition without a known
 * leader gets LEADER_NOT_AVAILABLE without a request.
 */
export async function produceBatches(
  client: KafkaClient,
  topic: string,
  batches: readonly PartitionBatch[],
  acks: number,
  timeoutMs: number,
): Promise<PartitionProduceResult[]> {
  const byLeader = new Map<number, PartitionBatch[]>();
  const results: PartitionProduceResult[] = [];
  for (const b of batches) {
    const leader = client.leaderOf(topic, b.partition);
    if (leader < 0) {
      results.push({
        partition: b.partition,
        errorCode: ErrorCode.LEADER_NOT_AVAILABLE,
        errorMessage: null,
        baseOffset: -1n,
      });
      continue;
    }
    let list = byLeader.get(leader);
    if (list === undefined) {
      list = [];
      byLeader.set(leader, list);
    }
    list.push(b);
  }
  await Promise.all(
    [...byLeader].map(async ([leader, list]) => {
      let response: ProduceResponse;
      try {
        response = await client.requestTo(leader, ApiKey.Produce, {
          transactionalId: null,
          acks,
          timeoutMs,
          topicData: [{ name: topic, partitionData: list.map((b) => ({ index: b.partition, records: b.batch })) }],
        });
      } catch (err) {
        // A lost connection or a timeout is a per-partition, retriable outcome, as in Kafka's producer.
        if (!(err instanceof KafkaClientError) || !TRANSPORT_FAILURES.has(err.code)) throw err;
        const errorCode =
          err.code === KafkaClientErrorCodes.timeout ? ErrorCode.REQUEST_TIMED_OUT : ErrorCode.NETWORK_EXCEPTION;
        for (const b of list)
          results.push({ partition: b.partition, errorCode, errorMessage: err.message, baseOffset: -1n });
        return;
      }
      if (acks === 0) {
        for (const b of list)
          results.push({ partition: b.partition, errorCode: ErrorCode.NONE, errorMessage: null, baseOffset: -1n });
        return;
      }
      const answered = new Set<number>();
      for (const t of response.responses) {
        for (const p of t.partitionResponses) {
          answered.add(p.index);
          results.push({
            partition: p.index,
            errorCode: p.errorCode,
            errorMessage: p.errorMessage,
            baseOffset: p.baseOffset,
          });
        }
      }
      for (const b of list) {
        if (!answered.has(b.partition)) {
          results.push({
            partition: b.partition,
            errorCode: ErrorCode.UNKNOWN_SERVER_ERROR,
            errorMessage: 'the Produce response did not mention this partition',
            baseOffset: -1n,
          });
        }
      }
    }),
  );
  return results;
}
