/**
 * AlterPartitionReassignments (key 45), version 0 (KIP-455): starts, replaces or (null replicas)
 * cancels the reassignment of partitions to target replicas, at the active controller
 * (src/metadata/reassignment-controller.ts; a broker that is not it forwards the request, KIP-590).
 * The answer comes once the reassignment is recorded; the data moves afterwards.
 */
import { FORWARDING_CLIENT_ID } from '../metadata/controller-channel.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type AlterPartitionReassignmentsRequest,
  type AlterPartitionReassignmentsResponseInput,
  readAlterPartitionReassignmentsRequest,
  writeAlterPartitionReassignmentsResponse,
} from '../protocol/messages/045-alter-partition-reassignments.ts';
import { defineHandler } from './handler.ts';

export const alterPartitionReassignmentsHandler = defineHandler<
  AlterPartitionReassignmentsRequest,
  AlterPartitionReassignmentsResponseInput
>({
  apiKey: 45,
  readRequest: readAlterPartitionReassignmentsRequest,
  writeResponse: writeAlterPartitionReassignmentsResponse,
  minVersion: 0,
  maxVersion: 0,
  async handle(ctx, request) {
    const admin = ctx.services.partitionAdmin;
    if (admin === undefined) return failAll(request, new KafkaError(ErrorCode.UNSUPPORTED_VERSION));
    try {
      if (!admin.controller.active) {
        // Not sent on twice: brokers disagreeing on the controller would bounce it.
        if (admin.forward === undefined || ctx.clientId === FORWARDING_CLIENT_ID)
          throw new KafkaError(ErrorCode.NOT_CONTROLLER, 'this broker is not the active controller right now');
        return await admin.forward.alterPartitionReassignments({
          timeoutMs: request.timeoutMs,
          topics: request.topics,
        });
      }
      const results = await admin.controller.alterReassignments(request.topics);
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        responses: results.map((t) => ({
          name: t.topic,
          partitions: t.partitions.map((p) => ({
            partitionIndex: p.partition,
            errorCode: p.errorCode,
            errorMessage: p.errorMessage,
          })),
        })),
      };
    } catch (err) {
      if (!(err instanceof KafkaError)) throw err;
      return failAll(request, err);
    }
  },
  errorResponse(_ctx, request, errorCode) {
    return failAll(request, new KafkaError(errorCode));
  },
});

/** The request-level error, and every partition failed with it (as Kafka's controller answers). */
function failAll(
  request: AlterPartitionReassignmentsRequest,
  err: KafkaError,
): AlterPartitionReassignmentsResponseInput {
  return {
    throttleTimeMs: 0,
    errorCode: err.errorCode,
    errorMessage: err.message,
    responses: request.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        errorCode: err.errorCode,
        errorMessage: err.message,
      })),
    })),
  };
}
