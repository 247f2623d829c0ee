/**
 * IncrementalAlterConfigs (key 44), versions 0-1 (KIP-339): SET, DELETE, APPEND, SUBTRACT per
 * key, on topics (persisted overrides, applied to live logs) and on this broker (dynamic log.*
 * defaults). v1: flexible.
 */
import {
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponseInput,
  readIncrementalAlterConfigsRequest,
  writeIncrementalAlterConfigsResponse,
} from '../protocol/messages/044-incremental-alter-configs.ts';
import { alterConfigResources } from './config-resources.ts';
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
    const responses = await alterConfigResources(
      ctx.services,
      request.resources,
      (res) => res.configs.map((c) => ({ name: c.name, op: c.configOperation, value: c.value })),
      false,
      request.validateOnly,
    );
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
