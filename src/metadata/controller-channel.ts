/**
 * Topic changes sent to a broker that is not the controller are forwarded to the active
 * controller over the Kafka protocol (as KIP-590 has brokers forward them), so only the
 * controller assigns replicas and creates or deletes topics. One connection to the controller,
 * reopened when the controller changes or the connection fails.
 */

import { ApiKey, type RequestOf, type ResponseOf } from '../network/api-message-types.ts';
import { BrokerConnection, KafkaClientError } from '../network/kafka-client.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { type MetadataStore, NO_LEADER } from './metadata-store.ts';

/** The client id of forwarded requests: a broker does not forward such a request again. */
export const FORWARDING_CLIENT_ID = 'samsa-controller-forwarding';

/** How long a forwarded request may take (CreateTopics' own timeout is the client's). */
const FORWARD_TIMEOUT_MS = 30_000;

export class ControllerChannel {
  readonly #store: MetadataStore;
  readonly #nodeId: number;
  #connection: { nodeId: number; conn: Promise<BrokerConnection> } | undefined;

  constructor(store: MetadataStore, nodeId: number) {
    this.#store = store;
    this.#nodeId = nodeId;
  }

  async #controller(): Promise<BrokerConnection> {
    // A broker whose registration lapsed (etcd unreachable) knows no current controller: its
    // cache may still name itself, and forwarding to itself would loop.
    if (!this.#store.registrationLive())
      throw new KafkaError(
        ErrorCode.NOT_CONTROLLER,
        'this broker cannot reach the cluster metadata (etcd) right now; retry once it is back',
      );
    const id = this.#store.controllerId();
    if (id === this.#nodeId)
      throw new KafkaError(
        ErrorCode.NOT_CONTROLLER,
        'this broker is not the active controller right now; retry shortly',
      );
    const broker = id === NO_LEADER ? undefined : this.#store.broker(id);
    if (broker === undefined)
      throw new KafkaError(ErrorCode.NOT_CONTROLLER, 'no controller is elected right now; retry shortly');
    const current = this.#connection;
    if (current !== undefined && current.nodeId === id) {
      const conn = await current.conn.catch(() => undefined);
      if (conn !== undefined && !conn.isClosed) return conn;
    }
    current?.conn.then((c) => c.close()).catch(() => undefined);
    const conn = BrokerConnection.connect(broker.host, broker.port, {
      clientId: FORWARDING_CLIENT_ID,
      requestTimeoutMs: FORWARD_TIMEOUT_MS,
      connectTimeoutMs: 5000,
    });
    this.#connection = { nodeId: id, conn };
    return conn.catch((err: unknown) => {
      this.#connection = undefined;
      throw unreachable(id, err);
    });
  }

  async createTopic(
    name: string,
    partitions: number,
    replicationFactor: number,
    configs: Record<string, string>,
    validateOnly: boolean,
  ): Promise<{ topicId: string }> {
    const conn = await this.#controller();
    const response = await conn
      .request(ApiKey.CreateTopics, {
        topics: [
          {
            name,
            numPartitions: partitions,
            replicationFactor,
            assignments: [],
            configs: Object.entries(configs).map(([k, value]) => ({ name: k, value })),
          },
        ],
        timeoutMs: FORWARD_TIMEOUT_MS,
        validateOnly,
      })
      .catch((err: unknown) => {
        throw unreachable(this.#store.controllerId(), err);
      });
    const result = response.topics[0];
    if (result === undefined) throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, 'the controller answered no topic');
    if (result.errorCode !== ErrorCode.NONE) throw new KafkaError(result.errorCode, result.errorMessage ?? undefined);
    return { topicId: result.topicId };
  }

  async deleteTopic(name: string): Promise<void> {
    const conn = await this.#controller();
    const response = await conn
      .request(ApiKey.DeleteTopics, { topics: [{ name }], topicNames: [name], timeoutMs: FORWARD_TIMEOUT_MS })
      .catch((err: unknown) => {
        throw unreachable(this.#store.controllerId(), err);
      });
    const result = response.responses[0];
    if (result === undefined) throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, 'the controller answered no topic');
    if (result.errorCode !== ErrorCode.NONE) throw new KafkaError(result.errorCode, result.errorMessage ?? undefined);
  }

  async createPartitions(name: string, count: number, validateOnly: boolean): Promise<void> {
    const conn = await this.#controller();
    const response = await conn
      .request(ApiKey.CreatePartitions, {
        topics: [{ name, count, assignments: null }],
        timeoutMs: FORWARD_TIMEOUT_MS,
        validateOnly,
      })
      .catch((err: unknown) => {
        throw unreachable(this.#store.controllerId(), err);
      });
    const result = response.results[0];
    if (result === undefined) throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, 'the controller answered no topic');
    if (result.errorCode !== ErrorCode.NONE) throw new KafkaError(result.errorCode, result.errorMessage ?? undefined);
  }

  /** ElectLeaders at the controller (Kafka's admin client sends it there): its whole answer. */
  async electLeaders(request: RequestOf<typeof ApiKey.ElectLeaders>): Promise<ResponseOf<typeof ApiKey.ElectLeaders>> {
    const conn = await this.#controller();
    return conn.request(ApiKey.ElectLeaders, request).catch((err: unknown) => {
      throw unreachable(this.#store.controllerId(), err);
    });
  }

  /** AlterPartitionReassignments at the controller (KIP-455): its whole answer. */
  async alterPartitionReassignments(
    request: RequestOf<typeof ApiKey.AlterPartitionReassignments>,
  ): Promise<ResponseOf<typeof ApiKey.AlterPartitionReassignments>> {
    const conn = await this.#controller();
    return conn.request(ApiKey.AlterPartitionReassignments, request).catch((err: unknown) => {
      throw unreachable(this.#store.controllerId(), err);
    });
  }

  close(): void {
    this.#connection?.conn.then((c) => c.close()).catch(() => undefined);
    this.#connection = undefined;
  }
}

/** A controller that cannot be reached: retriable, as Kafka's forwarding answers it. */
function unreachable(id: number, err: unknown): unknown {
  if (err instanceof KafkaError) return err;
  const why = err instanceof KafkaClientError || err instanceof Error ? err.message : String(err);
  return new KafkaError(ErrorCode.NOT_CONTROLLER, `the controller (broker ${id}) could not be reached: ${why}`);
}
