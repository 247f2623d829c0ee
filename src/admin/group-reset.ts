/**
 * `samsa group reset-offsets`: plans new committed offsets for a group's partitions (earliest,
 * latest, an offset, a shift, or by time through ListOffsets), clamped to the log as
 * kafka-consumer-groups.sh does, and commits them with --execute (OffsetCommit, the group must
 * have no members). Shows progress over many partitions on a terminal.
 */
import { ApiKey } from '../network/api-message-types.ts';
import { type KafkaClient, throwIfError } from '../network/kafka-client.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { intOption, UsageError } from './cli-common.ts';
import { coordinatorFor, whileLoading } from './group-coordinator.ts';
import { committedOffsets, describeOne } from './group-describe.ts';
import { EARLIEST, LATEST, listOffsets } from './list-offsets.ts';
import { progress } from './progress.ts';

export type ResetSpec =
  | { kind: 'timestamp'; timestamp: bigint }
  | { kind: 'offset'; offset: bigint }
  | { kind: 'shift'; by: bigint };

export function resetSpec(values: {
  'to-earliest'?: boolean | undefined;
  'to-latest'?: boolean | undefined;
  'to-offset'?: string | undefined;
  'shift-by'?: string | undefined;
  'to-datetime'?: string | undefined;
}): ResetSpec {
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

export interface PlannedOffset {
  group: string;
  topic: string;
  partition: number;
  offset: bigint;
}

/**
 * The new offsets of one group's partitions: those of `requested`, or with null every partition
 * the group has a committed offset for (--all-topics). Committed with `execute`.
 */
export async function resetGroupOffsets(
  client: KafkaClient,
  group: string,
  requested: readonly { topic: string; partitions: number[] | null }[] | null,
  spec: ResetSpec,
  execute: boolean,
): Promise<PlannedOffset[]> {
  const conn = await coordinatorFor(client, group);
  const view = await describeOne(conn, group);
  if (view !== undefined && view.members.length > 0 && execute) {
    throw new KafkaError(
      ErrorCode.NON_EMPTY_GROUP,
      `group '${group}' has ${view.members.length} active member(s) (state ${view.state}); stop them first`,
    );
  }
  const committed = await committedOffsets(conn, group);
  // --all-topics: the partitions with a committed offset, as kafka-consumer-groups.sh takes them.
  const wanted =
    requested ??
    [...committed.keys()].sort().map((topic) => ({
      topic,
      partitions: [...committed.get(topic)!.keys()].sort((a, b) => a - b),
    }));
  if (wanted.length === 0) return [];
  const md = await client.metadata(wanted.map((r) => r.topic));
  const work: { topic: string; parts: number[] }[] = [];
  for (const { topic, partitions } of wanted) {
    const t = md.topics.get(topic);
    if (t === undefined || t.errorCode !== ErrorCode.NONE) {
      throw new KafkaError(t?.errorCode ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `unknown topic '${topic}'`);
    }
    work.push({ topic, parts: partitions ?? t.partitions.map((p) => p.partition) });
  }
  const total = work.reduce((n, w) => n + w.parts.length, 0);
  const shown = progress(`${execute ? 'Resetting' : 'Planning'} offsets of '${group}'`);
  const plan: PlannedOffset[] = [];
  try {
    for (const { topic, parts } of work) {
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
        plan.push({ group, topic, partition: p, offset });
      }
      shown.update(plan.length, total);
    }
    shown.update(total, total, true);
    if (execute) await commit(client, group, plan);
  } finally {
    shown.end();
  }
  return plan;
}

async function commit(client: KafkaClient, group: string, plan: readonly PlannedOffset[]): Promise<void> {
  const conn = await coordinatorFor(client, group);
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
