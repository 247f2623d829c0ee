/** The aborted-transaction index wired into segments and the partition log. */
import assert from 'node:assert/strict';
import { appendFile, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { buildControlBatch } from '../../../src/protocol/records/control-record.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { PartitionLog, type PartitionLogOptions } from '../../../src/storage/partition-log.ts';
import { type AbortedTxn, encodeAbortedTxn } from '../../../src/storage/transaction-index.ts';
import { FaultyFileLayer } from './faulty-file-layer.ts';
import { onCleanup, tempDir, valuesBatch } from './helpers.ts';

const NOW = Date.now();

async function openLog(dir: string, config: Record<string, string> = {}, extra: Partial<PartitionLogOptions> = {}) {
  return PartitionLog.open({
    dir: join(dir, 'topic-0'),
    topic: 'topic',
    partition: 0,
    config: new LogConfig({ 'file.delete.delay.ms': '0', ...config }),
    ...extra,
  });
}

function txnBatch(producerId: bigint, values: string[], seq = 0): Buffer {
  return buildRecordBatchSync({
    records: values.map((v) => ({ key: Buffer.from(v), value: Buffer.from(v), timestamp: BigInt(NOW) })),
    producerId,
    producerEpoch: 0,
    baseSequence: seq,
    transactional: true,
  });
}

function marker(type: 'abort' | 'commit', producerId: bigint): Buffer {
  return buildControlBatch({ type, producerId, producerEpoch: 0, coordinatorEpoch: 0, timestamp: BigInt(NOW) });
}

/** Appends an aborted transaction's data batches and marker; returns its index entry. */
async function abortedTxn(log: PartitionLog, producerId: bigint, batches: number, rollBeforeMarker = false) {
  let first: bigint | null = null;
  for (let i = 0; i < batches; i++) {
    const info = await log.append(txnBatch(producerId, [`p${producerId}-${i}`], i));
    first ??= info.firstOffset;
  }
  if (rollBeforeMarker) await log.roll();
  const m = await log.append(marker('abort', producerId), { origin: 'coordinator' });
  const txn: AbortedTxn = {
    producerId,
    firstOffset: first!,
    lastOffset: m.lastOffset,
    lastStableOffset: m.lastOffset + 1n,
  };
  await log.appendAbortedTxn(txn);
  return txn;
}

const txnPath = (dir: string, base: bigint) => join(dir, 'topic-0', `${base.toString().padStart(20, '0')}.txnindex`);

test('appendAbortedTxn writes through to the marker segment; collectAbortedTxns searches later segments', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir);
  onCleanup(t, () => log.close());
  await log.append(valuesBatch('plain', 2)); // 0..1
  // Begun in segment 0, marker in segment 1 (base 4).
  const a = await abortedTxn(log, 1n, 2, true); // data 2,3; marker 4
  assert.deepEqual([a.firstOffset, a.lastOffset], [2n, 4n]);
  // Written through (no flush, no close): a kill -9 now keeps it.
  assert.deepEqual(await readFile(txnPath(dir, 4n)), encodeAbortedTxn(a));
  assert.equal(await stat(txnPath(dir, 0n)).catch(() => null), null, 'segments without aborts have no file');
  await log.roll();
  const b = await abortedTxn(log, 2n, 1); // data 5, marker 6, segment base 5
  await log.append(valuesBatch('after', 1)); // 7

  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [a, b]);
  // From inside segment 0 with an upper bound before the second transaction: only the first,
  // found through its marker's segment; that segment's entry reaches the bound so the search stops.
  assert.deepEqual(await log.collectAbortedTxns(0n, 4n), [a]);
  assert.deepEqual(await log.collectAbortedTxns(3n, 5n), [a]);
  // Fetching past the first marker.
  assert.deepEqual(await log.collectAbortedTxns(5n, 8n), [b]);
  assert.deepEqual(await log.collectAbortedTxns(7n, 8n), []);
  // A marker not in the log is refused.
  await assert.rejects(log.appendAbortedTxn({ ...b, lastOffset: 100n }), RangeError);
});

test('entries survive a clean close, an unclean stop (recovery from 0) and a roll', async (t) => {
  const dir = await tempDir(t);
  let log = await openLog(dir);
  const a = await abortedTxn(log, 1n, 2);
  await log.roll();
  const b = await abortedTxn(log, 2n, 1);
  await log.close();
  log = await openLog(dir, {}, { hadCleanShutdown: true });
  assert.equal(log.corruptTxnIndexFrom, null);
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [a, b]);
  const c = await abortedTxn(log, 3n, 1);
  // Simulated kill -9: nothing flushed or closed; recovery scans everything.
  await log.closeWithoutFlush();
  log = await openLog(dir, {}, { hadCleanShutdown: false, recoveryPoint: 0n });
  onCleanup(t, () => log.close());
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [a, b, c]);
});

test('truncation removes the entries of the markers it removes, in memory and in the file', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir);
  onCleanup(t, () => log.close());
  const a = await abortedTxn(log, 1n, 1); // 0, marker 1
  await log.roll();
  const b = await abortedTxn(log, 2n, 1); // 2, marker 3
  const c = await abortedTxn(log, 3n, 1); // 4, marker 5
  assert.equal((await stat(txnPath(dir, 2n))).size, 68);
  await log.truncateTo(5n);
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [a, b]);
  assert.equal((await stat(txnPath(dir, 2n))).size, 34, 'cut at truncation');
  // Truncating into the first segment drops the second segment and its index file.
  await log.truncateTo(1n);
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), []);
  assert.equal(await stat(txnPath(dir, 2n)).catch(() => null), null);
  assert.equal(await stat(txnPath(dir, 0n)).then((s) => s.size), 0);
  // The log goes on: re-appended markers get indexed again.
  const d = await abortedTxn(log, 4n, 1);
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [d]);
  void c;
  await log.truncateFullyAndStartAt(100n);
  assert.deepEqual(await log.collectAbortedTxns(100n, 200n), []);
  assert.deepEqual(
    (await readdir(join(dir, 'topic-0'))).filter((n) => n.endsWith('.txnindex')),
    [],
    'no index file is left',
  );
});

test('truncateAbortedTxnsFrom removes entries from every segment for a replay', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir);
  onCleanup(t, () => log.close());
  const a = await abortedTxn(log, 1n, 1); // marker 1
  await log.roll();
  const b = await abortedTxn(log, 2n, 1); // marker 3
  await log.roll();
  const c = await abortedTxn(log, 3n, 1); // marker 5
  await log.truncateAbortedTxnsFrom(3n);
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [a]);
  // Replay: the caller appends them again, into older segments too.
  await log.appendAbortedTxn(b);
  await log.appendAbortedTxn(c);
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [a, b, c]);
  await log.flush();
  assert.deepEqual(await readFile(txnPath(dir, 2n)), encodeAbortedTxn(b));
});

test('a torn or corrupt .txnindex does not stop the log: it loads empty, is reported and cut', async (t) => {
  const dir = await tempDir(t);
  let log = await openLog(dir);
  await log.append(valuesBatch('x', 3));
  await log.roll();
  const a = await abortedTxn(log, 1n, 1); // segment 3: marker 4
  await log.close();
  // A torn write: a partial entry after the whole one.
  await appendFile(txnPath(dir, 3n), Buffer.alloc(10, 1));
  // And an entry that fails the checks (its transaction ends before it begins).
  await writeFile(
    txnPath(dir, 0n),
    encodeAbortedTxn({ producerId: 1n, firstOffset: 2n, lastOffset: 1n, lastStableOffset: 2n }),
  );
  const warnings: string[] = [];
  log = await openLog(
    dir,
    {},
    {
      hadCleanShutdown: true,
      logger: { info() {}, error() {}, warn: (_o: object, msg?: string) => warnings.push(msg ?? '') },
    },
  );
  assert.equal(log.corruptTxnIndexFrom, 0n);
  assert.equal(warnings.filter((w) => /transaction index failed its checks/.test(w)).length, 2);
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), []);
  // Not rebuilt before a restart (and appends, rolls, flushes meanwhile): still reported after it.
  await log.append(valuesBatch('y', 1));
  await log.roll();
  await log.flush();
  await log.close();
  assert.equal((await stat(txnPath(dir, 3n))).size, 44, 'the damaged file is left as it was');
  log = await openLog(dir, {}, { hadCleanShutdown: true });
  onCleanup(t, () => log.close());
  assert.equal(log.corruptTxnIndexFrom, 0n);
  // The caller rebuilds: truncate from the corrupt segment, replay, append.
  await log.truncateAbortedTxnsFrom(0n);
  assert.equal(log.corruptTxnIndexFrom, null);
  assert.equal((await stat(txnPath(dir, 0n))).size, 0);
  assert.equal((await stat(txnPath(dir, 3n))).size, 0);
  await log.appendAbortedTxn(a);
  assert.deepEqual(await readFile(txnPath(dir, 3n)), encodeAbortedTxn(a));
});

test('an unclean stop that tore the marker batch drops its entry with it', async (t) => {
  const dir = await tempDir(t);
  let log = await openLog(dir);
  const a = await abortedTxn(log, 1n, 1); // marker 1
  const b = await abortedTxn(log, 2n, 1); // marker 3
  await log.closeWithoutFlush();
  // Tear the last batch (b's marker).
  const logFile = join(dir, 'topic-0', '00000000000000000000.log');
  const bytes = await readFile(logFile);
  await writeFile(logFile, bytes.subarray(0, bytes.length - 5));
  log = await openLog(dir, {}, { hadCleanShutdown: false, recoveryPoint: 0n });
  onCleanup(t, () => log.close());
  assert.equal(log.logEndOffset, 3n);
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [a]);
  void b;
  await log.close();
  assert.deepEqual(await readFile(txnPath(dir, 0n)), encodeAbortedTxn(a));
});

test('retention and DeleteRecords delete a segment with its transaction index', async (t) => {
  const dir = await tempDir(t);
  const log = await openLog(dir, { 'retention.bytes': '1' });
  onCleanup(t, () => log.close());
  const a = await abortedTxn(log, 1n, 1); // marker 1
  await log.roll();
  const b = await abortedTxn(log, 2n, 1); // marker 3
  await log.roll();
  const c = await abortedTxn(log, 3n, 1); // marker 5
  await log.roll();
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [a, b, c]);
  await log.deleteRecordsBefore(2n);
  await log.awaitPendingDeletes();
  assert.equal(await stat(txnPath(dir, 0n)).catch(() => null), null);
  assert.deepEqual(await log.collectAbortedTxns(2n, log.logEndOffset), [b, c]);
  await log.deleteOldSegments();
  await log.awaitPendingDeletes();
  assert.equal(log.logStartOffset, 4n);
  assert.deepEqual(await log.collectAbortedTxns(log.logStartOffset, log.logEndOffset), [c]);
  assert.deepEqual(
    (await readdir(join(dir, 'topic-0'))).filter((n) => n.includes('.txnindex')),
    ['00000000000000000004.txnindex'],
    'renamed to .deleted and removed',
  );
  // A marker below the log start has nothing to index.
  await log.appendAbortedTxn({ ...a, lastOffset: 1n });
});

test('a full disk fails appendAbortedTxn without taking the log offline; a retry writes the entry once', async (t) => {
  const dir = await tempDir(t);
  const files = new FaultyFileLayer();
  const log = await openLog(dir, {}, { files });
  onCleanup(t, () => log.close());
  await log.append(txnBatch(1n, ['a'])); // 0
  const m = await log.append(marker('abort', 1n), { origin: 'coordinator' }); // 1
  const txn: AbortedTxn = { producerId: 1n, firstOffset: 0n, lastOffset: m.lastOffset, lastStableOffset: 2n };
  files.spaceLeft = 10; // the entry is torn after 10 bytes
  await assert.rejects(log.appendAbortedTxn(txn), /out of space/);
  assert.equal(log.isOffline, false);
  assert.deepEqual(await log.collectAbortedTxns(0n, 2n), []);
  files.spaceLeft = null;
  await log.appendAbortedTxn(txn);
  assert.deepEqual(await log.collectAbortedTxns(0n, 2n), [txn]);
  assert.deepEqual(await readFile(txnPath(dir, 0n)), encodeAbortedTxn(txn));
});

test('a replay from the log start rebuilds a damaged index even when the start is inside its segment', async (t) => {
  const dir = await tempDir(t);
  let log = await openLog(dir);
  await log.append(valuesBatch('x', 3)); // 0..2
  const a = await abortedTxn(log, 1n, 1); // 3, marker 4
  await log.append(valuesBatch('y', 1)); // 5
  await log.deleteRecordsBefore(2n);
  const start = log.logStartOffset;
  await log.close();
  await appendFile(txnPath(dir, 0n), Buffer.alloc(3));
  log = await openLog(dir, {}, { hadCleanShutdown: true, logStartOffset: start });
  onCleanup(t, () => log.close());
  assert.equal(log.logStartOffset, 2n);
  assert.equal(log.corruptTxnIndexFrom, 0n);
  await log.truncateAbortedTxnsFrom(log.logStartOffset);
  assert.equal(log.corruptTxnIndexFrom, null);
  await log.appendAbortedTxn(a);
  assert.deepEqual(await readFile(txnPath(dir, 0n)), encodeAbortedTxn(a));
  // A replay from later in the segment does not count as a rebuild.
  await appendFile(txnPath(dir, 0n), Buffer.alloc(3));
  await log.close();
  log = await openLog(dir, {}, { hadCleanShutdown: true, logStartOffset: start });
  await log.truncateAbortedTxnsFrom(3n);
  assert.equal(log.corruptTxnIndexFrom, 0n);
});

test('a compaction swap stopped half way keeps the cleaned segment transaction index', async (t) => {
  const dir = await tempDir(t);
  const seg = (suffix: string) => join(dir, 'topic-0', `00000000000000000000${suffix}`);
  const setUp = async () => {
    const log = await openLog(dir);
    const a = await abortedTxn(log, 1n, 1); // marker 1
    await log.roll();
    await log.append(valuesBatch('z', 1));
    await log.close();
    return a;
  };
  // Stopped while the cleaned segment was renamed to .swap (after its .log).
  const a = await setUp();
  await rename(seg('.log'), seg('.log.swap'));
  for (const s of ['.index', '.timeindex', '.txnindex']) await rename(seg(s), seg(`${s}.cleaned`));
  let log = await openLog(dir, {}, { hadCleanShutdown: false, recoveryPoint: 0n });
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [a]);
  assert.equal(log.logEndOffset, 3n);
  await log.close();
  // Stopped while the swapped segment took its live names (after its .log and .index).
  for (const s of ['.timeindex', '.txnindex']) await rename(seg(s), seg(`${s}.swap`));
  log = await openLog(dir, {}, { hadCleanShutdown: true });
  onCleanup(t, () => log.close());
  assert.deepEqual(await log.collectAbortedTxns(0n, log.logEndOffset), [a]);
  const names = await readdir(join(dir, 'topic-0'));
  assert.deepEqual(
    names.filter((n) => n.endsWith('.swap') || n.endsWith('.cleaned')),
    [],
  );
  assert.ok(names.includes('00000000000000000000.txnindex'));
});
