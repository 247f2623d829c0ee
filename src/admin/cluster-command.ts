/**
 * `samsa cluster info`: the cluster id, the controller, the brokers and, per broker, the API
 * versions it supports and the ones this client would use — what `kcat -L` and
 * kafka-broker-api-versions.sh show together. Metadata for the cluster, then ApiVersions on a
 * connection to each broker.
 */
import { type KafkaClient, negotiateVersion } from '../network/kafka-client.ts';
import { ErrorCode } from '../protocol/error-codes.ts';
import { apiKeyInfo } from '../protocol/messages/api-keys.ts';
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
  runCommand,
  UsageError,
} from './cli-common.ts';

export const CLUSTER_USAGE = `Usage: samsa cluster info [options]

Prints the cluster id, the controller, the brokers, the topic and partition counts and, per
broker, each API it supports with its version range and the version samsa uses (like kcat -L
and kafka-broker-api-versions.sh).

Options:
${BOOTSTRAP_USAGE}
${FORMAT_USAGE}
  --timeout-ms MS          request timeout (default 30000)

JSON fields: clusterId, controllerId, topicCount, partitionCount, brokers[]: nodeId, host, port,
rack, isController, error (when unreachable), apiVersions[]: apiKey, name, minVersion,
maxVersion, usableVersion (-1: none both sides support).`;

const OPTIONS = {
  bootstrap: { type: 'string' },
  'timeout-ms': { type: 'string' },
  format: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ApiVersionInfo {
  apiKey: number;
  name: string;
  minVersion: number;
  maxVersion: number;
  usableVersion: number;
}

export interface BrokerInfo {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
  isController: boolean;
  error?: string;
  apiVersions: ApiVersionInfo[];
}

export interface ClusterInfo {
  clusterId: string | null;
  controllerId: number;
  topicCount: number;
  partitionCount: number;
  brokers: BrokerInfo[];
}

export function clusterCommand(argv: string[]): Promise<number> {
  return runCommand('cluster', CLUSTER_USAGE, async () => {
    const [action, ...rest] = argv;
    if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
      console.log(CLUSTER_USAGE);
      return action === undefined ? 2 : 0;
    }
    const { values } = parseCommandArgs(rest, OPTIONS);
    if (values.help === true) {
      console.log(CLUSTER_USAGE);
      return 0;
    }
    if (action !== 'info') throw new UsageError(`unknown action '${action}'`);
    const bootstrap = bootstrapOption(values.bootstrap);
    const format = formatOption(values.format);
    const timeoutMs = intOption(values['timeout-ms'], 'timeout-ms', { min: 1 }) ?? 30_000;
    const client = createClient(bootstrap, timeoutMs);
    try {
      print(await clusterInfo(client), format);
      return 0;
    } finally {
      client.close();
    }
  });
}

export async function clusterInfo(client: KafkaClient): Promise<ClusterInfo> {
  const md = await client.metadata(null);
  const topics = [...md.topics.values()].filter((t) => t.errorCode === ErrorCode.NONE);
  const brokers: BrokerInfo[] = [];
  for (const b of [...md.brokers.values()].sort((x, y) => x.nodeId - y.nodeId)) {
    const info: BrokerInfo = {
      nodeId: b.nodeId,
      host: b.host,
      port: b.port,
      rack: b.rack,
      isController: b.nodeId === md.controllerId,
      apiVersions: [],
    };
    try {
      const conn = await client.connection(b.nodeId);
      for (const [apiKey, range] of [...conn.apiVersions].sort((x, y) => x[0] - y[0])) {
        info.apiVersions.push({
          apiKey,
          name: apiKeyInfo(apiKey)?.name ?? `Unknown(${apiKey})`,
          minVersion: range.minVersion,
          maxVersion: range.maxVersion,
          usableVersion: negotiateVersion(apiKey, range),
        });
      }
    } catch (err) {
      info.error = (err as Error).message;
    }
    brokers.push(info);
  }
  return {
    clusterId: md.clusterId,
    controllerId: md.controllerId,
    topicCount: topics.length,
    partitionCount: topics.reduce((n, t) => n + t.partitions.length, 0),
    brokers,
  };
}

function print(info: ClusterInfo, format: OutputFormat): void {
  if (format === 'json') {
    printJson(info);
    return;
  }
  const lines = [
    `Cluster ID: ${info.clusterId ?? '(none)'}`,
    `Controller: ${info.controllerId < 0 ? 'none' : info.controllerId}`,
    `Topics: ${info.topicCount} (${info.partitionCount} partitions)`,
    `Brokers: ${info.brokers.length}`,
  ];
  for (const b of info.brokers) {
    lines.push(
      `  broker ${b.nodeId} at ${b.host}:${b.port}${b.rack === null ? '' : ` rack ${b.rack}`}${b.isController ? ' (controller)' : ''}`,
    );
  }
  for (const b of info.brokers) {
    lines.push('', `${b.host}:${b.port} (id: ${b.nodeId} rack: ${b.rack ?? 'null'}) -> (`);
    if (b.error !== undefined) lines.push(`\tunreachable: ${b.error}`);
    lines.push(
      b.apiVersions
        .map(
          (a) =>
            `\t${a.name}(${a.apiKey}): ${a.minVersion} to ${a.maxVersion} [${a.usableVersion < 0 ? 'unusable' : `usable: ${a.usableVersion}`}]`,
        )
        .join(',\n'),
      ')',
    );
  }
  console.log(lines.join('\n'));
}
