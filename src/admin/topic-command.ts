/**
 * `samsa topic create|list|describe|delete|alter-config`: topic administration over the Kafka
 * protocol (CreateTopics, Metadata, DescribeConfigs, DeleteTopics, IncrementalAlterConfigs), so
 * it works against any Kafka-compatible broker. Output follows kafka-topics.sh / kafka-configs.sh.
 */

import { ApiKey } from '../network/api-message-types.ts';
import { type KafkaClient, type TopicMetadata, throwIfError } from '../network/kafka-client.ts';
import { ErrorCode, errorName, KafkaError } from '../protocol/error-codes.ts';
import {
  BOOTSTRAP_USAGE,
  bootstrapOption,
  createClient,
  intOption,
  keyValue,
  parseCommandArgs,
  requireOption,
  runCommand,
  UsageError,
} from './cli-common.ts';

export const TOPIC_USAGE = `Usage: samsa topic <action> [options]

Actions:
  create        --topic T [--partitions N] [--replication-factor R] [--config K=V]...
                [--if-not-exists] [--validate-only]
  list          [--exclude-internal]
  describe      [--topic T]... (every topic when none is given)
  delete        --topic T [--topic T2]... [--if-exists]
  alter-config  --topic T [--set K=V]... [--delete K]...

Options:
${BOOTSTRAP_USAGE}
  --timeout-ms MS          request timeout (default 30000)
  --partitions N           partition count (default: the broker's num.partitions)
  --replication-factor R   replicas per partition (default: the broker's default.replication.factor)
  --config K=V             topic config override at creation (repeatable)
  --set K=V                set a topic config (repeatable)
  --delete K               remove a topic config override, back to the default (repeatable)`;

/** DescribeConfigs / IncrementalAlterConfigs resource type for topics. */
const RESOURCE_TOPIC = 2;
/** ConfigSource DYNAMIC_TOPIC_CONFIG: a per-topic override. */
const SOURCE_DYNAMIC_TOPIC_CONFIG = 1;
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
      list: ['exclude-internal'],
      describe: ['topic'],
      delete: ['topic', 'if-exists'],
      'alter-config': ['topic', 'set', 'delete'],
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
    case 'list':
      return (client) => listTopics(client, values['exclude-internal'] === true);
    case 'describe':
      return (client) => describeTopics(client, values.topic ?? null);
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

async function listTopics(client: KafkaClient, excludeInternal: boolean): Promise<number> {
  const md = await client.metadata(null);
  const names = [...md.topics.values()]
    .filter((t) => t.errorCode === ErrorCode.NONE && !(excludeInternal && t.isInternal))
    .map((t) => t.name)
    .sort();
  if (names.length > 0) console.log(names.join('\n'));
  return 0;
}

async function describeTopics(client: KafkaClient, topics: string[] | null): Promise<number> {
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
  const overrides = await topicConfigOverrides(
    client,
    found.map((t) => t.name),
  );
  const dirErrors = await logDirErrors(client, found);
  const lines: string[] = [];
  for (const t of found) {
    const rf = t.partitions[0]?.replicas.length ?? 0;
    const configs = overrides.get(t.name);
    const configText = configs === undefined ? '' : configs.map(([k, v]) => `${k}=${v ?? ''}`).join(',');
    lines.push(
      `Topic: ${t.name}\tTopicId: ${t.topicId}\tPartitionCount: ${t.partitions.length}\tReplicationFactor: ${rf}\tConfigs: ${configText}`,
    );
    for (const p of t.partitions) {
      let line = `\tTopic: ${t.name}\tPartition: ${p.partition}\tLeader: ${p.leaderId < 0 ? 'none' : p.leaderId}\tReplicas: ${p.replicas.join(',')}\tIsr: ${p.isr.join(',')}`;
      if (p.offlineReplicas.length > 0) line += `\tOffline: ${p.offlineReplicas.join(',')}`;
      if (p.errorCode !== ErrorCode.NONE) line += `\tError: ${errorName(p.errorCode)}`;
      const dirError = dirErrors.get(`${p.leaderId}/${t.name}/${p.partition}`);
      if (dirError !== undefined) line += `\tLogDirError: ${errorName(dirError)}`;
      lines.push(line);
    }
  }
  if (lines.length > 0) console.log(lines.join('\n'));
  return exitCode;
}

/**
 * Partitions whose leader's log directory answers DescribeLogDirs with an error (a full disk, an
 * I/O error), by `leader/topic/partition`, each failing directory also named on stderr: such a
 * partition has a leader but does not take appends. Brokers without DescribeLogDirs, or that
 * cannot be reached, add nothing.
 */
async function logDirErrors(client: KafkaClient, topics: readonly TopicMetadata[]): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  const leaders = new Set(topics.flatMap((t) => t.partitions.map((p) => p.leaderId)).filter((id) => id >= 0));
  for (const nodeId of leaders) {
    let response: Awaited<ReturnType<typeof describeLogDirs>>;
    try {
      response = await describeLogDirs(client, nodeId, topics);
    } catch {
      continue;
    }
    for (const d of response?.results ?? []) {
      if (d.errorCode === ErrorCode.NONE) continue;
      const usable = d.usableBytes >= 0n ? ` with ${d.usableBytes} bytes usable` : '';
      console.error(
        `samsa topic: broker ${nodeId} log directory ${d.logDir}: ${errorName(d.errorCode)}${usable}; its partitions do not take appends until it is fixed (see the broker's log)`,
      );
      for (const t of d.topics) {
        for (const p of t.partitions) result.set(`${nodeId}/${t.name}/${p.partitionIndex}`, d.errorCode);
      }
    }
  }
  return result;
}

async function describeLogDirs(client: KafkaClient, nodeId: number, topics: readonly TopicMetadata[]) {
  const conn = await client.connection(nodeId);
  if (!conn.supports(ApiKey.DescribeLogDirs)) return undefined;
  return conn.request(ApiKey.DescribeLogDirs, {
    topics: topics.map((t) => ({ topic: t.name, partitions: t.partitions.map((p) => p.partition) })),
  });
}

/**
 * Per-topic config overrides (source DYNAMIC_TOPIC_CONFIG) via DescribeConfigs. A broker without
 * DescribeConfigs yields no overrides rather than an error: the partition layout is still useful.
 */
async function topicConfigOverrides(
  client: KafkaClient,
  topics: string[],
): Promise<Map<string, [string, string | null][]>> {
  const result = new Map<string, [string, string | null][]>();
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
    const overrides = r.configs
      // configSource is -1 in DescribeConfigs v0, which only has isDefault.
      .filter((c) => c.configSource === SOURCE_DYNAMIC_TOPIC_CONFIG || (c.configSource === -1 && !c.isDefault))
      .map((c): [string, string | null] => [c.name, c.isSensitive ? '(sensitive)' : c.value])
      .sort((a, b) => a[0].localeCompare(b[0]));
    result.set(r.resourceName, overrides);
  }
  return result;
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
