/**
 * `samsa group list|describe|delete|reset-offsets`: consumer group administration over the Kafka
 * protocol (FindCoordinator, ListGroups, DescribeGroups / ConsumerGroupDescribe, OffsetFetch,
 * ListOffsets, DeleteGroups, OffsetCommit), so it works against any Kafka-compatible broker.
 * Output follows kafka-consumer-groups.sh: describe prints, per partition, the committed offset,
 * the log end offset, the lag and the member that owns it.
 */
import { ApiKey } from '../network/api-message-types.ts';
import { type BrokerConnection, type KafkaClient, throwIfError } from '../network/kafka-client.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { readConsumerProtocolAssignment } from '../protocol/messages/data/consumer-protocol-assignment.ts';
import { Reader } from '../protocol/reader.ts';
import {
  BOOTSTRAP_USAGE,
  bootstrapOption,
  createClient,
  intOption,
  parseCommandArgs,
  requireOption,
  runCommand,
  UsageError,
} from './cli-common.ts';

export const GROUP_USAGE = `Usage: samsa group <action> [options]

Actions:
  list           [--state S]... [--type classic|consumer]...
  describe       --group G [--group G2]...   members, assignments, committed and end offsets, lag
  delete         --group G [--group G2]...   (empty groups only)
  reset-offsets  --group G --topic T[:P,P...]... one of --to-earliest | --to-latest | --to-offset N |
                 --shift-by N | --to-datetime ISO-8601 [--execute] (a dry run without --execute;
                 the group must have no active members)

Options:
${BOOTSTRAP_USAGE}
  --timeout-ms MS          request timeout (default 30000)`;

const OPTIONS = {
  bootstrap: { type: 'string' },
  'timeout-ms': { type: 'string' },
  group: { type: 'string', multiple: true },
  state: { type: 'string', multiple: true },
  type: { type: 'string', multiple: true },
  topic: { type: 'string', multiple: true },
  'to-earliest': { type: 'boolean' },
  'to-latest': { type: 'boolean' },
  'to-offset': { type: 'string' },
  'shift-by': { type: 'string' },
  'to-datetime': { type: 'string' },
  execute: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values'];

const EARLIEST = -2n;
const LATEST = -1n;

export function groupCommand(argv: string[]): Promise<number> {
  return runCommand('group', GROUP_USAGE, async () => {
    const [action, ...rest] = argv;
    if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
      console.log(GROUP_USAGE);
      return action === undefined ? 2 : 0;
    }
    const { values } = parseCommandArgs(rest, OPTIONS);
    if (values.help === true) {
      console.log(GROUP_USAGE);
      return 0;
    }
    const allowed: Record<string, readonly string[]> = {
      list: ['state', 'type'],
      describe: ['group'],
      delete: ['group'],
      'reset-offsets': [
        'group',
        'topic',
        'to-earliest',
        'to-latest',
        'to-offset',
        'shift-by',
        'to-datetime',
        'execute',
      ],
    };
    const actionOptions = allowed[action];
    if (actionOptions === undefined) throw new UsageError(`unknown action '${action}'`);
    for (const name of Object.keys(values)) {
      if (name !== 'bootstrap' && name !== 'timeout-ms' && !actionOptions.includes(name)) {
        throw new UsageError(`--${name} does not apply to 'group ${action}'`);
      }
    }
    const bootstrap = bootstrapOption(values.bootstrap);
    const timeoutMs = intOption(values['timeout-ms'], 'timeout-ms', { min: 1 }) ?? 30_000;
    const run = prepare(action, values);
    const client = createClient(bootstrap, timeoutMs);
    try {
      return await run(client);
    } finally {
      client.close();
    }
  });
}

function prepare(action: string, values: Values): (client: KafkaClient) => Promise<number> {
  switch (action) {
    case 'list':
      return (client) => listGroups(client, values.state ?? [], values.type ?? []);
    case 'describe': {
      const groups = requireOption(values.group, 'group');
      return (client) => describeGroups(client, groups);
    }
    case 'delete': {
      const groups = requireOption(values.group, 'group');
      return (client) => deleteGroups(client, groups);
    }
    default: {
      const groups = requireOption(values.group, 'group');
      if (groups.length !== 1) throw new UsageError('--group must be given once');
      const topics = requireOption(values.topic, 'topic').map(parseTopicPartitions);
      const spec = resetSpec(values);
      return (client) => resetOffsets(client, groups[0]!, topics, spec, values.execute === true);
    }
  }
}

/** `topic` or `topic:0,2,5`. */
function parseTopicPartitions(text: string): { topic: string; partitions: number[] | null } {
  const colon = text.lastIndexOf(':');
  if (colon < 0) return { topic: text, partitions: null };
  const partitions = text
    .slice(colon + 1)
    .split(',')
    .map((p) => intOption(p, 'topic', { min: 0, max: 0x7fffffff })!);
  return { topic: text.slice(0, colon), partitions };
}

type ResetSpec =
  | { kind: 'timestamp'; timestamp: bigint }
  | { kind: 'offset'; offset: bigint }
  | { kind: 'shift'; by: bigint };

function resetSpec(values: Values): ResetSpec {
  const chosen: ResetSpec[] = [];
  if (values['to-earliest'] === true) chosen.push({ kind: 'timestamp', timestamp: EARLIEST });
  if (values['to-latest'] === true) chosen.push({ kind: 'timestamp', timestamp: LATEST });
  if (values['to-offset'] !== undefined) {
    chosen.push({ kind: 'offset', offset: BigInt(intOption(values['to-offset'], 'to-offset', { min: 0 })!) });
  }
  if (values['shift-by'] !== undefined)
    chosen.push({ kind: 'shift', by: BigInt(intOption(values['shift-by'], 'shift-by')!) });
  if (values['to-datetime'] !== undefined) {
    const ms = Date.parse(values['to-datetime']);
    if (Number.isNaN(ms)) throw new UsageError(`--to-datetime: '${values['to-datetime']}' is not a date`);
    chosen.push({ kind: 'timestamp', timestamp: BigInt(ms) });
  }
  if (chosen.length !== 1) {
    throw new UsageError(
      'reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime',
    );
  }
  return chosen[0]!;
}

/** Prints rows as aligned columns, like Kafka's tools. */
function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join(' ')
      .trimEnd();
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

/** The coordinator of a group (FindCoordinator), as a connection. */
async function coordinatorFor(client: KafkaClient, group: string): Promise<BrokerConnection> {
  const conn = await client.connect();
  const v = conn.versionFor(ApiKey.FindCoordinator);
  let nodeId: number;
  for (let attempt = 0; ; attempt++) {
    const response = await conn.request(
      ApiKey.FindCoordinator,
      v >= 4 ? { keyType: 0, coordinatorKeys: [group] } : { key: group, ...(v >= 1 ? { keyType: 0 } : {}) },
    );
    const entry =
      v >= 4
        ? response.coordinators[0]
        : { errorCode: response.errorCode, errorMessage: response.errorMessage, nodeId: response.nodeId };
    if (entry === undefined) throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, 'FindCoordinator: empty response');
    if (entry.errorCode === ErrorCode.COORDINATOR_NOT_AVAILABLE && attempt < 20) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    throwIfError(entry.errorCode, `cannot find the coordinator of group '${group}'`, entry.errorMessage);
    nodeId = entry.nodeId;
    break;
  }
  if (!client.brokers.has(nodeId)) await client.metadata([]);
  return client.connection(nodeId);
}

/** Retries COORDINATOR_LOAD_IN_PROGRESS (a broker that just started), as clients do. */
async function whileLoading<T>(call: () => Promise<T>, errorOf: (r: T) => number): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const r = await call();
    if (errorOf(r) !== ErrorCode.COORDINATOR_LOAD_IN_PROGRESS || attempt >= 50) return r;
    await new Promise((res) => setTimeout(res, 200));
  }
}

async function listGroups(client: KafkaClient, states: readonly string[], types: readonly string[]): Promise<number> {
  const conn = await client.connect();
  const v = conn.versionFor(ApiKey.ListGroups);
  if (states.length > 0 && v < 4) throw new UsageError('--state needs ListGroups v4 (Kafka 2.6+)');
  if (types.length > 0 && v < 5) throw new UsageError('--type needs ListGroups v5 (Kafka 3.8+)');
  await client.metadata([]);
  const rows: string[][] = [];
  for (const nodeId of [...client.brokers.keys()].sort((a, b) => a - b)) {
    const c = await client.connection(nodeId);
    const response = await whileLoading(
      () =>
        c.request(ApiKey.ListGroups, {
          ...(v >= 4 ? { statesFilter: states } : {}),
          ...(v >= 5 ? { typesFilter: types } : {}),
        }),
      (r) => r.errorCode,
    );
    throwIfError(response.errorCode, `ListGroups on broker ${nodeId}`);
    for (const g of response.groups) {
      rows.push([g.groupId, g.groupType || 'classic', g.protocolType, g.groupState || '-']);
    }
  }
  rows.sort((a, b) => a[0]!.localeCompare(b[0]!));
  printTable(['GROUP', 'TYPE', 'PROTOCOL-TYPE', 'STATE'], rows);
  return 0;
}

interface MemberView {
  memberId: string;
  instanceId: string | null;
  clientId: string;
  host: string;
  /** topic -> partitions */
  assignment: Map<string, number[]>;
}

interface GroupView {
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

async function describeOne(conn: BrokerConnection, group: string): Promise<GroupView | undefined> {
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
async function committedOffsets(conn: BrokerConnection, group: string): Promise<Map<string, Map<number, bigint>>> {
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

/** ListOffsets for partitions of one topic, asked of each partition's leader. */
async function listOffsets(
  client: KafkaClient,
  topic: string,
  partitions: readonly number[],
  timestamp: bigint,
): Promise<Map<number, bigint>> {
  const byLeader = new Map<number, number[]>();
  for (const p of partitions) {
    const leader = client.leaderOf(topic, p);
    if (leader < 0) continue;
    if (!byLeader.has(leader)) byLeader.set(leader, []);
    byLeader.get(leader)!.push(p);
  }
  const out = new Map<number, bigint>();
  for (const [leader, list] of byLeader) {
    const conn = await client.connection(leader);
    const v = conn.versionFor(ApiKey.ListOffsets);
    const r = await conn.request(ApiKey.ListOffsets, {
      replicaId: -1,
      ...(v >= 2 ? { isolationLevel: 0 } : {}),
      topics: [{ name: topic, partitions: list.map((partitionIndex) => ({ partitionIndex, timestamp })) }],
    });
    for (const t of r.topics) {
      for (const p of t.partitions) {
        if (p.errorCode !== ErrorCode.NONE) continue;
        out.set(p.partitionIndex, v === 0 ? (p.oldStyleOffsets[0] ?? -1n) : p.offset);
      }
    }
  }
  return out;
}

async function describeGroups(client: KafkaClient, groups: readonly string[]): Promise<number> {
  let exitCode = 0;
  for (const [i, group] of groups.entries()) {
    if (i > 0) console.log('');
    const conn = await coordinatorFor(client, group);
    const view = await describeOne(conn, group);
    const committed = await committedOffsets(conn, group);
    if (view === undefined && committed.size === 0) {
      console.error(`Consumer group '${group}' does not exist.`);
      exitCode = 1;
      continue;
    }
    const members = view?.members ?? [];
    console.log(
      `Consumer group '${group}' (${view?.type ?? 'classic'}), state ${view?.state ?? 'Empty'}, ` +
        `${members.length} member(s)${view?.protocol ? `, protocol ${view.protocol}` : ''}`,
    );
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
    const rows: string[][] = [];
    for (const topic of topics) {
      const partitions = [...partitionsByTopic.get(topic)!].sort((a, b) => a - b);
      const ends = await listOffsets(client, topic, partitions, LATEST);
      for (const p of partitions) {
        const c = committed.get(topic)?.get(p);
        const end = ends.get(p);
        const m = owner.get(`${topic}\u0000${p}`);
        rows.push([
          group,
          topic,
          String(p),
          c === undefined ? '-' : String(c),
          end === undefined ? '-' : String(end),
          c === undefined || end === undefined ? '-' : String(end - c > 0n ? end - c : 0n),
          m?.memberId ?? '-',
          m?.host ?? '-',
          m?.clientId ?? '-',
        ]);
      }
    }
    // Members without partitions are listed too, as kafka-consumer-groups.sh --members does.
    for (const m of members) {
      if (m.assignment.size === 0) rows.push([group, '-', '-', '-', '-', '-', m.memberId, m.host, m.clientId]);
    }
    printTable(
      ['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID'],
      rows,
    );
  }
  return exitCode;
}

async function deleteGroups(client: KafkaClient, groups: readonly string[]): Promise<number> {
  let exitCode = 0;
  for (const group of groups) {
    const conn = await coordinatorFor(client, group);
    const r = await whileLoading(
      () => conn.request(ApiKey.DeleteGroups, { groupsNames: [group] }),
      (x) => x.results[0]?.errorCode ?? 0,
    );
    const result = r.results[0];
    const code = result?.errorCode ?? ErrorCode.UNKNOWN_SERVER_ERROR;
    if (code === ErrorCode.NONE) {
      console.log(`Deleted consumer group '${group}'.`);
    } else {
      console.error(`Cannot delete consumer group '${group}': ${new KafkaError(code).errorName}`);
      exitCode = 1;
    }
  }
  return exitCode;
}

async function resetOffsets(
  client: KafkaClient,
  group: string,
  requested: readonly { topic: string; partitions: number[] | null }[],
  spec: ResetSpec,
  execute: boolean,
): Promise<number> {
  const conn = await coordinatorFor(client, group);
  const view = await describeOne(conn, group);
  if (view !== undefined && view.members.length > 0 && execute) {
    throw new KafkaError(
      ErrorCode.NON_EMPTY_GROUP,
      `group '${group}' has ${view.members.length} active member(s) (state ${view.state}); stop them first`,
    );
  }
  const md = await client.metadata(requested.map((r) => r.topic));
  const committed = await committedOffsets(conn, group);
  const plan: { topic: string; partition: number; offset: bigint }[] = [];
  for (const { topic, partitions } of requested) {
    const t = md.topics.get(topic);
    if (t === undefined || t.errorCode !== ErrorCode.NONE) {
      throw new KafkaError(t?.errorCode ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${topic}'`);
    }
    const parts = partitions ?? t.partitions.map((p) => p.partition);
    const earliest = await listOffsets(client, topic, parts, EARLIEST);
    const latest = await listOffsets(client, topic, parts, LATEST);
    const at =
      spec.kind === 'timestamp' && spec.timestamp >= 0n
        ? await listOffsets(client, topic, parts, spec.timestamp)
        : undefined;
    for (const p of parts) {
      const lo = earliest.get(p) ?? 0n;
      const hi = latest.get(p) ?? 0n;
      let offset: bigint;
      if (spec.kind === 'timestamp')
        offset = spec.timestamp === EARLIEST ? lo : spec.timestamp === LATEST ? hi : (at?.get(p) ?? hi);
      else if (spec.kind === 'offset') offset = spec.offset;
      else offset = (committed.get(topic)?.get(p) ?? lo) + spec.by;
      // Out-of-range targets are clamped to the log, as kafka-consumer-groups.sh does.
      if (offset < lo) offset = lo;
      if (offset > hi) offset = hi;
      plan.push({ topic, partition: p, offset });
    }
  }
  if (execute) {
    const byTopic = new Map<string, { partitionIndex: number; committedOffset: bigint; committedMetadata: string }[]>();
    for (const e of plan) {
      if (!byTopic.has(e.topic)) byTopic.set(e.topic, []);
      byTopic.get(e.topic)!.push({ partitionIndex: e.partition, committedOffset: e.offset, committedMetadata: '' });
    }
    const r = await whileLoading(
      () =>
        conn.request(ApiKey.OffsetCommit, {
          groupId: group,
          generationIdOrMemberEpoch: -1,
          memberId: '',
          topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
        }),
      (x) => x.topics[0]?.partitions[0]?.errorCode ?? 0,
    );
    for (const t of r.topics) {
      for (const p of t.partitions) throwIfError(p.errorCode, `OffsetCommit ${t.name}-${p.partitionIndex}`);
    }
  }
  printTable(
    ['GROUP', 'TOPIC', 'PARTITION', 'NEW-OFFSET'],
    plan.map((e) => [group, e.topic, String(e.partition), String(e.offset)]),
  );
  if (!execute) console.log('(dry run: add --execute to commit these offsets)');
  return 0;
}
