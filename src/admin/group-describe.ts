/**
 * `samsa group describe`: per group its type, state and members (ConsumerGroupDescribe for
 * KIP-848 groups, DescribeGroups for classic ones), and per partition the committed offset
 * (OffsetFetch), the log end offset (ListOffsets), the lag and the member that owns it, as
 * kafka-consumer-groups.sh --describe prints them; --format json gives the same as one document.
 */
import { ApiKey } from '../network/api-message-types.ts';
import { type BrokerConnection, type KafkaClient, throwIfError } from '../network/kafka-client.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { readConsumerProtocolAssignment } from '../protocol/messages/data/consumer-protocol-assignment.ts';
import { Reader } from '../protocol/reader.ts';
import { type OutputFormat, printJson, printTable } from './cli-common.ts';
import { coordinatorFor, whileLoading } from './group-coordinator.ts';
import { LATEST, listOffsets } from './list-offsets.ts';

export interface MemberView {
  memberId: string;
  instanceId: string | null;
  clientId: string;
  host: string;
  /** topic -> partitions */
  assignment: Map<string, number[]>;
}

export interface GroupView {
  groupId: string;
  type: 'classic' | 'consumer';
  state: string;
  protocol: string;
  members: MemberView[];
}

function decodeClassicAssignment(bytes: Buffer): Map<string, number[]> {
  const out = new Map<string, number[]>();
  if (bytes.length < 2) return out;
  try {
    const r = new Reader(bytes);
    const version = r.int16();
    const a = readConsumerProtocolAssignment(r, Math.min(version, 3));
    for (const tp of a.assignedPartitions)
      out.set(
        tp.topic,
        [...tp.partitions].sort((x, y) => x - y),
      );
  } catch {
    // Not the consumer protocol (e.g. Kafka Connect): no partitions to show.
  }
  return out;
}

export async function describeOne(conn: BrokerConnection, group: string): Promise<GroupView | undefined> {
  if (conn.supports(ApiKey.ConsumerGroupDescribe)) {
    const r = await whileLoading(
      () => conn.request(ApiKey.ConsumerGroupDescribe, { groupIds: [group] }),
      (x) => x.groups[0]?.errorCode ?? 0,
    );
    const g = r.groups[0];
    if (g !== undefined && g.errorCode === ErrorCode.NONE) {
      return {
        groupId: group,
        type: 'consumer',
        state: g.groupState,
        protocol: `${g.assignorName} (epoch ${g.groupEpoch})`,
        members: g.members.map((m) => ({
          memberId: m.memberId,
          instanceId: m.instanceId,
          clientId: m.clientId,
          host: m.clientHost,
          assignment: new Map(
            m.assignment.topicPartitions.map((tp) => [tp.topicName, [...tp.partitions].sort((a, b) => a - b)]),
          ),
        })),
      };
    }
    if (g !== undefined && g.errorCode !== ErrorCode.GROUP_ID_NOT_FOUND) {
      throwIfError(g.errorCode, `ConsumerGroupDescribe '${group}'`, g.errorMessage);
    }
  }
  const r = await whileLoading(
    () => conn.request(ApiKey.DescribeGroups, { groups: [group] }),
    (x) => x.groups[0]?.errorCode ?? 0,
  );
  const g = r.groups[0];
  if (g === undefined) return undefined;
  throwIfError(g.errorCode, `DescribeGroups '${group}'`);
  if (g.groupState === 'Dead') return undefined;
  return {
    groupId: group,
    type: 'classic',
    state: g.groupState,
    protocol: g.protocolData === '' ? g.protocolType : `${g.protocolType}/${g.protocolData}`,
    members: g.members.map((m) => ({
      memberId: m.memberId,
      instanceId: m.groupInstanceId,
      clientId: m.clientId,
      host: m.clientHost,
      assignment: g.protocolType === 'consumer' ? decodeClassicAssignment(m.memberAssignment) : new Map(),
    })),
  };
}

/** Committed offsets of a group: topic -> partition -> offset (every committed partition). */
export async function committedOffsets(
  conn: BrokerConnection,
  group: string,
): Promise<Map<string, Map<number, bigint>>> {
  const v = conn.versionFor(ApiKey.OffsetFetch);
  const out = new Map<string, Map<number, bigint>>();
  const add = (topic: string, partition: number, offset: bigint) => {
    if (offset < 0n) return;
    if (!out.has(topic)) out.set(topic, new Map());
    out.get(topic)!.set(partition, offset);
  };
  if (v >= 8) {
    const r = await whileLoading(
      () => conn.request(ApiKey.OffsetFetch, { groups: [{ groupId: group, topics: null }], requireStable: false }),
      (x) => x.groups[0]?.errorCode ?? 0,
    );
    const g = r.groups[0];
    if (g !== undefined) throwIfError(g.errorCode, `OffsetFetch '${group}'`);
    for (const t of g?.topics ?? []) for (const p of t.partitions) add(t.name, p.partitionIndex, p.committedOffset);
  } else {
    if (v < 2) throw new KafkaError(ErrorCode.UNSUPPORTED_VERSION, 'OffsetFetch of every topic needs v2+');
    const r = await whileLoading(
      () => conn.request(ApiKey.OffsetFetch, { groupId: group, topics: null }),
      (x) => x.errorCode,
    );
    throwIfError(r.errorCode, `OffsetFetch '${group}'`);
    for (const t of r.topics) for (const p of t.partitions) add(t.name, p.partitionIndex, p.committedOffset);
  }
  return out;
}

export interface GroupDescription {
  group: string;
  /** classic or consumer (KIP-848). */
  type: string;
  state: string;
  protocol: string;
  members: {
    memberId: string;
    instanceId: string | null;
    clientId: string;
    host: string;
    assignment: { topic: string; partitions: number[] }[];
  }[];
  offsets: {
    topic: string;
    partition: number;
    /** null when the group committed none. */
    committedOffset: bigint | null;
    logEndOffset: bigint | null;
    lag: bigint | null;
    memberId: string | null;
    host: string | null;
    clientId: string | null;
  }[];
}

/** A group's description, or undefined when it does not exist. */
export async function describeGroup(client: KafkaClient, group: string): Promise<GroupDescription | undefined> {
  const conn = await coordinatorFor(client, group);
  const view = await describeOne(conn, group);
  const committed = await committedOffsets(conn, group);
  if (view === undefined && committed.size === 0) return undefined;
  const members = view?.members ?? [];
  const owner = new Map<string, MemberView>();
  const partitionsByTopic = new Map<string, Set<number>>();
  const addPartition = (topic: string, p: number) => {
    if (!partitionsByTopic.has(topic)) partitionsByTopic.set(topic, new Set());
    partitionsByTopic.get(topic)!.add(p);
  };
  for (const m of members) {
    for (const [topic, parts] of m.assignment) {
      for (const p of parts) {
        owner.set(`${topic}\u0000${p}`, m);
        addPartition(topic, p);
      }
    }
  }
  for (const [topic, parts] of committed) for (const p of parts.keys()) addPartition(topic, p);
  const topics = [...partitionsByTopic.keys()].sort();
  if (topics.length > 0) await client.metadata(topics);
  const offsets: GroupDescription['offsets'] = [];
  for (const topic of topics) {
    const partitions = [...partitionsByTopic.get(topic)!].sort((a, b) => a - b);
    const ends = await listOffsets(client, topic, partitions, LATEST);
    for (const p of partitions) {
      const c = committed.get(topic)?.get(p);
      const end = ends.get(p);
      const m = owner.get(`${topic}\u0000${p}`);
      offsets.push({
        topic,
        partition: p,
        committedOffset: c ?? null,
        logEndOffset: end ?? null,
        lag: c === undefined || end === undefined ? null : end - c > 0n ? end - c : 0n,
        memberId: m?.memberId ?? null,
        host: m?.host ?? null,
        clientId: m?.clientId ?? null,
      });
    }
  }
  return {
    group,
    type: view?.type ?? 'classic',
    state: view?.state ?? 'Empty',
    protocol: view?.protocol ?? '',
    members: members.map((m) => ({
      memberId: m.memberId,
      instanceId: m.instanceId,
      clientId: m.clientId,
      host: m.host,
      assignment: [...m.assignment].map(([topic, partitions]) => ({ topic, partitions })),
    })),
    offsets,
  };
}

export async function describeGroups(
  client: KafkaClient,
  groups: readonly string[],
  format: OutputFormat,
): Promise<number> {
  let exitCode = 0;
  const described: GroupDescription[] = [];
  for (const group of groups) {
    const d = await describeGroup(client, group);
    if (d === undefined) {
      console.error(`Consumer group '${group}' does not exist.`);
      exitCode = 1;
      continue;
    }
    described.push(d);
  }
  if (format === 'json') {
    printJson({ groups: described });
    return exitCode;
  }
  for (const [i, d] of described.entries()) {
    if (i > 0) console.log('');
    console.log(
      `Consumer group '${d.group}' (${d.type}), state ${d.state}, ` +
        `${d.members.length} member(s)${d.protocol ? `, protocol ${d.protocol}` : ''}`,
    );
    const show = (v: bigint | null) => (v === null ? '-' : String(v));
    const rows = d.offsets.map((o) => [
      d.group,
      o.topic,
      String(o.partition),
      show(o.committedOffset),
      show(o.logEndOffset),
      show(o.lag),
      o.memberId ?? '-',
      o.host ?? '-',
      o.clientId ?? '-',
    ]);
    // Members without partitions are listed too, as kafka-consumer-groups.sh --members does.
    for (const m of d.members) {
      if (m.assignment.length === 0) rows.push([d.group, '-', '-', '-', '-', '-', m.memberId, m.host, m.clientId]);
    }
    printTable(
      ['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID'],
      rows,
    );
  }
  return exitCode;
}
