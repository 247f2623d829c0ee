import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeaderEpochCheckpointFile } from '../../../src/storage/checkpoint-file.ts';
import { realFileLayer } from '../../../src/storage/file-layer.ts';
import { LeaderEpochCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET } from '../../../src/storage/leader-epoch-cache.ts';
import { tempDir } from './helpers.ts';

test('LeaderEpochCache answers OffsetForLeaderEpoch like Kafka', async () => {
  const cache = new LeaderEpochCache(null);
  assert.deepEqual(cache.endOffsetFor(0, 10n), { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET });
  await cache.assign(2, 10n);
  await cache.assign(4, 30n);
  await cache.assign(5, 50n);
  assert.equal(await cache.assign(3, 60n), false, 'older epoch ignored');
  assert.deepEqual(cache.endOffsetFor(5, 70n), { epoch: 5, endOffset: 70n });
  assert.deepEqual(cache.endOffsetFor(4, 70n), { epoch: 4, endOffset: 50n });
  assert.deepEqual(cache.endOffsetFor(3, 70n), { epoch: 2, endOffset: 30n });
  assert.deepEqual(cache.endOffsetFor(1, 70n), { epoch: 1, endOffset: 10n });
  assert.deepEqual(cache.endOffsetFor(9, 70n), { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET });
  assert.equal(cache.epochForOffset(35n), 4);
  assert.equal(cache.epochForOffset(5n), UNDEFINED_EPOCH);
});

test('LeaderEpochCache truncates from both ends and persists', async (t) => {
  const dir = await tempDir(t);
  const file = new LeaderEpochCheckpointFile(realFileLayer, dir);
  const cache = await LeaderEpochCache.load(file);
  await cache.assign(1, 0n);
  await cache.assign(2, 100n);
  await cache.assign(3, 200n);
  await cache.truncateFromEnd(150n);
  assert.deepEqual(cache.entries, [
    { epoch: 1, startOffset: 0n },
    { epoch: 2, startOffset: 100n },
  ]);
  await cache.truncateFromStart(120n);
  assert.deepEqual(cache.entries, [{ epoch: 2, startOffset: 120n }]);
  const reloaded = await LeaderEpochCache.load(file);
  assert.deepEqual(reloaded.entries, [{ epoch: 2, startOffset: 120n }]);
});
