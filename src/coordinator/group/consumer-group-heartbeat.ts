/**
 * KIP-848 consumer groups inside the GroupCoordinator (placeholder: filled in by the next
 * increment).
 */
import { ErrorCode, KafkaError } from '../../protocol/error-codes.ts';
import type { ConsumerGroup } from './consumer-group.ts';
import type { CoordinatorRecord } from './coordinator-records.ts';
import type { GroupCoordinator } from './group-coordinator.ts';

export interface TopicInfo {
  name: string;
  topicId: string;
  partitions: number;
}

/** The topic metadata the coordinator reads (the broker's topic manager). */
export interface TopicLookup {
  byName(name: string): TopicInfo | undefined;
  all(): TopicInfo[];
}

export class ConsumerGroupProtocol {
  readonly coordinator: GroupCoordinator;
  readonly topics: TopicLookup;

  constructor(coordinator: GroupCoordinator, topics: TopicLookup) {
    this.coordinator = coordinator;
    this.topics = topics;
  }

  validateOffsetCommit(group: ConsumerGroup, memberId: string, memberEpoch: number, apiVersion: number): void {
    if (memberEpoch < 0 && memberId === '') return;
    const member = group.members.get(memberId);
    if (member === undefined) throw new KafkaError(ErrorCode.UNKNOWN_MEMBER_ID);
    if (memberEpoch !== member.memberEpoch) {
      throw new KafkaError(apiVersion >= 9 ? ErrorCode.STALE_MEMBER_EPOCH : ErrorCode.ILLEGAL_GENERATION);
    }
  }

  validateOffsetFetch(group: ConsumerGroup, memberId: string, memberEpoch: number): void {
    const member = group.members.get(memberId);
    if (member === undefined) throw new KafkaError(ErrorCode.UNKNOWN_MEMBER_ID);
    if (memberEpoch !== member.memberEpoch) throw new KafkaError(ErrorCode.STALE_MEMBER_EPOCH);
  }

  deleteGroupRecords(group: ConsumerGroup): void {
    this.coordinator.groups.delete(group.groupId);
  }

  replay(_record: CoordinatorRecord): void {}
}
