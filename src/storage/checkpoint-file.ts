/**
 * Kafka's checkpoint text files (CheckpointFile): written atomically (tmp + fdatasync + rename +
 * directory fsync), read strictly.
 *
 *   0                       <- format version
 *   <N>                     <- number of entries
 *   <entry 1>               <- N lines, space separated
 *   ...
 *
 * Per data directory, entries are `<topic> <partition> <offset>`:
 *   recovery-point-offset-checkpoint   offset up to which each log is flushed (log + indexes)
 *   log-start-offset-checkpoint        each log's logStartOffset (moved by retention / DeleteRecords)
 *   cleaner-offset-checkpoint          first dirty offset of each compacted log
 * Per partition directory, entries are `<epoch> <startOffset>`:
 *   leader-epoch-checkpoint
 *
 * A crash while writing leaves either the old or the new file (plus maybe a stray `.tmp`). A file
 * that cannot be parsed raises CheckpointCorruptError; the log manager treats a corrupt data-dir
 * checkpoint as absent, which is always safe (recovery scans more, start offsets fall back to the
 * first segment).
 */
import { join } from 'node:path';
import type { FileLayer } from './file-layer.ts';
import { isMissingFileError, writeFileAtomic } from './file-layer.ts';

export const RECOVERY_POINT_CHECKPOINT_FILE = 'recovery-point-offset-checkpoint';
export const LOG_START_OFFSET_CHECKPOINT_FILE = 'log-start-offset-checkpoint';
export const CLEANER_OFFSET_CHECKPOINT_FILE = 'cleaner-offset-checkpoint';
export const LEADER_EPOCH_CHECKPOINT_FILE = 'leader-epoch-checkpoint';

const CURRENT_VERSION = 0;

export class CheckpointCorruptError extends Error {
  constructor(path: string, detail: string) {
    super(`malformed checkpoint file ${path}: ${detail}`);
    this.name = 'CheckpointCorruptError';
  }
}

async function readLines(files: FileLayer, path: string): Promise<string[][] | null> {
  let text: string;
  try {
    // No stat first: every partition's leader-epoch-checkpoint is read at start.
    text = (await files.readFile(path)).toString('utf8');
  } catch (err) {
    if (isMissingFileError(err)) return null;
    throw err;
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length < 2) throw new CheckpointCorruptError(path, 'missing version or entry count');
  if (lines[0]!.trim() !== String(CURRENT_VERSION)) {
    throw new CheckpointCorruptError(path, `unsupported version '${lines[0]}'`);
  }
  const count = Number(lines[1]!.trim());
  if (!Number.isInteger(count) || count < 0 || count !== lines.length - 2) {
    throw new CheckpointCorruptError(path, `entry count '${lines[1]}' does not match ${lines.length - 2} lines`);
  }
  return lines.slice(2).map((l) => l.trim().split(/\s+/));
}

function render(entries: string[]): Buffer {
  return Buffer.from(`${CURRENT_VERSION}\n${entries.length}\n${entries.map((e) => `${e}\n`).join('')}`, 'utf8');
}

function parseOffset(path: string, s: string | undefined): bigint {
  if (s === undefined || !/^-?\d+$/.test(s)) throw new CheckpointCorruptError(path, `bad number '${s}'`);
  return BigInt(s);
}

/** `<topic>-<partition>` -> offset, as stored in the per-data-dir checkpoint files. */
export class OffsetCheckpointFile {
  readonly path: string;
  readonly #files: FileLayer;

  constructor(files: FileLayer, dir: string, name: string) {
    this.#files = files;
    this.path = join(dir, name);
  }

  /** Empty map when the file does not exist. */
  async read(): Promise<Map<string, bigint>> {
    const rows = await readLines(this.#files, this.path);
    const out = new Map<string, bigint>();
    for (const row of rows ?? []) {
      if (row.length !== 3) throw new CheckpointCorruptError(this.path, `expected 3 fields, got '${row.join(' ')}'`);
      const partition = Number(row[1]);
      if (!Number.isInteger(partition) || partition < 0) {
        throw new CheckpointCorruptError(this.path, `bad partition '${row[1]}'`);
      }
      out.set(`${row[0]}-${partition}`, parseOffset(this.path, row[2]));
    }
    return out;
  }

  /** Keys are `<topic>-<partition>`; the topic may itself contain dashes. */
  async write(offsets: ReadonlyMap<string, bigint>): Promise<void> {
    const lines: string[] = [];
    for (const [key, offset] of offsets) {
      const dash = key.lastIndexOf('-');
      lines.push(`${key.slice(0, dash)} ${key.slice(dash + 1)} ${offset}`);
    }
    await writeFileAtomic(this.#files, this.path, render(lines));
  }
}

export interface EpochEntry {
  epoch: number;
  startOffset: bigint;
}

/** The per-partition `leader-epoch-checkpoint` file. */
export class LeaderEpochCheckpointFile {
  readonly path: string;
  readonly #files: FileLayer;

  constructor(files: FileLayer, partitionDir: string) {
    this.#files = files;
    this.path = join(partitionDir, LEADER_EPOCH_CHECKPOINT_FILE);
  }

  async read(): Promise<EpochEntry[]> {
    const rows = await readLines(this.#files, this.path);
    return (rows ?? []).map((row) => {
      if (row.length !== 2) throw new CheckpointCorruptError(this.path, `expected 2 fields, got '${row.join(' ')}'`);
      const epoch = Number(row[0]);
      if (!Number.isInteger(epoch) || epoch < 0) throw new CheckpointCorruptError(this.path, `bad epoch '${row[0]}'`);
      return { epoch, startOffset: parseOffset(this.path, row[1]) };
    });
  }

  async write(entries: readonly EpochEntry[]): Promise<void> {
    await writeFileAtomic(this.#files, this.path, render(entries.map((e) => `${e.epoch} ${e.startOffset}`)));
  }
}
