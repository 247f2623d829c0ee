/**
 * A FileLayer for tests that wraps the real one and can
 * - fail the next write or fdatasync (`failNextWrite`, `failNextSync`) with an EIO error;
 * - tear the next write at a byte (`tearNextWrite(n)`): only its first n bytes reach the file, then
 *   the layer behaves as if the process died (every later call fails);
 * - run out of space (`spaceLeft`): writes store what still fits, then fail with ENOSPC, until
 *   the test gives space back;
 * - simulate a crash or power loss (`crash()`): the layer stops, then every file it wrote is cut to
 *   the bytes known durable (its size at the last fdatasync) plus a random prefix of the bytes
 *   written after it; with `garbage: true` the kept unsynced bytes may also be scrambled, as a
 *   power loss can leave blocks that were allocated but never written.
 *
 * Directory operations (create, rename, unlink) are treated as durable when they return; the
 * storage engine fsyncs directories where it relies on them and tests model file contents only.
 */
import type { FileLayer, FileStat, OpenMode, StorageFile } from '../../../src/storage/file-layer.ts';
import { RealFileLayer } from '../../../src/storage/file-layer.ts';

interface Tracked {
  /** Size known to be on stable storage. */
  durable: number;
  /** Current size as written through this layer. */
  size: number;
}

export class CrashedError extends Error {
  readonly code = 'EIO';
  constructor() {
    super('EIO: simulated crash, i/o error');
  }
}

function enospc(): NodeJS.ErrnoException {
  const err = new Error('ENOSPC: no space left on device, write (injected)') as NodeJS.ErrnoException;
  err.code = 'ENOSPC';
  return err;
}

function eio(what: string): NodeJS.ErrnoException {
  const err = new Error(`EIO: i/o error, ${what} (injected)`) as NodeJS.ErrnoException;
  err.code = 'EIO';
  return err;
}

export class FaultyFileLayer implements FileLayer {
  readonly real = new RealFileLayer();
  readonly #tracked = new Map<string, Tracked>();
  #crashed = false;
  #failWrites = 0;
  #failSyncs = 0;
  #tearAt: number | null = null;
  /** Count of writes and syncs performed (tests pick crash points from them). */
  writes = 0;
  syncs = 0;
  /** Called before each write with its running number; return true to crash instead of writing. */
  crashBeforeWrite: ((n: number) => boolean) | null = null;
  /**
   * Bytes writes may still store (null: no limit). A write that does not fit stores what fits and
   * fails with ENOSPC, as a full file system does; the test sets it again to free space.
   */
  spaceLeft: number | null = null;

  get crashed(): boolean {
    return this.#crashed;
  }

  failNextWrite(times = 1): void {
    this.#failWrites = times;
  }

  failNextSync(times = 1): void {
    this.#failSyncs = times;
  }

  /** The next write stores only `bytes` bytes, then the layer crashes. */
  tearNextWrite(bytes: number): void {
    this.#tearAt = bytes;
  }

  #check(): void {
    if (this.#crashed) throw new CrashedError();
  }

  #track(path: string, size: number, durable: number): Tracked {
    let t = this.#tracked.get(path);
    if (!t) {
      t = { durable, size };
      this.#tracked.set(path, t);
    }
    return t;
  }

  async open(path: string, mode: OpenMode): Promise<StorageFile> {
    this.#check();
    const f = await this.real.open(path, mode);
    const size = await f.size();
    const existing = this.#tracked.get(path);
    const t = existing ?? this.#track(path, size, mode === 'w+' || mode === 'wx+' ? 0 : size);
    if (mode === 'w+' || mode === 'wx+') {
      t.size = 0;
      t.durable = 0;
    }
    return this.#wrap(f, () => this.#tracked.get(path) ?? t);
  }

  #wrap(f: StorageFile, tracked: () => Tracked): StorageFile {
    const doWrite = async (buffers: readonly Buffer[], position: number): Promise<void> => {
      this.#check();
      this.writes++;
      if (this.crashBeforeWrite?.(this.writes)) {
        this.#crashed = true;
        throw new CrashedError();
      }
      if (this.#failWrites > 0) {
        this.#failWrites--;
        throw eio('write');
      }
      const total = buffers.reduce((n, b) => n + b.length, 0);
      if (this.spaceLeft !== null) {
        if (total > this.spaceLeft) {
          const fits = this.spaceLeft;
          this.spaceLeft = 0;
          if (fits > 0) await f.write(Buffer.concat(buffers as Buffer[]).subarray(0, fits), position);
          const t = tracked();
          t.size = Math.max(t.size, position + fits);
          throw enospc();
        }
        this.spaceLeft -= total;
      }
      if (this.#tearAt !== null) {
        const keep = Math.min(this.#tearAt, total);
        this.#tearAt = null;
        const joined = Buffer.concat(buffers as Buffer[]).subarray(0, keep);
        if (keep > 0) await f.write(joined, position);
        const t = tracked();
        t.size = Math.max(t.size, position + keep);
        this.#crashed = true;
        throw new CrashedError();
      }
      if (buffers.length === 1) await f.write(buffers[0]!, position);
      else await f.writev(buffers, position);
      const t = tracked();
      t.size = Math.max(t.size, position + total);
    };
    return {
      read: async (buffer, offset, length, position) => {
        this.#check();
        return f.read(buffer, offset, length, position);
      },
      write: (buffer, position) => doWrite([buffer], position),
      writev: (buffers, position) => doWrite(buffers, position),
      datasync: async () => {
        this.#check();
        this.syncs++;
        if (this.#failSyncs > 0) {
          this.#failSyncs--;
          throw eio('fdatasync');
        }
        await f.datasync();
        const t = tracked();
        t.durable = t.size;
      },
      truncate: async (length) => {
        this.#check();
        await f.truncate(length);
        const t = tracked();
        t.size = length;
        // A shrink is modelled as durable (metadata); growth is not data.
        if (t.durable > length) t.durable = length;
      },
      size: async () => {
        this.#check();
        return f.size();
      },
      close: async () => {
        // Closing always works, even after a crash: the test harness must release descriptors.
        await f.close();
      },
    };
  }

  async readFile(path: string): Promise<Buffer> {
    this.#check();
    return this.real.readFile(path);
  }

  async rename(from: string, to: string): Promise<void> {
    this.#check();
    await this.real.rename(from, to);
    const t = this.#tracked.get(from);
    this.#tracked.delete(from);
    if (t) this.#tracked.set(to, t);
    else this.#tracked.delete(to);
  }

  async unlink(path: string): Promise<void> {
    this.#check();
    await this.real.unlink(path);
    this.#tracked.delete(path);
  }

  async rmTree(path: string): Promise<void> {
    this.#check();
    await this.real.rmTree(path);
    for (const p of [...this.#tracked.keys()]) if (p.startsWith(path)) this.#tracked.delete(p);
  }

  async readdir(path: string): Promise<string[]> {
    this.#check();
    return this.real.readdir(path);
  }

  async stat(path: string): Promise<FileStat | null> {
    this.#check();
    return this.real.stat(path);
  }

  async mkdir(path: string): Promise<void> {
    this.#check();
    await this.real.mkdir(path);
  }

  async fsyncDir(path: string): Promise<void> {
    this.#check();
    await this.real.fsyncDir(path);
  }

  /**
   * Stops the layer, then cuts every written file to its durable bytes plus a random prefix of
   * the rest (`random` in [0,1) decides; pass a seeded generator for reproducible tests).
   */
  async crash(options: { random?: () => number; garbage?: boolean } = {}): Promise<void> {
    this.#crashed = true;
    const random = options.random ?? Math.random;
    for (const [path, t] of this.#tracked) {
      const stat = await this.real.stat(path);
      if (!stat || stat.isDirectory) continue;
      const unsynced = Math.max(0, stat.size - t.durable);
      if (unsynced === 0) continue;
      const keep = t.durable + Math.floor(random() * (unsynced + 1));
      const f = await this.real.open(path, 'r+');
      try {
        await f.truncate(keep);
        if (options.garbage && keep > t.durable) {
          const from = t.durable + Math.floor(random() * (keep - t.durable));
          const junk = Buffer.alloc(keep - from);
          for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(random() * 256);
          await f.write(junk, from);
        }
      } finally {
        await f.close();
      }
    }
    this.#tracked.clear();
  }
}

/** Small deterministic PRNG (mulberry32) for reproducible random tests. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
