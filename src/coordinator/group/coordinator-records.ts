/**
 * The group coordinator's records, as Kafka lays them out in `__consumer_offsets` (so Kafka's
 * tooling could read Samsa's topic and the other way round):
 *
 *   key   = int16 key version (which also names the record type) + the key struct
 *   value = int16 value version + the value struct, or null (a tombstone: the entity is deleted)
 *
 * | key version | record                                   | value version written |
 * |-------------|------------------------------------------|-----------------------|
 * | 0, 1        | OffsetCommit (group, topic, partition)   | 3 (1 when the commit carries an expire timestamp) |
 * | 2           | GroupMetadata (classic group)            | 3                     |
 * | 3           | ConsumerGroupMetadata (epoch)            | 0                     |
 * | 4           | ConsumerGroupPartitionMetadata           | 0                     |
 * | 5           | ConsumerGroupMemberMetadata              | 0                     |
 * | 6           | ConsumerGroupTargetAssignmentMetadata    | 0                     |
 * | 7           | ConsumerGroupTargetAssignmentMember      | 0                     |
 * | 8           | ConsumerGroupCurrentMemberAssignment     | 0                     |
 *
 * The state machine produces and replays the typed form (`CoordinatorRecord`); only the runtime
 * that writes and loads the topic converts to bytes. Compaction keeps the newest value per key
 * and eventually drops tombstones, which replay handles like any other record.
 */

import {
  type ConsumerGroupCurrentMemberAssignmentValue,
  readConsumerGroupCurrentMemberAssignmentValue,
  writeConsumerGroupCurrentMemberAssignmentValue,
} from '../../protocol/messages/coordinator/consumer-group-current-member-assignment-value.ts';
import {
  type ConsumerGroupMemberMetadataValue,
  readConsumerGroupMemberMetadataValue,
  writeConsumerGroupMemberMetadataValue,
} from '../../protocol/messages/coordinator/consumer-group-member-metadata-value.ts';
import {
  type ConsumerGroupMetadataValue,
  readConsumerGroupMetadataValue,
  writeConsumerGroupMetadataValue,
} from '../../protocol/messages/coordinator/consumer-group-metadata-value.ts';
import {
  type ConsumerGroupPartitionMetadataValue,
  readConsumerGroupPartitionMetadataValue,
  writeConsumerGroupPartitionMetadataValue,
} from '../../protocol/messages/coordinator/consumer-group-partition-metadata-value.ts';
import {
  type ConsumerGroupTargetAssignmentMemberValue,
  readConsumerGroupTargetAssignmentMemberValue,
  writeConsumerGroupTargetAssignmentMemberValue,
} from '../../protocol/messages/coordinator/consumer-group-target-assignment-member-value.ts';
import {
  type ConsumerGroupTargetAssignmentMetadataValue,
  readConsumerGroupTargetAssignmentMetadataValue,
  writeConsumerGroupTargetAssignmentMetadataValue,
} from '../../protocol/messages/coordinator/consumer-group-target-assignment-metadata-value.ts';
import {
  type GroupMetadataValue,
  readGroupMetadataValue,
  writeGroupMetadataValue,
} from '../../protocol/messages/coordinator/group-metadata-value.ts';
import {
  type OffsetCommitValue,
  readOffsetCommitValue,
  writeOffsetCommitValue,
} from '../../protocol/messages/coordinator/offset-commit-value.ts';
import { Reader } from '../../protocol/reader.ts';
import { Writer } from '../../protocol/writer.ts';

export const RecordType = {
  OffsetCommit: 1,
  GroupMetadata: 2,
  ConsumerGroupMetadata: 3,
  ConsumerGroupPartitionMetadata: 4,
  ConsumerGroupMemberMetadata: 5,
  ConsumerGroupTargetAssignmentMetadata: 6,
  ConsumerGroupTargetAssignmentMember: 7,
  ConsumerGroupCurrentMemberAssignment: 8,
} as const;

export type CoordinatorRecord =
  | { type: 'OffsetCommit'; group: string; topic: string; partition: number; value: OffsetCommitValue | null }
  | { type: 'GroupMetadata'; group: string; value: GroupMetadataValue | null }
  | { type: 'ConsumerGroupMetadata'; group: string; value: ConsumerGroupMetadataValue | null }
  | { type: 'ConsumerGroupPartitionMetadata'; group: string; value: ConsumerGroupPartitionMetadataValue | null }
  | {
      type: 'ConsumerGroupMemberMetadata';
      group: string;
      memberId: string;
      value: ConsumerGroupMemberMetadataValue | null;
    }
  | {
      type: 'ConsumerGroupTargetAssignmentMetadata';
      group: string;
      value: ConsumerGroupTargetAssignmentMetadataValue | null;
    }
  | {
      type: 'ConsumerGroupTargetAssignmentMember';
      group: string;
      memberId: string;
      value: ConsumerGroupTargetAssignmentMemberValue | null;
    }
  | {
      type: 'ConsumerGroupCurrentMemberAssignment';
      group: string;
      memberId: string;
      value: ConsumerGroupCurrentMemberAssignmentValue | null;
    };

/** A record as bytes, ready for a record batch. */
export interface EncodedRecord {
  key: Buffer;
  value: Buffer | null;
}

/** The group a record belongs to (decides its `__consumer_offsets` partition). */
export function recordGroup(record: CoordinatorRecord): string {
  return record.group;
}

export const GROUP_METADATA_VALUE_VERSION = 3;
const OFFSET_COMMIT_VALUE_VERSION = 3;
const OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY = 1;

function writeKeyStrings(w: Writer, version: number, strings: readonly string[]): void {
  w.int16(version);
  for (const s of strings) w.string(s);
}

export function encodeRecord(record: CoordinatorRecord): EncodedRecord {
  const k = new Writer(64);
  let value: Buffer | null = null;
  const withValue = (version: number, write: (w: Writer) => void): Buffer => {
    const w = new Writer(128);
    w.int16(version);
    write(w);
    return w.toBuffer();
  };
  switch (record.type) {
    case 'OffsetCommit': {
      writeKeyStrings(k, RecordType.OffsetCommit, [record.group, record.topic]);
      k.int32(record.partition);
      const v = record.value;
      if (v !== null) {
        // Kafka writes v1 whenever an expire timestamp is present (-1 = none), even a negative one.
        const version =
          v.expireTimestamp !== -1n ? OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY : OFFSET_COMMIT_VALUE_VERSION;
        value = withValue(version, (w) => writeOffsetCommitValue(w, version, v));
      }
      break;
    }
    case 'GroupMetadata': {
      writeKeyStrings(k, RecordType.GroupMetadata, [record.group]);
      const v = record.value;
      if (v !== null)
        value = withValue(GROUP_METADATA_VALUE_VERSION, (w) =>
          writeGroupMetadataValue(w, GROUP_METADATA_VALUE_VERSION, v),
        );
      break;
    }
    case 'ConsumerGroupMetadata': {
      writeKeyStrings(k, RecordType.ConsumerGroupMetadata, [record.group]);
      const v = record.value;
      if (v !== null) value = withValue(0, (w) => writeConsumerGroupMetadataValue(w, 0, v));
      break;
    }
    case 'ConsumerGroupPartitionMetadata': {
      writeKeyStrings(k, RecordType.ConsumerGroupPartitionMetadata, [record.group]);
      const v = record.value;
      if (v !== null) value = withValue(0, (w) => writeConsumerGroupPartitionMetadataValue(w, 0, v));
      break;
    }
    case 'ConsumerGroupMemberMetadata': {
      writeKeyStrings(k, RecordType.ConsumerGroupMemberMetadata, [record.group, record.memberId]);
      const v = record.value;
      if (v !== null) value = withValue(0, (w) => writeConsumerGroupMemberMetadataValue(w, 0, v));
      break;
    }
    case 'ConsumerGroupTargetAssignmentMetadata': {
      writeKeyStrings(k, RecordType.ConsumerGroupTargetAssignmentMetadata, [record.group]);
      const v = record.value;
      if (v !== null) value = withValue(0, (w) => writeConsumerGroupTargetAssignmentMetadataValue(w, 0, v));
      break;
    }
    case 'ConsumerGroupTargetAssignmentMember': {
      writeKeyStrings(k, RecordType.ConsumerGroupTargetAssignmentMember, [record.group, record.memberId]);
      const v = record.value;
      if (v !== null) value = withValue(0, (w) => writeConsumerGroupTargetAssignmentMemberValue(w, 0, v));
      break;
    }
    case 'ConsumerGroupCurrentMemberAssignment': {
      writeKeyStrings(k, RecordType.ConsumerGroupCurrentMemberAssignment, [record.group, record.memberId]);
      const v = record.value;
      if (v !== null) value = withValue(0, (w) => writeConsumerGroupCurrentMemberAssignmentValue(w, 0, v));
      break;
    }
  }
  return { key: k.toBuffer(), value };
}

/**
 * Decodes one record of `__consumer_offsets`. Returns null for record types this coordinator
 * does not own (transactions, share groups), which loading skips.
 */
export function decodeRecord(key: Buffer, value: Buffer | null): CoordinatorRecord | null {
  const r = new Reader(key);
  const keyVersion = r.int16();
  const v = value === null ? null : new Reader(value);
  const valueVersion = v === null ? 0 : v.int16();
  switch (keyVersion) {
    case 0:
    case 1: {
      const group = r.string();
      const topic = r.string();
      const partition = r.int32();
      return { type: 'OffsetCommit', group, topic, partition, value: v && readOffsetCommitValue(v, valueVersion) };
    }
    case RecordType.GroupMetadata:
      return { type: 'GroupMetadata', group: r.string(), value: v && readGroupMetadataValue(v, valueVersion) };
    case RecordType.ConsumerGroupMetadata:
      return {
        type: 'ConsumerGroupMetadata',
        group: r.string(),
        value: v && readConsumerGroupMetadataValue(v, valueVersion),
      };
    case RecordType.ConsumerGroupPartitionMetadata:
      return {
        type: 'ConsumerGroupPartitionMetadata',
        group: r.string(),
        value: v && readConsumerGroupPartitionMetadataValue(v, valueVersion),
      };
    case RecordType.ConsumerGroupMemberMetadata:
      return {
        type: 'ConsumerGroupMemberMetadata',
        group: r.string(),
        memberId: r.string(),
        value: v && readConsumerGroupMemberMetadataValue(v, valueVersion),
      };
    case RecordType.ConsumerGroupTargetAssignmentMetadata:
      return {
        type: 'ConsumerGroupTargetAssignmentMetadata',
        group: r.string(),
        value: v && readConsumerGroupTargetAssignmentMetadataValue(v, valueVersion),
      };
    case RecordType.ConsumerGroupTargetAssignmentMember:
      return {
        type: 'ConsumerGroupTargetAssignmentMember',
        group: r.string(),
        memberId: r.string(),
        value: v && readConsumerGroupTargetAssignmentMemberValue(v, valueVersion),
      };
    case RecordType.ConsumerGroupCurrentMemberAssignment:
      return {
        type: 'ConsumerGroupCurrentMemberAssignment',
        group: r.string(),
        memberId: r.string(),
        value: v && readConsumerGroupCurrentMemberAssignmentValue(v, valueVersion),
      };
    default:
      return null;
  }
}

/** Java's String.hashCode over UTF-16 code units, as a signed 32-bit integer. */
export function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/**
 * The `__consumer_offsets` partition that owns a group: Kafka's Utils.abs(groupId.hashCode) %
 * partitions, where Utils.abs maps Integer.MIN_VALUE to 0 (`n & 0x7fffffff`).
 */
export function partitionForGroup(groupId: string, partitions: number): number {
  return (javaStringHashCode(groupId) & 0x7fffffff) % partitions;
}
