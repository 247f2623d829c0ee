/**
 * `samsa cluster info`: the cluster id, the controller, the brokers and, per broker, whether it
 * answers, its rack, how many partitions it holds and leads, and the API versions it supports and
 * the ones this client would use — what `kcat -L` and kafka-broker-api-versions.sh show together.
 * Metadata for the cluster, then ApiVersions on a connection to each broker; only standard
 * requests, so it works against any Kafka-compatible cluster.
 *
 * `samsa cluster up`: a development cluster on this machine (cluster-up.ts).
 *
 * `samsa cluster drain --broker N`: moves every replica off broker N (reassign-command.ts).
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
  requireOption,
  runCommand,
  UsageError,
} from './cli-common.ts';
import { CLUSTER_UP_OPTIONS, clusterUp } from './cluster-up.ts';
import { drainBroker } from './reassign-command.ts';

export const CLUSTER_USAGE = `Usage: samsa cluster info [options]
       samsa cluster up --brokers N [options]
       samsa cluster drain --broker N [options]

info: prints the cluster id, the controller, the topic and partition counts and, per broker,
whether it answers, its rack, the partitions it holds and leads, and each API it supports with
its version range and the version samsa uses (like kcat -L and kafka-broker-api-versions.sh).

${BOOTSTRAP_USAGE}
${FORMAT_USAGE}
  --timeout-ms MS          request timeout (default 30000)

JSON fields: clusterId, controllerId (-1: none), topicCount, partitionCount,
offlinePartitionCount (partitions without a leader), underReplicatedPartitionCount (fewer in-sync
replicas than replicas), brokers[]: nodeId, host, port (null for a
broker named as a replica but absent from the broker list), rack, listed (in the broker list),
isController, reachable (answered ApiVersions), error (why not), partitionCount (replicas on it),
leaderCount (partitions it leads), apiVersions[]: apiKey, name, minVersion, maxVersion,
usableVersion (-1: none both sides support).

up: a development cluster on this machine, in the foreground: an etcd from PATH for the
metadata (data in DIR/etcd, log DIR/etcd.log) and N brokers (node ids 1..N) on 127.0.0.1,
ports FIRST.., data in DIR/broker-I, logs DIR/broker-I.log. Prints the bootstrap list once every
broker answers and lists all N; Ctrl-C or SIGTERM stops the brokers, then etcd.

  --brokers N              how many brokers (1..100)
  --data-dir DIR           data and logs (default ./samsa-cluster); a later run reuses them
  --port FIRST             first broker port (default 9092), the others follow
  --http-port FIRST|none   HTTP listeners (/metrics, /health, /ready) from FIRST (default none)
  --etcd HOST:PORT         client address of the etcd started (default 127.0.0.1, a free port)
  --metadata etcd://HOST:PORT[,HOST:PORT...][/PREFIX]
                           use this running etcd instead of starting one
  --override KEY=VALUE     a broker config key for every broker (repeatable)
  --timeout-ms MS          how long to wait for the cluster to form (default 30000)

drain: moves every replica off broker N (to retire or replace it): each partition with a
replica there gets a live broker not yet among its replicas in its place (the same rack first,
then a rack the partition does not use yet, then the broker with the fewest replicas), through
partition reassignments (KIP-455); prints progress until no partition has a replica on N.

  --broker N               the broker to empty
  --no-wait                submit the moves and exit without waiting for them
  --wait-ms MS             how long to wait for the moves (default 600000)
${BOOTSTRAP_USAGE}`;

const OPTIONS = {
  bootstrap: { type: 'string' },
  'timeout-ms': { type: 'string' },
  format: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const DRAIN_OPTIONS = {
  bootstrap: { type: 'string' },
  'timeout-ms': { type: 'string' },
  broker: { type: 'string' },
  'no-wait': { type: 'boolean' },
  'wait-ms': { type: 'string' },
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
  /** null: named as a replica but not in the broker list (a broker that is down, in KRaft). */
  host: string | null;
  port: number | null;
  rack: string | null;
  listed: boolean;
  isController: boolean;
  reachable: boolean;
  error?: string;
  /** Partitions with a replica on this broker. */
  partitionCount: number;
  /** Partitions this broker leads. */
  leaderCount: number;
  apiVersions: ApiVersionInfo[];
}

export interface ClusterInfo {
  clusterId: string | null;
  controllerId: number;
  topicCount: number;
  partitionCount: number;
  offlinePartitionCount: number;
  underReplicatedPartitionCount: number;
  brokers: BrokerInfo[];
}

export function clusterCommand(argv: string[]): Promise<number> {
  return runCommand('cluster', CLUSTER_USAGE, async () => {
    const [action, ...rest] = argv;
    if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
      console.log(CLUSTER_USAGE);
      return action === undefined ? 2 : 0;
    }
    if (action === 'up') {
      const { values } = parseCommandArgs(rest, CLUSTER_UP_OPTIONS);
      if (values.help === true) {
        console.log(CLUSTER_USAGE);
        return 0;
      }
      return clusterUp(values);
    }
    if (action === 'drain') {
      const { values } = parseCommandArgs(rest, DRAIN_OPTIONS);
      if (values.help === true) {
        console.log(CLUSTER_USAGE);
        return 0;
      }
      const broker = intOption(requireOption(values.broker, 'broker'), 'broker', { min: 0, max: 0x7fffffff })!;
      const waitMs = intOption(values['wait-ms'], 'wait-ms', { min: 1 }) ?? 600_000;
      const timeoutMs = intOption(values['timeout-ms'], 'timeout-ms', { min: 1 }) ?? 30_000;
      const client = createClient(bootstrapOption(values.bootstrap), timeoutMs);
      try {
        return await drainBroker(client, broker, { wait: values['no-wait'] !== true, timeoutMs: waitMs });
      } finally {
        client.close();
      }
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
  // Replica and leader counts from the partitions, so a broker that is down (absent from the
  // broker list, as KRaft reports it, or listed but not answering) still shows what it holds.
  const replicas = new Map<number, number>();
  const leaders = new Map<number, number>();
  let offline = 0;
  let underReplicated = 0;
  for (const t of topics) {
    for (const p of t.partitions) {
      if (p.isr.length < p.replicas.length) underReplicated++;
      for (const r of p.replicas) replicas.set(r, (replicas.get(r) ?? 0) + 1);
      if (p.leaderId >= 0) leaders.set(p.leaderId, (leaders.get(p.leaderId) ?? 0) + 1);
      else offline++;
    }
  }
  const ids = new Set([...md.brokers.keys(), ...replicas.keys()]);
  // Probed together: one broker that does not answer costs one connect timeout, not one each.
  const brokers = await Promise.all(
    [...ids]
      .sort((x, y) => x - y)
      .map(async (nodeId): Promise<BrokerInfo> => {
        const b = md.brokers.get(nodeId);
        const info: BrokerInfo = {
          nodeId,
          host: b?.host ?? null,
          port: b?.port ?? null,
          rack: b?.rack ?? null,
          listed: b !== undefined,
          isController: nodeId === md.controllerId,
          reachable: false,
          partitionCount: replicas.get(nodeId) ?? 0,
          leaderCount: leaders.get(nodeId) ?? 0,
          apiVersions: [],
        };
        if (b === undefined) {
          info.error = 'not in the broker list (down?)';
          return info;
        }
        try {
          const conn = await client.connection(nodeId);
          info.reachable = true;
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
        return info;
      }),
  );
  return {
    clusterId: md.clusterId,
    controllerId: md.controllerId,
    topicCount: topics.length,
    partitionCount: topics.reduce((n, t) => n + t.partitions.length, 0),
    offlinePartitionCount: offline,
    underReplicatedPartitionCount: underReplicated,
    brokers,
  };
}

function address(b: BrokerInfo): string {
  if (b.host === null) return '-';
  return `${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`;
}

function print(info: ClusterInfo, format: OutputFormat): void {
  if (format === 'json') {
    printJson(info);
    return;
  }
  const unreachable = info.brokers.filter((b) => !b.reachable).length;
  const lines = [
    `Cluster ID: ${info.clusterId ?? '(none)'}`,
    `Controller: ${info.controllerId < 0 ? 'none' : info.controllerId}`,
    `Topics: ${info.topicCount} (${info.partitionCount} partitions${info.offlinePartitionCount > 0 ? `, ${info.offlinePartitionCount} without a leader` : ''}${info.underReplicatedPartitionCount > 0 ? `, ${info.underReplicatedPartitionCount} under-replicated` : ''})`,
    `Brokers: ${info.brokers.length}${unreachable > 0 ? ` (${unreachable} unreachable)` : ''}`,
  ];
  const rows = info.brokers.map((b) => [
    String(b.nodeId),
    address(b),
    b.rack ?? '-',
    String(b.partitionCount),
    String(b.leaderCount),
    [b.reachable ? 'up' : `unreachable: ${b.error ?? ''}`, ...(b.isController ? ['controller'] : [])].join(', '),
  ]);
  const header = ['ID', 'ADDRESS', 'RACK', 'PARTITIONS', 'LEADERS', 'STATUS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows])
    lines.push(`  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`.trimEnd());
  for (const b of info.brokers) {
    if (b.host === null) continue;
    lines.push('', `${address(b)} (id: ${b.nodeId} rack: ${b.rack ?? 'null'}) -> (`);
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
