/** Shared by the config APIs: resource types and resolving a resource to what it names. */
import type { TopicMetadata } from '../metadata/local-metadata-store.ts';
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
    // An empty name is the cluster-wide default; otherwise it must be this broker's id.
    if (name !== '' && name !== String(services.nodeId)) {
      throw new KafkaError(
        ErrorCode.INVALID_REQUEST,
        `unexpected broker id ${name}, this is broker ${services.nodeId}`,
      );
    }
    return { kind: 'broker' };
  }
  throw new KafkaError(ErrorCode.INVALID_REQUEST, `unsupported resource type ${type}`);
}
