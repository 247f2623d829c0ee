/**
 * FindCoordinator (key 10), versions 0-6. A group's coordinator is the leader of its
 * `__consumer_offsets` partition, a transactional id's the leader of its `__transaction_state`
 * partition, when that leader is live (Kafka's KafkaApis.getCoordinator), else
 * COORDINATOR_NOT_AVAILABLE and the client asks again.
 * v1: key type (0 group, 1 transaction), throttle time, error message. v2: same as v1.
 * v3: flexible. v4: batched coordinator keys (KIP-699). v5: TRANSACTION_ABORTABLE (KIP-890).
 * v6: share groups (KIP-932). Looking up a group (transactional id) creates `__consumer_offsets`
 * (`__transaction_state`) when missing, as Kafka does.
 * Not implemented: key type 2 (share groups) answers INVALID_REQUEST, as a broker without share
 * groups enabled does.
 */
import { CONSUMER_OFFSETS_TOPIC } from '../coordinator/group/group-coordinator-service.ts';
import { TRANSACTION_STATE_TOPIC } from '../coordinator/txn/transaction-coordinator.ts';
import { NO_LEADER } from '../metadata/metadata-store.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type FindCoordinatorRequest,
  type FindCoordinatorResponseCoordinatorInput,
  type FindCoordinatorResponseInput,
  readFindCoordinatorRequest,
  writeFindCoordinatorResponse,
} from '../protocol/messages/010-find-coordinator.ts';
import type { BrokerServices } from './broker-services.ts';
import { defineHandler } from './handler.ts';

/** No coordinator: Kafka's Node.noNode(). */
const NO_NODE = { nodeId: -1, host: '', port: -1 } as const;

/** The live leader of a coordinator's partition, or undefined while there is none. */
function leaderOf(services: BrokerServices, topic: string, partition: number) {
  const state = services.cluster.partitionState(topic, partition);
  if (state === undefined || state.leader === NO_LEADER) return undefined;
  return services.cluster.broker(state.leader);
}

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
    const keyType = ctx.apiVersion >= 1 ? request.keyType : KEY_TYPE_GROUP;
    let errorCode: number = ErrorCode.NONE;
    let errorMessage: string | null = null;
    if (keyType !== KEY_TYPE_GROUP && keyType !== KEY_TYPE_TRANSACTION) {
      errorCode = ErrorCode.INVALID_REQUEST;
      errorMessage = `unsupported key type ${keyType}`;
    } else {
      try {
        if (keyType === KEY_TYPE_GROUP) await services.groups.ensureTopic();
        else await services.transactions.coordinator.ensureTopic();
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        errorCode = ErrorCode.COORDINATOR_NOT_AVAILABLE;
        errorMessage = err.message;
      }
    }
    // Kafka's message on success is never null: below v4 error.message() of Errors.NONE, which is
    // "NONE"; from v4 on the schema default, "".
    const noError = ctx.apiVersion >= 4 ? '' : 'NONE';
    // Each key on its own: in a batch (v4+) groups hash to different partitions, so to different
    // coordinators, and one without a live leader fails alone.
    const found = (key: string): FindCoordinatorResponseCoordinatorInput => {
      if (errorCode !== ErrorCode.NONE) return { key, ...NO_NODE, errorCode, errorMessage };
      const coordinator =
        keyType === KEY_TYPE_TRANSACTION
          ? leaderOf(services, TRANSACTION_STATE_TOPIC, services.transactions.coordinator.partitionFor(key))
          : leaderOf(services, CONSUMER_OFFSETS_TOPIC, services.groups.partitionFor(key));
      if (coordinator === undefined) {
        return {
          key,
          ...NO_NODE,
          errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE,
          errorMessage: `the coordinator of ${keyType === KEY_TYPE_TRANSACTION ? 'transactional id' : 'group'} '${key}' has no live leader`,
        };
      }
      return {
        key,
        nodeId: coordinator.nodeId,
        host: coordinator.host,
        port: coordinator.port,
        errorCode,
        errorMessage: noError,
      };
    };
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
        coordinators: request.coordinatorKeys.map((key) => ({ key, ...NO_NODE, errorCode })),
      };
    }
    return { errorCode, ...NO_NODE };
  },
});
