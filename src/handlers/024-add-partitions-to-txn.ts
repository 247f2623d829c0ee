/**
 * AddPartitionsToTxn (key 24), versions 0-5. v0-3 (clients): one transactional id, its partitions
 * added to the ongoing transaction (written to `__transaction_state` first). v4+ (KIP-890 part 1,
 * broker to broker): a batch of transactional ids; with `verifyOnly` a partition leader asks
 * whether partitions are already in the transaction (nothing is written). v1: same as v0. v2:
 * PRODUCER_FENCED (older versions get INVALID_PRODUCER_EPOCH). v3: flexible. v5: same as v4.
 * A partition that does not exist fails with UNKNOWN_TOPIC_OR_PARTITION and the others with
 * OPERATION_NOT_ATTEMPTED, as in Kafka.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type AddPartitionsToTxnRequest,
  type AddPartitionsToTxnRequestAddPartitionsToTxnTopic,
  type AddPartitionsToTxnResponseAddPartitionsToTxnTopicResultInput,
  type AddPartitionsToTxnResponseInput,
  readAddPartitionsToTxnRequest,
  writeAddPartitionsToTxnResponse,
} from '../protocol/messages/024-add-partitions-to-txn.ts';
import type { BrokerServices } from './broker-services.ts';
import { defineHandler } from './handler.ts';

type Topics = readonly AddPartitionsToTxnRequestAddPartitionsToTxnTopic[];

function results(topics: Topics, code: (topic: string, partition: number) => number) {
  return topics.map(
    (t): AddPartitionsToTxnResponseAddPartitionsToTxnTopicResultInput => ({
      name: t.name,
      resultsByPartition: t.partitions.map((p) => ({ partitionIndex: p, partitionErrorCode: code(t.name, p) })),
    }),
  );
}

function fencedCode(errorCode: number, version: number): number {
  return errorCode === ErrorCode.PRODUCER_FENCED && version < 2 ? ErrorCode.INVALID_PRODUCER_EPOCH : errorCode;
}

/** Adds (or verifies) one transaction's partitions: the per-partition results. */
async function addOne(
  services: BrokerServices,
  version: number,
  transactionalId: string,
  producerId: bigint,
  producerEpoch: number,
  topics: Topics,
  verifyOnly: boolean,
): Promise<AddPartitionsToTxnResponseAddPartitionsToTxnTopicResultInput[]> {
  const coordinator = services.transactions.coordinator;
  if (verifyOnly)
    return results(topics, (topic, partition) =>
      coordinator.verifyPartition(transactionalId, producerId, producerEpoch, { topic, partition }),
    );
  const unknown = new Set<string>();
  for (const t of topics) {
    const meta = services.topics.get(t.name);
    for (const p of t.partitions)
      if (meta === undefined || p < 0 || p >= meta.partitions) unknown.add(`${t.name}:${p}`);
  }
  if (unknown.size > 0)
    return results(topics, (t, p) =>
      unknown.has(`${t}:${p}`) ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION : ErrorCode.OPERATION_NOT_ATTEMPTED,
    );
  try {
    await coordinator.addPartitions(
      transactionalId,
      producerId,
      producerEpoch,
      topics.flatMap((t) => t.partitions.map((partition) => ({ topic: t.name, partition }))),
    );
    return results(topics, () => ErrorCode.NONE);
  } catch (err) {
    if (!(err instanceof KafkaError)) throw err;
    const code = fencedCode(err.errorCode, version);
    return results(topics, () => code);
  }
}

export const addPartitionsToTxnHandler = defineHandler<AddPartitionsToTxnRequest, AddPartitionsToTxnResponseInput>({
  apiKey: 24,
  readRequest: readAddPartitionsToTxnRequest,
  writeResponse: writeAddPartitionsToTxnResponse,
  minVersion: 0,
  maxVersion: 5,
  async handle(ctx, request) {
    const v = ctx.apiVersion;
    if (v <= 3) {
      return {
        throttleTimeMs: 0,
        resultsByTopicV3AndBelow: await addOne(
          ctx.services,
          v,
          request.v3AndBelowTransactionalId,
          request.v3AndBelowProducerId,
          request.v3AndBelowProducerEpoch,
          request.v3AndBelowTopics,
          false,
        ),
      };
    }
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      resultsByTransaction: await Promise.all(
        request.transactions.map(async (t) => ({
          transactionalId: t.transactionalId,
          topicResults: await addOne(
            ctx.services,
            v,
            t.transactionalId,
            t.producerId,
            t.producerEpoch,
            t.topics,
            t.verifyOnly,
          ),
        })),
      ),
    };
  },
  errorResponse(ctx, request, errorCode) {
    if (ctx.apiVersion <= 3) return { resultsByTopicV3AndBelow: results(request.v3AndBelowTopics, () => errorCode) };
    return { errorCode };
  },
});
