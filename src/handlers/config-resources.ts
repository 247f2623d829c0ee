/** Shared by the config APIs: resource types and resolving a resource to what it names. */
import type { ConfigChange } from '../metadata/config-manager.ts';
import type { TopicMetadata } from '../metadata/metadata-store.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import type { BrokerServices } from './broker-services.ts';

export const ResourceType = { TOPIC: 2, BROKER: 4, BROKER_LOGGER: 8 } as const;

export type ConfigResource = { kind: 'topic'; topic: TopicMetadata } | { kind: 'broker' };

export function resolveConfigResource(services: BrokerServices, type: number, name: string): ConfigResource {
  if (type === ResourceType.TOPIC) {
    const topic = services.topics.get(name);
    if (topic === undefined) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${name}'`);
    return { kind: 'topic', topic };
  }
  if (type === ResourceType.BROKER) {
    // An empty name is the cluster-wide default; otherwise it must be this broker's id, even when
    // it names another live broker: only a broker describes and alters its own configs (Kafka's
    // ConfigHelper.describeConfigs and ZkAdminManager.getBrokerId), and the admin clients send a
    // broker's resource to that broker.
    if (name === '') return { kind: 'broker' };
    // Java's Integer.parseInt: an optional sign, decimal digits, within 32 bits.
    const id = Number(name);
    if (!/^[+-]?\d+$/.test(name) || id > 0x7fffffff || id < -0x80000000) {
      throw new KafkaError(ErrorCode.INVALID_REQUEST, `Broker id must be an integer, but it is: ${name}`);
    }
    if (id !== services.nodeId) {
      throw new KafkaError(
        ErrorCode.INVALID_REQUEST,
        `Unexpected broker id, expected ${services.nodeId} or empty string, but received ${name}`,
      );
    }
    return { kind: 'broker' };
  }
  throw new KafkaError(ErrorCode.INVALID_REQUEST, `unsupported resource type ${type}`);
}

export interface AlterResourceResult {
  errorCode: number;
  errorMessage: string | null;
  resourceType: number;
  resourceName: string;
}

/**
 * AlterConfigs and IncrementalAlterConfigs: applies each resource's changes (replacing the whole
 * set of overrides for the legacy API), one result per resource with its own error code.
 */
export async function alterConfigResources<R extends { resourceType: number; resourceName: string }>(
  services: BrokerServices,
  resources: readonly R[],
  changesOf: (resource: R) => ConfigChange[],
  replace: boolean,
  validateOnly: boolean,
): Promise<AlterResourceResult[]> {
  const results: AlterResourceResult[] = [];
  for (const res of resources) {
    const result = {
      errorCode: 0,
      errorMessage: null as string | null,
      resourceType: res.resourceType,
      resourceName: res.resourceName,
    };
    try {
      const resource = resolveConfigResource(services, res.resourceType, res.resourceName);
      const changes = changesOf(res);
      if (resource.kind === 'topic') await services.configs.alterTopic(resource.topic, changes, replace, validateOnly);
      else await services.configs.alterBroker(changes, replace, validateOnly);
    } catch (err) {
      if (!(err instanceof KafkaError)) throw err;
      result.errorCode = err.errorCode;
      result.errorMessage = err.message;
    }
    results.push(result);
  }
  return results;
}
