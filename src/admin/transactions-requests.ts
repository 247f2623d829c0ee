/**
 * The requests behind `samsa transactions`, as Kafka's Admin client sends them: ListTransactions
 * to every broker (each coordinates its own transactional ids), FindCoordinator with key type 1
 * then DescribeTransactions at the coordinator, DescribeProducers at a partition's leader (or a
 * named replica), WriteTxnMarkers at the leader to abort a transaction by hand.
 */
import { ApiKey } from '../network/api-message-types.ts';
import { type BrokerConnection, type KafkaClient, throwIfError } from '../network/kafka-client.ts';
import { ErrorCode, errorName, KafkaError } from '../protocol/error-codes.ts';
import { sleep, UsageError, waitForTopic } from './cli-common.ts';
import { whileLoading } from './group-coordinator.ts';

/** FindCoordinator key type of a transactional id. */
const KEY_TYPE_TRANSACTION = 1;

export interface ListedTransaction {
  transactionalId: string;
  producerId: bigint;
  state: string;
  coordinatorId: number;
}

export interface TransactionFilters {
  states: readonly string[];
  producerIds: readonly bigint[];
  /** Only transactions open longer than this many ms; -1: all. */
  durationMs: bigint;
}

/** Every transaction of the cluster (ListTransactions on each broker), by transactional id. */
export async function listAllTransactions(
  client: KafkaClient,
  filters: TransactionFilters,
): Promise<{ transactions: ListedTransaction[]; unknownStates: string[] }> {
  const conn = await client.connect();
  const v = conn.versionFor(ApiKey.ListTransactions);
  if (v < 0) throw new KafkaError(ErrorCode.UNSUPPORTED_VERSION, `${conn.address} does not support ListTransactions`);
  if (filters.durationMs >= 0n && v < 1) {
    throw new UsageError('--duration-filter needs ListTransactions v1 (Kafka 3.8+)');
  }
  await client.metadata([]);
  const transactions: ListedTransaction[] = [];
  const unknownStates = new Set<string>();
  for (const nodeId of [...client.brokers.keys()].sort((a, b) => a - b)) {
    const c = await client.connection(nodeId);
    const response = await whileLoading(
      () =>
        c.request(ApiKey.ListTransactions, {
          stateFilters: filters.states,
          producerIdFilters: filters.producerIds,
          ...(v >= 1 ? { durationFilter: filters.durationMs } : {}),
        }),
      (r) => r.errorCode,
    );
    throwIfError(response.errorCode, `ListTransactions on broker ${nodeId}`);
    for (const s of response.unknownStateFilters) unknownStates.add(s);
    for (const s of response.transactionStates) {
      transactions.push({
        transactionalId: s.transactionalId,
        producerId: s.producerId,
        state: s.transactionState,
        coordinatorId: nodeId,
      });
    }
  }
  transactions.sort((a, b) => a.transactionalId.localeCompare(b.transactionalId));
  return { transactions, unknownStates: [...unknownStates] };
}

/** The transaction coordinator of a transactional id (FindCoordinator key type 1). */
export async function transactionCoordinator(
  client: KafkaClient,
  transactionalId: string,
): Promise<{ nodeId: number; conn: BrokerConnection }> {
  const conn = await client.connect();
  const v = conn.versionFor(ApiKey.FindCoordinator);
  if (v < 1)
    throw new KafkaError(ErrorCode.UNSUPPORTED_VERSION, 'finding a transaction coordinator needs FindCoordinator v1');
  for (let attempt = 0; ; attempt++) {
    const response = await conn.request(
      ApiKey.FindCoordinator,
      v >= 4
        ? { keyType: KEY_TYPE_TRANSACTION, coordinatorKeys: [transactionalId] }
        : { key: transactionalId, keyType: KEY_TYPE_TRANSACTION },
    );
    const entry =
      v >= 4
        ? response.coordinators[0]
        : { errorCode: response.errorCode, errorMessage: response.errorMessage, nodeId: response.nodeId };
    if (entry === undefined) throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, 'FindCoordinator: empty response');
    if (entry.errorCode === ErrorCode.COORDINATOR_NOT_AVAILABLE && attempt < 20) {
      await sleep(200);
      continue;
    }
    throwIfError(
      entry.errorCode,
      `cannot find the coordinator of transactional id '${transactionalId}'`,
      entry.errorMessage,
    );
    if (!client.brokers.has(entry.nodeId)) await client.metadata([]);
    return { nodeId: entry.nodeId, conn: await client.connection(entry.nodeId) };
  }
}

export interface TransactionDescription {
  transactionalId: string;
  coordinatorId: number;
  state: string;
  producerId: bigint;
  producerEpoch: number;
  transactionTimeoutMs: number;
  /** -1: no transaction open. */
  transactionStartTimeMs: bigint;
  partitions: { topic: string; partition: number }[];
}

/**
 * DescribeTransactions of one transactional id at its coordinator; null when the coordinator
 * does not know it (TRANSACTIONAL_ID_NOT_FOUND). A coordinator that moved meanwhile is looked up
 * again.
 */
export async function describeTransaction(
  client: KafkaClient,
  transactionalId: string,
): Promise<TransactionDescription | null> {
  for (let attempt = 0; ; attempt++) {
    const { nodeId, conn } = await transactionCoordinator(client, transactionalId);
    const response = await whileLoading(
      () => conn.request(ApiKey.DescribeTransactions, { transactionalIds: [transactionalId] }),
      (r) => r.transactionStates[0]?.errorCode ?? ErrorCode.NONE,
    );
    const s = response.transactionStates[0];
    if (s === undefined) throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, 'DescribeTransactions: empty response');
    if (s.errorCode === ErrorCode.TRANSACTIONAL_ID_NOT_FOUND) return null;
    if (s.errorCode === ErrorCode.NOT_COORDINATOR && attempt < 5) {
      await sleep(200);
      continue;
    }
    throwIfError(s.errorCode, `cannot describe transactional id '${transactionalId}'`);
    return {
      transactionalId,
      coordinatorId: nodeId,
      state: s.transactionState,
      producerId: s.producerId,
      producerEpoch: s.producerEpoch,
      transactionTimeoutMs: s.transactionTimeoutMs,
      transactionStartTimeMs: s.transactionStartTimeMs,
      partitions: s.topics
        .flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition })))
        .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition),
    };
  }
}

export interface ProducerState {
  producerId: bigint;
  producerEpoch: number;
  lastSequence: number;
  lastTimestamp: bigint;
  /** -1: no marker written for this producer yet. */
  coordinatorEpoch: number;
  /** -1: no transaction open. */
  currentTxnStartOffset: bigint;
}

export interface PartitionProducers {
  topic: string;
  partition: number;
  /** The broker that answered. */
  brokerId: number;
  producers: ProducerState[];
}

/**
 * The partitions of `topic` (all, or the given ones); UNKNOWN_TOPIC_OR_PARTITION for a missing
 * topic or partition.
 */
export async function topicPartitions(
  client: KafkaClient,
  topic: string,
  partitions: readonly number[] | null,
): Promise<{ partition: number; leaderId: number; replicas: number[] }[]> {
  const md = await waitForTopic(client, topic);
  const all = md.partitions.map((p) => ({ partition: p.partition, leaderId: p.leaderId, replicas: p.replicas }));
  if (partitions === null) return all;
  return partitions.map((n) => {
    const p = all.find((x) => x.partition === n);
    if (p === undefined) {
      throw new KafkaError(
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        `topic '${topic}' has no partition ${n} (it has ${all.length})`,
      );
    }
    return p;
  });
}

/**
 * DescribeProducers of the given partitions, each at its leader, or all at `brokerId` when
 * given (a replica's view, as Kafka's --broker-id). A partition error throws.
 */
export async function describeProducers(
  client: KafkaClient,
  partitions: readonly { topic: string; partition: number; leaderId: number }[],
  brokerId: number | null = null,
): Promise<PartitionProducers[]> {
  const byBroker = new Map<number, { topic: string; partition: number }[]>();
  for (const p of partitions) {
    const nodeId = brokerId ?? p.leaderId;
    if (nodeId < 0) {
      throw new KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, `${p.topic}-${p.partition} has no leader`);
    }
    const list = byBroker.get(nodeId) ?? [];
    list.push(p);
    byBroker.set(nodeId, list);
  }
  if ([...byBroker.keys()].some((n) => !client.brokers.has(n))) await client.metadata([]);
  const out: PartitionProducers[] = [];
  for (const [nodeId, list] of [...byBroker].sort((a, b) => a[0] - b[0])) {
    if (!client.brokers.has(nodeId)) {
      throw new KafkaError(ErrorCode.BROKER_NOT_AVAILABLE, `broker ${nodeId} is not in the cluster's metadata`);
    }
    const topics = new Map<string, number[]>();
    for (const p of list) topics.set(p.topic, [...(topics.get(p.topic) ?? []), p.partition]);
    const conn = await client.connection(nodeId);
    const response = await conn.request(ApiKey.DescribeProducers, {
      topics: [...topics].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
    });
    for (const t of response.topics) {
      for (const p of t.partitions) {
        throwIfError(
          p.errorCode,
          `cannot describe the producers of ${t.name}-${p.partitionIndex} on broker ${nodeId}`,
          p.errorMessage,
        );
        out.push({
          topic: t.name,
          partition: p.partitionIndex,
          brokerId: nodeId,
          producers: p.activeProducers
            .map((s) => ({
              producerId: s.producerId,
              producerEpoch: s.producerEpoch,
              lastSequence: s.lastSequence,
              lastTimestamp: s.lastTimestamp,
              coordinatorEpoch: s.coordinatorEpoch,
              currentTxnStartOffset: s.currentTxnStartOffset,
            }))
            .sort((a, b) => (a.producerId < b.producerId ? -1 : a.producerId > b.producerId ? 1 : 0)),
        });
      }
    }
  }
  return out.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}

/**
 * WriteTxnMarkers with an abort marker for one producer on one partition, at the partition's
 * leader (Kafka's Admin.abortTransaction). Throws the partition's error.
 */
export async function writeAbortMarker(
  client: KafkaClient,
  target: { topic: string; partition: number; leaderId: number },
  producer: { producerId: bigint; producerEpoch: number; coordinatorEpoch: number },
): Promise<void> {
  const conn = await client.connection(target.leaderId);
  const response = await conn.request(ApiKey.WriteTxnMarkers, {
    markers: [
      {
        producerId: producer.producerId,
        producerEpoch: producer.producerEpoch,
        transactionResult: false,
        topics: [{ name: target.topic, partitionIndexes: [target.partition] }],
        coordinatorEpoch: producer.coordinatorEpoch,
      },
    ],
  });
  const code = response.markers[0]?.topics[0]?.partitions[0]?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
  if (code !== ErrorCode.NONE) {
    throw new KafkaError(
      code,
      `cannot abort the transaction of producer ${producer.producerId} on ${target.topic}-${target.partition}: ${errorName(code)}`,
    );
  }
}
