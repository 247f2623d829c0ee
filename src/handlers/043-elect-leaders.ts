/**
 * ElectLeaders (key 43), versions 0-2 (KIP-183, KIP-460): preferred (type 0) and unclean (type 1)
 * leader elections, made by the active controller (src/metadata/reassignment-controller.ts). A
 * broker that is not the controller forwards the request to it, as Kafka's brokers forward admin
 * requests (KIP-590); Kafka's admin client and kafka-leader-election.sh send it there anyway.
 * v1: electionType, top-level errorCode. v2: flexible.
 */
import { FORWARDING_CLIENT_ID } from '../metadata/controller-channel.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type ElectLeadersRequest,
  type ElectLeadersResponseInput,
  readElectLeadersRequest,
  writeElectLeadersResponse,
} from '../protocol/messages/043-elect-leaders.ts';
import { defineHandler } from './handler.ts';

export const electLeadersHandler = defineHandler<ElectLeadersRequest, ElectLeadersResponseInput>({
  apiKey: 43,
  readRequest: readElectLeadersRequest,
  writeResponse: writeElectLeadersResponse,
  minVersion: 0,
  maxVersion: 2,
  async handle(ctx, request) {
    const admin = ctx.services.partitionAdmin;
    if (admin === undefined) return failAll(request, new KafkaError(ErrorCode.UNSUPPORTED_VERSION));
    try {
      if (!admin.controller.active) {
        // A forwarded request that reached a broker no longer the controller is not sent on again
        // (two brokers with different views would bounce it): the client retries NOT_CONTROLLER.
        if (admin.forward === undefined || ctx.clientId === FORWARDING_CLIENT_ID)
          throw new KafkaError(ErrorCode.NOT_CONTROLLER, 'this broker is not the active controller right now');
        return await admin.forward.electLeaders({
          electionType: request.electionType,
          topicPartitions: request.topicPartitions,
          timeoutMs: request.timeoutMs,
        });
      }
      const results = await admin.controller.electLeaders(request.electionType, request.topicPartitions);
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode.NONE,
        replicaElectionResults: results.map((t) => ({
          topic: t.topic,
          partitionResult: t.partitions.map((p) => ({
            partitionId: p.partition,
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

/** Every requested partition failed with `err` (and the top-level error code, v1+). */
function failAll(request: ElectLeadersRequest, err: KafkaError): ElectLeadersResponseInput {
  return {
    throttleTimeMs: 0,
    errorCode: err.errorCode,
    replicaElectionResults: (request.topicPartitions ?? []).map((t) => ({
      topic: t.topic,
      partitionResult: t.partitions.map((p) => ({
        partitionId: p,
        errorCode: err.errorCode,
        errorMessage: err.message,
      })),
    })),
  };
}
