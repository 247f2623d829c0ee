import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, KafkaError } from '../../../src/protocol/error-codes.ts';
import { CLEAN_SHUTDOWN_FILE, LogManager } from '../../../src/storage/log-manager.ts';
import { ManualClock } from '../../../src/util/clock.ts';
import { FaultyFileLayer } from './faulty-file-layer.ts';
import { batch, onCleanup, readAll, tempDir, valuesBatch } from './helpers.ts';

const silent = { info() {}, warn() {}, error() {} };

test('log manager places partitions, shuts down cleanly and restarts without recovery', async (t) => {
  const d1 = await tempDir(t);
  const d2 = await tempDir(t);
  const mgr = new LogManager({ dataDirs: [d1, d2], logger: silent });
  await mgr.startup();
  for (let p = 0; p < 4; p++) {
    const log = await mgr.getOrCreateLog('orders', p, { 'segment.bytes': '1000' });
    for (let i = 0; i < 10; i++) await log.append(valuesBatch(`p${p}-${i}`, 3));
  }
  assert.equal((await readdir(d1)).filter((n) => n.startsWith('orders-')).length, 2, 'spread over dirs');
  await mgr.shutdown();
  for (const d of [d1, d2]) {
    assert.ok(await stat(join(d, CLEAN_SHUTDOWN_FILE)));
    const rp = await readFile(join(d, 'recovery-point-offset-checkpoint'), 'utf8');
    assert.match(rp, /^0\n2\norders \d 30\norders \d 30\n$/);
  }
  const again = new LogManager({
    dataDirs: [d1, d2],
    logger: silent,
    topicConfigs: () => ({ 'segment.bytes': '1000' }),
  });
  onCleanup(t, () => again.shutdown());
  await again.startup();
  assert.equal(again.cleanShutdownDirs.size, 2);
  await assert.rejects(stat(join(d1, CLEAN_SHUTDOWN_FILE)), 'marker removed after loading');
  for (let p = 0; p < 4; p++) {
    const log = again.getLog('orders', p)!;
    assert.equal(log.logEndOffset, 30n);
    assert.equal(log.recoveredTruncatedBytes, 0);
    assert.equal((await readAll(log)).length, 30);
  }
});

test('unclean restart recovers from the checkpointed recovery point', async (t) => {
  const d = await tempDir(t);
  const mgr = new LogManager({ dataDirs: [d], logger: silent });
  await mgr.startup();
  const log = await mgr.getOrCreateLog('t', 0, { 'segment.bytes': '1000' });
  for (let i = 0; i < 20; i++) await log.append(valuesBatch(`x${i}`, 3));
  await mgr.checkpointRecoveryPoints();
  // No shutdown: simulate a crash by just dropping the handles.
  await log.closeWithoutFlush();
  const again = new LogManager({ dataDirs: [d], logger: silent });
  onCleanup(t, () => again.shutdown());
  await again.startup();
  assert.equal(again.cleanShutdownDirs.size, 0);
  assert.equal(again.getLog('t', 0)!.logEndOffset, 60n);
});

test('retention and DeleteRecords are checkpointed; deleted partitions go to -delete dirs', async (t) => {
  const d = await tempDir(t);
  const clock = new ManualClock();
  const mgr = new LogManager({ dataDirs: [d], logger: silent, clock });
  onCleanup(t, () => mgr.shutdown());
  await mgr.startup();
  const log = await mgr.getOrCreateLog('r', 0, {
    'segment.bytes': '1000',
    'retention.ms': '1000',
    'file.delete.delay.ms': '0',
  });
  for (let i = 0; i < 10; i++) await log.append(valuesBatch(`x${i}`, 5, clock.now()));
  clock.advance(5000);
  await log.roll();
  await log.append(valuesBatch('fresh', 1, clock.now()));
  assert.ok((await mgr.runRetention()) > 0);
  assert.equal(log.logStartOffset, 50n);
  await mgr.checkpointLogStartOffsets();
  assert.match(await readFile(join(d, 'log-start-offset-checkpoint'), 'utf8'), /r 0 50/);

  const gone = await mgr.getOrCreateLog('gone', 0, { 'file.delete.delay.ms': '0' });
  await gone.append(valuesBatch('x', 1, clock.now()));
  await mgr.deleteLog('gone', 0);
  assert.equal(mgr.getLog('gone', 0), undefined);
  await mgr.awaitBackground();
  assert.deepEqual(
    (await readdir(d)).filter((n) => n.startsWith('gone')),
    [],
  );
});

test('runtime topic config changes reach the logs', async (t) => {
  const d = await tempDir(t);
  const mgr = new LogManager({ dataDirs: [d], logger: silent });
  onCleanup(t, () => mgr.shutdown());
  await mgr.startup();
  const log = await mgr.getOrCreateLog('c', 0);
  mgr.updateTopicConfig('c', { 'cleanup.policy': 'compact' });
  assert.equal(log.config.compact, true);
  await assert.rejects(log.append(valuesBatch('nokey', 1)), (e) => e instanceof KafkaError);
  await log.append(batch([{ key: 'k', value: 'v' }]));
  assert.throws(() => mgr.updateTopicConfig('c', { 'segment.bytes': 'x' }), KafkaError);
});

test('the cleaner runs over compacted logs and checkpoints its progress', async (t) => {
  const d = await tempDir(t);
  const mgr = new LogManager({ dataDirs: [d], logger: silent });
  onCleanup(t, () => mgr.shutdown());
  await mgr.startup();
  const log = await mgr.getOrCreateLog('__consumer_offsets', 0, {
    'cleanup.policy': 'compact',
    'segment.bytes': '800',
    'file.delete.delay.ms': '0',
  });
  for (let i = 0; i < 40; i++) await log.append(batch([{ key: `g${i % 3}`, value: `v${i}` }]));
  assert.equal(await mgr.runCleaner(), 1);
  const cp = await readFile(join(d, 'cleaner-offset-checkpoint'), 'utf8');
  assert.match(cp, /__consumer_offsets 0 \d+/);
  const values = (await readAll(log)).map((r) => r.value?.toString());
  assert.ok(values.length < 40);
  assert.deepEqual(values.slice(-3), ['v37', 'v38', 'v39']);
});

test('an I/O error takes one data directory offline with one log line; others keep working', async (t) => {
  const d1 = await tempDir(t);
  const d2 = await tempDir(t);
  const files = new FaultyFileLayer();
  const errors: string[] = [];
  const logger = { info() {}, warn() {}, error: (_o: object, msg?: string) => errors.push(msg ?? '') };
  const mgr = new LogManager({ dataDirs: [d1, d2], logger, files });
  onCleanup(t, () => mgr.shutdown());
  const failed: string[] = [];
  mgr.onLogDirFailure((dir) => failed.push(dir));
  await mgr.startup();
  const a = await mgr.getOrCreateLog('a', 0);
  const b = await mgr.getOrCreateLog('b', 0);
  files.failNextWrite();
  await assert.rejects(
    a.append(valuesBatch('x', 1)),
    (e) => e instanceof KafkaError && e.errorCode === ErrorCode.KAFKA_STORAGE_ERROR,
  );
  assert.equal(errors.length, 1);
  assert.equal(failed.length, 1);
  assert.equal(mgr.offlineDirs.length, 1);
  await b.append(valuesBatch('fine', 1));
  const c = await mgr.getOrCreateLog('c', 0);
  assert.ok(!c.dir.startsWith(mgr.offlineDirs[0]!), 'new partitions avoid the offline dir');
});
