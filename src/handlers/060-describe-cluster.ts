/**
 * DescribeCluster (key 60), versions 0-1 (KIP-700). v1: endpoint type (KIP-919): brokers (1)
 * only; asking for controllers (2) is answered with UNSUPPORTED_ENDPOINT_TYPE as Kafka's
 * brokers do. Brokers: every live broker; controller: the active one (-1 while none is elected),
 * as the cluster view has them.
 */
import { ErrorCode } from '../protocol/error-codes.ts';
import {
  type DescribeClusterRequest,
  type DescribeClusterResponseInput,
  readDescribeClusterRequest,
  writeDescribeClusterResponse,
} from '../protocol/messages/060-describe-cluster.ts';
import { authorizedOperations, CLUSTER_OPERATIONS } from './authorized-operations.ts';
import { defineHandler } from './handler.ts';

export const describeClusterHandler = defineHandler<DescribeClusterRequest, DescribeClusterResponseInput>({
  apiKey: 60,
  readRequest: readDescribeClusterRequest,
  writeResponse: writeDescribeClusterResponse,
  minVersion: 0,
  maxVersion: 1,
  handle(ctx, request) {
    const { services } = ctx;
    if (ctx.apiVersion >= 1 && request.endpointType !== 1) {
      return {
        errorCode: ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
        errorMessage: 'only broker endpoints are served',
        endpointType: request.endpointType,
      };
    }
    const { cluster } = services;
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      errorMessage: null,
      endpointType: 1,
      clusterId: services.clusterId,
      controllerId: cluster.controllerId(),
      brokers: cluster.brokers().map((b) => ({ brokerId: b.nodeId, host: b.host, port: b.port, rack: b.rack })),
      clusterAuthorizedOperations: authorizedOperations(request.includeClusterAuthorizedOperations, CLUSTER_OPERATIONS),
    };
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode };
  },
});
