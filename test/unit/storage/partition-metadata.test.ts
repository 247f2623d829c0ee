// partition.metadata (Kafka's PartitionMetadataFile, KIP-516): the topic id a partition log
// belongs to, in Kafka's exact format, written atomically, read back at load.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, KafkaError } from '../../../src/protocol/error-codes.ts';
import { realFileLayer } from '../../../src/storage/file-layer.ts';
import { LogManager } from '../../../src/storage/log-manager.ts';
import { PartitionLog } from '../../../src/storage/partition-log.ts';
import {
  PARTITION_METADATA_FILE,
  PartitionMetadataCorruptError,
  readPartitionMetadata,
  writePartitionMetadata,
} from '../../../src/storage/partition-metadata-file.ts';
import { onCleanup, readAll, tempDir, valuesBatch } from './helpers.ts';

const ID_A = 'pQ3fXfS9R2K0cz1pQm6YAw';
const ID_B = 'Xc6wG1y5Q9aNfE2r7kTq0g';
const silent = { info() {}, warn() {}, error() {} };

test('the file is written in Kafka format and read back; none reads as null', async (t) => {
  const dir = await tempDir(t);
  assert.equal(await readPartitionMetadata(realFileLayer, dir), null);
  await writePartitionMetadata(realFileLayer, dir, ID_A);
  assert.equal(await readFile(join(dir, PARTITION_METADATA_FILE), 'utf8'), `version: 0\ntopic_id: ${ID_A}\n`);
  assert.equal(await readPartitionMetadata(realFileLayer, dir), ID_A);
  assert.deepEqual(await readdir(dir), [PARTITION_METADATA_FILE], 'no .tmp left behind');
  await writePartitionMetadata(realFileLayer, dir, ID_B);
  assert.equal(await readPartitionMetadata(realFileLayer, dir), ID_B);
});

test('a malformed file is refused, naming the file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, PARTITION_METADATA_FILE);
  for (const text of [
    '',
    'version: 1\ntopic_id: pQ3fXfS9R2K0cz1pQm6YAw\n',
    'version: 0\n',
    'version: 0\ntopic_id: nope\n',
  ]) {
    await writeFile(path, text);
    await assert.rejects(readPartitionMetadata(realFileLayer, dir), (err: unknown) => {
      assert.ok(err instanceof PartitionMetadataCorruptError, JSON.stringify(text));
      assert.match(err.message, /partition\.metadata/);
      return true;
    });
  }
});

test('a log opened with a topic id records it; reopened, it knows it; another id is refused', async (t) => {
  const dir = join(await tempDir(t), 't-0');
  const log = await PartitionLog.open({ dir, topic: 't', partition: 0, topicId: ID_A });
  await log.append(valuesBatch('a', 3));
  await log.close();
  assert.equal(await readFile(join(dir, PARTITION_METADATA_FILE), 'utf8'), `version: 0\ntopic_id: ${ID_A}\n`);

  const again = await PartitionLog.open({ dir, topic: 't', partition: 0, hadCleanShutdown: true });
  onCleanup(t, () => again.close());
  assert.equal(again.topicId, ID_A);
  await again.assignTopicId(ID_A);
  await assert.rejects(again.assignTopicId(ID_B), (err: unknown) => {
    assert.ok(err instanceof KafkaError);
    assert.equal(err.errorCode, ErrorCode.INCONSISTENT_TOPIC_ID);
    return true;
  });
  assert.equal(again.topicId, ID_A);
  assert.equal(again.isOffline, false, 'a mismatch is no I/O error');
  await assert.rejects(PartitionLog.open({ dir, topic: 't', partition: 0, topicId: ID_B }), (err: unknown) => {
    assert.ok(err instanceof KafkaError);
    assert.equal(err.errorCode, ErrorCode.INCONSISTENT_TOPIC_ID);
    return true;
  });
});

test('the log manager loads the recorded id and writes one into a log that has none', async (t) => {
  const d = await tempDir(t);
  const mgr = new LogManager({ dataDirs: [d], logger: silent });
  await mgr.startup();
  const withId = await mgr.getOrCreateLog('t', 0, undefined, ID_A);
  await withId.append(valuesBatch('a', 2));
  const withoutId = await mgr.getOrCreateLog('t', 1);
  await withoutId.append(valuesBatch('b', 2));
  assert.equal(withoutId.topicId, undefined);
  await mgr.shutdown();

  const again = new LogManager({ dataDirs: [d], logger: silent });
  onCleanup(t, () => again.shutdown());
  await again.startup();
  assert.equal(again.getLog('t', 0)!.topicId, ID_A);
  assert.equal(again.getLog('t', 1)!.topicId, undefined);
  // Adopted by the topic of its name: records kept, file written.
  const adopted = await again.getOrCreateLog('t', 1, undefined, ID_B);
  assert.equal(adopted.topicId, ID_B);
  assert.equal((await readAll(adopted)).length, 2);
  assert.equal(await readPartitionMetadata(realFileLayer, join(d, 't-1')), ID_B);
  await assert.rejects(again.getOrCreateLog('t', 0, undefined, ID_B), { errorCode: ErrorCode.INCONSISTENT_TOPIC_ID });
  assert.deepEqual(again.offlineDirs, []);
});
