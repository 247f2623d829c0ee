/**
 * DescribeConfigs (key 32), versions 0-4.
 * v1: synonyms (KIP-226) and config source instead of is_default. v3: config type and
 * documentation (KIP-569). v4: flexible. Resources: topics and this broker.
 * Not implemented: documentation strings (null), broker loggers.
 */
import { KafkaError } from '../protocol/error-codes.ts';
import {
  type DescribeConfigsRequest,
  type DescribeConfigsResponseInput,
  readDescribeConfigsRequest,
  writeDescribeConfigsResponse,
} from '../protocol/messages/032-describe-configs.ts';
import { resolveConfigResource } from './config-resources.ts';
import { defineHandler } from './handler.ts';

export const describeConfigsHandler = defineHandler<DescribeConfigsRequest, DescribeConfigsResponseInput>({
  apiKey: 32,
  readRequest: readDescribeConfigsRequest,
  writeResponse: writeDescribeConfigsResponse,
  minVersion: 0,
  maxVersion: 4,
  handle(ctx, request) {
    const { services } = ctx;
    const results = request.resources.map((res) => {
      try {
        const resource = resolveConfigResource(services, res.resourceType, res.resourceName);
        const entries =
          resource.kind === 'topic'
            ? services.configs.describeTopic(resource.topic, res.configurationKeys)
            : services.configs.describeBroker(res.configurationKeys);
        // Kafka's ConfigHelper leaves a successful result's message at its schema default, "".
        return {
          errorCode: 0,
          errorMessage: '',
          resourceType: res.resourceType,
          resourceName: res.resourceName,
          configs: entries.map((e) => ({
            name: e.name,
            value: e.value,
            readOnly: e.readOnly,
            // v0 says is_default; v1+ say config_source and synonyms instead; v3+ add config_type.
            isDefault: ctx.apiVersion === 0 ? e.isDefault : false,
            configSource: ctx.apiVersion === 0 ? -1 : e.source,
            isSensitive: e.isSensitive,
            synonyms: ctx.apiVersion >= 1 && request.includeSynonyms ? e.synonyms : [],
            configType: ctx.apiVersion >= 3 ? e.configType : 0,
            documentation: null,
          })),
        };
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
        return {
          errorCode: err.errorCode,
          errorMessage: err.message,
          resourceType: res.resourceType,
          resourceName: res.resourceName,
          configs: [],
        };
      }
    });
    return { throttleTimeMs: 0, results };
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      results: request.resources.map((r) => ({
        errorCode,
        resourceType: r.resourceType,
        resourceName: r.resourceName,
      })),
    };
  },
});
