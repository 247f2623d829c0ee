/**
 * `samsa topic create|list|describe|delete|alter-config|add-partitions|trim|reassign|elect-leaders`:
 * topic administration over the Kafka protocol (CreateTopics, Metadata, DescribeConfigs,
 * DeleteTopics, IncrementalAlterConfigs, CreatePartitions, DeleteRecords,
 * AlterPartitionReassignments, ListPartitionReassignments, ElectLeaders), so it works against any
 * Kafka-compatible broker. Output follows kafka-topics.sh / kafka-configs.sh; list and describe
 * are in topic-describe.ts, reassign and elect-leaders in reassign-command.ts.
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
  keyValue,
  type OutputFormat,
  parseCommandArgs,
  printJson,
  printTable,
  requireOption,
  runCommand,
  UsageError,
  waitForTopic,
} from './cli-common.ts';
import { LATEST } from './list-offsets.ts';
import { electLeaders, listReassignments, readPlanFile, reassign, replicasOption } from './reassign-command.ts';
import { describeTopics, listTopics, RESOURCE_TOPIC } from './topic-describe.ts';

export const TOPIC_USAGE = `Usage: samsa topic <action> [options]

Actions:
  create        --topic T [--partitions N] [--replication-factor R] [--config K=V]...
                [--if-not-exists] [--validate-only]
  list          [--exclude-internal] [--format json]
  describe      [--topic T]... [--format json] (every topic when none is given): partitions
                with leader, replicas, earliest and latest offsets and size on disk, then
                every config with its source
  delete        --topic T [--topic T2]... [--if-exists]
  alter-config  --topic T [--set K=V]... [--delete K]...
  add-partitions --topic T (--num N | --partitions TOTAL) [--validate-only]
                add N partitions (like rpk), or grow to TOTAL (like kafka-topics.sh's alter)
  trim          --topic T --offset N|end [--partition P]... [--format json]
                delete the records before offset N (end: every record) of each partition
                (DeleteRecords, like kafka-delete-records.sh and rpk topic trim-prefix)
  reassign      --topic T --partition P (--replicas 1,2,3 | --cancel) [--wait]
                | --reassignment-json-file FILE [--wait] | --list [--format json]
                move a partition's replicas to the given brokers, the first the preferred
                leader (KIP-455, like kafka-reassign-partitions.sh; FILE is its plan format:
                {"version":1,"partitions":[{"topic":"T","partition":0,"replicas":[1,2]}]});
                --list: the reassignments in progress
  elect-leaders [--topic T]... [--partition P]... [--unclean] [--format json]
                preferred leader election (the first replica leads again when in sync), or
                with --unclean any live replica of a partition without a leader (data may be
                lost); every partition when no --topic is given (like kafka-leader-election.sh)

Options:
${BOOTSTRAP_USAGE}
${FORMAT_USAGE}
  --timeout-ms MS          request timeout (default 30000)
  --partitions N           partition count (default: the broker's num.partitions)
  --replication-factor R   replicas per partition (default: the broker's default.replication.factor)
  --config K=V             topic config override at creation (repeatable)
  --set K=V                set a topic config (repeatable)
  --delete K               remove a topic config override, back to the default (repeatable)
  --wait                   reassign: wait until the moves are done, printing progress
  --wait-ms MS             how long --wait waits (default 600000)

JSON fields (list): topics[]: name, topicId, isInternal, partitionCount, replicationFactor.
JSON fields (describe): topics[]: name, topicId, isInternal, partitionCount, replicationFactor,
  configs[]: name, value, source, isReadOnly, isSensitive; partitions[]: partition, leader,
  leaderEpoch, replicas, isr, offlineReplicas, earliestOffset, latestOffset, sizeBytes, error,
  logDirError.
JSON fields (trim): partitions[]: topic, partition, lowWatermark, error.
JSON fields (reassign --list): reassignments[]: topic, partition, replicas, addingReplicas,
  removingReplicas.
JSON fields (elect-leaders): electionType, partitions[]: topic, partition, error (null: elected;
  ELECTION_NOT_NEEDED: already led by the right replica), message.`;

const OP_SET = 0;
const OP_DELETE = 1;

const OPTIONS = {
  bootstrap: { type: 'string' },
  'timeout-ms': { type: 'string' },
  topic: { type: 'string', multiple: true },
  partitions: { type: 'string' },
  'replication-factor': { type: 'string' },
  config: { type: 'string', multiple: true },
  'if-not-exists': { type: 'boolean' },
  'if-exists': { type: 'boolean' },
  'validate-only': { type: 'boolean' },
  'exclude-internal': { type: 'boolean' },
  set: { type: 'string', multiple: true },
  delete: { type: 'string', multiple: true },
  format: { type: 'string' },
  num: { type: 'string' },
  partition: { type: 'string', multiple: true },
  offset: { type: 'string' },
  replicas: { type: 'string' },
  cancel: { type: 'boolean' },
  list: { type: 'boolean' },
  'reassignment-json-file': { type: 'string' },
  wait: { type: 'boolean' },
  'wait-ms': { type: 'string' },
  unclean: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values'];

export function topicCommand(argv: string[]): Promise<number> {
  return runCommand('topic', TOPIC_USAGE, async () => {
    const [action, ...rest] = argv;
    if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
      console.log(TOPIC_USAGE);
      return action === undefined ? 2 : 0;
    }
    const { values } = parseCommandArgs(rest, OPTIONS);
    if (values.help === true) {
      console.log(TOPIC_USAGE);
      return 0;
    }
    const allowed: Record<string, readonly string[]> = {
      create: ['topic', 'partitions', 'replication-factor', 'config', 'if-not-exists', 'validate-only'],
      list: ['exclude-internal', 'format'],
      describe: ['topic', 'format'],
      delete: ['topic', 'if-exists'],
      'alter-config': ['topic', 'set', 'delete'],
      'add-partitions': ['topic', 'num', 'partitions', 'validate-only'],
      trim: ['topic', 'offset', 'partition', 'format'],
      reassign: [
        'topic',
        'partition',
        'replicas',
        'cancel',
        'list',
        'reassignment-json-file',
        'wait',
        'wait-ms',
        'format',
      ],
      'elect-leaders': ['topic', 'partition', 'unclean', 'format'],
    };
    const actionOptions = allowed[action];
    if (actionOptions === undefined) throw new UsageError(`unknown action '${action}'`);
    for (const name of Object.keys(values)) {
      if (name !== 'bootstrap' && name !== 'timeout-ms' && !actionOptions.includes(name)) {
        throw new UsageError(`--${name} does not apply to 'topic ${action}'`);
      }
    }
    const bootstrap = bootstrapOption(values.bootstrap);
    const timeoutMs = intOption(values['timeout-ms'], 'timeout-ms', { min: 1 }) ?? 30_000;
    // Validate everything before connecting.
    const run = prepare(action, values, timeoutMs);
    const client = createClient(bootstrap, timeoutMs);
    try {
      return await run(client);
    } finally {
      client.close();
    }
  });
}

function singleTopic(values: Values): string {
  const topics = requireOption(values.topic, 'topic');
  if (topics.length !== 1) throw new UsageError('--topic must be given once');
  return topics[0]!;
}

function prepare(action: string, values: Values, timeoutMs: number): (client: KafkaClient) => Promise<number> {
  switch (action) {
    case 'create': {
      const topic = singleTopic(values);
      const partitions = intOption(values.partitions, 'partitions', { min: 1, max: 0x7fffffff });
      const replicationFactor = intOption(values['replication-factor'], 'replication-factor', { min: 1, max: 0x7fff });
      const configs = (values.config ?? []).map((c) => keyValue('config', c));
      return (client) =>
        createTopic(client, {
          topic,
          partitions,
          replicationFactor,
          configs,
          ifNotExists: values['if-not-exists'] === true,
          validateOnly: values['validate-only'] === true,
          timeoutMs,
        });
    }
    case 'list': {
      const format = formatOption(values.format);
      return (client) => listTopics(client, values['exclude-internal'] === true, format);
    }
    case 'describe': {
      const format = formatOption(values.format);
      return (client) => describeTopics(client, values.topic ?? null, format);
    }
    case 'add-partitions': {
      const topic = singleTopic(values);
      const num = intOption(values.num, 'num', { min: 1, max: 0x7fffffff });
      const total = intOption(values.partitions, 'partitions', { min: 1, max: 0x7fffffff });
      if ((num === undefined) === (total === undefined)) {
        throw new UsageError('add-partitions needs one of --num N (partitions to add) or --partitions TOTAL');
      }
      const count = num === undefined ? { total: total! } : { add: num };
      return (client) => addPartitions(client, topic, count, values['validate-only'] === true, timeoutMs);
    }
    case 'trim': {
      const topic = singleTopic(values);
      const text = requireOption(values.offset, 'offset');
      // DeleteRecords offset -1: the high watermark, i.e. every record.
      const offset = text === 'end' ? LATEST : BigInt(intOption(text, 'offset', { min: 0 })!);
      const partitions = values.partition?.map((p) => intOption(p, 'partition', { min: 0, max: 0x7fffffff })!);
      const format = formatOption(values.format);
      return (client) => trimTopic(client, topic, offset, partitions, format, timeoutMs);
    }
    case 'reassign':
      return prepareReassign(values, timeoutMs);
    case 'elect-leaders': {
      const format = formatOption(values.format);
      const topics = values.topic ?? null;
      const partitions = values.partition?.map((p) => intOption(p, 'partition', { min: 0, max: 0x7fffffff })!);
      if (topics === null && partitions !== undefined) throw new UsageError('--partition needs --topic');
      return async (client) => {
        let wanted: { topic: string; partitions: number[] }[] | null = null;
        if (topics !== null) {
          wanted = [];
          for (const topic of topics) {
            const all = (await waitForTopic(client, topic)).partitions.map((p) => p.partition);
            wanted.push({ topic, partitions: partitions ?? all });
          }
        }
        return electLeaders(client, wanted, values.unclean === true, format);
      };
    }
    case 'delete': {
      const topics = requireOption(values.topic, 'topic');
      return (client) => deleteTopics(client, topics, values['if-exists'] === true, timeoutMs);
    }
    default: {
      const topic = singleTopic(values);
      const sets = (values.set ?? []).map((c) => keyValue('set', c));
      const deletes = values.delete ?? [];
      if (sets.length === 0 && deletes.length === 0) throw new UsageError('alter-config needs --set K=V or --delete K');
      for (const d of deletes)
        if (d === '' || d.includes('=')) throw new UsageError(`--delete: '${d}' is not a config name`);
      return (client) => alterTopicConfig(client, topic, sets, deletes);
    }
  }
}

function prepareReassign(values: Values, timeoutMs: number): (client: KafkaClient) => Promise<number> {
  const waitMs = intOption(values['wait-ms'], 'wait-ms', { min: 1 }) ?? 600_000;
  const wait = values.wait === true;
  if (values.list === true) {
    for (const o of ['topic', 'partition', 'replicas', 'cancel', 'reassignment-json-file', 'wait'] as const)
      if (values[o] !== undefined) throw new UsageError(`--${o} does not go with --list`);
    const format = formatOption(values.format);
    return (client) => listReassignments(client, format);
  }
  if (values.format !== undefined) throw new UsageError('--format goes with --list only');
  const file = values['reassignment-json-file'];
  if (file !== undefined) {
    for (const o of ['topic', 'partition', 'replicas', 'cancel'] as const)
      if (values[o] !== undefined) throw new UsageError(`--${o} does not go with --reassignment-json-file`);
    return async (client) => reassign(client, await readPlanFile(file), { wait, timeoutMs: waitMs });
  }
  const topic = singleTopic(values);
  const partitionText = requireOption(values.partition, 'partition');
  if (partitionText.length !== 1)
    throw new UsageError('--partition must be given once (or use --reassignment-json-file)');
  const partition = intOption(partitionText[0], 'partition', { min: 0, max: 0x7fffffff })!;
  if ((values.replicas === undefined) === (values.cancel !== true))
    throw new UsageError('reassign needs one of --replicas 1,2,3 or --cancel (or --list, --reassignment-json-file)');
  const replicas = values.replicas === undefined ? null : replicasOption(values.replicas);
  return (client) =>
    reassign(client, [{ topic, partition, replicas }], { wait, timeoutMs: Math.max(waitMs, timeoutMs) });
}

interface CreateTopicInput {
  topic: string;
  partitions: number | undefined;
  replicationFactor: number | undefined;
  configs: [string, string][];
  ifNotExists: boolean;
  validateOnly: boolean;
  timeoutMs: number;
}

async function createTopic(client: KafkaClient, input: CreateTopicInput): Promise<number> {
  const conn = await client.connect();
  const version = conn.versionFor(ApiKey.CreateTopics);
  // -1 ("broker default") needs CreateTopics v4 (KIP-464); older brokers get Kafka's old defaults.
  const defaultCount = version >= 4 ? -1 : 1;
  const response = await conn.request(ApiKey.CreateTopics, {
    topics: [
      {
        name: input.topic,
        numPartitions: input.partitions ?? defaultCount,
        replicationFactor: input.replicationFactor ?? defaultCount,
        assignments: [],
        configs: input.configs.map(([name, value]) => ({ name, value })),
      },
    ],
    timeoutMs: input.timeoutMs,
    validateOnly: input.validateOnly,
  });
  const result = response.topics.find((t) => t.name === input.topic) ?? response.topics[0];
  if (result === undefined) throw new KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, 'CreateTopics: empty response');
  if (result.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS && input.ifNotExists) return 0;
  throwIfError(result.errorCode, `cannot create topic '${input.topic}'`, result.errorMessage);
  console.log(input.validateOnly ? `Topic '${input.topic}' would be created.` : `Created topic ${input.topic}.`);
  return 0;
}

async function deleteTopics(
  client: KafkaClient,
  topics: string[],
  ifExists: boolean,
  timeoutMs: number,
): Promise<number> {
  const conn = await client.connect();
  const version = conn.versionFor(ApiKey.DeleteTopics);
  const response = await conn.request(
    ApiKey.DeleteTopics,
    version >= 6 ? { topics: topics.map((name) => ({ name })), timeoutMs } : { topicNames: topics, timeoutMs },
  );
  let exitCode = 0;
  for (const r of response.responses) {
    const name = r.name ?? r.topicId;
    if (r.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION && ifExists) continue;
    if (r.errorCode !== ErrorCode.NONE) {
      console.error(
        `samsa topic: cannot delete topic '${name}': ${errorName(r.errorCode)}${r.errorMessage ? `: ${r.errorMessage}` : ''}`,
      );
      exitCode = 1;
      continue;
    }
    console.log(`Deleted topic ${name}.`);
  }
  return exitCode;
}

async function alterTopicConfig(
  client: KafkaClient,
  topic: string,
  sets: [string, string][],
  deletes: string[],
): Promise<number> {
  const response = await client.request(ApiKey.IncrementalAlterConfigs, {
    resources: [
      {
        resourceType: RESOURCE_TOPIC,
        resourceName: topic,
        configs: [
          ...sets.map(([name, value]) => ({ name, configOperation: OP_SET, value })),
          ...deletes.map((name) => ({ name, configOperation: OP_DELETE, value: null })),
        ],
      },
    ],
    validateOnly: false,
  });
  for (const r of response.responses) {
    throwIfError(r.errorCode, `cannot alter configs of topic '${r.resourceName}'`, r.errorMessage);
  }
  console.log(`Completed updating config for topic ${topic}.`);
  return 0;
}

async function addPartitions(
  client: KafkaClient,
  topic: string,
  count: { add: number } | { total: number },
  validateOnly: boolean,
  timeoutMs: number,
): Promise<number> {
  const current = (await waitForTopic(client, topic)).partitions.length;
  const total = 'add' in count ? current + count.add : count.total;
  if (total <= current) {
    throw new UsageError(`topic '${topic}' has ${current} partitions already; --partitions must be more`);
  }
  const response = await client.request(ApiKey.CreatePartitions, {
    topics: [{ name: topic, count: total, assignments: null }],
    timeoutMs,
    validateOnly,
  });
  for (const r of response.results) throwIfError(r.errorCode, `cannot add partitions to '${r.name}'`, r.errorMessage);
  console.log(
    validateOnly
      ? `Topic '${topic}' would grow from ${current} to ${total} partitions.`
      : `Added ${total - current} partition(s) to topic ${topic}: now ${total}.`,
  );
  return 0;
}

async function trimTopic(
  client: KafkaClient,
  topic: string,
  offset: bigint,
  requested: number[] | undefined,
  format: OutputFormat,
  timeoutMs: number,
): Promise<number> {
  const t = await waitForTopic(client, topic);
  const all = t.partitions.map((p) => p.partition);
  for (const p of requested ?? []) {
    if (!all.includes(p))
      throw new UsageError(`--partition ${p}: topic '${topic}' has partitions 0..${all.length - 1}`);
  }
  const partitions = requested ?? all;
  const byLeader = new Map<number, number[]>();
  for (const p of partitions) {
    const leader = client.leaderOf(topic, p);
    if (!byLeader.has(leader)) byLeader.set(leader, []);
    byLeader.get(leader)!.push(p);
  }
  const results: { topic: string; partition: number; lowWatermark: bigint | null; error: string | null }[] = [];
  for (const [leader, list] of byLeader) {
    if (leader < 0) {
      for (const p of list) results.push({ topic, partition: p, lowWatermark: null, error: 'LEADER_NOT_AVAILABLE' });
      continue;
    }
    const response = await client.requestTo(leader, ApiKey.DeleteRecords, {
      topics: [{ name: topic, partitions: list.map((partitionIndex) => ({ partitionIndex, offset })) }],
      timeoutMs,
    });
    for (const rt of response.topics) {
      for (const p of rt.partitions) {
        const ok = p.errorCode === ErrorCode.NONE;
        results.push({
          topic,
          partition: p.partitionIndex,
          lowWatermark: ok ? p.lowWatermark : null,
          error: ok ? null : errorName(p.errorCode),
        });
      }
    }
  }
  results.sort((a, b) => a.partition - b.partition);
  if (format === 'json') {
    printJson({ partitions: results });
  } else {
    printTable(
      ['TOPIC', 'PARTITION', 'LOW-WATERMARK', 'ERROR'],
      results.map((r) => [
        r.topic,
        String(r.partition),
        r.lowWatermark === null ? '-' : String(r.lowWatermark),
        r.error ?? '',
      ]),
    );
  }
  const failed = results.filter((r) => r.error !== null);
  for (const r of failed) console.error(`samsa topic: cannot trim ${topic}-${r.partition}: ${r.error}`);
  return failed.length > 0 ? 1 : 0;
}
