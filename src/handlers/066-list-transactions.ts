/**
 * ListTransactions (key 66), versions 0-1 (KIP-664): the transactional ids coordinated by this
 * broker, filtered by state names and producer ids; unknown state names are echoed back.
 * v1 (KIP-994): only transactions running longer than `durationFilter` ms (-1: all).
 */
import {
  type ListTransactionsRequest,
  type ListTransactionsResponseInput,
  readListTransactionsRequest,
  writeListTransactionsResponse,
} from '../protocol/messages/066-list-transactions.ts';
import { defineHandler } from './handler.ts';

export const listTransactionsHandler = defineHandler<ListTransactionsRequest, ListTransactionsResponseInput>({
  apiKey: 66,
  readRequest: readListTransactionsRequest,
  writeResponse: writeListTransactionsResponse,
  minVersion: 0,
  maxVersion: 1,
  async handle(ctx, request) {
    const r = ctx.services.transactions.coordinator.listTransactions(
      request.stateFilters,
      request.producerIdFilters,
      ctx.apiVersion >= 1 ? request.durationFilter : -1n,
    );
    return { throttleTimeMs: 0, ...r };
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode, unknownStateFilters: [], transactionStates: [] };
  },
});
