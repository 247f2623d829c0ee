/**
 * `samsa topic list` and `samsa topic describe`: Metadata for the layout, DescribeConfigs for
 * every config with its source, ListOffsets for each partition's earliest and latest offsets,
 * DescribeLogDirs for its size on disk and for log directories in error. Text output extends
 * kafka-topics.sh --describe; --format json gives the same as one document.
 */
import { ApiKey } from '../network/api-message-types.ts';
import type { KafkaClient, TopicMetadata } from '../network/kafka-client.ts';
import { ErrorCode, errorName } from '../protocol/error-codes.ts';
import { type OutputFormat, printJson } from './cli-common.ts';
import { EARLIEST, LATEST, listPartitionOffsets, type OffsetResult } from './list-offsets.ts';

/** DescribeConfigs / IncrementalAlterConfigs resource type for topics. */
export const RESOURCE_TOPIC = 2;

/** Kafka's ConfigSource names, by DescribeConfigs configSource. */
const CONFIG_SOURCES = [
  'UNKNOWN',
  'DYNAMIC_TOPIC_CONFIG',
  'DYNAMIC_BROKER_CONFIG',
  'DYNAMIC_DEFAULT_BROKER_CONFIG',
  'STATIC_BROKER_CONFIG',
  'DEFAULT_CONFIG',
  'DYNAMIC_BROKER_LOGGER_CONFIG',
  'CLIENT_METRICS_CONFIG',
  'GROUP_CONFIG',
];

export interface ConfigDescription {
  name: string;
  /** null when sensitive or unset. */
  value: string | null;
  /** A ConfigSource name: DYNAMIC_TOPIC_CONFIG is a per-topic override. */
  source: string;
  isReadOnly: boolean;
  isSensitive: boolean;
}

export interface PartitionDescription {
  partition: number;
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
  earliestOffset: bigint | null;
  latestOffset: bigint | null;
  /** Bytes on disk of the leader's replica (DescribeLogDirs), null when unknown. */
  sizeBytes: bigint | null;
  /** A Kafka error name, when Metadata or ListOffsets answered one. */
  error: string | null;
  /** The error of the leader's log directory holding it (e.g. KAFKA_STORAGE_ERROR). */
  logDirError: string | null;
}

export interface TopicDescription {
  name: string;
  topicId: string;
  isInternal: boolean;
  partitionCount: number;
  replicationFactor: number;
  configs: ConfigDescription[];
  partitions: PartitionDescription[];
}

export async function listTopics(client: KafkaClient, excludeInternal: boolean, format: OutputFormat): Promise<number> {
  const md = await client.metadata(null);
  const topics = [...md.topics.values()]
    .filter((t) => t.errorCode === ErrorCode.NONE && !(excludeInternal && t.isInternal))
    .sort((a, b) => a.name.localeCompare(b.name));
  if (format === 'json') {
    printJson({
      topics: topics.map((t) => ({
        name: t.name,
        topicId: t.topicId,
        isInternal: t.isInternal,
        partitionCount: t.partitions.length,
        replicationFactor: t.partitions[0]?.replicas.length ?? 0,
      })),
    });
  } else if (topics.length > 0) {
    console.log(topics.map((t) => t.name).join('\n'));
  }
  return 0;
}

export async function describeTopics(
  client: KafkaClient,
  topics: string[] | null,
  format: OutputFormat,
): Promise<number> {
  const md = await client.metadata(topics);
  const found: TopicMetadata[] = [];
  let exitCode = 0;
  for (const t of [...md.topics.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (t.errorCode !== ErrorCode.NONE) {
      console.error(`samsa topic: topic '${t.name}': ${errorName(t.errorCode)}`);
      exitCode = 1;
      continue;
    }
    found.push(t);
  }
  const configs = await topicConfigs(
    client,
    found.map((t) => t.name),
  );
  const logDirs = await describeLeaderLogDirs(client, found);
  const described: TopicDescription[] = [];
  for (const t of found) {
    const parts = t.partitions.map((p) => p.partition);
    const [earliest, latest] = await Promise.all([
      listPartitionOffsets(client, t.name, parts, EARLIEST).catch(() => new Map<number, OffsetResult>()),
      listPartitionOffsets(client, t.name, parts, LATEST).catch(() => new Map<number, OffsetResult>()),
    ]);
    described.push({
      name: t.name,
      topicId: t.topicId,
      isInternal: t.isInternal,
      partitionCount: t.partitions.length,
      replicationFactor: t.partitions[0]?.replicas.length ?? 0,
      configs: configs.get(t.name) ?? [],
      partitions: t.partitions.map((p) => {
        const lo = earliest.get(p.partition);
        const hi = latest.get(p.partition);
        const offsetError = [lo, hi].find((r) => r !== undefined && 'errorCode' in r) as
          | { errorCode: number }
          | undefined;
        const key = `${p.leaderId}/${t.name}/${p.partition}`;
        const dirError = logDirs.errors.get(key);
        return {
          partition: p.partition,
          leader: p.leaderId,
          leaderEpoch: p.leaderEpoch,
          replicas: p.replicas,
          isr: p.isr,
          offlineReplicas: p.offlineReplicas,
          earliestOffset: lo !== undefined && 'offset' in lo ? lo.offset : null,
          latestOffset: hi !== undefined && 'offset' in hi ? hi.offset : null,
          sizeBytes: logDirs.sizes.get(key) ?? null,
          error:
            p.errorCode !== ErrorCode.NONE
              ? errorName(p.errorCode)
              : offsetError !== undefined
                ? errorName(offsetError.errorCode)
                : null,
          logDirError: dirError === undefined ? null : errorName(dirError),
        };
      }),
    });
  }
  if (format === 'json') printJson({ topics: described });
  else printDescriptions(described);
  return exitCode;
}

function printDescriptions(topics: readonly TopicDescription[]): void {
  const lines: string[] = [];
  const show = (v: bigint | null) => (v === null ? '-' : String(v));
  for (const t of topics) {
    const overrides = t.configs
      .filter((c) => c.source === 'DYNAMIC_TOPIC_CONFIG')
      .map((c) => `${c.name}=${c.isSensitive ? '(sensitive)' : (c.value ?? '')}`)
      .join(',');
    lines.push(
      `Topic: ${t.name}\tTopicId: ${t.topicId}\tPartitionCount: ${t.partitionCount}\tReplicationFactor: ${t.replicationFactor}\tConfigs: ${overrides}`,
    );
    for (const p of t.partitions) {
      let line = `\tTopic: ${t.name}\tPartition: ${p.partition}\tLeader: ${p.leader < 0 ? 'none' : p.leader}\tReplicas: ${p.replicas.join(',')}\tIsr: ${p.isr.join(',')}`;
      line += `\tEarliestOffset: ${show(p.earliestOffset)}\tLatestOffset: ${show(p.latestOffset)}\tSizeBytes: ${show(p.sizeBytes)}`;
      if (p.offlineReplicas.length > 0) line += `\tOffline: ${p.offlineReplicas.join(',')}`;
      if (p.error !== null) line += `\tError: ${p.error}`;
      if (p.logDirError !== null) line += `\tLogDirError: ${p.logDirError}`;
      lines.push(line);
    }
    for (const c of t.configs) {
      lines.push(
        `\tConfig: ${c.name}=${c.isSensitive ? '(sensitive)' : (c.value ?? '')}\tSource: ${c.source}${c.isReadOnly ? '\tReadOnly' : ''}`,
      );
    }
  }
  if (lines.length > 0) console.log(lines.join('\n'));
}

/**
 * From each leader's DescribeLogDirs: the size of each partition (`leader/topic/partition`) and
 * the partitions whose log directory answers an error (a full disk, an I/O error), each failing
 * directory also named on stderr: such a partition has a leader but does not take appends.
 * Brokers without DescribeLogDirs, or that cannot be reached, add nothing.
 */
async function describeLeaderLogDirs(
  client: KafkaClient,
  topics: readonly TopicMetadata[],
): Promise<{ sizes: Map<string, bigint>; errors: Map<string, number> }> {
  const sizes = new Map<string, bigint>();
  const errors = new Map<string, number>();
  const leaders = new Set(topics.flatMap((t) => t.partitions.map((p) => p.leaderId)).filter((id) => id >= 0));
  for (const nodeId of leaders) {
    let response: Awaited<ReturnType<typeof describeLogDirs>>;
    try {
      response = await describeLogDirs(client, nodeId, topics);
    } catch {
      continue;
    }
    for (const d of response?.results ?? []) {
      if (d.errorCode !== ErrorCode.NONE) {
        const usable = d.usableBytes >= 0n ? ` with ${d.usableBytes} bytes usable` : '';
        console.error(
          `samsa topic: broker ${nodeId} log directory ${d.logDir}: ${errorName(d.errorCode)}${usable}; its partitions do not take appends until it is fixed (see the broker's log)`,
        );
      }
      for (const t of d.topics) {
        for (const p of t.partitions) {
          const key = `${nodeId}/${t.name}/${p.partitionIndex}`;
          if (d.errorCode !== ErrorCode.NONE) errors.set(key, d.errorCode);
          else if (!p.isFutureKey) sizes.set(key, (sizes.get(key) ?? 0n) + p.partitionSize);
        }
      }
    }
  }
  return { sizes, errors };
}

async function describeLogDirs(client: KafkaClient, nodeId: number, topics: readonly TopicMetadata[]) {
  const conn = await client.connection(nodeId);
  if (!conn.supports(ApiKey.DescribeLogDirs)) return undefined;
  return conn.request(ApiKey.DescribeLogDirs, {
    topics: topics.map((t) => ({ topic: t.name, partitions: t.partitions.map((p) => p.partition) })),
  });
}

/**
 * Every config of each topic with its source, via DescribeConfigs. A broker without
 * DescribeConfigs yields none rather than an error: the partition layout is still useful.
 */
async function topicConfigs(client: KafkaClient, topics: string[]): Promise<Map<string, ConfigDescription[]>> {
  const result = new Map<string, ConfigDescription[]>();
  if (topics.length === 0) return result;
  const conn = await client.connect();
  if (!conn.supports(ApiKey.DescribeConfigs)) return result;
  const response = await conn.request(ApiKey.DescribeConfigs, {
    resources: topics.map((name) => ({ resourceType: RESOURCE_TOPIC, resourceName: name, configurationKeys: null })),
    includeSynonyms: false,
    includeDocumentation: false,
  });
  for (const r of response.results) {
    if (r.errorCode !== ErrorCode.NONE) {
      console.error(
        `samsa topic: configs of '${r.resourceName}': ${errorName(r.errorCode)}${r.errorMessage ? `: ${r.errorMessage}` : ''}`,
      );
      continue;
    }
    const configs = r.configs
      .map(
        (c): ConfigDescription => ({
          name: c.name,
          value: c.isSensitive ? null : c.value,
          // configSource is -1 in DescribeConfigs v0, which only has isDefault.
          source:
            c.configSource === -1
              ? c.isDefault
                ? 'DEFAULT_CONFIG'
                : 'DYNAMIC_TOPIC_CONFIG'
              : (CONFIG_SOURCES[c.configSource] ?? 'UNKNOWN'),
          isReadOnly: c.readOnly,
          isSensitive: c.isSensitive,
        }),
      )
      .sort((a, b) => a.name.localeCompare(b.name));
    result.set(r.resourceName, configs);
  }
  return result;
}
