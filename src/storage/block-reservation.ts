/**
 * Reserves disk blocks ahead of the active segment's end, without changing the file's size
 * (fallocate(2) with FALLOC_FL_KEEP_SIZE, through a helper process: Node has no fallocate binding).
 *
 * Why: ext4 allocates the blocks of buffered appends only at writeback (delayed allocation). The
 * flusher then holds the file's i_data_sem while it allocates, sometimes reading block bitmaps from
 * disk, and every append to that file waits for it. Measured on the development VM at 240k
 * records/s (8 partitions): appends blocked up to 60 ms in ext4_da_get_block_prep whenever
 * writeback ran, and produce p99 was 70-125 ms; with the blocks reserved beforehand it was 6-9 ms.
 *
 * The file's size never includes reserved blocks, so recovery, reads and replication see exactly
 * what they saw before; the blocks past the end are given back when the segment is rolled or
 * closed (ftruncate to its size), and when a segment is opened holding blocks a killed run
 * reserved. Where the tool is missing or the file system cannot reserve blocks, reservation turns
 * itself off after the first failure and appends work as before.
 *
 * How much: in proportion to what a segment's appends consume (reservationChunk), so 10,000
 * partitions that each received a record hold no reserved disk (a fixed 1 MiB first chunk held
 * 10 GiB), and never below a floor of free space (a reservation must not be what fills a disk).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface BlockReservation {
  /** Largest reservation ahead of a segment's end. */
  readonly maxAheadBytes: number;
  /** Reserves [offset, offset + length) of the file at `path`; false when it could not. */
  reserve(path: string, offset: number, length: number): Promise<boolean>;
  /** Releases what it holds (a helper process); reservations after this start it again. */
  close?(): void;
}

/** Runs a reservation; rejects when it fails. Replaced in tests. */
export type ReserveCommand = (path: string, offset: number, length: number) => Promise<void>;

/**
 * The helper reads "id offset length path" lines and answers "id ok" or "id err message". Spawning
 * a process per reservation from the broker cost ~25 ms of blocked event loop each (the fork of a
 * large process on this VM), so one helper is spawned, on first use, and serves every request.
 *
 * Where Perl is installed (Debian and Ubuntu always have it: perl-base is essential) and the
 * architecture's syscall number is known, the helper makes the fallocate(2) call itself. Otherwise
 * it is a shell loop running util-linux's `fallocate --keep-size` per request: a fork and exec each
 * time, ~10 ms of CPU on this VM, which at half load (~75 requests in 10 s for 8 new partitions)
 * added about 1 ms to the produce p99.
 */
const FALLOCATE_TOOL_LOOP =
  'while read -r id off len path; do ' +
  'if out=$(fallocate --keep-size --offset "$off" --length "$len" -- "$path" 2>&1); ' +
  'then echo "$id ok"; else echo "$id err $out" | tr -d "\\n"; echo; fi; done';

/** FALLOC_FL_KEEP_SIZE = 1; `syscall` passes numeric arguments as C longs. */
const FALLOCATE_PERL = `$| = 1; my $nr = shift @ARGV;
while (my $line = <STDIN>) {
  chomp $line; my ($id, $off, $len, $path) = split(/ /, $line, 4);
  if (open(my $fh, '+<', $path)) {
    if (syscall($nr, fileno($fh), 1, $off + 0, $len + 0) == 0) { print "$id ok\n" } else { print "$id err $!\n" }
    close($fh);
  } else { print "$id err $!\n" }
}`;

/** fallocate(2)'s number where Node runs (x86-64 and arm64 Linux), or undefined. */
function fallocateSyscallNumber(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  return process.arch === 'x64' ? 285 : process.arch === 'arm64' ? 47 : undefined;
}

/** The shell command of a helper: `$1` the syscall number (may be empty), `$2` the Perl program. */
const HELPER_SCRIPT = `if [ -n "$1" ] && command -v perl >/dev/null 2>&1; then exec perl -e "$2" "$1"; fi; ${FALLOCATE_TOOL_LOOP}`;

export class FallocateHelper {
  #child: ChildProcessWithoutNullStreams | null = null;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  #buffered = '';

  readonly #script: string;
  readonly #timeoutMs: number;

  readonly #syscallNumber: number | undefined;

  /**
   * `timeoutMs`: a request not answered by then is rejected (a hung file system must not hang a
   * roll or a shutdown that waits for it). `script` replaces the helper's loop and `useTool`
   * forces the util-linux tool over Perl (tests).
   */
  constructor(options: { timeoutMs?: number; script?: string; useTool?: boolean } = {}) {
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#script = options.script ?? HELPER_SCRIPT;
    this.#syscallNumber = options.useTool === true ? undefined : fallocateSyscallNumber();
  }

  run: ReserveCommand = (path, offset, length) =>
    new Promise<void>((resolve, reject) => {
      const child = this.#start();
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        if (!this.#pending.delete(id)) return;
        if (this.#pending.size === 0) refStream(child.stdout, false);
        reject(new Error(`fallocate timed out after ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#pending.set(id, {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      // An answer being awaited keeps the process alive; an idle helper does not.
      if (this.#pending.size === 1) refStream(child.stdout, true);
      child.stdin.write(`${id} ${offset} ${length} ${path}\n`);
    });

  /** Ends the helper shell (it also ends when this process exits: its stdin closes). */
  close(): void {
    this.#child?.stdin.end();
    this.#child = null;
  }

  #start(): ChildProcessWithoutNullStreams {
    if (this.#child !== null) return this.#child;
    const child = spawn('sh', ['-c', this.#script, 'sh', String(this.#syscallNumber ?? ''), FALLOCATE_PERL], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child = child;
    const failAll = (err: Error) => {
      if (this.#child === child) this.#child = null;
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
      refStream(child.stdout, false);
    };
    child.on('error', failAll);
    child.on('exit', (code) => failAll(new Error(`fallocate helper exited with code ${code}`)));
    child.stdin.on('error', () => undefined);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => this.#onOutput(chunk));
    child.stderr.resume();
    // The helper must not keep the process alive (tests, embedded brokers that never close).
    child.unref();
    refStream(child.stdin, false);
    refStream(child.stdout, false);
    refStream(child.stderr, false);
    return child;
  }

  #onOutput(chunk: string): void {
    this.#buffered += chunk;
    let nl = this.#buffered.indexOf('\n');
    while (nl >= 0) {
      const line = this.#buffered.slice(0, nl);
      this.#buffered = this.#buffered.slice(nl + 1);
      nl = this.#buffered.indexOf('\n');
      const m = /^(\d+) (ok|err)(?: (.*))?$/.exec(line);
      if (m === null) continue;
      const waiter = this.#pending.get(Number(m[1]));
      if (waiter === undefined) continue;
      this.#pending.delete(Number(m[1]));
      if (m[2] === 'ok') waiter.resolve();
      else waiter.reject(new Error(`fallocate failed: ${m[3] ?? ''}`));
      if (this.#pending.size === 0 && this.#child !== null) refStream(this.#child.stdout, false);
    }
  }
}

/** Pipes of a child process are sockets: ref/unref decide whether they keep the loop alive. */
function refStream(stream: object, ref: boolean): void {
  const s = stream as { ref?: () => void; unref?: () => void };
  if (ref) s.ref?.();
  else s.unref?.();
}

/** Below this much free space (or 5% of the file system, if more) nothing more is reserved. */
export const DEFAULT_MIN_FREE_BYTES = 1024 * 1024 * 1024;
/** How long a statfs answer is trusted (reservations are subtracted from it meanwhile). */
const FREE_SPACE_TTL_MS = 1000;

export class FallocateReservation implements BlockReservation {
  readonly maxAheadBytes: number;
  readonly #helper: FallocateHelper | undefined;
  readonly #run: ReserveCommand;
  readonly #onDisabled: (err: unknown) => void;
  readonly #minFreeBytes: number | undefined;
  readonly #onLowSpace: (freeBytes: number, floorBytes: number) => void;
  /** Free space per data directory, from statfs, minus what was reserved since. */
  readonly #free = new Map<string, { bytes: number; floor: number; at: number }>();
  #lowSpace = false;
  #disabled = false;

  /**
   * `minFreeBytes`: the floor of free space a reservation must leave (default: the larger of
   * 1 GiB and 5% of the file system). `onLowSpace` is told once each time reservations start
   * being refused for it.
   */
  constructor(
    maxAheadBytes: number,
    options: {
      run?: ReserveCommand;
      onDisabled?: (err: unknown) => void;
      minFreeBytes?: number;
      onLowSpace?: (freeBytes: number, floorBytes: number) => void;
    } = {},
  ) {
    this.maxAheadBytes = maxAheadBytes;
    this.#helper = options.run === undefined ? new FallocateHelper() : undefined;
    this.#run = options.run ?? this.#helper!.run;
    this.#onDisabled = options.onDisabled ?? (() => undefined);
    this.#minFreeBytes = options.minFreeBytes;
    this.#onLowSpace = options.onLowSpace ?? (() => undefined);
  }

  close(): void {
    this.#helper?.close();
  }

  get disabled(): boolean {
    return this.#disabled;
  }

  async reserve(path: string, offset: number, length: number): Promise<boolean> {
    if (this.#disabled || length <= 0) return false;
    try {
      if (!(await this.#leavesFloor(path, length))) return false;
      await this.#run(path, offset, length);
      return true;
    } catch (err) {
      // A segment deleted meanwhile is not a reason to stop reserving for the others.
      if (/No such file/i.test((err as Error).message) || (err as NodeJS.ErrnoException).code === 'ENOENT') {
        return false;
      }
      this.#disabled = true;
      this.#onDisabled(err);
      return false;
    }
  }

  /** Whether reserving `length` more keeps the file system's free space above the floor. */
  async #leavesFloor(path: string, length: number): Promise<boolean> {
    // Segments live in <data dir>/<topic>-<partition>/: one statfs per data dir per second.
    const key = dirname(dirname(path));
    let free = this.#free.get(key);
    const now = performance.now();
    if (free === undefined || now - free.at > FREE_SPACE_TTL_MS) {
      const fs = await statfs(dirname(path));
      const floor = this.#minFreeBytes ?? Math.max(DEFAULT_MIN_FREE_BYTES, 0.05 * fs.blocks * fs.bsize);
      free = { bytes: fs.bavail * fs.bsize, floor, at: now };
      this.#free.set(key, free);
    }
    if (free.bytes - length < free.floor) {
      if (!this.#lowSpace) {
        this.#lowSpace = true;
        this.#onLowSpace(free.bytes, free.floor);
      }
      return false;
    }
    this.#lowSpace = false;
    free.bytes -= length;
    return true;
  }
}

/** A segment reserves nothing until this run has appended this much to it; also the first chunk. */
export const MIN_RESERVATION_BYTES = 64 * 1024;

/**
 * How far ahead of a segment's end to reserve, given the bytes this run has appended to it: as
 * much again (so what is reserved stays in proportion to what the partition writes: a partition
 * that receives a few records reserves nothing, a busy one stays seconds ahead of its appends),
 * from MIN_RESERVATION_BYTES up to `maxAhead`. 0: do not reserve yet.
 */
export function reservationChunk(appended: number, maxAhead: number): number {
  if (appended < MIN_RESERVATION_BYTES) return 0;
  return Math.min(maxAhead, appended);
}
