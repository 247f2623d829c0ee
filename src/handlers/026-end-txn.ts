/**
 * EndTxn (key 26), versions 0-5: commits or aborts the producer's ongoing transaction. The answer
 * comes once PrepareCommit/PrepareAbort is written to `__transaction_state`; the coordinator then
 * writes the markers. v1: same as v0. v2: PRODUCER_FENCED (older versions get
 * INVALID_PRODUCER_EPOCH). v3: flexible. v4: TRANSACTION_ABORTABLE may be returned. v5 (KIP-890
 * part 2): the response carries the producer id and epoch; this broker does not enable
 * transaction version 2 (no `transaction.version` feature is advertised), so they are the
 * producer's own and its epoch is not bumped per transaction.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type EndTxnRequest,
  type EndTxnResponseInput,
  readEndTxnRequest,
  writeEndTxnResponse,
} from '../protocol/messages/026-end-txn.ts';
import { defineHandler } from './handler.ts';

export const endTxnHandler = defineHandler<EndTxnRequest, EndTxnResponseInput>({
  apiKey: 26,
  readRequest: readEndTxnRequest,
  writeResponse: writeEndTxnResponse,
  minVersion: 0,
  maxVersion: 5,
  async handle(ctx, request) {
    try {
      const ids = await ctx.services.transactions.coordinator.endTxn(
        request.transactionalId,
        request.producerId,
        request.producerEpoch,
        request.committed,
        // As Kafka: EndTxn v5+ is transaction version 2 (the epoch is bumped per transaction).
        ctx.apiVersion >= 5 ? 2 : 0,
      );
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, ...ids };
    } catch (err) {
      if (!(err instanceof KafkaError)) throw err;
      const code =
        err.errorCode === ErrorCode.PRODUCER_FENCED && ctx.apiVersion < 2
          ? ErrorCode.INVALID_PRODUCER_EPOCH
          : err.errorCode;
      return { throttleTimeMs: 0, errorCode: code, producerId: -1n, producerEpoch: -1 };
    }
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode, producerId: -1n, producerEpoch: -1 };
  },
});
