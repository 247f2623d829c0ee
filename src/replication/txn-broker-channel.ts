/**
 * How transactions cross brokers (Kafka's TransactionMarkerChannelManager and
 * AddPartitionsToTxnManager):
 * - the transaction coordinator's markers go to each partition's leader: written here when this
 *   broker leads it, else sent as WriteTxnMarkers to the leader (one request per broker);
 * - a partition leader asks the coordinator of a transactional id whether a partition is in its
 *   ongoing transaction (KIP-890 part 1) before the transaction's first batch there: answered here
 *   when this broker coordinates it, else with AddPartitionsToTxn v4+ `verifyOnly`.
 * Connections to other brokers are kept per node and reopened when they close.
 */

import type { TransactionCoordinator, TxnMarker, TxnMarkerWriter } from '../coordinator/txn/transaction-coordinator.ts';
import { TRANSACTION_STATE_TOPIC } from '../coordinator/txn/transaction-coordinator.ts';
import type { TopicPartition } from '../coordinator/txn/transaction-metadata.ts';
import type { TopicMetadata } from '../metadata/metadata-store.ts';
import { BrokerConnection } from '../network/kafka-client.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';

const REQUEST_TIMEOUT_MS = 30_000;

export interface TxnBrokerChannelOptions {
  localBrokerId: number;
  /** The partition's leader (-1: none), or undefined when the partition is unknown. */
  leaderOf(topic: string, partition: number): number | undefined;
  broker(nodeId: number): { host: string; port: number } | undefined;
  topic(name: string): TopicMetadata | undefined;
  /** Appends a marker to a partition led here (the group coordinator's own for __consumer_offsets). */
  writeLocalMarker(topic: TopicMetadata, partition: number, marker: TxnMarker): Promise<void>;
  coordinator: TransactionCoordinator;
}

/** Errors of the coordinator lookup a producer should retry: Kafka maps them to NOT_ENOUGH_REPLICAS. */
const RETRIABLE_VERIFICATION: ReadonlySet<number> = new Set([
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  ErrorCode.CONCURRENT_TRANSACTIONS,
  ErrorCode.NETWORK_EXCEPTION,
  ErrorCode.REQUEST_TIMED_OUT,
]);

export class TxnBrokerChannel implements TxnMarkerWriter {
  readonly #o: TxnBrokerChannelOptions;
  readonly #connections = new Map<number, Promise<BrokerConnection>>();
  #closed = false;

  constructor(options: TxnBrokerChannelOptions) {
    this.#o = options;
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#connections.values()) c.then((conn) => conn.close()).catch(() => undefined);
    this.#connections.clear();
  }

  #connection(nodeId: number): Promise<BrokerConnection> {
    if (this.#closed) return Promise.reject(new KafkaError(ErrorCode.NETWORK_EXCEPTION, 'shutting down'));
    const existing = this.#connections.get(nodeId);
    if (existing !== undefined) return existing;
    const b = this.#o.broker(nodeId);
    if (b === undefined)
      return Promise.reject(new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, `broker ${nodeId} is not live`));
    const opening = BrokerConnection.connect(b.host, b.port, { clientId: `samsa-broker-${this.#o.localBrokerId}` });
    this.#connections.set(nodeId, opening);
    opening.then(
      (conn) => conn.onClose(() => this.#connections.get(nodeId) === opening && this.#connections.delete(nodeId)),
      () => this.#connections.get(nodeId) === opening && this.#connections.delete(nodeId),
    );
    return opening;
  }

  /** The leader of each partition, grouped: the error code per partition, in order. */
  async writeMarkers(marker: TxnMarker, partitions: readonly TopicPartition[]): Promise<number[]> {
    const codes: number[] = partitions.map(() => ErrorCode.UNKNOWN_SERVER_ERROR);
    const byLeader = new Map<number, number[]>();
    partitions.forEach((tp, i) => {
      const leader = this.#o.leaderOf(tp.topic, tp.partition);
      if (this.#o.topic(tp.topic) === undefined || leader === undefined) {
        codes[i] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        return;
      }
      if (leader < 0) {
        codes[i] = ErrorCode.NOT_LEADER_OR_FOLLOWER;
        return;
      }
      const list = byLeader.get(leader);
      if (list === undefined) byLeader.set(leader, [i]);
      else list.push(i);
    });
    await Promise.all(
      [...byLeader].map(async ([leader, indexes]) => {
        if (leader === this.#o.localBrokerId) {
          await Promise.all(
            indexes.map(async (i) => {
              const tp = partitions[i]!;
              const topic = this.#o.topic(tp.topic);
              if (topic === undefined) {
                codes[i] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
                return;
              }
              codes[i] = await this.#o.writeLocalMarker(topic, tp.partition, marker).then(
                () => ErrorCode.NONE,
                (err: unknown) => (err instanceof KafkaError ? err.errorCode : ErrorCode.UNKNOWN_SERVER_ERROR),
              );
            }),
          );
          return;
        }
        await this.#sendMarkers(leader, marker, partitions, indexes, codes);
      }),
    );
    return codes;
  }

  async #sendMarkers(
    leader: number,
    marker: TxnMarker,
    partitions: readonly TopicPartition[],
    indexes: readonly number[],
    codes: number[],
  ): Promise<void> {
    const byTopic = new Map<string, number[]>();
    for (const i of indexes) {
      const tp = partitions[i]!;
      const list = byTopic.get(tp.topic);
      if (list === undefined) byTopic.set(tp.topic, [tp.partition]);
      else list.push(tp.partition);
    }
    try {
      const conn = await this.#connection(leader);
      const response = await conn.request(
        27,
        {
          markers: [
            {
              producerId: marker.producerId,
              producerEpoch: marker.producerEpoch,
              transactionResult: marker.commit,
              coordinatorEpoch: marker.coordinatorEpoch,
              topics: [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
            },
          ],
        },
        { timeoutMs: REQUEST_TIMEOUT_MS },
      );
      const result = new Map<string, number>();
      for (const t of response.markers[0]?.topics ?? [])
        for (const p of t.partitions) result.set(`${t.name}:${p.partitionIndex}`, p.errorCode);
      for (const i of indexes) {
        const tp = partitions[i]!;
        codes[i] = result.get(`${tp.topic}:${tp.partition}`) ?? ErrorCode.UNKNOWN_SERVER_ERROR;
      }
    } catch (err) {
      const code = err instanceof KafkaError ? err.errorCode : ErrorCode.NETWORK_EXCEPTION;
      for (const i of indexes) codes[i] = code;
    }
  }

  /**
   * KIP-890 part 1: resolves when `topic`-`partition` is in the producer's ongoing transaction;
   * fails with INVALID_TXN_STATE (not added), PRODUCER_FENCED, INVALID_PRODUCER_ID_MAPPING, or
   * NOT_ENOUGH_REPLICAS (the coordinator is not reachable now: the producer retries).
   */
  async verifyPartition(
    transactionalId: string,
    producerId: bigint,
    producerEpoch: number,
    topic: string,
    partition: number,
  ): Promise<void> {
    const coordinator = this.#o.coordinator;
    const statePartition = coordinator.partitionFor(transactionalId);
    const node = this.#o.leaderOf(TRANSACTION_STATE_TOPIC, statePartition) ?? this.#o.localBrokerId;
    let code: number;
    if (node === this.#o.localBrokerId) {
      code = coordinator.verifyPartition(transactionalId, producerId, producerEpoch, { topic, partition });
    } else if (node < 0) {
      code = ErrorCode.COORDINATOR_NOT_AVAILABLE;
    } else {
      try {
        const conn = await this.#connection(node);
        const r = await conn.request(
          24,
          {
            transactions: [
              {
                transactionalId,
                producerId,
                producerEpoch,
                verifyOnly: true,
                topics: [{ name: topic, partitions: [partition] }],
              },
            ],
          },
          { timeoutMs: REQUEST_TIMEOUT_MS },
        );
        code =
          r.errorCode !== ErrorCode.NONE
            ? r.errorCode
            : (r.resultsByTransaction[0]?.topicResults[0]?.resultsByPartition[0]?.partitionErrorCode ??
              ErrorCode.UNKNOWN_SERVER_ERROR);
      } catch (err) {
        code = err instanceof KafkaError ? err.errorCode : ErrorCode.NETWORK_EXCEPTION;
      }
    }
    if (code === ErrorCode.NONE) return;
    // As Kafka's AddPartitionsToTxnManager: producers expect INVALID_PRODUCER_EPOCH from a
    // Produce whose epoch was fenced (kafkajs does not even know PRODUCER_FENCED).
    if (code === ErrorCode.PRODUCER_FENCED)
      throw new KafkaError(
        ErrorCode.INVALID_PRODUCER_EPOCH,
        `producer ${producerId} epoch ${producerEpoch} of ${transactionalId} was fenced by a newer one`,
      );
    if (RETRIABLE_VERIFICATION.has(code))
      throw new KafkaError(
        ErrorCode.NOT_ENOUGH_REPLICAS,
        `could not verify the transaction of ${transactionalId} with its coordinator (error ${code}); retry`,
      );
    throw new KafkaError(code, `${topic}-${partition} is not in the ongoing transaction of ${transactionalId}`);
  }
}
