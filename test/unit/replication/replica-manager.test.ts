// Producer state of the partitions of the ReplicaManager (issue 11 item 18: with 10,000 partitions a
// snapshot pass cost 4 s of a full core every 30 s and a clean stop 26 s). A pass or a stop must
// write only what changed, and a clean start must read no producer snapshot until a partition's
// producer state is needed; and whatever is skipped, idempotence must hold across restarts.
import assert from 'node:assert/strict';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import type { TopicMetadata } from '../../../src/metadata/metadata-store.ts';
import { ErrorCode, type KafkaError } from '../../../src/protocol/error-codes.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { ReplicaManager } from '../../../src/replication/replica-manager.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { onCleanup, tempDir } from '../storage/helpers.ts';

const TOPIC: TopicMetadata = {
  name: 't',
  topicId: 'AAAAAAAAAAAAAAAAAAAAAA',
  partitions: 3,
  replicationFactor: 1,
  configs: {},
  leaderEpochs: [0, 0, 0],
};

async function openService(dataDir: string, lines: string[] = []): Promise<ReplicaManager> {
  const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
  const service = await ReplicaManager.open({
    nodeId: 1,
    dataDir,
    properties: { 'samsa.log.reserve.ahead.bytes': '0' },
    logger,
    topicOverrides: () => undefined,
  });
  service.setTopicConfigs(() => new LogConfig());
  await service.openAll([TOPIC]);
  return service;
}

function plainBatch(value: string): Buffer {
  return buildRecordBatchSync({ records: [{ key: null, value: Buffer.from(value) }] });
}

function idempotentBatch(producerId: bigint, baseSequence: number): Buffer {
  return buildRecordBatchSync({
    producerId,
    producerEpoch: 0,
    baseSequence,
    records: [{ key: null, value: Buffer.from(`seq ${baseSequence}`) }],
  });
}

/** name -> [size, mtime] of every file in the partition's directory. */
async function partitionFiles(dataDir: string, partition: number): Promise<Map<string, [number, number]>> {
  const dir = join(dataDir, `${TOPIC.name}-${partition}`);
  const out = new Map<string, [number, number]>();
  for (const name of (await readdir(dir)).sort()) {
    const s = await stat(join(dir, name));
    out.set(name, [s.size, s.mtimeMs]);
  }
  return out;
}

async function snapshotFiles(dataDir: string, partition: number): Promise<string[]> {
  return [...(await partitionFiles(dataDir, partition)).keys()].filter((n) => n.endsWith('.snapshot'));
}

test('a producer snapshot pass writes files only for partitions whose producer state changed', async (t) => {
  const dataDir = await tempDir(t);
  const service = await openService(dataDir);
  onCleanup(t, () => service.close());
  // Partition 0 gets a plain record, partition 1 an idempotent one, partition 2 nothing.
  await service.append(TOPIC, 0, plainBatch('plain'), -1);
  await service.append(TOPIC, 1, idempotentBatch(7n, 0), -1);
  await service.snapshotProducers();
  assert.deepEqual(await snapshotFiles(dataDir, 0), [], 'plain records change no producer state');
  assert.deepEqual(await snapshotFiles(dataDir, 1), ['00000000000000000001.snapshot']);
  assert.deepEqual(await snapshotFiles(dataDir, 2), []);

  // Nothing changed: the next pass writes nothing at all.
  const before = await Promise.all([0, 1, 2].map((p) => partitionFiles(dataDir, p)));
  await service.snapshotProducers();
  assert.deepEqual(await Promise.all([0, 1, 2].map((p) => partitionFiles(dataDir, p))), before);

  // A plain record to the idempotent producer's partition moves the log end, not its producer state.
  await service.append(TOPIC, 1, plainBatch('plain'), -1);
  await service.snapshotProducers();
  assert.deepEqual(await snapshotFiles(dataDir, 1), ['00000000000000000001.snapshot']);
});

test('a clean stop writes nothing to partitions with nothing new since the start', async (t) => {
  const dataDir = await tempDir(t);
  let service = await openService(dataDir);
  for (let p = 0; p < 3; p++) await service.append(TOPIC, p, plainBatch(`p${p}`), -1);
  await service.append(TOPIC, 1, idempotentBatch(7n, 0), -1);
  await service.close();

  service = await openService(dataDir);
  const before = await Promise.all([0, 1, 2].map((p) => partitionFiles(dataDir, p)));
  // Reads change nothing either.
  for (let p = 0; p < 3; p++) assert.equal((await service.read(TOPIC, p, 0n, 1 << 20, false, true)).records.length, 1);
  await service.close();
  assert.deepEqual(await Promise.all([0, 1, 2].map((p) => partitionFiles(dataDir, p))), before);
});

test('a clean start reads no producer snapshot until a partition needs its producer state, and idempotence holds', async (t) => {
  const dataDir = await tempDir(t);
  let service = await openService(dataDir);
  const first = await service.append(TOPIC, 1, idempotentBatch(7n, 0), -1);
  await service.append(TOPIC, 1, idempotentBatch(7n, 1), -1);
  await service.append(TOPIC, 2, plainBatch('plain'), -1);
  await service.close();
  // A snapshot that cannot be read shows when it is read: a warning, then a rebuild from the log.
  const [snapshot] = await snapshotFiles(dataDir, 1);
  assert.ok(snapshot !== undefined, 'the clean stop left a snapshot');
  await writeFile(join(dataDir, `${TOPIC.name}-1`, snapshot), 'not json');

  const lines: string[] = [];
  service = await openService(dataDir, lines);
  onCleanup(t, () => service.close());
  await service.append(TOPIC, 2, plainBatch('plain again'), -1);
  assert.equal(lines.length, 0, `nothing read at start, nor for plain appends: ${lines.join('')}`);
  const producers = await service.producers(TOPIC, 1);
  assert.equal(lines.filter((l) => l.includes('unreadable producer snapshot')).length, 1);
  assert.deepEqual(
    producers.map((e) => [e.producerId, e.batches.at(-1)?.lastSeq]),
    [[7n, 1]],
  );
  // A retry of the first batch is still answered with its original offset.
  const retried = await service.append(TOPIC, 1, idempotentBatch(7n, 0), -1);
  assert.equal(retried.baseOffset, first.baseOffset);
});

test('after a stop without close, producer state is rebuilt from the last snapshot and the log after it', async (t) => {
  const dataDir = await tempDir(t);
  const crashed = await openService(dataDir);
  await crashed.append(TOPIC, 0, idempotentBatch(9n, 0), -1);
  await crashed.snapshotProducers();
  const second = await crashed.append(TOPIC, 0, idempotentBatch(9n, 1), -1);
  await crashed.append(TOPIC, 0, plainBatch('plain'), -1);
  // No close: the next service sees what a kill -9 leaves (the log and one snapshot, at offset 1).
  const service = await openService(dataDir);
  onCleanup(t, () => service.close());
  const retried = await service.append(TOPIC, 0, idempotentBatch(9n, 1), -1);
  assert.equal(retried.baseOffset, second.baseOffset, 'the batch after the snapshot is known');
  await assert.rejects(service.append(TOPIC, 0, idempotentBatch(9n, 5), -1), /out of order sequence/);
});

test('OffsetForLeaderEpoch is fenced on the leader epoch the client knows (KIP-320)', async (t) => {
  const dataDir = await tempDir(t);
  const service = await openService(dataDir);
  onCleanup(t, () => service.close());
  const epoch3: TopicMetadata = { ...TOPIC, name: 'e', partitions: 1, leaderEpochs: [3] };
  await service.createLogs(epoch3, 0);
  await service.append(epoch3, 0, plainBatch('x'), -1);
  assert.equal(service.offsets(epoch3, 0).leaderEpoch, 3);
  assert.deepEqual(service.endOffsetForEpoch(epoch3, 0, 3, -1), { epoch: 3, endOffset: 1n });
  assert.deepEqual(service.endOffsetForEpoch(epoch3, 0, 3, 3), { epoch: 3, endOffset: 1n });
  const code = (current: number) => {
    try {
      service.endOffsetForEpoch(epoch3, 0, 3, current);
      return 0;
    } catch (err) {
      return (err as KafkaError).errorCode;
    }
  };
  assert.equal(code(2), ErrorCode.FENCED_LEADER_EPOCH);
  assert.equal(code(4), ErrorCode.UNKNOWN_LEADER_EPOCH);
});

test('a long-poll fetch parked below min.bytes is woken by an append to its partition', async (t) => {
  const dataDir = await tempDir(t);
  const service = await openService(dataDir);
  onCleanup(t, () => service.close());
  const read = async () => {
    const r = await service.read(TOPIC, 2, 0n, 1 << 20, false, true);
    return { bytes: r.bytes, hasError: false };
  };
  const started = Date.now();
  const parked = service.fetch([{ topic: TOPIC, partition: 2 }], 1, 60_000, read);
  await new Promise((resolve) => setTimeout(resolve, 20));
  await service.append(TOPIC, 1, plainBatch('elsewhere'), -1);
  await service.append(TOPIC, 2, plainBatch('here'), -1);
  assert.ok((await parked).bytes > 0);
  assert.ok(Date.now() - started < 10_000);
});

test('partition states from the metadata feed set the leader epoch and the role', async (t) => {
  const dataDir = await tempDir(t);
  const service = await openService(dataDir);
  onCleanup(t, () => service.close());
  await service.append(TOPIC, 0, plainBatch('epoch 0'), -1);
  service.applyPartitionState(TOPIC, 0, { leader: 1, leaderEpoch: 5 });
  assert.equal(service.offsets(TOPIC, 0).leaderEpoch, 5);
  await service.append(TOPIC, 0, plainBatch('epoch 5'), -1);
  // Epoch 0 ends where epoch 5 starts; the new batch carries epoch 5.
  assert.deepEqual(service.endOffsetForEpoch(TOPIC, 0, 0, 5), { epoch: 0, endOffset: 1n });
  assert.deepEqual(service.endOffsetForEpoch(TOPIC, 0, 5, -1), { epoch: 5, endOffset: 2n });
  assert.throws(
    () => service.endOffsetForEpoch(TOPIC, 0, 0, 0),
    (err: KafkaError) => err.errorCode === ErrorCode.FENCED_LEADER_EPOCH,
  );

  // Another broker leads it: clients' appends and reads are refused, the offsets stay readable.
  service.applyPartitionState(TOPIC, 1, { leader: 2, leaderEpoch: 1 });
  await assert.rejects(
    service.append(TOPIC, 1, plainBatch('x'), -1),
    (err: KafkaError) => err.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER,
  );
  await assert.rejects(
    service.read(TOPIC, 1, 0n, 1 << 20, false, true),
    (err: KafkaError) => err.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER,
  );
  assert.equal(service.offsets(TOPIC, 1).leaderEpoch, 1);
  service.applyPartitionState(TOPIC, 1, { leader: 1, leaderEpoch: 2 });
  assert.equal((await service.append(TOPIC, 1, plainBatch('x'), -1)).baseOffset, 0n);

  // A partition this broker has no log for yet is left to createLogs.
  service.applyPartitionState({ ...TOPIC, name: 'later' }, 0, { leader: 1, leaderEpoch: 3 });
});

test('reads and offsets are fenced on the leader epoch the client knows (Fetch v9+, ListOffsets v4+)', async (t) => {
  const dataDir = await tempDir(t);
  const service = await openService(dataDir);
  onCleanup(t, () => service.close());
  service.applyPartitionState(TOPIC, 0, { leader: 1, leaderEpoch: 4 });
  const code = async (f: () => unknown) => {
    try {
      await f();
      return 0;
    } catch (err) {
      return (err as KafkaError).errorCode;
    }
  };
  assert.equal(await code(() => service.read(TOPIC, 0, 0n, 1024, false, true, 4)), 0);
  assert.equal(await code(() => service.read(TOPIC, 0, 0n, 1024, false, true, -1)), 0);
  assert.equal(await code(() => service.read(TOPIC, 0, 0n, 1024, false, true, 3)), ErrorCode.FENCED_LEADER_EPOCH);
  assert.equal(await code(() => service.read(TOPIC, 0, 0n, 1024, false, true, 5)), ErrorCode.UNKNOWN_LEADER_EPOCH);
  assert.equal(await code(() => service.offsets(TOPIC, 0, 4)), 0);
  assert.equal(await code(() => service.offsets(TOPIC, 0, 3)), ErrorCode.FENCED_LEADER_EPOCH);
  assert.equal(await code(() => service.offsets(TOPIC, 0)), 0);
});
