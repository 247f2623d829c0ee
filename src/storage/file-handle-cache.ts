/**
 * A bounded LRU of open segment files, shared by every log of a broker, so 10,000 partitions with
 * several segments each do not exhaust file descriptors. A file is opened on first use and closed
 * when it is the least recently used one and the cache is over capacity. A file in use (pinned by
 * an in-flight read, write or fsync) is never closed; the cache may exceed its capacity by the
 * number of pinned files.
 *
 * Files are opened read/write ('r+'): the same handle serves appends to the active segment and
 * reads of any segment. The path may change while cached (a segment renamed to `.deleted` or from
 * `.swap`): an open handle follows the inode, a later reopen uses the new path.
 */
import type { FileLayer, StorageFile } from './file-layer.ts';

export class CachedFile {
  path: string;
  readonly #cache: FileHandleCache;
  #handle: StorageFile | null = null;
  #opening: Promise<StorageFile> | null = null;
  #pins = 0;
  #closed = false;

  constructor(cache: FileHandleCache, path: string) {
    this.#cache = cache;
    this.path = path;
  }

  get isOpen(): boolean {
    return this.#handle !== null;
  }

  get pinned(): boolean {
    return this.#pins > 0;
  }

  /** Runs `fn` with the open file, opening it (and maybe evicting another) if needed. */
  async use<T>(fn: (f: StorageFile) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error(`segment file ${this.path} is closed`);
    this.#pins++;
    try {
      const handle = await this.#open();
      return await fn(handle);
    } finally {
      this.#pins--;
      this.#cache.touched(this);
    }
  }

  async #open(): Promise<StorageFile> {
    if (this.#handle) return this.#handle;
    if (!this.#opening) {
      this.#opening = this.#cache.files.open(this.path, 'r+').then(
        (h) => {
          this.#handle = h;
          this.#opening = null;
          this.#cache.opened(this);
          return h;
        },
        (err: unknown) => {
          this.#opening = null;
          throw err;
        },
      );
    }
    return this.#opening;
  }

  /** Closes the handle if idle; the file reopens on next use. Returns false if pinned. */
  async evict(): Promise<boolean> {
    if (this.#pins > 0 || !this.#handle) return false;
    const h = this.#handle;
    this.#handle = null;
    this.#cache.closed(this);
    await h.close();
    return true;
  }

  /** Closes for good (segment deleted or log closed). Callers ensure no use is in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#opening) await this.#opening.catch(() => undefined);
    const h = this.#handle;
    this.#handle = null;
    if (h) {
      this.#cache.closed(this);
      await h.close();
    }
  }
}

export class FileHandleCache {
  readonly files: FileLayer;
  #capacity: number;
  /** Open files in least- to most-recently-used order. */
  readonly #lru = new Set<CachedFile>();
  #evictions = 0;

  constructor(files: FileLayer, capacity = 4096) {
    this.files = files;
    this.#capacity = Math.max(1, capacity);
  }

  file(path: string): CachedFile {
    return new CachedFile(this, path);
  }

  get openCount(): number {
    return this.#lru.size;
  }

  get evictions(): number {
    return this.#evictions;
  }

  set capacity(n: number) {
    this.#capacity = Math.max(1, n);
  }

  /** @internal */
  opened(f: CachedFile): void {
    this.#lru.add(f);
    this.#evictIfNeeded();
  }

  /** @internal */
  touched(f: CachedFile): void {
    if (this.#lru.delete(f)) this.#lru.add(f);
  }

  /** @internal */
  closed(f: CachedFile): void {
    this.#lru.delete(f);
  }

  #evictIfNeeded(): void {
    if (this.#lru.size <= this.#capacity) return;
    for (const f of this.#lru) {
      if (this.#lru.size <= this.#capacity) break;
      if (f.pinned) continue;
      this.#evictions++;
      // Closing an idle read handle can only fail if the descriptor is already gone; nothing to do then.
      f.evict().catch(() => undefined);
    }
  }
}
