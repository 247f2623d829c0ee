/**
 * AlterConfigs (key 33), versions 0-2: replaces the whole set of overrides of a resource
 * (keys not given are removed), as Kafka's legacy API does. v2: flexible.
 */

import { AlterOp } from '../metadata/config-manager.ts';
import { KafkaError } from '../protocol/error-codes.ts';
import {
  type AlterConfigsRequest,
  type AlterConfigsResponseInput,
  readAlterConfigsRequest,
  writeAlterConfigsResponse,
} from '../protocol/messages/033-alter-configs.ts';
import { resolveConfigResource } from './config-resources.ts';
import { defineHandler } from './handler.ts';

export const alterConfigsHandler = defineHandler<AlterConfigsRequest, AlterConfigsResponseInput>({
  apiKey: 33,
  readRequest: readAlterConfigsRequest,
  writeResponse: writeAlterConfigsResponse,
  minVersion: 0,
  maxVersion: 2,
  async handle(ctx, request) {
    const { services } = ctx;
    const responses = [];
    for (const res of request.resources) {
      try {
        const resource = resolveConfigResource(services, res.resourceType, res.resourceName);
        const changes = res.configs.map((c) => ({ name: c.name, op: AlterOp.SET, value: c.value }));
        if (resource.kind === 'topic') {
          await services.configs.alterTopic(resource.topic, changes, true, request.validateOnly);
        } else await services.configs.alterBroker(changes, true, request.validateOnly);
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
