import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { type FileLayer, realFileLayer } from '../../../src/storage/file-layer.ts';
import {
  type AbortedTxn,
  encodeAbortedTxn,
  TransactionIndex,
  TransactionIndexCorruptError,
} from '../../../src/storage/transaction-index.ts';
import { FaultyFileLayer } from './faulty-file-layer.ts';
import { tempDir } from './helpers.ts';

function txn(producerId: bigint, firstOffset: bigint, lastOffset: bigint, lastStableOffset: bigint): AbortedTxn {
  return { producerId, firstOffset, lastOffset, lastStableOffset };
}

test('an entry is 34 bytes: version, producerId, firstOffset, lastOffset, lastStableOffset, big-endian', () => {
  // biome-ignore format: one field a line
  const expected = Buffer.from([
    0x00, 0x00, // version 0
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // producerId
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // firstOffset 256
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x10, // lastOffset 272
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x11, // lastStableOffset 273
  ]);
  assert.equal(expected.length, 34);
  assert.deepEqual(encodeAbortedTxn(txn(0x0102030405060708n, 256n, 272n, 273n)), expected);
});

test('the file holds exactly the appended entries and reloads', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, '00000000000000000100.txnindex');
  const idx = TransactionIndex.create(path, 100n);
  await idx.flush(realFileLayer);
  assert.equal(await stat(path).catch(() => null), null, 'no file without an entry');
  const a = txn(7n, 100n, 110n, 111n);
  const b = txn(-1n, 105n, 120n, 121n);
  idx.append(a);
  idx.append(b);
  await idx.flush(realFileLayer);
  assert.deepEqual(await readFile(path), Buffer.concat([encodeAbortedTxn(a), encodeAbortedTxn(b)]));
  const c = txn(8n, 125n, 130n, 131n);
  idx.append(c);
  await idx.close(realFileLayer);
  assert.equal((await stat(path)).size, 3 * 34);
  const loaded = await TransactionIndex.load(realFileLayer, path, 100n);
  assert.deepEqual(loaded.allAbortedTxns(), [a, b, c]);
  assert.equal(loaded.dirty, false);
  const missing = await TransactionIndex.load(realFileLayer, join(dir, 'none.txnindex'), 0n);
  assert.equal(missing.entries, 0);
});

test('entries must arrive in marker order', () => {
  const idx = TransactionIndex.create('/nonexistent', 0n);
  idx.append(txn(1n, 0n, 10n, 11n));
  assert.throws(() => idx.append(txn(2n, 5n, 10n, 11n)), /must increase/);
  assert.throws(() => idx.append(txn(2n, 5n, 9n, 11n)), /must increase/);
  assert.throws(() => idx.append(txn(2n, 15n, 12n, 13n)), /after its marker/);
  idx.append(txn(2n, 5n, 11n, 12n));
  assert.equal(idx.entries, 2);
});

test('collectAbortedTxns returns the entries overlapping [fetchOffset, upperBound) and whether that is all', () => {
  const idx = TransactionIndex.create('/nonexistent', 0n);
  const t1 = txn(1n, 0n, 10n, 5n); // another transaction from 5 was still ongoing
  const t2 = txn(2n, 5n, 20n, 21n);
  const t3 = txn(3n, 25n, 30n, 31n);
  for (const e of [t1, t2, t3]) idx.append(e);
  assert.deepEqual(idx.collectAbortedTxns(0n, 5n), { abortedTxns: [t1], isComplete: true });
  assert.deepEqual(idx.collectAbortedTxns(0n, 6n), { abortedTxns: [t1, t2], isComplete: true });
  // lastOffset >= fetchOffset: a transaction whose marker is at the fetch offset still counts.
  assert.deepEqual(idx.collectAbortedTxns(10n, 25n), { abortedTxns: [t1, t2], isComplete: true });
  assert.deepEqual(idx.collectAbortedTxns(11n, 25n), { abortedTxns: [t2], isComplete: true });
  // firstOffset < upperBound: a transaction starting at the bound does not.
  assert.deepEqual(idx.collectAbortedTxns(21n, 25n), { abortedTxns: [], isComplete: true });
  assert.deepEqual(idx.collectAbortedTxns(21n, 26n), { abortedTxns: [t3], isComplete: true });
  // No entry's LSO reaches the bound: later segments must be searched too.
  assert.deepEqual(idx.collectAbortedTxns(0n, 100n), { abortedTxns: [t1, t2, t3], isComplete: false });
  assert.deepEqual(idx.collectAbortedTxns(31n, 100n), { abortedTxns: [], isComplete: false });
});

test('truncateTo drops entries whose marker is at or after the offset, in memory and in the file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'x.txnindex');
  const idx = TransactionIndex.create(path, 0n);
  for (let i = 1n; i <= 5n; i++) idx.append(txn(i, i * 10n - 5n, i * 10n, i * 10n + 1n));
  await idx.flush(realFileLayer);
  idx.truncateTo(31n);
  assert.deepEqual(
    idx.allAbortedTxns().map((e) => e.lastOffset),
    [10n, 20n, 30n],
  );
  idx.truncateTo(30n);
  assert.equal(idx.entries, 2);
  idx.truncateTo(1000n);
  assert.equal(idx.entries, 2);
  assert.equal(idx.dirty, true);
  await idx.flush(realFileLayer);
  assert.equal((await stat(path)).size, 2 * 34);
  // Appending after a truncation writes over the cut tail.
  const next = txn(9n, 22n, 25n, 26n);
  idx.append(next);
  await idx.flush(realFileLayer);
  const loaded = await TransactionIndex.load(realFileLayer, path, 0n);
  assert.deepEqual(loaded.allAbortedTxns(), [txn(1n, 5n, 10n, 11n), txn(2n, 15n, 20n, 21n), next]);
});

/** The real file layer, running `beforeWrite` when a file write starts (to act mid-flush). */
function hookedWrites(beforeWrite: () => void): FileLayer {
  return {
    stat: (p) => realFileLayer.stat(p),
    readFile: (p) => realFileLayer.readFile(p),
    unlink: (p) => realFileLayer.unlink(p),
    rename: (from, to) => realFileLayer.rename(from, to),
    rmTree: (p) => realFileLayer.rmTree(p),
    readdir: (p) => realFileLayer.readdir(p),
    mkdir: (p) => realFileLayer.mkdir(p),
    fsyncDir: (p) => realFileLayer.fsyncDir(p),
    async open(p, mode) {
      const f = await realFileLayer.open(p, mode);
      return {
        read: (b, o, l, pos) => f.read(b, o, l, pos),
        write: (b, pos) => {
          beforeWrite();
          return f.write(b, pos);
        },
        writev: (bs, pos) => f.writev(bs, pos),
        datasync: () => f.datasync(),
        truncate: (l) => f.truncate(l),
        size: () => f.size(),
        close: () => f.close(),
      };
    },
  };
}

test('a truncation while a flush writes leaves no stale entry in the file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'race.txnindex');
  const idx = TransactionIndex.create(path, 0n);
  idx.append(txn(1n, 0n, 10n, 11n));
  idx.append(txn(2n, 11n, 20n, 21n));
  let once = true;
  const files = hookedWrites(() => {
    if (!once) return;
    once = false;
    // The write of both entries is under way: the second one is cut and replaced.
    idx.truncateTo(15n);
    idx.append(txn(3n, 16n, 18n, 19n));
  });
  await idx.flush(files);
  assert.equal(once, false);
  assert.equal(idx.dirty, true, 'the write no longer matches memory');
  await idx.flush(files);
  assert.equal(idx.dirty, false);
  const loaded = await TransactionIndex.load(realFileLayer, path, 0n);
  assert.deepEqual(loaded.allAbortedTxns(), [txn(1n, 0n, 10n, 11n), txn(3n, 16n, 18n, 19n)]);
});

test('reset empties the file; delete removes it', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'y.txnindex');
  const idx = TransactionIndex.create(path, 0n);
  idx.append(txn(1n, 0n, 10n, 11n));
  await idx.flush(realFileLayer);
  idx.reset();
  assert.equal(idx.entries, 0);
  await idx.flush(realFileLayer);
  assert.equal((await stat(path)).size, 0);
  idx.append(txn(1n, 0n, 3n, 4n));
  await idx.flush(realFileLayer);
  assert.equal((await stat(path)).size, 34);
  await idx.delete(realFileLayer);
  assert.equal(await stat(path).catch(() => null), null);
  await idx.delete(realFileLayer); // a missing file is fine
});

test('load refuses a file that is not whole entries, or holds a bad version or order', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'bad.txnindex');
  await writeFile(path, Buffer.concat([encodeAbortedTxn(txn(1n, 0n, 10n, 11n)), Buffer.alloc(5)]));
  await assert.rejects(
    TransactionIndex.load(realFileLayer, path, 0n),
    (err: unknown) => err instanceof TransactionIndexCorruptError && /size 39, not a multiple .* 34/.test(err.message),
  );
  const badVersion = encodeAbortedTxn(txn(1n, 0n, 10n, 11n));
  badVersion.writeInt16BE(1, 0);
  await writeFile(path, badVersion);
  await assert.rejects(TransactionIndex.load(realFileLayer, path, 0n), /unknown version 1/);
  await writeFile(
    path,
    Buffer.concat([encodeAbortedTxn(txn(1n, 0n, 10n, 11n)), encodeAbortedTxn(txn(2n, 0n, 10n, 11n))]),
  );
  await assert.rejects(TransactionIndex.load(realFileLayer, path, 0n), /not after 10/);
});

test('under injected faults: a failed write is redone by the next flush; a torn one fails the sanity check', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'faults.txnindex');
  const files = new FaultyFileLayer();
  const idx = TransactionIndex.create(path, 0n);
  idx.append(txn(1n, 0n, 10n, 11n));
  await idx.flush(files);
  idx.append(txn(2n, 11n, 20n, 21n));
  files.failNextWrite();
  await assert.rejects(idx.flush(files));
  assert.equal(idx.dirty, true);
  files.failNextSync();
  await assert.rejects(idx.flush(files));
  await idx.flush(files);
  assert.deepEqual((await TransactionIndex.load(realFileLayer, path, 0n)).allAbortedTxns(), idx.allAbortedTxns());
  // A crash half way through an entry leaves a size that is not whole entries.
  idx.append(txn(3n, 21n, 30n, 31n));
  files.tearNextWrite(20);
  await assert.rejects(idx.flush(files));
  assert.equal((await stat(path)).size, 2 * 34 + 20);
  await assert.rejects(TransactionIndex.load(realFileLayer, path, 0n), TransactionIndexCorruptError);
});
