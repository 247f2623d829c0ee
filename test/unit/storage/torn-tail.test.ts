/**
 * Issue 11 item 5: a clean shutdown marker makes the next start trust the files, but the active
 * segment's tail is still checked (cheaply: the batches after the last index entry must end at
 * the file's end and the last one's CRC must hold). A torn tail is cut, appends continue at the
 * right offset, nothing acknowledged and intact is lost and the directory stays online.
 */
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { setBaseOffset } from '../../../src/protocol/records/batch-header.ts';
import { LogManager } from '../../../src/storage/log-manager.ts';
import { onCleanup, readAll, tempDir, valuesBatch } from './helpers.ts';

const warnings: string[] = [];
const logger = { info() {}, warn: (_o: object, msg?: string) => warnings.push(msg ?? ''), error() {} };
const CONFIG = { 'segment.bytes': '2000' };

/** 40 batches of 2 records over several segments, then a clean shutdown. Returns the active segment's .log. */
async function cleanLog(dir: string): Promise<string> {
  const mgr = new LogManager({ dataDirs: [dir], logger, topicConfigs: () => CONFIG });
  await mgr.startup();
  const log = await mgr.getOrCreateLog('t', 0, CONFIG);
  for (let i = 0; i < 40; i++) await log.append(valuesBatch(`r${i}`, 2));
  assert.ok(log.numberOfSegments > 1);
  const active = log.activeSegment.logPath;
  await mgr.shutdown();
  return active;
}

async function restartAndCheck(t: import('node:test').TestContext, dir: string, tornBytes: number): Promise<void> {
  const mgr = new LogManager({ dataDirs: [dir], logger, topicConfigs: () => CONFIG });
  onCleanup(t, () => mgr.shutdown());
  await mgr.startup();
  assert.equal(mgr.cleanShutdownDirs.size, 1, 'it was a clean start');
  const log = mgr.getLog('t', 0)!;
  assert.equal(log.logEndOffset, 80n, 'the log end is where the last intact batch ends');
  assert.equal(log.recoveredTruncatedBytes, tornBytes);
  const info = await log.append(valuesBatch('after', 2));
  assert.equal(info.firstOffset, 80n, 'appends continue at the right offset');
  assert.deepEqual(mgr.offlineDirs, []);
  const records = await readAll(log);
  assert.equal(records.length, 82);
  records.forEach((r, i) => {
    assert.equal(r.offset, BigInt(i));
  });
  assert.equal(records.at(-1)!.value?.toString(), 'after-1');
}

test('a torn tail after a clean shutdown (a partial batch) is cut at start and appends continue at the right offset', async (t) => {
  const dir = await tempDir(t);
  const active = await cleanLog(dir);
  const partial = valuesBatch('torn', 2).subarray(0, 45);
  await appendFile(active, partial);
  await restartAndCheck(t, dir, partial.length);
});

test('a torn tail after a clean shutdown (a whole batch header over garbage) is cut at start', async (t) => {
  const dir = await tempDir(t);
  const active = await cleanLog(dir);
  // A batch whose header parses (right offsets, length, magic) but whose body never reached the disk.
  const torn = valuesBatch('torn', 2);
  setBaseOffset(torn, 0, 80n);
  torn.fill(0, 70);
  await appendFile(active, torn);
  await restartAndCheck(t, dir, torn.length);
});

test('a torn tail after a clean shutdown with a missing index is cut at start', async (t) => {
  const dir = await tempDir(t);
  const active = await cleanLog(dir);
  await appendFile(active, Buffer.alloc(100, 0xab));
  await writeFile(active.replace(/\.log$/, '.index'), Buffer.alloc(0));
  const data = await readFile(active);
  assert.ok(data.length > 100);
  await restartAndCheck(t, dir, 100);
});
