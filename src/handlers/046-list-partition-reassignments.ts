/**
 * ListPartitionReassignments (key 46), version 0 (KIP-455): the reassignments in progress, with
 * their replicas (target and original together), adding and removing replicas. Every broker
 * answers from its copy of the cluster metadata, where the controller records each reassignment
 * with the partition's state; null topics: all of them. Partitions not being reassigned and
 * unknown ones are left out, as Kafka does.
 */
import { ErrorCode } from '../protocol/error-codes.ts';
import {
  type ListPartitionReassignmentsRequest,
  type ListPartitionReassignmentsResponseInput,
  readListPartitionReassignmentsRequest,
  writeListPartitionReassignmentsResponse,
} from '../protocol/messages/046-list-partition-reassignments.ts';
import { defineHandler } from './handler.ts';

export const listPartitionReassignmentsHandler = defineHandler<
  ListPartitionReassignmentsRequest,
  ListPartitionReassignmentsResponseInput
>({
  apiKey: 46,
  readRequest: readListPartitionReassignmentsRequest,
  writeResponse: writeListPartitionReassignmentsResponse,
  minVersion: 0,
  maxVersion: 0,
  handle(ctx, request) {
    const admin = ctx.services.partitionAdmin;
    if (admin === undefined) return { throttleTimeMs: 0, errorCode: ErrorCode.UNSUPPORTED_VERSION, topics: [] };
    const byTopic = new Map<
      string,
      {
        partitionIndex: number;
        replicas: readonly number[];
        addingReplicas: readonly number[];
        removingReplicas: readonly number[];
      }[]
    >();
    for (const r of admin.controller.listReassignments(request.topics)) {
      let list = byTopic.get(r.topic);
      if (list === undefined) {
        list = [];
        byTopic.set(r.topic, list);
      }
      list.push({
        partitionIndex: r.partition,
        replicas: r.replicas,
        addingReplicas: r.addingReplicas,
        removingReplicas: r.removingReplicas,
      });
    }
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
    };
  },
  errorResponse(_ctx, _request, errorCode) {
    return { throttleTimeMs: 0, errorCode, topics: [] };
  },
});
