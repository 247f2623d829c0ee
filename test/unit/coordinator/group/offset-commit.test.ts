// OffsetCommit edge cases from issue 11: client-supplied int64 arithmetic (item 3) and the
// simple group a group-less consumer commits under (item 11), on the state machine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeRecord, encodeRecord } from '../../../../src/coordinator/group/coordinator-records.ts';
import { type OffsetCommitInput, saturatedInt64 } from '../../../../src/coordinator/group/group-coordinator.ts';
import { appendFailureError } from '../../../../src/coordinator/group/group-coordinator-service.ts';
import { ErrorCode, KafkaError } from '../../../../src/protocol/error-codes.ts';
import { GROUP, Harness, info } from './harness.ts';

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

function commitRequest(overrides: Partial<OffsetCommitInput>): OffsetCommitInput {
  return {
    groupId: GROUP,
    generationIdOrMemberEpoch: -1,
    memberId: '',
    groupInstanceId: null,
    retentionTimeMs: -1n,
    topics: [
      {
        name: 't',
        partitions: [{ partitionIndex: 0, committedOffset: 7n, committedLeaderEpoch: -1, committedMetadata: null }],
      },
    ],
    ...overrides,
  };
}

test('saturatedInt64 clamps to the int64 range', () => {
  assert.equal(saturatedInt64(INT64_MAX + 1n), INT64_MAX);
  assert.equal(saturatedInt64(INT64_MIN - 1n), INT64_MIN);
  assert.equal(saturatedInt64(42n), 42n);
});

test('OffsetCommit v2-v4 retention_time_ms 2^63-1: the expire timestamp saturates and the record encodes (was a RangeError)', () => {
  const h = new Harness();
  h.clock.advance(1_700_000_000_000);
  const now = BigInt(h.clock.now());
  for (const [retentionTimeMs, expected] of [
    [INT64_MAX, INT64_MAX],
    [INT64_MIN, INT64_MIN + now],
    [1000n, now + 1000n],
    [-1n, -1n],
  ] as const) {
    const result = h.coordinator.offsetCommit(info(2), commitRequest({ retentionTimeMs }));
    assert.equal(result.response[0]!.partitions[0]!.errorCode, ErrorCode.NONE);
    const [record] = result.records;
    assert.ok(record?.type === 'OffsetCommit' && record.value !== null);
    assert.equal(record.value.expireTimestamp, expected, `retention ${retentionTimeMs}`);
    // The record the log gets encodes, and reads back the same.
    const encoded = encodeRecord(record);
    assert.deepEqual(decodeRecord(encoded.key, encoded.value), record);
    h.drive(result);
  }
});

test('an explicit expire timestamp decides expiry, a saturated one never expires', () => {
  const h = new Harness({ offsetsRetentionMs: 1000 });
  h.clock.advance(1_000_000);
  h.drive(h.coordinator.offsetCommit(info(2), commitRequest({ groupId: 'forever', retentionTimeMs: INT64_MAX })));
  h.drive(h.coordinator.offsetCommit(info(2), commitRequest({ groupId: 'past', retentionTimeMs: -5n })));
  h.clock.advance(10_000);
  h.drive(h.coordinator.expireOffsets(['forever', 'past']));
  assert.equal(h.fetchOffset(0, 't', 'forever'), 7n);
  // Kafka: any retention but -1 gives an explicit expire timestamp; a past one expires.
  assert.equal(h.fetchOffset(0, 't', 'past'), -1n);
  assert.equal(h.coordinator.groups.has('past'), false);
});

test('a commit with a member id and epoch -1 to a group that does not exist creates a simple group (KIP-848 assign(); was GROUP_ID_NOT_FOUND)', () => {
  for (const apiVersion of [1, 7, 8, 9]) {
    const h = new Harness();
    const result = h.drive(
      h.coordinator.offsetCommit(
        info(apiVersion),
        commitRequest({
          memberId: 'a3f4c0de-client-generated-member-id',
          groupInstanceId: apiVersion >= 7 ? 'instance-1' : null,
        }),
      ),
    );
    assert.equal(result[0]!.partitions[0]!.errorCode, ErrorCode.NONE, `v${apiVersion}`);
    assert.equal(h.state(), 'Empty');
    assert.equal(h.fetchOffset(), 7n);
    // A generation or epoch of 0 or more names a membership that does not exist.
    const fresh = new Harness();
    const member = fresh.drive(
      fresh.coordinator.offsetCommit(info(apiVersion), commitRequest({ generationIdOrMemberEpoch: 0, memberId: 'm' })),
    );
    assert.equal(
      member[0]!.partitions[0]!.errorCode,
      apiVersion >= 9 ? ErrorCode.GROUP_ID_NOT_FOUND : ErrorCode.ILLEGAL_GENERATION,
    );
    assert.equal(fresh.state(), undefined);
  }
});

test('a failed commit leaves no simple group and no offset behind', () => {
  const h = new Harness();
  const result = h.coordinator.offsetCommit(info(8), commitRequest({}));
  assert.equal(h.state(), 'Empty');
  h.coordinator.revert(result);
  assert.equal(h.state(), undefined);
  assert.equal(h.fetchOffset(), -1n);
  assert.equal(h.coordinator.offsets.size, 0);
});

test("append errors map to Kafka's coordinator errors", () => {
  const code = (err: unknown) => appendFailureError(err).errorCode;
  assert.equal(code(new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR)), ErrorCode.NOT_COORDINATOR);
  assert.equal(code(new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)), ErrorCode.NOT_COORDINATOR);
  assert.equal(code(new KafkaError(ErrorCode.MESSAGE_TOO_LARGE)), ErrorCode.UNKNOWN_SERVER_ERROR);
  assert.equal(code(new KafkaError(ErrorCode.RECORD_LIST_TOO_LARGE)), ErrorCode.UNKNOWN_SERVER_ERROR);
  assert.equal(code(new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)), ErrorCode.COORDINATOR_NOT_AVAILABLE);
  assert.equal(code(new KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS)), ErrorCode.COORDINATOR_NOT_AVAILABLE);
  assert.equal(code(new RangeError('out of range')), ErrorCode.UNKNOWN_SERVER_ERROR);
  assert.equal(code(new KafkaError(ErrorCode.INVALID_RECORD)), ErrorCode.INVALID_RECORD);
});
