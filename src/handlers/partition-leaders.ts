/**
 * A partition's leader and replicas as the handlers that describe the cluster (Metadata,
 * DescribeTopicPartitions, FindCoordinator, KIP-951 leader hints) answer them, from the cluster
 * view: Kafka's KRaftMetadataCache.partitionMetadata and KafkaApis.getCurrentLeader.
 */
import type { BrokerRegistration } from '../metadata/metadata-store.ts';
import { NO_LEADER } from '../metadata/metadata-store.ts';
import { ErrorCode } from '../protocol/error-codes.ts';
import type { ClusterView } from './broker-services.ts';

export interface PartitionMetadata {
  errorCode: number;
  /** The live leader's id, or -1 when the leader is none or not live. */
  leaderId: number;
  leaderEpoch: number;
  replicaNodes: number[];
  isrNodes: number[];
  /** Replicas whose broker is not live (Kafka's getOfflineReplicas). */
  offlineReplicas: number[];
}

/**
 * A partition as Metadata and DescribeTopicPartitions describe it. A leader that is none (-1) or
 * whose broker is not live (the controller has not moved leadership yet) is LEADER_NOT_AVAILABLE
 * with leader -1 but the leader epoch kept, so clients refresh and retry instead of connecting to a
 * dead broker. `filterUnavailable` (Metadata v0 only, Kafka's errorUnavailableEndpoints) leaves the
 * replicas that are not live out of replicas and ISR and answers REPLICA_NOT_AVAILABLE if it did.
 * A partition the view does not know (a topic created an instant ago) has no leader yet.
 */
export function partitionMetadata(
  cluster: ClusterView,
  topic: string,
  partition: number,
  filterUnavailable = false,
): PartitionMetadata {
  const state = cluster.partitionState(topic, partition);
  if (state === undefined) {
    return {
      errorCode: ErrorCode.LEADER_NOT_AVAILABLE,
      leaderId: NO_LEADER,
      leaderEpoch: -1,
      replicaNodes: [],
      isrNodes: [],
      offlineReplicas: [],
    };
  }
  const live = (id: number) => cluster.broker(id) !== undefined;
  const replicas = filterUnavailable ? state.replicas.filter(live) : [...state.replicas];
  const isr = filterUnavailable ? state.isr.filter(live) : [...state.isr];
  const offlineReplicas = state.replicas.filter((id) => !live(id));
  const base = { leaderEpoch: state.leaderEpoch, replicaNodes: replicas, isrNodes: isr, offlineReplicas };
  if (state.leader === NO_LEADER || !live(state.leader)) {
    return { errorCode: ErrorCode.LEADER_NOT_AVAILABLE, leaderId: NO_LEADER, ...base };
  }
  const missing = replicas.length < state.replicas.length || isr.length < state.isr.length;
  return { errorCode: missing ? ErrorCode.REPLICA_NOT_AVAILABLE : ErrorCode.NONE, leaderId: state.leader, ...base };
}

/**
 * KIP-951: the leader a client should go to after NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH
 * (Kafka's getCurrentLeader): its id and epoch as the view has them (-1/-1 for an unknown
 * partition), and its endpoint only when that broker is live (a response's node_endpoints lists
 * only brokers a client can reach).
 */
export function currentLeader(
  cluster: ClusterView,
  topic: string,
  partition: number,
): { leaderId: number; leaderEpoch: number; endpoint: BrokerRegistration | undefined } {
  const state = cluster.partitionState(topic, partition);
  if (state === undefined) return { leaderId: NO_LEADER, leaderEpoch: -1, endpoint: undefined };
  const endpoint = state.leader === NO_LEADER ? undefined : cluster.broker(state.leader);
  return { leaderId: state.leader, leaderEpoch: state.leaderEpoch, endpoint };
}

/** Node endpoints of a KIP-951 response (Produce v10+, Fetch v16+), one per leader named. */
export class LeaderEndpoints {
  readonly #byId = new Map<number, BrokerRegistration>();

  add(endpoint: BrokerRegistration | undefined): void {
    if (endpoint !== undefined) this.#byId.set(endpoint.nodeId, endpoint);
  }

  list(): { nodeId: number; host: string; port: number; rack: string | null }[] {
    return [...this.#byId.values()].map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack }));
  }
}
