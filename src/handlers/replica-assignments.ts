/**
 * Manual replica assignments of CreateTopics and CreatePartitions, checked as Kafka's controller
 * does (ReplicationControlManager.validateManualPartitionAssignment): every failure is
 * INVALID_REPLICA_ASSIGNMENT with Kafka's message.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import type { ClusterView } from './broker-services.ts';

function invalid(message: string): KafkaError {
  return new KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, message);
}

/**
 * One partition's replicas: not empty, each a live broker (a broker that is down, or never was,
 * cannot hold the new replica, so the partition would start offline), none twice, and as many as
 * `replicationFactor` when the topic's other partitions fix it.
 */
export function validateManualAssignment(
  cluster: ClusterView,
  brokerIds: readonly number[],
  replicationFactor: number | undefined,
): void {
  if (brokerIds.length === 0) throw invalid('The manual partition assignment includes an empty replica list.');
  const sorted = [...brokerIds].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; i++) {
    const id = sorted[i]!;
    if (cluster.broker(id) === undefined) {
      throw invalid(`The manual partition assignment includes broker ${id}, but no such broker is registered.`);
    }
    if (i > 0 && sorted[i - 1] === id) {
      throw invalid(`The manual partition assignment includes the broker ${id} more than once.`);
    }
  }
  if (replicationFactor !== undefined && brokerIds.length !== replicationFactor) {
    throw invalid(
      `The manual partition assignment includes a partition with ${brokerIds.length} replica(s), but this ` +
        `is not consistent with previous partitions, which have ${replicationFactor} replica(s).`,
    );
  }
}

/**
 * CreateTopics' assignments: each partition once, indexes 0..n-1, every partition valid and with
 * the first one's replication factor.
 */
export function validateTopicAssignments(
  cluster: ClusterView,
  assignments: readonly { partitionIndex: number; brokerIds: readonly number[] }[],
): void {
  const seen = new Set<number>();
  let replicationFactor: number | undefined;
  for (const a of assignments) {
    if (seen.has(a.partitionIndex)) {
      throw invalid(`Found multiple manual partition assignments for partition ${a.partitionIndex}`);
    }
    seen.add(a.partitionIndex);
    validateManualAssignment(cluster, a.brokerIds, replicationFactor);
    replicationFactor = a.brokerIds.length;
  }
  for (let i = 0; i < seen.size; i++) {
    if (!seen.has(i)) throw invalid('partitions should be a consecutive 0-based integer sequence');
  }
}
