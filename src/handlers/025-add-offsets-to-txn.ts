/**
 * AddOffsetsToTxn (key 25), versions 0-4: adds the group's `__consumer_offsets` partition to the
 * ongoing transaction, so the TxnOffsetCommit that follows (at the group coordinator) is
 * committed or aborted with it. v1: same as v0. v2: PRODUCER_FENCED (older versions get
 * INVALID_PRODUCER_EPOCH). v3: flexible. v4: same as v3 (KIP-890).
 */
import { CONSUMER_OFFSETS_TOPIC } from '../coordinator/group/group-coordinator-service.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type AddOffsetsToTxnRequest,
  type AddOffsetsToTxnResponseInput,
  readAddOffsetsToTxnRequest,
  writeAddOffsetsToTxnResponse,
} from '../protocol/messages/025-add-offsets-to-txn.ts';
import { defineHandler } from './handler.ts';

export const addOffsetsToTxnHandler = defineHandler<AddOffsetsToTxnRequest, AddOffsetsToTxnResponseInput>({
  apiKey: 25,
  readRequest: readAddOffsetsToTxnRequest,
  writeResponse: writeAddOffsetsToTxnResponse,
  minVersion: 0,
  maxVersion: 4,
  async handle(ctx, request) {
    const { groups, transactions } = ctx.services;
    try {
      // The offsets partition must exist before it can hold the transaction's offsets.
      await groups.ensureTopic();
      await transactions.coordinator.addPartitions(request.transactionalId, request.producerId, request.producerEpoch, [
        { topic: CONSUMER_OFFSETS_TOPIC, partition: groups.partitionFor(request.groupId) },
      ]);
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE };
    } catch (err) {
      if (!(err instanceof KafkaError)) throw err;
      const code =
        err.errorCode === ErrorCode.PRODUCER_FENCED && ctx.apiVersion < 2
          ? ErrorCode.INVALID_PRODUCER_EPOCH
          : err.errorCode;
      return { throttleTimeMs: 0, errorCode: code };
    }
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode };
  },
});
