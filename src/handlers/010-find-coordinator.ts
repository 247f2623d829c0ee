/**
 * FindCoordinator (key 10), versions 0-6. This node coordinates every group and transactional id.
 * v1: key type (0 group, 1 transaction), throttle time, error message. v2: same as v1.
 * v3: flexible. v4: batched coordinator keys (KIP-699). v5: TRANSACTION_ABORTABLE (KIP-890).
 * v6: share groups (KIP-932). Looking up a group creates `__consumer_offsets` when missing, as
 * Kafka does.
 * Not implemented: key type 2 (share groups) answers INVALID_REQUEST, as a broker without share
 * groups enabled does.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type FindCoordinatorRequest,
  type FindCoordinatorResponseCoordinatorInput,
  type FindCoordinatorResponseInput,
  readFindCoordinatorRequest,
  writeFindCoordinatorResponse,
} from '../protocol/messages/010-find-coordinator.ts';
import { defineHandler } from './handler.ts';

const KEY_TYPE_GROUP = 0;
const KEY_TYPE_TRANSACTION = 1;

export const findCoordinatorHandler = defineHandler<FindCoordinatorRequest, FindCoordinatorResponseInput>({
  apiKey: 10,
  readRequest: readFindCoordinatorRequest,
  writeResponse: writeFindCoordinatorResponse,
  minVersion: 0,
  maxVersion: 6,
  async handle(ctx, request) {
    const { services } = ctx;
    const self = services.advertisedListener();
    const keyType = ctx.apiVersion >= 1 ? request.keyType : KEY_TYPE_GROUP;
    let errorCode: number = ErrorCode.NONE;
    let errorMessage: string | null = null;
    if (keyType !== KEY_TYPE_GROUP && keyType !== KEY_TYPE_TRANSACTION) {
      errorCode = ErrorCode.INVALID_REQUEST;
      errorMessage = `unsupported key type ${keyType}`;
    } else if (keyType === KEY_TYPE_GROUP) {
      try {
        await services.groups.ensureTopic();
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        errorCode = ErrorCode.COORDINATOR_NOT_AVAILABLE;
        errorMessage = err.message;
      }
    }
    // Kafka's message on success is never null: below v4 error.message() of Errors.NONE, which is
    // "NONE"; from v4 on the schema default, "".
    const noError = ctx.apiVersion >= 4 ? '' : 'NONE';
    const found = (key: string): FindCoordinatorResponseCoordinatorInput =>
      errorCode === ErrorCode.NONE
        ? { key, nodeId: services.nodeId, host: self.host, port: self.port, errorCode, errorMessage: noError }
        : { key, nodeId: -1, host: '', port: -1, errorCode, errorMessage };
    if (ctx.apiVersion >= 4) {
      return { throttleTimeMs: 0, coordinators: request.coordinatorKeys.map(found) };
    }
    const one = found(request.key);
    return {
      throttleTimeMs: 0,
      errorCode: one.errorCode ?? 0,
      ...(ctx.apiVersion >= 1 ? { errorMessage: one.errorMessage ?? null } : {}),
      nodeId: one.nodeId ?? -1,
      host: one.host ?? '',
      port: one.port ?? -1,
    };
  },
  errorResponse(ctx, request, errorCode) {
    if (ctx.apiVersion >= 4) {
      return {
        coordinators: request.coordinatorKeys.map((key) => ({ key, nodeId: -1, host: '', port: -1, errorCode })),
      };
    }
    return { errorCode, nodeId: -1, host: '', port: -1 };
  },
});
