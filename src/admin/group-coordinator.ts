/**
 * Finding a group's coordinator (FindCoordinator) and retrying COORDINATOR_LOAD_IN_PROGRESS, as
 * clients do. Shared by `samsa group` and `samsa consume --group`.
 */
import { ApiKey } from '../network/api-message-types.ts';
import { type BrokerConnection, type KafkaClient, throwIfError } from '../network/kafka-client.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';

/** The coordinator of a group (FindCoordinator), as a connection. */
export async function coordinatorFor(client: KafkaClient, group: string): Promise<BrokerConnection> {
  const conn = await client.connect();
  const v = conn.versionFor(ApiKey.FindCoordinator);
  let nodeId: number;
  for (let attempt = 0; ; attempt++) {
    const response = await conn.request(
      ApiKey.FindCoordinator,
      v >= 4 ? { keyType: 0, coordinatorKeys: [group] } : { key: group, ...(v >= 1 ? { keyType: 0 } : {}) },
    );
    const entry =
      v >= 4
        ? response.coordinators[0]
        : { errorCode: response.errorCode, errorMessage: response.errorMessage, nodeId: response.nodeId };
    if (entry === undefined) throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, 'FindCoordinator: empty response');
    if (entry.errorCode === ErrorCode.COORDINATOR_NOT_AVAILABLE && attempt < 20) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    throwIfError(entry.errorCode, `cannot find the coordinator of group '${group}'`, entry.errorMessage);
    nodeId = entry.nodeId;
    break;
  }
  if (!client.brokers.has(nodeId)) await client.metadata([]);
  return client.connection(nodeId);
}

/** Retries COORDINATOR_LOAD_IN_PROGRESS (a broker that just started), as clients do. */
export async function whileLoading<T>(call: () => Promise<T>, errorOf: (r: T) => number): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const r = await call();
    if (errorOf(r) !== ErrorCode.COORDINATOR_LOAD_IN_PROGRESS || attempt >= 50) return r;
    await new Promise((res) => setTimeout(res, 200));
  }
}
