import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignReplicas, rackAlternatedBrokers } from '../../../src/metadata/replica-assignment.ts';
import { ErrorCode, type KafkaError } from '../../../src/protocol/error-codes.ts';

const brokers = (ids: number[], racks?: string[]) => ids.map((nodeId, i) => ({ nodeId, rack: racks?.[i] ?? null }));

test("rack-unaware assignment is Kafka's (AdminUtilsTest testReplicaAssignment)", () => {
  // Kafka's expected assignment for brokers 0-4, 10 partitions, RF 3, fixed start index 0.
  const expected = [
    [0, 1, 2],
    [1, 2, 3],
    [2, 3, 4],
    [3, 4, 0],
    [4, 0, 1],
    [0, 2, 3],
    [1, 3, 4],
    [2, 4, 0],
    [3, 0, 1],
    [4, 1, 2],
  ];
  assert.deepEqual(assignReplicas(brokers([0, 1, 2, 3, 4]), 10, 3, { startIndex: 0 }), expected);
});

test('leaders of 12 partitions spread evenly over 3 brokers from any start', () => {
  for (let run = 0; run < 20; run++) {
    const counts = new Map<number, number>();
    for (const [leader] of assignReplicas(brokers([1, 2, 3]), 12, 1))
      counts.set(leader!, (counts.get(leader!) ?? 0) + 1);
    assert.deepEqual([...counts.values()], [4, 4, 4]);
  }
});

test('rack-aware: brokers alternate racks and replicas of a partition land on distinct racks', () => {
  const b = brokers([0, 1, 2, 3, 4, 5], ['rack1', 'rack3', 'rack3', 'rack2', 'rack2', 'rack1']);
  // Kafka's AdminRackAwareTest testGetRackAlternatedBrokerListAndAssignReplicasToBrokers.
  assert.deepEqual(rackAlternatedBrokers(b), [0, 3, 1, 5, 4, 2]);
  const assignment = assignReplicas(b, 7, 3, { startIndex: 0, replicaShift: 0 });
  assert.deepEqual(assignment.slice(0, 6), [
    [0, 3, 1],
    [3, 1, 5],
    [1, 5, 4],
    [5, 4, 2],
    [4, 2, 0],
    [2, 0, 3],
  ]);
  const rack = new Map(b.map((x) => [x.nodeId, x.rack]));
  for (const replicas of assignment) assert.equal(new Set(replicas.map((r) => rack.get(r))).size, 3);
});

test('more replicas than brokers: INVALID_REPLICATION_FACTOR', () => {
  assert.throws(
    () => assignReplicas(brokers([1, 2]), 1, 3),
    (err: KafkaError) =>
      err.errorCode === ErrorCode.INVALID_REPLICATION_FACTOR && /larger than available brokers: 2/.test(err.message),
  );
});
