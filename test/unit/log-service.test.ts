// Producer state of the partition data service (issue 11 item 18: with 10,000 partitions a
// snapshot pass cost 4 s of a full core every 30 s and a clean stop 26 s). A pass or a stop must
// write only what changed, and a clean start must read no producer snapshot until a partition's
// producer state is needed; and whatever is skipped, idempotence must hold across restarts.
import assert from 'node:assert/strict';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { loadBrokerConfig } from '../../src/broker-config.ts';
import { PartitionLogService } from '../../src/log-service.ts';
import type { TopicMetadata } from '../../src/metadata/local-metadata-store.ts';
import { buildRecordBatchSync } from '../../src/protocol/records/builder.ts';
import { LogConfig } from '../../src/storage/log-config.ts';
import { onCleanup, tempDir } from './storage/helpers.ts';

const TOPIC: TopicMetadata = {
  name: 't',
  topicId: 'AAAAAAAAAAAAAAAAAAAAAA',
  partitions: 3,
  replicationFactor: 1,
  configs: {},
  leaderEpochs: [0, 0, 0],
};

async function openService(dataDir: string, lines: string[] = []): Promise<PartitionLogService> {
  const { config } = loadBrokerConfig({ dataDir, overrides: { 'samsa.log.reserve.ahead.bytes': '0' } });
  const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
  const service = await PartitionLogService.open(config, logger, () => undefined);
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
