/**
 * Where the replicas of new partitions go: Kafka's AdminUtils.assignReplicasToBrokers. Leaders
 * spread round-robin over the brokers from a start index, later replicas shifted so the load
 * of a failed broker spreads over the others; with racks on every broker, brokers are taken in
 * rack-alternating order and each partition's replicas land on distinct racks as far as possible.
 */
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';

export interface AssignableBroker {
  readonly nodeId: number;
  readonly rack: string | null;
}

export interface AssignmentOptions {
  /** Index of the first partition's leader in the (arranged) broker list; random when absent. */
  startIndex?: number;
  /** Shift of the second replica; random when absent (Kafka: the same fixed index when given). */
  replicaShift?: number;
  /** The id of the first partition assigned (partitions added to a topic continue its numbering). */
  firstPartition?: number;
}

function randomIndex(n: number): number {
  return Math.floor(Math.random() * n);
}

function replicaIndex(first: number, shift: number, index: number, brokers: number): number {
  const s = 1 + ((shift + index) % (brokers - 1));
  return (first + s) % brokers;
}

/** Brokers ordered so consecutive ones are on different racks (Kafka's getRackAlternatedBrokerList). */
export function rackAlternatedBrokers(brokers: readonly AssignableBroker[]): number[] {
  const byRack = new Map<string, number[]>();
  for (const b of [...brokers].sort((x, y) => x.nodeId - y.nodeId)) {
    const rack = b.rack ?? '';
    byRack.set(rack, [...(byRack.get(rack) ?? []), b.nodeId]);
  }
  const racks = [...byRack.keys()].sort();
  const cursors = new Map(racks.map((r) => [r, 0]));
  const out: number[] = [];
  for (let i = 0; out.length < brokers.length; i = (i + 1) % racks.length) {
    const rack = racks[i]!;
    const at = cursors.get(rack)!;
    const list = byRack.get(rack)!;
    if (at < list.length) {
      out.push(list[at]!);
      cursors.set(rack, at + 1);
    }
  }
  return out;
}

/**
 * Replica broker ids for `partitions` new partitions, the preferred leader first. Fails with
 * INVALID_REPLICATION_FACTOR when there are fewer brokers than replicas, as Kafka does.
 */
export function assignReplicas(
  brokers: readonly AssignableBroker[],
  partitions: number,
  replicationFactor: number,
  options: AssignmentOptions = {},
): number[][] {
  if (replicationFactor < 1)
    throw new KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, 'Replication factor must be larger than 0.');
  if (replicationFactor > brokers.length)
    throw new KafkaError(
      ErrorCode.INVALID_REPLICATION_FACTOR,
      `Replication factor: ${replicationFactor} larger than available brokers: ${brokers.length}.`,
    );
  const rackAware = brokers.length > 0 && brokers.every((b) => b.rack !== null);
  const arranged = rackAware ? rackAlternatedBrokers(brokers) : brokers.map((b) => b.nodeId).sort((a, b) => a - b);
  const n = arranged.length;
  const rackOf = new Map(brokers.map((b) => [b.nodeId, b.rack ?? '']));
  const numRacks = new Set(rackOf.values()).size;
  const startIndex = options.startIndex ?? randomIndex(n);
  let shift = options.replicaShift ?? options.startIndex ?? randomIndex(n);
  let partition = Math.max(0, options.firstPartition ?? 0);
  const out: number[][] = [];
  for (let i = 0; i < partitions; i++, partition++) {
    if (partition > 0 && partition % n === 0) shift++;
    const first = (partition + startIndex) % n;
    const leader = arranged[first]!;
    const replicas = [leader];
    if (!rackAware) {
      for (let j = 0; j < replicationFactor - 1; j++) replicas.push(arranged[replicaIndex(first, shift, j, n)]!);
    } else {
      const racks = new Set([rackOf.get(leader)]);
      const chosen = new Set([leader]);
      let k = 0;
      for (let j = 0; j < replicationFactor - 1; j++) {
        for (;;) {
          const broker = arranged[replicaIndex(first, shift * numRacks, k, n)]!;
          const rack = rackOf.get(broker);
          k++;
          if ((!racks.has(rack) || racks.size === numRacks) && (!chosen.has(broker) || chosen.size === n)) {
            replicas.push(broker);
            racks.add(rack);
            chosen.add(broker);
            break;
          }
        }
      }
    }
    out.push(replicas);
  }
  return out;
}
