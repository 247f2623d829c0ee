/**
 * `samsa topic reassign`, `samsa topic elect-leaders` and `samsa cluster drain`: replica moves
 * (KIP-455 AlterPartitionReassignments / ListPartitionReassignments) and leader elections
 * (ElectLeaders) over the Kafka protocol, sent to the controller as kafka-reassign-partitions.sh
 * and kafka-leader-election.sh send them, so they work against any Kafka-compatible cluster.
 * A drain picks, for each partition with a replica on the broker, a live broker not yet among its
 * replicas (the same rack first, then a rack the partition does not use yet, then the least
 * loaded) and waits until every replica has moved.
 */
import { readFile } from 'node:fs/promises';
import { ApiKey } from '../network/api-message-types.ts';
import { type ClusterMetadata, type KafkaClient, throwIfError } from '../network/kafka-client.ts';
import { ErrorCode, errorName } from '../protocol/error-codes.ts';
import { type OutputFormat, printJson, printTable, UsageError } from './cli-common.ts';

/** One partition's target replicas (kafka-reassign-partitions.sh's plan entry). */
export interface PlannedMove {
  topic: string;
  partition: number;
  replicas: number[];
}

/** How often a waiting command polls the reassignments in progress. */
const POLL_MS = 1000;

/** `--replicas 1,2,3`: broker ids, each once. */
export function replicasOption(text: string): number[] {
  const ids = text.split(',').map((s) => s.trim());
  if (ids.some((s) => !/^\d+$/.test(s))) throw new UsageError(`--replicas: '${text}' is not a list of broker ids`);
  const out = ids.map(Number);
  if (new Set(out).size !== out.length) throw new UsageError(`--replicas: '${text}' names a broker twice`);
  return out;
}

/**
 * A kafka-reassign-partitions.sh plan: {"version":1,"partitions":[{"topic":"t","partition":0,
 * "replicas":[1,2]}]} (log_dirs are not supported and must be "any" if given).
 */
export async function readPlanFile(path: string): Promise<PlannedMove[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--reassignment-json-file: cannot read ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--reassignment-json-file: ${path} is not JSON: ${(err as Error).message}`);
  }
  const partitions = (doc as { partitions?: unknown })?.partitions;
  if (!Array.isArray(partitions) || partitions.length === 0)
    throw new UsageError(`--reassignment-json-file: ${path} has no "partitions" list`);
  return partitions.map((p: unknown, i) => {
    const e = p as { topic?: unknown; partition?: unknown; replicas?: unknown; log_dirs?: unknown };
    const ok =
      typeof e?.topic === 'string' &&
      Number.isInteger(e.partition) &&
      Array.isArray(e.replicas) &&
      e.replicas.every((r) => Number.isInteger(r) && (r as number) >= 0);
    if (!ok) throw new UsageError(`--reassignment-json-file: partitions[${i}] needs "topic", "partition", "replicas"`);
    if (Array.isArray(e.log_dirs) && e.log_dirs.some((d) => d !== 'any'))
      throw new UsageError(`--reassignment-json-file: partitions[${i}]: log_dirs other than "any" are not supported`);
    return { topic: e.topic as string, partition: e.partition as number, replicas: e.replicas as number[] };
  });
}

/** The controller's node id (the admin requests go there, as Kafka's admin client sends them). */
async function controllerOf(client: KafkaClient): Promise<number> {
  const md = await client.metadata([]);
  if (md.controllerId < 0) throw new UsageError('the cluster has no active controller right now; retry shortly');
  return md.controllerId;
}

/** Submits the moves (null replicas: cancel); the failed ones, as "topic-partition: ERROR: message". */
export async function submitReassignments(
  client: KafkaClient,
  moves: readonly { topic: string; partition: number; replicas: number[] | null }[],
  timeoutMs: number,
): Promise<string[]> {
  const byTopic = new Map<string, { partitionIndex: number; replicas: number[] | null }[]>();
  for (const m of moves) {
    const list = byTopic.get(m.topic) ?? [];
    list.push({ partitionIndex: m.partition, replicas: m.replicas });
    byTopic.set(m.topic, list);
  }
  const response = await client.requestTo(await controllerOf(client), ApiKey.AlterPartitionReassignments, {
    timeoutMs,
    topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
  });
  throwIfError(response.errorCode, 'cannot reassign partitions', response.errorMessage);
  const failed: string[] = [];
  for (const t of response.responses)
    for (const p of t.partitions)
      if (p.errorCode !== ErrorCode.NONE)
        failed.push(
          `${t.name}-${p.partitionIndex}: ${errorName(p.errorCode)}${p.errorMessage ? `: ${p.errorMessage}` : ''}`,
        );
  return failed;
}

export interface OngoingMove {
  topic: string;
  partition: number;
  replicas: number[];
  addingReplicas: number[];
  removingReplicas: number[];
}

export async function ongoingReassignments(client: KafkaClient): Promise<OngoingMove[]> {
  const response = await client.requestTo(await controllerOf(client), ApiKey.ListPartitionReassignments, {
    timeoutMs: 30_000,
    topics: null,
  });
  throwIfError(response.errorCode, 'cannot list reassignments', response.errorMessage);
  const out: OngoingMove[] = [];
  for (const t of response.topics)
    for (const p of t.partitions)
      out.push({
        topic: t.name,
        partition: p.partitionIndex,
        replicas: p.replicas,
        addingReplicas: p.addingReplicas,
        removingReplicas: p.removingReplicas,
      });
  return out.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}

/** `samsa topic reassign --list`. */
export async function listReassignments(client: KafkaClient, format: OutputFormat): Promise<number> {
  const moves = await ongoingReassignments(client);
  if (format === 'json') {
    printJson({ reassignments: moves });
    return 0;
  }
  if (moves.length === 0) {
    console.log('No partition reassignment is in progress.');
    return 0;
  }
  printTable(
    ['TOPIC', 'PARTITION', 'REPLICAS', 'ADDING', 'REMOVING'],
    moves.map((m) => [
      m.topic,
      String(m.partition),
      m.replicas.join(','),
      m.addingReplicas.join(',') || '-',
      m.removingReplicas.join(',') || '-',
    ]),
  );
  return 0;
}

/** `samsa topic reassign`: submits the plan, and with `wait` waits until it is done. */
export async function reassign(
  client: KafkaClient,
  moves: readonly { topic: string; partition: number; replicas: number[] | null }[],
  options: { wait: boolean; timeoutMs: number },
): Promise<number> {
  const failed = await submitReassignments(client, moves, options.timeoutMs);
  for (const f of failed) console.error(`samsa topic: cannot reassign ${f}`);
  const started = moves.filter((m) => !failed.some((f) => f.startsWith(`${m.topic}-${m.partition}:`)));
  for (const m of started)
    console.log(
      m.replicas === null
        ? `Cancelled the reassignment of ${m.topic}-${m.partition}.`
        : `Reassignment of ${m.topic}-${m.partition} to replicas ${m.replicas.join(',')} started.`,
    );
  if (options.wait && started.length > 0) {
    const keys = new Set(started.map((m) => `${m.topic}-${m.partition}`));
    await waitUntil(async () => {
      const left = (await ongoingReassignments(client)).filter((m) => keys.has(`${m.topic}-${m.partition}`));
      return { done: left.length === 0, progress: `${keys.size - left.length}/${keys.size} partitions moved` };
    }, options.timeoutMs);
    console.log(`Reassignment of ${keys.size} partition(s) complete.`);
  }
  return failed.length > 0 ? 1 : 0;
}

/** Polls `check`, printing its progress when it changes, until done or `timeoutMs` passed. */
async function waitUntil(check: () => Promise<{ done: boolean; progress: string }>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const { done, progress } = await check();
    if (progress !== last) console.log(progress);
    last = progress;
    if (done) return;
    if (Date.now() > deadline)
      throw new UsageError(
        `not done after ${timeoutMs} ms (${progress}); it goes on: see 'samsa topic reassign --list'`,
      );
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * The moves that take every replica off `brokerId`: the replica is replaced in place (keeping
 * the preferred leader's position) by a live broker not yet among the partition's replicas,
 * preferring the drained broker's rack, then a rack the partition does not use yet, then the
 * broker holding the fewest replicas. Throws when a partition has no such broker.
 */
export function planDrain(md: ClusterMetadata, brokerId: number): PlannedMove[] {
  const live = [...md.brokers.values()].filter((b) => b.nodeId !== brokerId);
  const rackOf = new Map([...md.brokers.values()].map((b) => [b.nodeId, b.rack]));
  const load = new Map(live.map((b) => [b.nodeId, 0]));
  for (const t of md.topics.values())
    for (const p of t.partitions) for (const r of p.replicas) if (load.has(r)) load.set(r, load.get(r)! + 1);
  const drainedRack = rackOf.get(brokerId) ?? null;
  const moves: PlannedMove[] = [];
  const topics = [...md.topics.values()].filter((t) => t.errorCode === ErrorCode.NONE);
  topics.sort((a, b) => a.name.localeCompare(b.name));
  for (const t of topics) {
    for (const p of t.partitions) {
      if (!p.replicas.includes(brokerId)) continue;
      const usedRacks = new Set(p.replicas.filter((r) => r !== brokerId).map((r) => rackOf.get(r) ?? null));
      const candidates = live.filter((b) => !p.replicas.includes(b.nodeId));
      if (candidates.length === 0)
        throw new UsageError(
          `cannot drain broker ${brokerId}: ${t.name}-${p.partition} has replicas ${p.replicas.join(',')} and no other live broker can take one`,
        );
      const score = (b: { nodeId: number; rack: string | null }): [number, number, number] => [
        drainedRack !== null && b.rack === drainedRack ? 0 : 1,
        b.rack !== null && !usedRacks.has(b.rack) ? 0 : 1,
        load.get(b.nodeId)!,
      ];
      candidates.sort((x, y) => {
        const [a, b] = [score(x), score(y)];
        return a[0] - b[0] || a[1] - b[1] || a[2] - b[2] || x.nodeId - y.nodeId;
      });
      const pick = candidates[0]!.nodeId;
      load.set(pick, load.get(pick)! + 1);
      moves.push({
        topic: t.name,
        partition: p.partition,
        replicas: p.replicas.map((r) => (r === brokerId ? pick : r)),
      });
    }
  }
  return moves;
}

/** `samsa cluster drain --broker N`: moves every replica off broker N and waits until it is done. */
export async function drainBroker(
  client: KafkaClient,
  brokerId: number,
  options: { wait: boolean; timeoutMs: number },
): Promise<number> {
  const md = await client.metadata(null);
  if (
    !md.brokers.has(brokerId) &&
    ![...md.topics.values()].some((t) => t.partitions.some((p) => p.replicas.includes(brokerId)))
  )
    throw new UsageError(`--broker ${brokerId}: no such broker in the cluster`);
  const moves = planDrain(md, brokerId);
  if (moves.length === 0) {
    console.log(`Broker ${brokerId} holds no replica: nothing to move.`);
    return 0;
  }
  const failed = await submitReassignments(client, moves, options.timeoutMs);
  for (const f of failed) console.error(`samsa cluster: cannot move ${f}`);
  if (failed.length > 0) return 1;
  console.log(`Moving ${moves.length} replica(s) off broker ${brokerId}.`);
  if (!options.wait) return 0;
  await waitUntil(async () => {
    const now = await client.metadata(null);
    let left = 0;
    for (const t of now.topics.values()) for (const p of t.partitions) if (p.replicas.includes(brokerId)) left++;
    return {
      done: left === 0,
      progress: `${moves.length - left}/${moves.length} partitions moved off broker ${brokerId}`,
    };
  }, options.timeoutMs);
  console.log(`Broker ${brokerId} holds no replica now.`);
  return 0;
}

/** `samsa topic elect-leaders`: preferred (or unclean) elections, printed as kafka-leader-election.sh does. */
export async function electLeaders(
  client: KafkaClient,
  partitions: { topic: string; partitions: number[] }[] | null,
  unclean: boolean,
  format: OutputFormat,
): Promise<number> {
  const response = await client.requestTo(await controllerOf(client), ApiKey.ElectLeaders, {
    electionType: unclean ? 1 : 0,
    topicPartitions: partitions,
    timeoutMs: 30_000,
  });
  throwIfError(response.errorCode, 'cannot elect leaders');
  const results: { topic: string; partition: number; error: string | null; message: string | null }[] = [];
  for (const t of response.replicaElectionResults)
    for (const p of t.partitionResult)
      results.push({
        topic: t.topic,
        partition: p.partitionId,
        error: p.errorCode === ErrorCode.NONE ? null : errorName(p.errorCode),
        message: p.errorMessage,
      });
  results.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
  const failed = results.filter((r) => r.error !== null && r.error !== 'ELECTION_NOT_NEEDED');
  if (format === 'json') {
    printJson({ electionType: unclean ? 'unclean' : 'preferred', partitions: results });
    return failed.length > 0 ? 1 : 0;
  }
  const names = (rs: typeof results) => rs.map((r) => `${r.topic}-${r.partition}`).join(', ');
  const elected = results.filter((r) => r.error === null);
  const notNeeded = results.filter((r) => r.error === 'ELECTION_NOT_NEEDED');
  const type = unclean ? 'UNCLEAN' : 'PREFERRED';
  if (elected.length > 0)
    console.log(`Successfully completed leader election (${type}) for partitions ${names(elected)}`);
  if (notNeeded.length > 0) console.log(`Valid replica already elected for partitions ${names(notNeeded)}`);
  if (results.length === 0) console.log('No partition needed a leader election.');
  for (const r of failed)
    console.error(
      `samsa topic: election for ${r.topic}-${r.partition} failed: ${r.error}${r.message ? `: ${r.message}` : ''}`,
    );
  return failed.length > 0 ? 1 : 0;
}
