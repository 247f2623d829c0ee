import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  CheckpointCorruptError,
  LeaderEpochCheckpointFile,
  OffsetCheckpointFile,
  RECOVERY_POINT_CHECKPOINT_FILE,
} from '../../../src/storage/checkpoint-file.ts';
import { realFileLayer } from '../../../src/storage/file-layer.ts';
import { tempDir } from './helpers.ts';

test('OffsetCheckpointFile writes Kafka text format and reads it back', async (t) => {
  const dir = await tempDir(t);
  const cp = new OffsetCheckpointFile(realFileLayer, dir, RECOVERY_POINT_CHECKPOINT_FILE);
  assert.equal((await cp.read()).size, 0);
  await cp.write(
    new Map([
      ['orders-0', 42n],
      ['my-topic-with-dashes-12', 7n],
    ]),
  );
  const text = await readFile(join(dir, RECOVERY_POINT_CHECKPOINT_FILE), 'utf8');
  assert.equal(text, '0\n2\norders 0 42\nmy-topic-with-dashes 12 7\n');
  const back = await cp.read();
  assert.equal(back.get('orders-0'), 42n);
  assert.equal(back.get('my-topic-with-dashes-12'), 7n);
});

test('OffsetCheckpointFile rejects malformed files', async (t) => {
  const dir = await tempDir(t);
  const cp = new OffsetCheckpointFile(realFileLayer, dir, 'x');
  await writeFile(join(dir, 'x'), '0\n3\na 0 1\n');
  await assert.rejects(cp.read(), CheckpointCorruptError);
  await writeFile(join(dir, 'x'), '1\n0\n');
  await assert.rejects(cp.read(), CheckpointCorruptError);
  await writeFile(join(dir, 'x'), '0\n1\na zero 1\n');
  await assert.rejects(cp.read(), CheckpointCorruptError);
});

test('LeaderEpochCheckpointFile round-trips', async (t) => {
  const dir = await tempDir(t);
  const cp = new LeaderEpochCheckpointFile(realFileLayer, dir);
  await cp.write([
    { epoch: 0, startOffset: 0n },
    { epoch: 3, startOffset: 120n },
  ]);
  assert.equal(await readFile(cp.path, 'utf8'), '0\n2\n0 0\n3 120\n');
  assert.deepEqual(await cp.read(), [
    { epoch: 0, startOffset: 0n },
    { epoch: 3, startOffset: 120n },
  ]);
});
