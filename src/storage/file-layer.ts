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
  /** null when the path does not exist. */
  stat(path: string): Promise<FileStat | null>;
  mkdir(path: string): Promise<void>;
  /** fsync a directory so creations, renames and deletions inside it are durable. */
  fsyncDir(path: string): Promise<void>;
}

class RealStorageFile implements StorageFile {
  readonly #fh: fsp.FileHandle;
  readonly #inline: InlineWritePolicy | undefined;

  constructor(fh: fsp.FileHandle, inline: InlineWritePolicy | undefined) {
    this.#fh = fh;
    this.#inline = inline;
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    let total = 0;
    while (total < length) {
      const { bytesRead } = await this.#fh.read(buffer, offset + total, length - total, position + total);
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

  async open(path: string, mode: OpenMode): Promise<StorageFile> {
    return new RealStorageFile(await fsp.open(path, mode), this.#inline);
  }

  readFile(path: string): Promise<Buffer> {
    return fsp.readFile(path);
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

  readdir(path: string): Promise<string[]> {
    return fsp.readdir(path);
  }

  async stat(path: string): Promise<FileStat | null> {
    try {
      const s = await fsp.stat(path);
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
