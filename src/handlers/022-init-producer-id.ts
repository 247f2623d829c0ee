/**
 * InitProducerId (key 22), versions 0-5.
 * v1: same as v0. v2: flexible. v3 (KIP-360): producer id/epoch for epoch bumps.
 * v4 (KIP-588): PRODUCER_FENCED may be returned. v5 (KIP-890): same as v4.
 * A transactional id goes to its transaction coordinator (which must be this broker:
 * NOT_COORDINATOR otherwise), which fences the previous producer of the id.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type InitProducerIdRequest,
  type InitProducerIdResponseInput,
  readInitProducerIdRequest,
  writeInitProducerIdResponse,
} from '../protocol/messages/022-init-producer-id.ts';
import { defineHandler } from './handler.ts';

export const initProducerIdHandler = defineHandler<InitProducerIdRequest, InitProducerIdResponseInput>({
  apiKey: 22,
  readRequest: readInitProducerIdRequest,
  writeResponse: writeInitProducerIdResponse,
  minVersion: 0,
  maxVersion: 5,
  async handle(ctx, request) {
    const failed = (errorCode: number) => ({ throttleTimeMs: 0, errorCode, producerId: -1n, producerEpoch: -1 });
    // As Kafka's TransactionCoordinator: a transactional id must be non-empty and its timeout
    // within (0, transaction.max.timeout.ms].
    if (request.transactionalId !== null) {
      if (request.transactionalId === '') return failed(ErrorCode.INVALID_REQUEST);
      const timeout = request.transactionTimeoutMs;
      if (timeout <= 0 || timeout > ctx.services.transactionMaxTimeoutMs)
        return failed(ErrorCode.INVALID_TRANSACTION_TIMEOUT);
    }
    try {
      const r =
        request.transactionalId === null
          ? await ctx.services.producerIds.initProducerId(null, request.producerId, request.producerEpoch)
          : await ctx.services.transactions.coordinator.initProducerId(
              request.transactionalId,
              request.transactionTimeoutMs,
              ctx.apiVersion >= 3 ? request.producerId : -1n,
              ctx.apiVersion >= 3 ? request.producerEpoch : -1,
            );
      return { throttleTimeMs: 0, errorCode: 0, producerId: r.producerId, producerEpoch: r.producerEpoch };
    } catch (err) {
      if (!(err instanceof KafkaError)) throw err;
      // Before v4 a fenced producer is told INVALID_PRODUCER_EPOCH (KIP-588 added PRODUCER_FENCED).
      if (err.errorCode === ErrorCode.PRODUCER_FENCED && ctx.apiVersion < 4)
        return failed(ErrorCode.INVALID_PRODUCER_EPOCH);
      return failed(err.errorCode);
    }
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode, producerId: -1n, producerEpoch: -1 };
  },
});
