/**
 * AlterConfigs (key 33), versions 0-2: replaces the whole set of overrides of a resource
 * (keys not given are removed), as Kafka's legacy API does. v2: flexible.
 */

import { AlterOp } from '../metadata/config-manager.ts';
import {
  type AlterConfigsRequest,
  type AlterConfigsResponseInput,
  readAlterConfigsRequest,
  writeAlterConfigsResponse,
} from '../protocol/messages/033-alter-configs.ts';
import { alterConfigResources } from './config-resources.ts';
import { defineHandler } from './handler.ts';

export const alterConfigsHandler = defineHandler<AlterConfigsRequest, AlterConfigsResponseInput>({
  apiKey: 33,
  readRequest: readAlterConfigsRequest,
  writeResponse: writeAlterConfigsResponse,
  minVersion: 0,
  maxVersion: 2,
  async handle(ctx, request) {
    const responses = await alterConfigResources(
      ctx.services,
      request.resources,
      (res) => res.configs.map((c) => ({ name: c.name, op: AlterOp.SET, value: c.value })),
      true,
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
