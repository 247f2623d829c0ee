// A topic deleted and recreated under the same name while a broker was down (the metadata lives
// elsewhere, or the metadata file was replaced) must not get the old topic's log: the log's
// partition.metadata names the topic id it belongs to (KIP-516), and a log of another id is a
// stray, deleted at start. Logs from before the file existed are adopted and get one.
import assert from 'node:assert/strict';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TopicMetadata } from '../../../src/metadata/metadata-store.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { ReplicaManager } from '../../../src/replication/replica-manager.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { LEVEL, LogCapture } from '../../helpers/log-capture.ts';
import { decodeAll, onCleanup, tempDir } from '../storage/helpers.ts';

const ID_A = 'pQ3fXfS9R2K0cz1pQm6YAw';
const ID_B = 'Xc6wG1y5Q9aNfE2r7kTq0g';

function topic(topicId: string): TopicMetadata {
  return { name: 't', topicId, partitions: 2, replicationFactor: 1, configs: {}, leaderEpochs: [0, 0] };
}

async function open(dataDir: string, t: TopicMetadata, capture = new LogCapture()): Promise<ReplicaManager> {
  const service = await ReplicaManager.open({
    nodeId: 1,
    dataDir,
    properties: { 'samsa.log.reserve.ahead.bytes': '0' },
    logger: capture.logger,
    topicOverrides: () => undefined,
  });
  service.setTopicConfigs(() => new LogConfig());
  await service.openAll([t]);
  return service;
}

async function values(service: ReplicaManager, t: TopicMetadata, partition: number): Promise<string[]> {
  const read = await service.read(t, partition, 0n, 1 << 20, false, true);
  return decodeAll(Buffer.concat(read.records)).map((r) => r.value?.toString() ?? '');
}

async function produce(service: ReplicaManager, t: TopicMetadata, partition: number, value: string): Promise<void> {
  await service.append(t, partition, buildRecordBatchSync({ records: [{ key: null, value: Buffer.from(value) }] }), -1);
}

const metadataFile = (dataDir: string, partition: number): string =>
  join(dataDir, `t-${partition}`, 'partition.metadata');

test('a log is created with partition.metadata naming its topic id, in Kafka format', async (t) => {
  const dataDir = await tempDir(t);
  const service = await open(dataDir, topic(ID_A));
  onCleanup(t, () => service.close());
  for (const p of [0, 1])
    assert.equal(await readFile(metadataFile(dataDir, p), 'utf8'), `version: 0\ntopic_id: ${ID_A}\n`);
});

test('a log of the same topic name but another topic id is deleted at start; its records do not resurface', async (t) => {
  const dataDir = await tempDir(t);
  const first = await open(dataDir, topic(ID_A));
  await produce(first, topic(ID_A), 0, 'old-0');
  await produce(first, topic(ID_A), 1, 'old-1');
  await first.close();

  // The topic was deleted and recreated (a new id) while the broker was down.
  const capture = new LogCapture();
  const second = await open(dataDir, topic(ID_B), capture);
  onCleanup(t, () => second.close());
  for (const p of [0, 1]) {
    assert.deepEqual(await values(second, topic(ID_B), p), [], `partition ${p} starts empty`);
    assert.equal(second.offsets(topic(ID_B), p).logEndOffset, 0n);
    assert.equal(await readFile(metadataFile(dataDir, p), 'utf8'), `version: 0\ntopic_id: ${ID_B}\n`);
    const warning = capture.lines.find((l) => l.level === LEVEL.warn && l.partition === p);
    assert.ok(warning, `a warning for partition ${p}`);
    assert.equal(warning.topic, 't');
    assert.equal(warning.logTopicId, ID_A);
    assert.equal(warning.topicId, ID_B);
    assert.match(warning.msg, new RegExp(`t-${p}.*${ID_A}.*${ID_B}`));
  }
  // The old logs were renamed for deletion (removed after file.delete.delay.ms), as a topic deletion renames them.
  const renamed = (await readdir(dataDir)).filter((n) => n.endsWith('-delete')).sort();
  assert.equal(renamed.length, 2);
  assert.match(renamed[0]!, /^t-0\.[0-9a-f]{32}-delete$/);
  assert.match(renamed[1]!, /^t-1\.[0-9a-f]{32}-delete$/);

  await produce(second, topic(ID_B), 0, 'new-0');
  assert.deepEqual(await values(second, topic(ID_B), 0), ['new-0']);
});

test('a log recording the same topic id is kept', async (t) => {
  const dataDir = await tempDir(t);
  const first = await open(dataDir, topic(ID_A));
  await produce(first, topic(ID_A), 0, 'kept');
  await first.close();

  const capture = new LogCapture();
  const second = await open(dataDir, topic(ID_A), capture);
  onCleanup(t, () => second.close());
  assert.deepEqual(await values(second, topic(ID_A), 0), ['kept']);
  assert.deepEqual(
    capture.lines.filter((l) => l.level >= LEVEL.warn),
    [],
  );
});

test('a log without partition.metadata (an older data dir) is adopted and the file written', async (t) => {
  const dataDir = await tempDir(t);
  const first = await open(dataDir, topic(ID_A));
  await produce(first, topic(ID_A), 0, 'from an older Samsa');
  await first.close();
  for (const p of [0, 1]) await rm(metadataFile(dataDir, p));

  const capture = new LogCapture();
  const second = await open(dataDir, topic(ID_B), capture);
  onCleanup(t, () => second.close());
  assert.deepEqual(await values(second, topic(ID_B), 0), ['from an older Samsa']);
  for (const p of [0, 1])
    assert.equal(await readFile(metadataFile(dataDir, p), 'utf8'), `version: 0\ntopic_id: ${ID_B}\n`);
  assert.deepEqual(
    capture.lines.filter((l) => l.level >= LEVEL.warn),
    [],
  );
});
