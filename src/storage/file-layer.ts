/**
 * The file operations the storage engine uses, behind one small async interface so tests can inject
 * faults (fail the next write or fsync, tear a write, simulate a crash that loses unsynced bytes;
 * see test/unit/storage/faulty-file-layer.ts). Everything is asynchronous: the broker never blocks
 * its event loop on disk I/O while serving.
 *
 * `RealFileLayer` maps each call onto node:fs/promises. Writes are positional (pwrite/pwritev) and
 * loop until every byte is written, because POSIX allows short writes. With an InlineWritePolicy,
 * writes it allows are blocking pwrites on the calling thread instead (see inline-writes.ts); they
 * still report through the returned promise.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SerialQueue } from '../util/serial-queue.ts';
import type { BlockReservation } from './block-reservation.ts';
import type { InlineWritePolicy } from './inline-writes.ts';

/** 'r' read only; 'r+' read/write an existing file; 'w+' create or truncate; 'wx+' create, fail if it exists. */
export type OpenMode = 'r' | 'r+' | 'w+' | 'wx+';

export interface StorageFile {
  /** Reads up to `length` bytes at `position` into `buffer[offset..]`; returns the bytes read (0 at EOF). */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Writes all of `buffer` at `position`. */
  write(buffer: Buffer, position: number): Promise<void>;
  /** Writes all `buffers` back to back starting at `position` (one pwritev when the OS allows). */
  writev(buffers: readonly Buffer[], position: number): Promise<void>;
  /** fdatasync: file data (and the size) reach stable storage. */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface FileStat {
  size: number;
  mtimeMs: number;
  isDirectory: boolean;
  /** Bytes of disk allocated to the file (st_blocks * 512), where the file system tells. */
  allocatedBytes?: number;
}

export interface FileLayer {
  /** Disk blocks reserved ahead of active segments (see block-reservation.ts); absent: none. */
  readonly reservation?: BlockReservation | undefined;
  open(path: string, mode: OpenMode): Promise<StorageFile>;
  readFile(path: string): Promise<Buffer>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Removes a directory tree (rm -rf); a missing path is not an error. */
  rmTree(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  /** The names of the directories in `path` (one readdir, no stat per entry), where supported. */
  subdirectories?(path: string): Promise<string[]>;
  /**
   * Runs `fn` with this layer's metadata calls and reads made as blocking calls, where supported:
   * for a clean start, before the broker serves anything, when a thread-pool round trip per small
   * call costs more than the call (see LogManager).
   */
  runBlocking?<T>(fn: () => Promise<T>): Promise<T>;
  /** null when the path does not exist. */
  stat(path: string): Promise<FileStat | null>;
  mkdir(path: string): Promise<void>;
  /** fsync a directory so creations, renames and deletions inside it are durable. */
  fsyncDir(path: string): Promise<void>;
}

class RealStorageFile implements StorageFile {
  readonly #fh: fsp.FileHandle;
  readonly #inline: InlineWritePolicy | undefined;
  readonly #layer: RealFileLayer;

  constructor(fh: fsp.FileHandle, inline: InlineWritePolicy | undefined, layer: RealFileLayer) {
    this.#fh = fh;
    this.#inline = inline;
    this.#layer = layer;
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    let total = 0;
    while (total < length) {
      const at = offset + total;
      const bytesRead = this.#layer.blocking
        ? fs.readSync(this.#fh.fd, buffer, at, length - total, position + total)
        : (await this.#fh.read(buffer, at, length - total, position + total)).bytesRead;
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    return total;
  }

  async write(buffer: Buffer, position: number): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      const length = buffer.length - done;
      const inline = this.#inline?.runInline(length, () =>
        fs.writeSync(this.#fh.fd, buffer, done, length, position + done),
      );
      done += inline ?? (await this.#fh.write(buffer, done, length, position + done)).bytesWritten;
    }
  }

  async writev(buffers: readonly Buffer[], position: number): Promise<void> {
    let pending = buffers.filter((b) => b.length > 0);
    // IOV_MAX is 1024 on Linux; stay below it.
    while (pending.length > 0) {
      const chunk = pending.slice(0, 1000);
      const expected = chunk.reduce((n, b) => n + b.length, 0);
      const bytesWritten =
        this.#inline?.runInline(expected, () => fs.writevSync(this.#fh.fd, chunk, position)) ??
        (await this.#fh.writev(chunk, position)).bytesWritten;
      position += bytesWritten;
      if (bytesWritten === expected) {
        pending = pending.slice(chunk.length);
        continue;
      }
      // Short write: drop what was written and continue with the remainder.
      let skip = bytesWritten;
      const rest: Buffer[] = [];
      for (const b of pending) {
        if (skip >= b.length) {
          skip -= b.length;
          continue;
        }
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      pending = rest;
    }
  }

  datasync(): Promise<void> {
    return this.#fh.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.#fh.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.#fh.stat()).size;
  }

  close(): Promise<void> {
    return this.#fh.close();
  }
}

/** Runs a node:fs callback-style call as a promise. */
function callback<T>(call: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => call((err, value) => (err ? reject(err) : resolve(value))));
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

function ignoreMissing(err: unknown): void {
  if (!isMissing(err)) throw err;
}

/** Every RealFileLayer's deletions, one at a time (see unlink). */
const deletions = new SerialQueue();

export class RealFileLayer implements FileLayer {
  readonly #inline: InlineWritePolicy | undefined;
  readonly reservation: BlockReservation | undefined;
  #blockingRuns = 0;

  /**
   * `inlineWrites`: writes it allows are blocking pwrites on the event loop (inline-writes.ts).
   * `reservation`: blocks reserved ahead of active segments (block-reservation.ts).
   */
  constructor(
    options: { inlineWrites?: InlineWritePolicy | undefined; reservation?: BlockReservation | undefined } = {},
  ) {
    this.#inline = options.inlineWrites;
    this.reservation = options.reservation;
  }

  /** Whether calls block (inside runBlocking). */
  get blocking(): boolean {
    return this.#blockingRuns > 0;
  }

  /**
   * Stats, listings, small file reads and reads of open files run as blocking calls while `fn`
   * runs (opens, writes and syncs stay asynchronous). A clean start of 10,000 partitions made ~10
   * such calls per partition; each thread-pool round trip cost more than the call itself, 3 s in
   * all, against ~2 s blocking (the start serves nothing meanwhile).
   */
  async runBlocking<T>(fn: () => Promise<T>): Promise<T> {
    this.#blockingRuns++;
    try {
      return await fn();
    } finally {
      this.#blockingRuns--;
    }
  }

  async open(path: string, mode: OpenMode): Promise<StorageFile> {
    return new RealStorageFile(await fsp.open(path, mode), this.#inline, this);
  }

  /**
   * open, read, close on a plain descriptor: fs.readFile's fstat for the size is one more
   * thread-pool round trip, and a FileHandle costs more than the read of a small file. A start
   * reads small files of every partition (10,000 partitions: 0.4 s of the start with
   * fs/promises' readFile).
   */
  async readFile(path: string): Promise<Buffer> {
    if (this.blocking) return fs.readFileSync(path);
    const fd = await callback<number>((cb) => fs.open(path, 'r', cb));
    try {
      let buf = Buffer.allocUnsafe(4096);
      let n = 0;
      for (;;) {
        const at = n;
        const bytesRead = await callback<number>((cb) => fs.read(fd, buf, at, buf.length - at, at, cb));
        n += bytesRead;
        // A short read of a regular file is its end.
        if (n < buf.length) break;
        const grown = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(grown, 0, 0, n);
        buf = grown;
      }
      return buf.subarray(0, n);
    } finally {
      await callback<void>((cb) => fs.close(fd, cb));
    }
  }

  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  }

  /**
   * Deletions go one at a time: unlinking a large file takes the kernel 0.1-0.8 s (freeing its
   * extents and page cache), during which it holds a libuv thread-pool thread. fs.rm's parallel
   * unlinks of a deleted topic's segments took every thread (4), and appends of every other
   * partition waited behind them (measured: produce stalls of ~0.8 s).
   */
  unlink(path: string): Promise<void> {
    return deletions.run(() => fsp.unlink(path));
  }

  async rmTree(path: string): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(path, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return this.unlink(path).catch(ignoreMissing);
      throw err;
    }
    for (const entry of entries) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) await this.rmTree(child);
      else await this.unlink(child).catch(ignoreMissing);
    }
    await fsp.rmdir(path).catch(ignoreMissing);
  }

  async readdir(path: string): Promise<string[]> {
    return this.blocking ? fs.readdirSync(path) : fsp.readdir(path);
  }

  async subdirectories(path: string): Promise<string[]> {
    const out: string[] = [];
    const entries = this.blocking
      ? fs.readdirSync(path, { withFileTypes: true })
      : await fsp.readdir(path, { withFileTypes: true });
    for (const e of entries) {
      // A symbolic link counts as what it points to.
      if (e.isDirectory() || (e.isSymbolicLink() && (await this.stat(join(path, e.name)))?.isDirectory)) {
        out.push(e.name);
      }
    }
    return out;
  }

  async stat(path: string): Promise<FileStat | null> {
    try {
      // The callback API: fs/promises' stat costs a start of 10,000 partitions ~0.1 s more.
      const s = this.blocking ? fs.statSync(path) : await callback<fs.Stats>((cb) => fs.stat(path, cb));
      return { size: s.size, mtimeMs: s.mtimeMs, isDirectory: s.isDirectory(), allocatedBytes: s.blocks * 512 };
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async mkdir(path: string): Promise<void> {
    await fsp.mkdir(path, { recursive: true });
  }

  async fsyncDir(path: string): Promise<void> {
    const fh = await fsp.open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

export const realFileLayer: FileLayer = new RealFileLayer();

/**
 * Replaces `path` atomically with `data`: write `path.tmp`, fdatasync it, rename over `path`,
 * fsync the directory. A crash leaves either the old or the new content, never a mix (Kafka's
 * checkpoint files are written the same way).
 */
export async function writeFileAtomic(files: FileLayer, path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.tmp`;
  const f = await files.open(tmp, 'w+');
  try {
    await f.write(data, 0);
    await f.datasync();
  } finally {
    await f.close();
  }
  await files.rename(tmp, path);
  await files.fsyncDir(dirname(path));
}

export function isMissingFileError(err: unknown): boolean {
  return isMissing(err);
}

/** The file system is full (ENOSPC) or the quota is used up (EDQUOT): recoverable once space is freed. */
export function isOutOfSpaceError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
