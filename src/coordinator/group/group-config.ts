/**
 * The group coordinator's settings, under Kafka's broker config names (server.properties), with
 * Kafka's defaults.
 */
export interface GroupCoordinatorConfig {
  /** group.min.session.timeout.ms */
  groupMinSessionTimeoutMs: number;
  /** group.max.session.timeout.ms */
  groupMaxSessionTimeoutMs: number;
  /** group.initial.rebalance.delay.ms */
  groupInitialRebalanceDelayMs: number;
  /** group.max.size */
  groupMaxSize: number;
  /** offsets.retention.minutes, in ms */
  offsetsRetentionMs: number;
  /** offsets.retention.check.interval.ms */
  offsetsRetentionCheckIntervalMs: number;
  /** offset.metadata.max.bytes */
  offsetMetadataMaxBytes: number;
  /** offsets.topic.num.partitions */
  offsetsTopicNumPartitions: number;
  /** group.consumer.session.timeout.ms (KIP-848) */
  consumerGroupSessionTimeoutMs: number;
  /** group.consumer.heartbeat.interval.ms (KIP-848) */
  consumerGroupHeartbeatIntervalMs: number;
  /** group.consumer.max.size (KIP-848) */
  consumerGroupMaxSize: number;
  /** group.consumer.assignors: the first is the default (KIP-848) */
  consumerGroupAssignors: string[];
  /**
   * message.max.bytes: the broker's default max.message.bytes, which `__consumer_offsets` has
   * unless overridden. The runtime keeps its batches of records under it.
   */
  messageMaxBytes: number;
}

export const DEFAULT_GROUP_COORDINATOR_CONFIG: Readonly<GroupCoordinatorConfig> = Object.freeze({
  groupMinSessionTimeoutMs: 6000,
  groupMaxSessionTimeoutMs: 1_800_000,
  groupInitialRebalanceDelayMs: 3000,
  groupMaxSize: 2_147_483_647,
  offsetsRetentionMs: 10_080 * 60_000,
  offsetsRetentionCheckIntervalMs: 600_000,
  offsetMetadataMaxBytes: 4096,
  offsetsTopicNumPartitions: 50,
  consumerGroupSessionTimeoutMs: 45_000,
  consumerGroupHeartbeatIntervalMs: 5000,
  consumerGroupMaxSize: 2_147_483_647,
  consumerGroupAssignors: ['uniform', 'range'],
  messageMaxBytes: 1_048_588,
});

function int(props: Readonly<Record<string, string>>, key: string, fallback: number, min: number): number {
  const raw = props[key];
  if (raw === undefined) return fallback;
  const n = Number(raw.trim());
  if (!Number.isInteger(n) || n < min) throw new Error(`${key}: '${raw}' must be an integer >= ${min}`);
  return n;
}

/** Reads the group coordinator's settings from broker properties (Kafka names). */
export function groupCoordinatorConfigFrom(props: Readonly<Record<string, string>>): GroupCoordinatorConfig {
  const d = DEFAULT_GROUP_COORDINATOR_CONFIG;
  const assignors = props['group.consumer.assignors'];
  return {
    groupMinSessionTimeoutMs: int(props, 'group.min.session.timeout.ms', d.groupMinSessionTimeoutMs, 0),
    groupMaxSessionTimeoutMs: int(props, 'group.max.session.timeout.ms', d.groupMaxSessionTimeoutMs, 0),
    groupInitialRebalanceDelayMs: int(props, 'group.initial.rebalance.delay.ms', d.groupInitialRebalanceDelayMs, 0),
    groupMaxSize: int(props, 'group.max.size', d.groupMaxSize, 1),
    offsetsRetentionMs: int(props, 'offsets.retention.minutes', d.offsetsRetentionMs / 60_000, 1) * 60_000,
    offsetsRetentionCheckIntervalMs: int(
      props,
      'offsets.retention.check.interval.ms',
      d.offsetsRetentionCheckIntervalMs,
      1,
    ),
    offsetMetadataMaxBytes: int(props, 'offset.metadata.max.bytes', d.offsetMetadataMaxBytes, 0),
    offsetsTopicNumPartitions: int(props, 'offsets.topic.num.partitions', d.offsetsTopicNumPartitions, 1),
    consumerGroupSessionTimeoutMs: int(props, 'group.consumer.session.timeout.ms', d.consumerGroupSessionTimeoutMs, 1),
    consumerGroupHeartbeatIntervalMs: int(
      props,
      'group.consumer.heartbeat.interval.ms',
      d.consumerGroupHeartbeatIntervalMs,
      1,
    ),
    consumerGroupMaxSize: int(props, 'group.consumer.max.size', d.consumerGroupMaxSize, 1),
    consumerGroupAssignors:
      assignors === undefined
        ? [...d.consumerGroupAssignors]
        : assignors
            .split(',')
            .map((a) => a.trim())
            .filter((a) => a !== ''),
    messageMaxBytes: int(props, 'message.max.bytes', d.messageMaxBytes, 0),
  };
}
