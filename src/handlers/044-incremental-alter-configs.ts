/**
 * IncrementalAlterConfigs (key 44), versions 0-1 (KIP-339): SET, DELETE, APPEND, SUBTRACT per
 * key, on topics (persisted overrides, applied to live logs) and on this broker (dynamic log.*
 * defaults). v1: flexible.
 */
import { KafkaError } from '../protocol/error-codes.ts';
import {
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponseInput,
  readIncrementalAlterConfigsRequest,
  writeIncrementalAlterConfigsResponse,
} from '../protocol/messages/044-incremental-alter-configs.ts';
import { resolveConfigResource } from './config-resources.ts';
import { defineHandler } from './handler.ts';

export const incrementalAlterConfigsHandler = defineHandler<
  IncrementalAlterConfigsRequest,
  IncrementalAlterConfigsResponseInput
>({
  apiKey: 44,
  readRequest: readIncrementalAlterConfigsRequest,
  writeResponse: writeIncrementalAlterConfigsResponse,
  minVersion: 0,
  maxVersion: 1,
  async handle(ctx, request) {
    const { services } = ctx;
    const responses = [];
    for (const res of request.resources) {
      try {
        const resource = resolveConfigResource(services, res.resourceType, res.resourceName);
        const changes = res.configs.map((c) => ({ name: c.name, op: c.configOperation, value: c.value }));
        if (resource.kind === 'topic') {
          await services.configs.alterTopic(resource.topic, changes, false, request.validateOnly);
        } else await services.configs.alterBroker(changes, false, request.validateOnly);
        responses.push({
          errorCode: 0,
          errorMessage: null,
          resourceType: res.resourceType,
          resourceName: res.resourceName,
        });
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        responses.push({
          errorCode: err.errorCode,
          errorMessage: err.message,
          resourceType: res.resourceType,
          resourceName: res.resourceName,
        });
      }
    }
    return { throttleTimeMs: 0, responses };
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      responses: request.resources.map((r) => ({
        errorCode,
        resourceType: r.resourceType,
        resourceName: r.resourceName,
      })),
    };
  },
});
