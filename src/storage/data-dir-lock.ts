/**
 * An exclusive OS lock on `<data dir>/.lock` for the broker's lifetime, as Kafka's LogManager
 * takes on each log directory: two brokers on one directory would both acknowledge writes to the
 * same segment files, and one's records would be gone after a restart.
 *
 * Node has no flock binding, so a helper process takes flock(2) on the file (Perl, which every
 * Debian and Ubuntu system has; util-linux's `flock` otherwise) and holds it until its stdin
 * closes. Its stdin is a pipe from the broker, which the kernel closes when the broker exits in
 * any way, kill -9 included; the helper then exits and the kernel releases the lock.
 *
 * The file holds the broker's pid. Right after a kill -9 the orphaned helper may hold the lock for
 * a few milliseconds more; a lock whose recorded pid is no longer alive is waited for, briefly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const LOCK_FILE_NAME = '.lock';

export class DataDirectoryLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirectoryLockedError';
  }
}

/** Prints "locked" or "busy", then holds the lock until stdin ends. */
const PERL_LOCKER = `use Fcntl qw(:flock); $| = 1;
open(my $fh, '>>', $ARGV[0]) or do { print "error $!\\n"; exit 1 };
if (!flock($fh, LOCK_EX | LOCK_NB)) { print "busy\\n"; exit 0 }
print "locked\\n"; while (<STDIN>) {} exit 0;`;

/** `$1` the lock file, `$2` the Perl program. */
const LOCKER_SCRIPT =
  'if command -v perl >/dev/null 2>&1; then exec perl -e "$2" "$1"; fi; ' +
  'if ! command -v flock >/dev/null 2>&1; then echo "error neither perl nor flock(1) is installed"; exit 1; fi; ' +
  'exec 9>>"$1"; if flock -xn 9; then echo locked; exec cat >/dev/null; else echo busy; fi';

/** How long a lock left by a dead broker's helper is waited for. */
const ORPHAN_WAIT_MS = 5_000;

export interface DataDirectoryLock {
  readonly path: string;
  /** Releases the lock (the helper exits). */
  release(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function recordedPid(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** One attempt: the helper that holds the lock, or 'busy'. */
async function tryLock(path: string): Promise<ChildProcess | 'busy'> {
  const child = spawn('sh', ['-c', LOCKER_SCRIPT, 'samsa-lock', path, PERL_LOCKER], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const answer = await new Promise<string>((resolve) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('error', (err) => resolve(`error ${err.message}`));
    child.once('exit', () => resolve(out.trim() === '' ? 'error the lock helper exited' : out.trim()));
  });
  if (answer === 'locked') {
    // The helper must not keep the broker's event loop alive; its pipe stays open until release.
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    return child;
  }
  child.stdin!.end();
  if (answer === 'busy') return 'busy';
  throw new Error(`cannot lock ${path}: ${answer.replace(/^error /, '')}`);
}

/**
 * Locks `dataDir` or throws DataDirectoryLockedError naming it when another live process holds it.
 */
export async function lockDataDirectory(dataDir: string): Promise<DataDirectoryLock> {
  const path = join(dataDir, LOCK_FILE_NAME);
  const deadline = Date.now() + ORPHAN_WAIT_MS;
  for (;;) {
    const held = await tryLock(path);
    if (held !== 'busy') {
      await writeFile(path, `${process.pid}\n`);
      let released = false;
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          const exited = new Promise<void>((resolve) => {
            if (held.exitCode !== null || held.signalCode !== null) resolve();
            else held.once('exit', () => resolve());
          });
          // Referenced again while it exits: otherwise a process with nothing else to do would
          // end with this wait unsettled (a script's `await broker.close()` never returned).
          held.ref();
          held.stdin!.end();
          await exited;
        },
      };
    }
    const pid = await recordedPid(path);
    const holderAlive = pid !== undefined && isAlive(pid);
    if (holderAlive || Date.now() >= deadline)
      throw new DataDirectoryLockedError(
        `data directory ${dataDir} is in use by another broker${holderAlive ? ` (pid ${pid})` : ''}: ` +
          'stop it or give this broker another --data-dir',
      );
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
