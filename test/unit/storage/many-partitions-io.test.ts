// Issue 11 item 18: with 10,000 partitions a clean stop took 26 s and a clean start 9 s, because of
// what each partition cost in file system calls. A clean stop took one fdatasync after another:
// every log's data twice, every index file twice (written preallocated, then again trimmed), also
// for index files without a single entry, and again at every stop even when nothing had changed.
// A clean start listed each partition directory twice, created it again, read empty index files
// and stat'ed every checkpoint before reading it. Each partition must cost what its data needs.
import assert from 'node:assert/strict';
import { basename, dirname } from 'node:path';
import { test } from 'node:test';
import { type FileStat, type OpenMode, RealFileLayer, type StorageFile } from '../../../src/storage/file-layer.ts';
import { LogManager } from '../../../src/storage/log-manager.ts';
import { PartitionLog } from '../../../src/storage/partition-log.ts';
import { tempDir, valuesBatch } from './helpers.ts';

/** The real file system, counting calls per operation and file (`<dir>/<name>`). */
class CountingFileLayer extends RealFileLayer {
  readonly syncs = new Map<string, number>();
  readonly opens = new Map<string, number>();
  readonly calls = new Map<string, number>();

  reset(): void {
    this.syncs.clear();
    this.opens.clear();
    this.calls.clear();
  }

  #count(map: Map<string, number>, path: string, op = ''): void {
    const name = `${op}${basename(dirname(path))}/${basename(path)}`;
    map.set(name, (map.get(name) ?? 0) + 1);
  }

  /** How often `op` was called on paths in partition directory `dir` (or on `dir` itself). */
  count(op: string, dir: string, nameSuffix = ''): number {
    let n = 0;
    for (const [k, v] of this.calls) {
      if (!k.startsWith(`${op} `)) continue;
      const [parent, name] = k.slice(op.length + 1).split('/');
      if ((parent === dir || name === dir) && (nameSuffix === '' || name!.endsWith(nameSuffix))) n += v;
    }
    return n;
  }

  override async open(path: string, mode: OpenMode): Promise<StorageFile> {
    const f = await super.open(path, mode);
    this.#count(this.opens, path);
    return {
      read: (b, o, l, p) => f.read(b, o, l, p),
      write: (b, p) => f.write(b, p),
      writev: (b, p) => f.writev(b, p),
      truncate: (l) => f.truncate(l),
      size: () => f.size(),
      close: () => f.close(),
      datasync: () => {
        this.#count(this.syncs, path);
        return f.datasync();
      },
    };
  }

  override readFile(path: string): Promise<Buffer> {
    this.#count(this.calls, path, 'readFile ');
    return super.readFile(path);
  }

  override readdir(path: string): Promise<string[]> {
    this.#count(this.calls, path, 'readdir ');
    return super.readdir(path);
  }

  override stat(path: string): Promise<FileStat | null> {
    this.#count(this.calls, path, 'stat ');
    return super.stat(path);
  }

  override mkdir(path: string): Promise<void> {
    this.#count(this.calls, path, 'mkdir ');
    return super.mkdir(path);
  }
}

test('a clean close syncs a log with one new record once, and no index file without entries', async (t) => {
  const dir = await tempDir(t);
  const files = new CountingFileLayer();
  const log = await PartitionLog.open({ dir: `${dir}/t-0`, topic: 't', partition: 0, files, hadCleanShutdown: true });
  await log.append(valuesBatch('v', 1));
  files.reset();
  await log.close();
  assert.deepEqual(Object.fromEntries(files.syncs), { 't-0/00000000000000000000.log': 1 });
});

test('a clean shutdown syncs nothing of the logs that got nothing new since the start', async (t) => {
  const dir = await tempDir(t);
  const files = new CountingFileLayer();
  let manager = new LogManager({ dataDirs: [dir], files });
  await manager.startup();
  for (let p = 0; p < 3; p++) {
    const log = await manager.getOrCreateLog('t', p);
    await log.append(valuesBatch('v', 100));
  }
  await manager.shutdown();

  manager = new LogManager({ dataDirs: [dir], files });
  await manager.startup();
  files.reset();
  await manager.shutdown();
  const partitionFiles = (m: Map<string, number>) => [...m.keys()].filter((n) => n.startsWith('t-'));
  assert.deepEqual(partitionFiles(files.syncs), [], 'no partition file synced');
  assert.deepEqual(partitionFiles(files.opens), [], 'no partition file opened');
});

test('a clean restart lists a partition directory once and reads no empty index file', async (t) => {
  const dir = await tempDir(t);
  const files = new CountingFileLayer();
  let manager = new LogManager({ dataDirs: [dir], files });
  await manager.startup();
  for (let p = 0; p < 3; p++) await (await manager.getOrCreateLog('t', p)).append(valuesBatch('v', 1));
  await manager.shutdown();

  files.reset();
  manager = new LogManager({ dataDirs: [dir], files });
  await manager.startup();
  t.after(() => manager.shutdown());
  for (let p = 0; p < 3; p++) {
    const partitionDir = `t-${p}`;
    assert.equal(manager.getLog('t', p)?.logEndOffset, 1n);
    assert.equal(files.count('readdir', partitionDir), 1, 'one listing');
    assert.equal(files.count('mkdir', partitionDir), 0, 'an existing directory is not created');
    assert.equal(files.count('readFile', partitionDir, 'index'), 0, 'empty index files are not read');
    assert.equal(files.count('stat', partitionDir, 'checkpoint'), 0, 'checkpoints are read without a stat');
  }
});

test('runBlocking: the same answers from blocking calls, and asynchronous calls again afterwards', async (t) => {
  const dir = await tempDir(t);
  const files = new RealFileLayer();
  const log = await PartitionLog.open({ dir: `${dir}/t-0`, topic: 't', partition: 0, files, hadCleanShutdown: true });
  await log.append(valuesBatch('v', 3), { leaderEpoch: 0 });
  await log.close();
  const look = async () => ({
    names: (await files.readdir(`${dir}/t-0`)).sort(),
    dirs: await files.subdirectories(dir),
    stat: (await files.stat(`${dir}/t-0/00000000000000000000.log`))?.size,
    missing: await files.stat(`${dir}/t-0/nothing`),
    checkpoint: (await files.readFile(`${dir}/t-0/leader-epoch-checkpoint`)).toString(),
  });
  const asynchronous = await look();
  assert.equal(files.blocking, false);
  const blocking = await files.runBlocking(async () => {
    assert.equal(files.blocking, true);
    // Nested runs (two log managers on one file layer) keep it blocking until the outer one ends.
    await files.runBlocking(async () => undefined);
    assert.equal(files.blocking, true);
    return look();
  });
  assert.equal(files.blocking, false);
  assert.deepEqual(blocking, asynchronous);
  assert.deepEqual(asynchronous.dirs, ['t-0']);
  // And a log opens the same either way.
  const reopened = await files.runBlocking(() =>
    PartitionLog.open({ dir: `${dir}/t-0`, topic: 't', partition: 0, files, hadCleanShutdown: true }),
  );
  assert.equal(reopened.logEndOffset, 3n);
  await reopened.close();
});
