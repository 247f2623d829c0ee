/**
 * Requests the cluster tests send to one chosen broker with the project's own client
 * (`cluster.client(broker)`: that broker is the client's only bootstrap address, so a request
 * goes to exactly that broker, which is what a test about one broker's answer needs). Per-partition
 * and per-resource error codes come back as values; the tests decide which are acceptable.
 */
import { randomUUID } from 'node:crypto';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import type { ClusterMetadata, KafkaClient } from '../../../src/network/kafka-client.ts';
import { ErrorCode, KafkaError } from '../../../src/protocol/error-codes.ts';
import { buildRecordBatchSync, decodeBatchSync, iterateBatches } from '../../../src/protocol/records/index.ts';
import type { Cluster, ClusterBroker } from '../../helpers/cluster.ts';

export const NO_ETCD = 'etcd is not installed (Debian package etcd-server; .ci/run installs it)';

/** A topic (or group) name nobody else uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function errorName(code: number): string {
  return code === ErrorCode.NONE ? 'NONE' : new KafkaError(code).errorName;
}

export function isRetriable(code: number): boolean {
  return new KafkaError(code).retriable;
}

/** One client per broker, each asking only that broker. */
export async function brokerClients(cluster: Cluster): Promise<Map<number, KafkaClient>> {
  const out = new Map<number, KafkaClient>();
  for (const b of cluster.brokers) out.set(b.nodeId, await cluster.client(b));
  return out;
}

export function clientOf(clients: ReadonlyMap<number, KafkaClient>, nodeId: number): KafkaClient {
  const c = clients.get(nodeId);
  if (c === undefined) throw new Error(`no client for broker ${nodeId}`);
  return c;
}

export function brokerById(cluster: Cluster, nodeId: number): ClusterBroker {
  const b = cluster.brokers.find((x) => x.nodeId === nodeId);
  if (b === undefined) throw new Error(`no broker ${nodeId} in the cluster`);
  return b;
}

/** Metadata for `topics` (all when null) as one broker answers it. */
export function metadataFrom(client: KafkaClient, topics: readonly string[] | null): Promise<ClusterMetadata> {
  return client.metadata(topics);
}

/** The leader id of each partition of `topic` in a Metadata answer (-1: none), by partition index. */
export function leaders(md: ClusterMetadata, topic: string): number[] {
  const t = md.topics.get(topic);
  if (t === undefined || t.errorCode !== ErrorCode.NONE) return [];
  return t.partitions.map((p) => p.leaderId);
}

/** Waits until every broker of `nodeIds` lists exactly those brokers (registrations are written after listening). */
export async function waitForMembership(
  cluster: Cluster,
  clients: ReadonlyMap<number, KafkaClient>,
  nodeIds: readonly number[],
  timeoutMs = 30_000,
): Promise<void> {
  const want = [...nodeIds].sort().join(',');
  await cluster.waitFor(
    `brokers ${nodeIds.join(',')} to list exactly ${want} with a live controller`,
    async () => {
      for (const id of nodeIds) {
        const md = await metadataFrom(clientOf(clients, id), []);
        const got = [...md.brokers.keys()].sort().join(',');
        if (got !== want || !nodeIds.includes(md.controllerId)) return false;
      }
      return true;
    },
    timeoutMs,
  );
}

export interface CreateResult {
  errorCode: number;
  errorMessage: string | null;
}

/** CreateTopics through one broker (RF 1, the only factor the cluster takes for now). */
export async function createTopic(
  client: KafkaClient,
  name: string,
  partitions: number,
  configs: Readonly<Record<string, string>> = {},
  options: { timeoutMs?: number; requestTimeoutMs?: number } = {},
): Promise<CreateResult> {
  const res = await client.request(
    ApiKey.CreateTopics,
    {
      topics: [
        {
          name,
          numPartitions: partitions,
          replicationFactor: 1,
          assignments: [],
          configs: Object.entries(configs).map(([k, v]) => ({ name: k, value: v })),
        },
      ],
      timeoutMs: options.timeoutMs ?? 10_000,
      validateOnly: false,
    },
    { timeoutMs: options.requestTimeoutMs ?? 15_000 },
  );
  const t = res.topics[0];
  if (t === undefined) throw new Error(`CreateTopics ${name}: no topic in the response`);
  return { errorCode: t.errorCode, errorMessage: t.errorMessage ?? null };
}

/** Creates a topic through `client`, failing with the error the broker gave. */
export async function mustCreateTopic(
  client: KafkaClient,
  name: string,
  partitions: number,
  configs: Readonly<Record<string, string>> = {},
): Promise<void> {
  const r = await createTopic(client, name, partitions, configs);
  if (r.errorCode !== ErrorCode.NONE)
    throw new Error(`CreateTopics ${name}: ${errorName(r.errorCode)} ${r.errorMessage ?? ''}`);
}

export async function deleteTopic(client: KafkaClient, name: string): Promise<number> {
  const res = await client.request(ApiKey.DeleteTopics, {
    topics: [{ name }],
    topicNames: [name],
    timeoutMs: 10_000,
  });
  const t = res.responses[0];
  if (t === undefined) throw new Error(`DeleteTopics ${name}: no topic in the response`);
  return t.errorCode;
}

/** IncrementalAlterConfigs SET of one topic config through one broker; the resource's error code. */
export async function setTopicConfig(client: KafkaClient, topic: string, name: string, value: string): Promise<number> {
  const res = await client.request(ApiKey.IncrementalAlterConfigs, {
    resources: [{ resourceType: 2, resourceName: topic, configs: [{ name, configOperation: 0, value }] }],
    validateOnly: false,
  });
  const r = res.responses[0];
  if (r === undefined) throw new Error(`IncrementalAlterConfigs ${topic}: no resource in the response`);
  return r.errorCode;
}

/** A topic config as one broker describes it (undefined: the broker answered with an error). */
export async function describeTopicConfig(
  client: KafkaClient,
  topic: string,
  name: string,
): Promise<string | null | undefined> {
  const res = await client.request(ApiKey.DescribeConfigs, {
    resources: [{ resourceType: 2, resourceName: topic, configurationKeys: [name] }],
    includeSynonyms: false,
    includeDocumentation: false,
  });
  const r = res.results[0];
  if (r === undefined || r.errorCode !== ErrorCode.NONE) return undefined;
  return r.configs.find((c) => c.name === name)?.value;
}

export interface ProduceResult {
  errorCode: number;
  baseOffset: bigint;
}

/** Produce (acks=all) of `values` as one batch to one partition on the client's broker. */
export async function produce(
  client: KafkaClient,
  topic: string,
  partition: number,
  values: readonly string[],
  requestTimeoutMs = 10_000,
): Promise<ProduceResult> {
  const batch = buildRecordBatchSync({
    records: values.map((v) => ({ key: null, value: Buffer.from(v) })),
  });
  const res = await client.request(
    ApiKey.Produce,
    {
      transactionalId: null,
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: topic, partitionData: [{ index: partition, records: batch }] }],
    },
    { timeoutMs: requestTimeoutMs },
  );
  const p = res.responses[0]?.partitionResponses[0];
  if (p === undefined) throw new Error(`Produce ${topic}/${partition}: no partition in the response`);
  return { errorCode: p.errorCode, baseOffset: p.baseOffset };
}

/**
 * Produces and fails unless the broker appended. A retriable error is retried for a few seconds
 * (a new partition's leader may not have its log yet, or the feed is a moment behind), as
 * clients retry; a retried batch could have been appended by an attempt that timed out, but
 * NOT_LEADER_OR_FOLLOWER and the like are answered without appending.
 */
export async function mustProduce(
  client: KafkaClient,
  topic: string,
  partition: number,
  values: readonly string[],
): Promise<bigint> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await produce(client, topic, partition, values);
    if (r.errorCode === ErrorCode.NONE) return r.baseOffset;
    if (!isRetriable(r.errorCode) || Date.now() > deadline)
      throw new Error(`Produce ${topic}/${partition}: ${errorName(r.errorCode)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface FetchedValue {
  offset: bigint;
  value: string | null;
  /** The partition leader epoch stamped on the batch that carried it. */
  leaderEpoch: number;
}

export interface FetchResult {
  errorCode: number;
  highWatermark: bigint;
  records: FetchedValue[];
}

/** One Fetch (v12, by topic name, no wait) of one partition from `offset` on the client's broker. */
export async function fetchOnce(
  client: KafkaClient,
  topic: string,
  partition: number,
  offset: bigint,
  requestTimeoutMs = 10_000,
): Promise<FetchResult> {
  const res = await client.request(
    ApiKey.Fetch,
    12,
    {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 8 << 20,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic,
          partitions: [
            {
              partition,
              currentLeaderEpoch: -1,
              fetchOffset: offset,
              lastFetchedEpoch: -1,
              logStartOffset: -1n,
              partitionMaxBytes: 4 << 20,
            },
          ],
        },
      ],
      forgottenTopicsData: [],
      rackId: '',
    },
    { timeoutMs: requestTimeoutMs },
  );
  const p = res.responses[0]?.partitions[0];
  if (p === undefined) throw new Error(`Fetch ${topic}/${partition}: no partition in the response`);
  const records: FetchedValue[] = [];
  const bytes = p.records ?? Buffer.alloc(0);
  for (const b of iterateBatches(bytes, { partialTail: 'stop' })) {
    const batch = decodeBatchSync(bytes.subarray(b.offset, b.offset + b.size));
    for (const r of batch.records) {
      if (r.offset < offset) continue;
      records.push({
        offset: r.offset,
        value: r.value === null ? null : r.value.toString(),
        leaderEpoch: batch.header.partitionLeaderEpoch,
      });
    }
  }
  return { errorCode: p.errorCode, highWatermark: p.highWatermark, records };
}

/** Every record of a partition from offset 0 to its high watermark, failing on an error code. */
export async function fetchAll(client: KafkaClient, topic: string, partition: number): Promise<FetchedValue[]> {
  const out: FetchedValue[] = [];
  let next = 0n;
  for (let round = 0; round < 100; round++) {
    const r = await fetchOnce(client, topic, partition, next);
    if (r.errorCode !== ErrorCode.NONE) throw new Error(`Fetch ${topic}/${partition}: ${errorName(r.errorCode)}`);
    if (next >= r.highWatermark) return out;
    if (r.records.length === 0)
      throw new Error(`Fetch ${topic}/${partition} at ${next}: nothing below ${r.highWatermark}`);
    out.push(...r.records);
    next = r.records[r.records.length - 1]!.offset + 1n;
  }
  throw new Error(`Fetch ${topic}/${partition} made no progress`);
}

/** FindCoordinator (group) through one broker: the coordinator's node id, or the error. */
export async function findCoordinator(
  client: KafkaClient,
  group: string,
): Promise<{ errorCode: number; nodeId: number }> {
  const r = await client.request(ApiKey.FindCoordinator, 4, { keyType: 0, coordinatorKeys: [group] });
  const c = r.coordinators[0];
  if (c === undefined) throw new Error(`FindCoordinator ${group}: no coordinator in the response`);
  return { errorCode: c.errorCode, nodeId: c.nodeId };
}

/** An admin-style OffsetCommit v8 (no member, generation -1) of one partition; its error code. */
export async function commitOffset(
  client: KafkaClient,
  group: string,
  topic: string,
  partition: number,
  offset: bigint,
): Promise<number> {
  const r = await client.request(ApiKey.OffsetCommit, 8, {
    groupId: group,
    generationIdOrMemberEpoch: -1,
    memberId: '',
    groupInstanceId: null,
    topics: [
      {
        name: topic,
        partitions: [
          { partitionIndex: partition, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: '' },
        ],
      },
    ],
  });
  const p = r.topics[0]?.partitions[0];
  if (p === undefined) throw new Error(`OffsetCommit ${group}: no partition in the response`);
  return p.errorCode;
}

/** OffsetFetch v8 of one partition: the group-level or partition error, else the committed offset. */
export async function fetchOffset(
  client: KafkaClient,
  group: string,
  topic: string,
  partition: number,
): Promise<{ errorCode: number; offset: bigint }> {
  const r = await client.request(ApiKey.OffsetFetch, 8, {
    groups: [{ groupId: group, topics: [{ name: topic, partitionIndexes: [partition] }] }],
    requireStable: false,
  });
  const g = r.groups[0];
  if (g === undefined) throw new Error(`OffsetFetch ${group}: no group in the response`);
  if (g.errorCode !== ErrorCode.NONE) return { errorCode: g.errorCode, offset: -1n };
  const p = g.topics[0]?.partitions[0];
  if (p === undefined) throw new Error(`OffsetFetch ${group}: no partition in the response`);
  return { errorCode: p.errorCode, offset: p.committedOffset };
}

/** The tail of every broker's output, for assertion messages. */
export function brokerLogs(cluster: Cluster, chars = 3000): string {
  return cluster.brokers.map((b) => `--- broker ${b.nodeId}:\n${b.output().slice(-chars)}`).join('\n');
}
