/**
 * DescribeTransactions (key 65), version 0 (KIP-664): the state, timeout, start time, producer
 * id/epoch and partitions of transactional ids coordinated here; NOT_COORDINATOR,
 * COORDINATOR_LOAD_IN_PROGRESS or TRANSACTIONAL_ID_NOT_FOUND per id otherwise.
 */
import {
  type DescribeTransactionsRequest,
  type DescribeTransactionsResponseInput,
  readDescribeTransactionsRequest,
  writeDescribeTransactionsResponse,
} from '../protocol/messages/065-describe-transactions.ts';
import { defineHandler } from './handler.ts';

export const describeTransactionsHandler = defineHandler<
  DescribeTransactionsRequest,
  DescribeTransactionsResponseInput
>({
  apiKey: 65,
  readRequest: readDescribeTransactionsRequest,
  writeResponse: writeDescribeTransactionsResponse,
  minVersion: 0,
  maxVersion: 0,
  async handle(ctx, request) {
    return {
      throttleTimeMs: 0,
      transactionStates: ctx.services.transactions.coordinator.describeTransactions(request.transactionalIds),
    };
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      transactionStates: request.transactionalIds.map((transactionalId) => ({
        errorCode,
        transactionalId,
        transactionState: '',
        transactionTimeoutMs: 0,
        transactionStartTimeMs: -1n,
        producerId: -1n,
        producerEpoch: -1,
        topics: [],
      })),
    };
  },
});
