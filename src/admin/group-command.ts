/**
 * `samsa group list|describe|delete|delete-offsets|reset-offsets`: consumer group administration
 * over the Kafka protocol (FindCoordinator, ListGroups, DescribeGroups / ConsumerGroupDescribe,
 * OffsetFetch, ListOffsets, DeleteGroups, OffsetDelete, OffsetCommit), so it works against any
 * Kafka-compatible broker. Output follows kafka-consumer-groups.sh; describe is in
 * group-describe.ts, reset-offsets in group-reset.ts.
 */
import { ApiKey } from '../network/api-message-types.ts';
import { type KafkaClient, throwIfError } from '../network/kafka-client.ts';
import { ErrorCode, errorName, KafkaError } from '../protocol/error-codes.ts';
import {
  BOOTSTRAP_USAGE,
  bootstrapOption,
  createClient,
  FORMAT_USAGE,
  formatOption,
  intOption,
  type OutputFormat,
  parseCommandArgs,
  printJson,
  printTable,
  requireOption,
  runCommand,
  UsageError,
} from './cli-common.ts';
import { coordinatorFor, whileLoading } from './group-coordinator.ts';
import { describeGroups } from './group-describe.ts';
import { type PlannedOffset, type ResetSpec, resetGroupOffsets, resetSpec } from './group-reset.ts';

export const GROUP_USAGE = `Usage: samsa group <action> [options]

Actions:
  list           [--state S]... [--type classic|consumer]... [--format json]
  describe       (--group G [--group G2]... | --all-groups) [--format json]
                 members, assignments, committed and end offsets, lag
  delete         (--group G [--group G2]... | --all-groups)   (empty groups only)
  delete-offsets --group G --topic T[:P,P...]...   forget the group's committed offsets
                 (OffsetDelete; not for topics its members subscribe to)
  reset-offsets  (--group G | --all-groups) (--topic T[:P,P...]... | --all-topics)
                 one of --to-earliest | --to-latest | --to-offset N | --shift-by N |
                 --to-datetime ISO-8601 [--execute] (a dry run without --execute; the group
                 must have no active members)

Options:
${BOOTSTRAP_USAGE}
${FORMAT_USAGE}
  --timeout-ms MS          request timeout (default 30000)

JSON fields (list): groups[]: group, type, protocolType, state.
JSON fields (describe): groups[]: group, type, state, protocol, members[]: memberId, instanceId,
  clientId, host, assignment[]: topic, partitions; offsets[]: topic, partition, committedOffset,
  logEndOffset, lag, memberId, host, clientId (null when unknown).`;

const OPTIONS = {
  bootstrap: { type: 'string' },
  'timeout-ms': { type: 'string' },
  format: { type: 'string' },
  group: { type: 'string', multiple: true },
  'all-groups': { type: 'boolean' },
  state: { type: 'string', multiple: true },
  type: { type: 'string', multiple: true },
  topic: { type: 'string', multiple: true },
  'all-topics': { type: 'boolean' },
  'to-earliest': { type: 'boolean' },
  'to-latest': { type: 'boolean' },
  'to-offset': { type: 'string' },
  'shift-by': { type: 'string' },
  'to-datetime': { type: 'string' },
  execute: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values'];

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
    const resetOptions = ['to-earliest', 'to-latest', 'to-offset', 'shift-by', 'to-datetime', 'execute'];
    const allowed: Record<string, readonly string[]> = {
      list: ['state', 'type', 'format'],
      describe: ['group', 'all-groups', 'format'],
      delete: ['group', 'all-groups'],
      'delete-offsets': ['group', 'topic'],
      'reset-offsets': ['group', 'all-groups', 'topic', 'all-topics', ...resetOptions],
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

/** --group G... or --all-groups (every group of the cluster), exactly one of them. */
function groupsOption(values: Values): string[] | 'all' {
  if (values['all-groups'] === true) {
    if (values.group !== undefined) throw new UsageError('--group and --all-groups exclude each other');
    return 'all';
  }
  if (values.group === undefined) throw new UsageError('--group (or --all-groups) is required');
  return values.group;
}

function prepare(action: string, values: Values): (client: KafkaClient) => Promise<number> {
  switch (action) {
    case 'list': {
      const format = formatOption(values.format);
      return (client) => listGroups(client, values.state ?? [], values.type ?? [], format);
    }
    case 'describe': {
      const groups = groupsOption(values);
      const format = formatOption(values.format);
      return async (client) => describeGroups(client, await resolveGroups(client, groups), format);
    }
    case 'delete': {
      const groups = groupsOption(values);
      return async (client) => deleteGroups(client, await resolveGroups(client, groups));
    }
    case 'delete-offsets': {
      const groups = requireOption(values.group, 'group');
      if (groups.length !== 1) throw new UsageError('--group must be given once');
      const topics = requireOption(values.topic, 'topic').map(parseTopicPartitions);
      return (client) => deleteOffsets(client, groups[0]!, topics);
    }
    default: {
      const groups = groupsOption(values);
      if (groups !== 'all' && groups.length !== 1) throw new UsageError('--group must be given once');
      if (values['all-topics'] === true && values.topic !== undefined) {
        throw new UsageError('--topic and --all-topics exclude each other');
      }
      if (values['all-topics'] !== true && values.topic === undefined) {
        throw new UsageError('--topic (or --all-topics) is required');
      }
      const topics = values.topic?.map(parseTopicPartitions) ?? null;
      const spec = resetSpec(values);
      return async (client) =>
        resetOffsets(client, await resolveGroups(client, groups), topics, spec, values.execute === true);
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

interface ListedGroup {
  group: string;
  type: string;
  protocolType: string;
  state: string;
}

/** Every group of the cluster (ListGroups on each broker). */
async function allGroups(
  client: KafkaClient,
  states: readonly string[] = [],
  types: readonly string[] = [],
): Promise<ListedGroup[]> {
  const conn = await client.connect();
  const v = conn.versionFor(ApiKey.ListGroups);
  if (states.length > 0 && v < 4) throw new UsageError('--state needs ListGroups v4 (Kafka 2.6+)');
  if (types.length > 0 && v < 5) throw new UsageError('--type needs ListGroups v5 (Kafka 3.8+)');
  await client.metadata([]);
  const out: ListedGroup[] = [];
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
      out.push({
        group: g.groupId,
        type: g.groupType || 'classic',
        protocolType: g.protocolType,
        state: g.groupState || '-',
      });
    }
  }
  return out.sort((a, b) => a.group.localeCompare(b.group));
}

async function resolveGroups(client: KafkaClient, groups: string[] | 'all'): Promise<string[]> {
  if (groups !== 'all') return groups;
  return (await allGroups(client)).map((g) => g.group);
}

async function listGroups(
  client: KafkaClient,
  states: readonly string[],
  types: readonly string[],
  format: OutputFormat,
): Promise<number> {
  const groups = await allGroups(client, states, types);
  if (format === 'json') printJson({ groups });
  else
    printTable(
      ['GROUP', 'TYPE', 'PROTOCOL-TYPE', 'STATE'],
      groups.map((g) => [g.group, g.type, g.protocolType, g.state]),
    );
  return 0;
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

async function deleteOffsets(
  client: KafkaClient,
  group: string,
  requested: readonly { topic: string; partitions: number[] | null }[],
): Promise<number> {
  const md = await client.metadata(requested.map((r) => r.topic));
  const topics = requested.map(({ topic, partitions }) => {
    const t = md.topics.get(topic);
    if (partitions !== null) return { name: topic, partitions };
    if (t === undefined || t.errorCode !== ErrorCode.NONE) {
      throw new KafkaError(t?.errorCode ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${topic}'`);
    }
    return { name: topic, partitions: t.partitions.map((p) => p.partition) };
  });
  const conn = await coordinatorFor(client, group);
  const r = await whileLoading(
    () =>
      conn.request(ApiKey.OffsetDelete, {
        groupId: group,
        topics: topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((partitionIndex) => ({ partitionIndex })),
        })),
      }),
    (x) => x.errorCode,
  );
  throwIfError(r.errorCode, `cannot delete offsets of group '${group}'`);
  const rows: string[][] = [];
  let exitCode = 0;
  for (const t of r.topics) {
    for (const p of [...t.partitions].sort((a, b) => a.partitionIndex - b.partitionIndex)) {
      const ok = p.errorCode === ErrorCode.NONE;
      if (!ok) exitCode = 1;
      rows.push([t.name, String(p.partitionIndex), ok ? 'Successful' : `Error: ${errorName(p.errorCode)}`]);
    }
  }
  printTable(['TOPIC', 'PARTITION', 'STATUS'], rows);
  return exitCode;
}

async function resetOffsets(
  client: KafkaClient,
  groups: readonly string[],
  requested: readonly { topic: string; partitions: number[] | null }[] | null,
  spec: ResetSpec,
  execute: boolean,
): Promise<number> {
  const plan: PlannedOffset[] = [];
  for (const group of groups) plan.push(...(await resetGroupOffsets(client, group, requested, spec, execute)));
  printTable(
    ['GROUP', 'TOPIC', 'PARTITION', 'NEW-OFFSET'],
    plan.map((e) => [e.group, e.topic, String(e.partition), String(e.offset)]),
  );
  if (!execute) console.log('(dry run: add --execute to commit these offsets)');
  return 0;
}
