/**
 * Produce (key 0), versions 0-11 (advertised from 0 because librdkafka enables compression only
 * when v0 is in range; batches must be magic 2, so v0-2 message sets are refused per partition).
 * v3: transactional id, record batches (KIP-98). v5: log start offset. v8: record errors
 * (KIP-467). v9: flexible. v10: current leader hints (KIP-951): a partition failing with
 * NOT_LEADER_OR_FOLLOWER carries the leader and epoch the cluster view has, and the response the
 * live leaders' endpoints, so the producer retries there without a Metadata round trip (Kafka's
 * handleProduceRequest; only that error, as Kafka). v11: same as v10. acks=0 sends no response at all, as in Kafka.
 * A transactional batch that would begin a transaction on a partition is first verified with
 * the transaction coordinator (KIP-890 part 1). Not implemented: quotas.
 */
import type { TopicMetadata } from '../metadata/metadata-store.ts';
import { isInternalTopic } from '../metadata/topic-manager.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type ProduceRequest,
  type ProduceResponseInput,
  type ProduceResponsePartitionProduceResponseInput,
  readProduceRequest,
  writeProduceResponse,
} from '../protocol/messages/000-produce.ts';
import {
  isTransactional,
  RECORD_BATCH_HEADER_SIZE,
  type RecordBatchHeader,
  readBatchHeader,
} from '../protocol/records/batch-header.ts';
import type { BrokerServices } from './broker-services.ts';
import { defineHandler } from './handler.ts';
import { currentLeader, LeaderEndpoints } from './partition-leaders.ts';

/** A partition's answer; its index always set (the KIP-951 leader hint looks the partition up). */
type PartitionResponse = ProduceResponsePartitionProduceResponseInput & { index: number; errorCode: number };

function errorPartition(index: number, errorCode: number, message?: string): PartitionResponse {
  return {
    index,
    errorCode,
    baseOffset: -1n,
    logAppendTimeMs: -1n,
    logStartOffset: -1n,
    errorMessage: message ?? null,
  };
}

/**
 * KIP-890 part 1 (Kafka's ReplicaManager.appendRecords with transaction verification): before a
 * transaction's first batch on a partition, the leader asks the transaction coordinator whether
 * the partition is in the producer's ongoing transaction; the guard it returns makes the append
 * fail if the transaction ends meanwhile. undefined for non-transactional batches.
 */
async function verifyTransaction(
  services: BrokerServices,
  transactionalId: string | null,
  topic: TopicMetadata,
  pd: { index: number; records: Buffer | null },
): Promise<object | undefined> {
  const records = pd.records;
  if (records === null || records.length < RECORD_BATCH_HEADER_SIZE) return undefined;
  let header: RecordBatchHeader;
  try {
    header = readBatchHeader(records, 0);
  } catch {
    return undefined; // the append reports malformed batches
  }
  if (!isTransactional(header.attributes)) return undefined;
  if (transactionalId === null)
    throw new KafkaError(ErrorCode.INVALID_RECORD, "a transactional batch needs the request's transactional id");
  const guard = await services.logs.startTxnVerification(topic, pd.index, header.producerId);
  if (guard === null) return undefined;
  await services.transactions.channel.verifyPartition(
    transactionalId,
    header.producerId,
    header.producerEpoch,
    topic.name,
    pd.index,
  );
  return guard;
}

export const produceHandler = defineHandler<ProduceRequest, ProduceResponseInput>({
  apiKey: 0,
  readRequest: readProduceRequest,
  writeResponse: writeProduceResponse,
  minVersion: 0,
  maxVersion: 11,
  async handle(ctx, request) {
    const { topics, logs } = ctx.services;
    const acks = request.acks;
    // KIP-951 (v10+): the live leaders named by NOT_LEADER_OR_FOLLOWER partitions.
    const endpoints = new LeaderEndpoints();
    // Every append must have finished before the handler returns, even when one fails
    // unexpectedly: the request's bytes (a recycled frame buffer) are reused afterwards.
    const settled = await Promise.allSettled(
      request.topicData.map(async (td) => {
        const topic = topics.get(td.name);
        const partitionResults = await Promise.allSettled(
          td.partitionData.map(async (pd): Promise<PartitionResponse> => {
            if (acks !== 0 && acks !== 1 && acks !== -1)
              return errorPartition(pd.index, ErrorCode.INVALID_REQUIRED_ACKS);
            if (topic === undefined || pd.index < 0 || pd.index >= topic.partitions) {
              return errorPartition(pd.index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
            }
            // Kafka lets only its own admin tools ("__admin_client") write the coordinators' logs.
            if (isInternalTopic(topic.name) && ctx.clientId !== '__admin_client') {
              return errorPartition(
                pd.index,
                ErrorCode.INVALID_TOPIC_EXCEPTION,
                `Cannot append to internal topic ${topic.name}`,
              );
            }
            if (pd.records === null || pd.records.length === 0) {
              return errorPartition(pd.index, ErrorCode.INVALID_RECORD, 'no records');
            }
            try {
              const verificationGuard = await verifyTransaction(ctx.services, request.transactionalId, topic, pd);
              const result = await logs.append(topic, pd.index, pd.records, acks, request.timeoutMs, {
                verificationGuard,
              });
              return {
                index: pd.index,
                errorCode: 0,
                baseOffset: result.baseOffset,
                logAppendTimeMs: result.logAppendTimeMs,
                logStartOffset: result.logStartOffset,
              };
            } catch (err) {
              if (!(err instanceof KafkaError)) throw err;
              // KIP-467: clients fail only the records named, the rest of the batch with a
              // generic error (retrying them is the application's choice).
              const recordErrors = err.recordErrors.map((e) => ({
                batchIndex: e.batchIndex,
                batchIndexErrorMessage: e.message,
              }));
              return { ...errorPartition(pd.index, err.errorCode, err.message), recordErrors };
            }
          }),
        );
        const partitionResponses = [];
        for (const r of partitionResults) {
          if (r.status === 'rejected') throw r.reason;
          const partition = r.value;
          if (ctx.apiVersion >= 10 && partition.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER) {
            const leader = currentLeader(ctx.services.cluster, td.name, partition.index);
            partition.currentLeader = { leaderId: leader.leaderId, leaderEpoch: leader.leaderEpoch };
            endpoints.add(leader.endpoint);
          }
          partitionResponses.push(partition);
        }
        return { name: td.name, partitionResponses };
      }),
    );
    const responses = [];
    for (const r of settled) {
      if (r.status === 'rejected') throw r.reason;
      responses.push(r.value);
    }
    if (acks === 0) return null;
    return ctx.apiVersion >= 10
      ? { responses, throttleTimeMs: 0, nodeEndpoints: endpoints.list() }
      : { responses, throttleTimeMs: 0 };
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      responses: request.topicData.map((td) => ({
        name: td.name,
        partitionResponses: td.partitionData.map((pd) => errorPartition(pd.index, errorCode)),
      })),
    };
  },
});
