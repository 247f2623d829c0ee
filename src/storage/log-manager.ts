/**
 * The broker's logs across its data directories (Kafka's LogManager).
 *
 * Owns: the map of partition logs, the per-data-dir checkpoint files, the shared LRU of open
 * segment files, the background tasks (retention, flush.ms checks, checkpoints, the cleaner) and
 * the life cycle of data directories.
 *
 * On-disk layout of a data directory:
 *   <dir>/<topic>-<partition>/                    one PartitionLog (segments, indexes, leader-epoch-checkpoint,
 *                                                 partition.metadata: the topic id, as directory names carry only the name)
 *   <dir>/<topic>-<partition>.<uuid>-delete/      a deleted partition awaiting removal
 *   <dir>/recovery-point-offset-checkpoint        written every log.flush.offset.checkpoint.interval.ms
 *   <dir>/log-start-offset-checkpoint             written every log.flush.start.offset.checkpoint.interval.ms
 *   <dir>/cleaner-offset-checkpoint               first dirty offset of compacted logs
 *   <dir>/.kafka_cleanshutdown                    present only between a clean shutdown and the next start
 *
 * Start-up: with the clean-shutdown marker, logs open without scanning anything (restart time is
 * a readdir and a few stats per partition, independent of data size). Without it, each log
 * recovers from its checkpointed recovery point. The marker is deleted once every log is loaded,
 * so a crash from then on is detected.
 *
 * A directory whose I/O fails goes offline: one error line, its logs answer KAFKA_STORAGE_ERROR,
 * no new partition is placed on it, `onLogDirFailure` listeners are told. The process never
 * crashes because of it.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import { FallocateReservation } from './block-reservation.ts';
import {
  CheckpointCorruptError,
  CLEANER_OFFSET_CHECKPOINT_FILE,
  LOG_START_OFFSET_CHECKPOINT_FILE,
  OffsetCheckpointFile,
  RECOVERY_POINT_CHECKPOINT_FILE,
} from './checkpoint-file.ts';
import { FileHandleCache } from './file-handle-cache.ts';
import { type FileLayer, isOutOfSpaceError, RealFileLayer, realFileLayer } from './file-layer.ts';
import { InlineWritePolicy } from './inline-writes.ts';
import { LogCleaner } from './log-cleaner.ts';
import { DEFAULT_LOG_MANAGER_SETTINGS, LogConfig, type LogManagerSettings } from './log-config.ts';
import {
  PartitionLog,
  type PartitionLogOptions,
  parsePartitionDirName,
  partitionDirName,
  type StorageLogger,
  silentLogger,
} from './partition-log.ts';

export const CLEAN_SHUTDOWN_FILE = '.kafka_cleanshutdown';
export const DELETE_DIR_SUFFIX = '-delete';
/** Logs closed at once at shutdown. */
const SHUTDOWN_CONCURRENCY = 16;
/** From this many logs to recover, recovery logs its progress (every tenth of them). */
export const RECOVERY_PROGRESS_MIN_LOGS = 100;

export interface LogManagerOptions {
  dataDirs: readonly string[];
  files?: FileLayer;
  clock?: Clock;
  logger?: StorageLogger;
  settings?: Partial<LogManagerSettings>;
  /** Topic-config defaults from the broker's log.* settings (logConfigDefaultsFromBroker). */
  brokerDefaults?: Readonly<Record<string, string>>;
  /** Topic overrides known at start-up (from the metadata store). */
  topicConfigs?: (topic: string) => Readonly<Record<string, string>> | undefined;
  /** Single node (default): the high watermark follows the log end. */
  highWatermarkFollowsLogEnd?: boolean;
}

interface DataDir {
  path: string;
  offline: boolean;
  /** A write found the file system full; cleared by the next append written there. */
  outOfSpace: boolean;
  recoveryPoints: OffsetCheckpointFile;
  logStartOffsets: OffsetCheckpointFile;
  cleanerOffsets: OffsetCheckpointFile;
  /** First dirty offsets of compacted logs, by `<topic>-<partition>`. */
  firstDirty: Map<string, bigint>;
}

const key = (topic: string, partition: number): string => `${topic}-${partition}`;

/** The real file system, with inline writes and block reservation as the settings ask. */
export function realFilesFor(
  settings: Pick<LogManagerSettings, 'inlineWriteMaxBytes' | 'reserveAheadBytes'>,
  logger: StorageLogger = silentLogger,
): FileLayer {
  const { inlineWriteMaxBytes, reserveAheadBytes } = settings;
  if (inlineWriteMaxBytes <= 0 && reserveAheadBytes <= 0) return realFileLayer;
  let inlineWrites: InlineWritePolicy | undefined;
  if (inlineWriteMaxBytes > 0) {
    inlineWrites = new InlineWritePolicy({ maxBytes: inlineWriteMaxBytes });
    let lastLog = Number.NEGATIVE_INFINITY;
    inlineWrites.onBackoff = (elapsedMs, slowWrites) => {
      const now = performance.now();
      if (now - lastLog < 60_000) return;
      lastLog = now;
      logger.info(
        { elapsedMs: Math.round(elapsedMs), slowWrites },
        'a slow append write: appends go through the thread pool for a while (disk or file-system stall)',
      );
    };
  }
  return new RealFileLayer({
    inlineWrites,
    reservation:
      reserveAheadBytes > 0
        ? new FallocateReservation(reserveAheadBytes, {
            onDisabled: (err) =>
              logger.warn({ err }, 'cannot reserve disk blocks ahead of segments; appends work without'),
            onLowSpace: (freeBytes, floorBytes) =>
              logger.warn(
                { freeBytes, floorBytes },
                'free disk space is below the floor: no more blocks are reserved ahead of segments until there is more',
              ),
          })
        : undefined,
  });
}

export class LogManager {
  readonly #files: FileLayer;
  readonly #clock: Clock;
  readonly #logger: StorageLogger;
  readonly #settings: LogManagerSettings;
  readonly #brokerDefaults: Readonly<Record<string, string>>;
  readonly #topicConfigs: (topic: string) => Readonly<Record<string, string>> | undefined;
  readonly #hwFollowsLogEnd: boolean;
  readonly #dirs: DataDir[];
  readonly #logs = new Map<string, { log: PartitionLog; dir: DataDir }>();
  readonly #topicOverrides = new Map<string, Readonly<Record<string, string>>>();
  readonly #configs = new Map<string, LogConfig>();
  readonly #handles: FileHandleCache;
  readonly #cleaner: LogCleaner;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #failureListeners = new Set<(dir: string, err: unknown) => void>();
  readonly #background = new Set<Promise<unknown>>();
  readonly #deleteTimers = new Set<NodeJS.Timeout>();
  #started = false;
  #shuttingDown = false;
  /** Data dirs that had a clean shutdown marker at start-up. */
  readonly cleanShutdownDirs = new Set<string>();

  constructor(options: LogManagerOptions) {
    if (options.dataDirs.length === 0) throw new Error('at least one log directory is required');
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#settings = { ...DEFAULT_LOG_MANAGER_SETTINGS, ...options.settings };
    this.#files = options.files ?? realFilesFor(this.#settings, this.#logger);
    this.#brokerDefaults = options.brokerDefaults ?? {};
    this.#topicConfigs = options.topicConfigs ?? (() => undefined);
    this.#hwFollowsLogEnd = options.highWatermarkFollowsLogEnd ?? true;
    this.#handles = new FileHandleCache(this.#files, this.#settings.maxOpenSegmentFiles);
    this.#cleaner = new LogCleaner({ clock: this.#clock, dedupeBufferSize: this.#settings.cleanerDedupeBufferSize });
    this.#dirs = options.dataDirs.map((path) => ({
      path,
      offline: false,
      outOfSpace: false,
      recoveryPoints: new OffsetCheckpointFile(this.#files, path, RECOVERY_POINT_CHECKPOINT_FILE),
      logStartOffsets: new OffsetCheckpointFile(this.#files, path, LOG_START_OFFSET_CHECKPOINT_FILE),
      cleanerOffsets: new OffsetCheckpointFile(this.#files, path, CLEANER_OFFSET_CHECKPOINT_FILE),
      firstDirty: new Map(),
    }));
  }

  get handles(): FileHandleCache {
    return this.#handles;
  }

  /** Called once per data directory that goes offline. */
  onLogDirFailure(listener: (dir: string, err: unknown) => void): () => void {
    this.#failureListeners.add(listener);
    return () => this.#failureListeners.delete(listener);
  }

  get offlineDirs(): string[] {
    return this.#dirs.filter((d) => d.offline).map((d) => d.path);
  }

  /** Online directories whose last write found the file system full (appends fail, reads go on). */
  get outOfSpaceDirs(): string[] {
    return this.#dirs.filter((d) => d.outOfSpace && !d.offline).map((d) => d.path);
  }

  // ------------------------------------------------------------------------------------------
  // Start-up

  /** Loads every log of every data directory, recovering after an unclean stop. */
  async startup(): Promise<void> {
    for (const dir of this.#dirs) {
      try {
        await this.#loadDir(dir);
      } catch (err) {
        this.#markDirOffline(dir, err, false);
      }
    }
  }

  async #readCheckpoint(file: OffsetCheckpointFile): Promise<Map<string, bigint>> {
    try {
      return await file.read();
    } catch (err) {
      if (!(err instanceof CheckpointCorruptError)) throw err;
      // Treating a corrupt checkpoint as absent is safe: recovery scans more, starts fall back.
      this.#logger.warn({ file: file.path, err: err.message }, 'ignoring corrupt checkpoint file');
      return new Map();
    }
  }

  async #loadDir(dir: DataDir): Promise<void> {
    const files = this.#files;
    await files.mkdir(dir.path);
    const markerPath = join(dir.path, CLEAN_SHUTDOWN_FILE);
    const clean = (await files.stat(markerPath)) !== null;
    if (clean) this.cleanShutdownDirs.add(dir.path);
    const recoveryPoints = await this.#readCheckpoint(dir.recoveryPoints);
    const logStarts = await this.#readCheckpoint(dir.logStartOffsets);
    dir.firstDirty = await this.#readCheckpoint(dir.cleanerOffsets);
    const started = this.#clock.now();
    const loads: Array<() => Promise<void>> = [];
    // Directories only: with the file layer's help, without a stat per entry.
    const subdirectories = files.subdirectories === undefined ? null : new Set(await files.subdirectories(dir.path));
    for (const name of subdirectories ?? (await files.readdir(dir.path))) {
      const path = join(dir.path, name);
      if (name.endsWith(DELETE_DIR_SUFFIX)) {
        this.#deleteDirLater(path, 0);
        continue;
      }
      const tp = parsePartitionDirName(name);
      if (!tp) continue;
      const k = key(tp.topic, tp.partition);
      if (this.#logs.has(k)) {
        this.#logger.error(
          { partition: k, dir: dir.path },
          'duplicate log directories for a partition; ignoring this one',
        );
        continue;
      }
      loads.push(async () => {
        if (subdirectories === null) {
          // In the concurrent part: one stat after another was a quarter second for 10,000 partitions.
          const st = await files.stat(path);
          if (!st?.isDirectory) return;
        }
        const log = await PartitionLog.open(
          this.#logOptions(dir, tp.topic, tp.partition, {
            hadCleanShutdown: clean,
            ...(recoveryPoints.has(k) ? { recoveryPoint: recoveryPoints.get(k)! } : {}),
            ...(logStarts.has(k) ? { logStartOffset: logStarts.get(k)! } : {}),
          }),
        );
        this.#logs.set(k, { log, dir });
        loaded.push(log);
        if (progressStep > 0 && loaded.length % progressStep === 0 && loaded.length < loads.length) {
          this.#logger.info(
            { dir: dir.path, recovered: loaded.length, logs: loads.length, ms: this.#clock.now() - started },
            'recovering logs: progress',
          );
        }
      });
    }
    // Many logs at a time: loading is a few small file system calls per log, and the thread pool
    // takes them in bigger batches (those calls alone, for 10,000 logs: ~1 s 8 logs at a time,
    // ~0.5 s 32 at a time).
    const concurrency = 32;
    const loaded: PartitionLog[] = [];
    // A large recovery says how far it got, every tenth of the logs.
    const progressStep = !clean && loads.length >= RECOVERY_PROGRESS_MIN_LOGS ? Math.ceil(loads.length / 10) : 0;
    if (!clean && loads.length > 0) {
      // Recovery reads data: it may take a while, and the operator should know why.
      this.#logger.info(
        { dir: dir.path, logs: loads.length },
        'recovering logs after an unclean shutdown (no clean-shutdown marker)',
      );
    }
    let next = 0;
    const loadAll = (): Promise<unknown> =>
      Promise.all(
        Array.from({ length: Math.min(concurrency, loads.length) }, async () => {
          while (next < loads.length) await loads[next++]!();
        }),
      );
    // A clean start reads little per log, before the broker serves: blocking calls cost less
    // than their thread-pool round trips. Recovery reads data and stays asynchronous.
    await (clean && files.runBlocking !== undefined ? files.runBlocking(loadAll) : loadAll());
    if (clean) {
      await files.unlink(markerPath);
      await files.fsyncDir(dir.path);
    }
    // A directory without logs (a first start) had nothing to recover: not "cleanShutdown: false".
    let recoveredLogs = 0;
    let truncatedBytes = 0;
    let deletedSegments = 0;
    let deletedBytes = 0;
    for (const log of loaded) {
      if (log.recovered) recoveredLogs++;
      truncatedBytes += log.recoveredTruncatedBytes;
      deletedSegments += log.recoveredDeletedSegments;
      deletedBytes += log.recoveredDeletedBytes;
    }
    this.#logger.info(
      {
        dir: dir.path,
        logs: loads.length,
        ...(loads.length > 0 ? { cleanShutdown: clean, recoveredLogs, truncatedBytes } : {}),
        ...(deletedSegments > 0 ? { deletedSegments, deletedBytes } : {}),
        ms: this.#clock.now() - started,
      },
      'loaded log directory',
    );
  }

  /** One LogConfig per topic, shared by its logs (parsing one per partition cost 0.3 s for 10,000). */
  #configFor(topic: string): LogConfig {
    let config = this.#configs.get(topic);
    if (config === undefined) {
      const overrides = this.#topicOverrides.get(topic) ?? this.#topicConfigs(topic) ?? {};
      config = new LogConfig(overrides, this.#brokerDefaults);
      this.#configs.set(topic, config);
    }
    return config;
  }

  #logOptions(
    dir: DataDir,
    topic: string,
    partition: number,
    extra: Partial<PartitionLogOptions>,
  ): PartitionLogOptions {
    return {
      dir: join(dir.path, partitionDirName(topic, partition)),
      topic,
      partition,
      config: this.#configFor(topic),
      files: this.#files,
      handles: this.#handles,
      clock: this.#clock,
      logger: this.#logger,
      highWatermarkFollowsLogEnd: this.#hwFollowsLogEnd,
      onIoError: (err) => this.#markDirOffline(dir, err),
      onOutOfSpace: (err) => this.#markDirOutOfSpace(dir, err),
      onAppendWritten: () => {
        if (dir.outOfSpace) this.#spaceFreed(dir);
      },
      ...extra,
    };
  }

  // ------------------------------------------------------------------------------------------
  // Logs

  getLog(topic: string, partition: number): PartitionLog | undefined {
    return this.#logs.get(key(topic, partition))?.log;
  }

  get allLogs(): PartitionLog[] {
    return [...this.#logs.values()].map((e) => e.log);
  }

  /**
   * The partition's log, created in the online data directory holding the fewest partitions if it
   * does not exist (Kafka's nextLogDirs). KAFKA_STORAGE_ERROR when every directory is offline.
   * With `topicId`, the log's `partition.metadata` records it (written now if the log has none);
   * INCONSISTENT_TOPIC_ID when an existing log records another topic's id (see `deleteLog`).
   */
  async getOrCreateLog(
    topic: string,
    partition: number,
    overrides?: Readonly<Record<string, string>>,
    topicId?: string,
  ): Promise<PartitionLog> {
    const existing = this.getLog(topic, partition);
    if (existing) {
      if (topicId !== undefined) await existing.assignTopicId(topicId);
      return existing;
    }
    if (overrides && this.#topicOverrides.get(topic) !== overrides) {
      this.#topicOverrides.set(topic, overrides);
      this.#configs.delete(topic);
    }
    const counts = new Map<DataDir, number>();
    for (const d of this.#dirs) if (!d.offline) counts.set(d, 0);
    for (const { dir } of this.#logs.values()) if (counts.has(dir)) counts.set(dir, counts.get(dir)! + 1);
    const dir = [...counts.entries()].sort((a, b) => a[1] - b[1])[0]?.[0];
    if (!dir) throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, 'no online log directory');
    const k = key(topic, partition);
    try {
      const log = await PartitionLog.open(
        this.#logOptions(dir, topic, partition, {
          hadCleanShutdown: true,
          ...(topicId !== undefined ? { topicId } : {}),
        }),
      );
      const raced = this.getLog(topic, partition);
      if (raced) {
        await log.close();
        if (topicId !== undefined) await raced.assignTopicId(topicId);
        return raced;
      }
      this.#logs.set(k, { log, dir });
      return log;
    } catch (err) {
      if (err instanceof KafkaError) throw err;
      this.#markDirOffline(dir, err);
      const message = isOutOfSpaceError(err)
        ? `cannot create the log of ${k}: log directory ${dir.path} is out of space; free space and retry`
        : `cannot create the log of ${k}: I/O error in log directory ${dir.path}`;
      throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, message, { cause: err });
    }
  }

  /** Applies a topic's config overrides to its logs at runtime (IncrementalAlterConfigs). */
  updateTopicConfig(topic: string, overrides: Readonly<Record<string, string>>): LogConfig {
    const config = new LogConfig(overrides, this.#brokerDefaults);
    this.#topicOverrides.set(topic, { ...overrides });
    this.#configs.set(topic, config);
    for (const { log } of this.#logs.values()) if (log.topic === topic) log.updateConfig(config);
    return config;
  }

  /**
   * Deletes a partition: closes its log, renames its directory to `<topic>-<partition>.<uuid>-delete`
   * (so a restart does not load it) and removes it after file.delete.delay.ms in the background.
   */
  async deleteLog(topic: string, partition: number): Promise<void> {
    const k = key(topic, partition);
    const entry = this.#logs.get(k);
    if (!entry) return;
    this.#logs.delete(k);
    const { log, dir } = entry;
    const delay = log.config.fileDeleteDelayMs;
    try {
      // No flush: the data is being deleted, and an fdatasync of a large partition here held up
      // whatever waited behind the deletion (a cluster member's metadata changes). Writes under
      // way finish first (the log's queue), so no write races the closing of its file.
      await log.queue.run(() => log.closeWithoutFlush());
      const target = join(
        dir.path,
        `${partitionDirName(topic, partition)}.${randomUUID().replaceAll('-', '')}${DELETE_DIR_SUFFIX}`,
      );
      await this.#files.rename(log.dir, target);
      await this.#files.fsyncDir(dir.path);
      dir.firstDirty.delete(k);
      this.#deleteDirLater(target, delay);
    } catch (err) {
      this.#markDirOffline(dir, err);
    }
  }

  #deleteDirLater(path: string, delayMs: number): void {
    const remove = (): void =>
      this.#track(
        this.#files.rmTree(path).catch((err: unknown) => {
          this.#logger.warn({ path, err }, 'failed to delete a removed partition directory');
        }),
      );
    if (delayMs <= 0) {
      remove();
      return;
    }
    // Shutdown does not wait out file.delete.delay.ms: the renamed `-delete` directory is
    // removed at the next start instead, as Kafka does.
    const timer = setTimeout(() => {
      this.#deleteTimers.delete(timer);
      if (!this.#shuttingDown) remove();
    }, delayMs);
    timer.unref();
    this.#deleteTimers.add(timer);
  }

  #track(p: Promise<unknown>): void {
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }

  /** Waits for background deletions (tests). */
  async awaitBackground(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
    for (const { log } of this.#logs.values()) await log.awaitPendingDeletes();
  }

  /**
   * An I/O error takes the directory offline. A full file system does not (`recoverable`, except
   * at start-up and shutdown, where a failed write must not be followed by a clean-shutdown
   * marker): appends fail, reads go on, and appends resume once space is freed.
   */
  #markDirOffline(dir: DataDir, err: unknown, recoverable = true): void {
    if (recoverable && !this.#shuttingDown && isOutOfSpaceError(err)) {
      this.#markDirOutOfSpace(dir, err);
      return;
    }
    if (dir.offline) return;
    dir.offline = true;
    // The one log line for this failure; every partition in the directory now answers KAFKA_STORAGE_ERROR.
    this.#logger.error(
      { dir: dir.path, err: (err as Error)?.message ?? String(err) },
      'log directory is offline after an I/O error; its partitions are unavailable',
    );
    for (const { log, dir: d } of this.#logs.values()) {
      if (d === dir) {
        log.markOffline((err as Error)?.message ?? String(err));
        this.#track(log.closeWithoutFlush().catch(() => undefined));
      }
    }
    for (const l of this.#failureListeners) l(dir.path, err);
  }

  #markDirOutOfSpace(dir: DataDir, err: unknown): void {
    if (dir.outOfSpace || dir.offline) return;
    dir.outOfSpace = true;
    // The one error line of this episode; DescribeLogDirs reports KAFKA_STORAGE_ERROR meanwhile.
    this.#logger.error(
      { dir: dir.path, err: (err as Error)?.message ?? String(err) },
      `log directory ${dir.path} is out of space: appends fail with KAFKA_STORAGE_ERROR until space is freed; reads go on`,
    );
  }

  #spaceFreed(dir: DataDir): void {
    dir.outOfSpace = false;
    this.#logger.info({ dir: dir.path }, 'log directory has space again; appends resume');
  }

  // ------------------------------------------------------------------------------------------
  // Background tasks

  /** Starts retention, flush, checkpoint and cleaner schedules (timers are unref'd). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const s = this.#settings;
    this.#every(s.retentionCheckIntervalMs, () => this.runRetention());
    this.#every(Math.min(s.flushSchedulerIntervalMs, 1000), () => this.flushDirtyLogs());
    this.#every(s.flushOffsetCheckpointIntervalMs, () => this.checkpointRecoveryPoints());
    this.#every(s.flushStartOffsetCheckpointIntervalMs, () => this.checkpointLogStartOffsets());
    if (s.cleanerEnable) this.#every(s.cleanerBackoffMs, () => this.runCleaner());
  }

  #every(intervalMs: number, task: () => Promise<unknown>): void {
    if (!(intervalMs > 0) || intervalMs >= Number.MAX_SAFE_INTEGER) return;
    const run = (): void => {
      const timer = setTimeout(() => {
        if (this.#shuttingDown) return;
        const p = task().catch((err: unknown) => this.#logger.warn({ err }, 'background log task failed'));
        this.#track(p);
        void p.finally(() => {
          if (!this.#shuttingDown) run();
        });
      }, intervalMs);
      timer.unref();
      this.#timers.push(timer);
    };
    run();
  }

  #onlineLogs(): PartitionLog[] {
    return [...this.#logs.values()].filter((e) => !e.dir.offline && !e.log.isOffline).map((e) => e.log);
  }

  /** Kafka's cleanupLogs: retention for every online log. Returns segments deleted. */
  async runRetention(): Promise<number> {
    let deleted = 0;
    for (const log of this.#onlineLogs()) {
      try {
        deleted += await log.deleteOldSegments();
      } catch (err) {
        if (!(err instanceof KafkaError)) throw err;
      }
    }
    return deleted;
  }

  /** flush.ms for every log (each log also arms its own timer after appends). */
  async flushDirtyLogs(): Promise<void> {
    for (const log of this.#onlineLogs()) await log.maybeFlushByTime().catch(() => undefined);
  }

  async checkpointRecoveryPoints(): Promise<void> {
    await this.#checkpoint(
      (dir) => dir.recoveryPoints,
      (log) => log.recoveryPoint,
    );
  }

  async checkpointLogStartOffsets(): Promise<void> {
    await this.#checkpoint(
      (dir) => dir.logStartOffsets,
      (log) => log.logStartOffset,
    );
  }

  async #checkpoint(file: (d: DataDir) => OffsetCheckpointFile, value: (l: PartitionLog) => bigint): Promise<void> {
    for (const dir of this.#dirs) {
      if (dir.offline) continue;
      const offsets = new Map<string, bigint>();
      for (const [k, e] of this.#logs) if (e.dir === dir) offsets.set(k, value(e.log));
      try {
        await file(dir).write(offsets);
      } catch (err) {
        this.#markDirOffline(dir, err);
      }
    }
  }

  /**
   * One cleaner pass: every compacted log whose dirty ratio (or max.compaction.lag.ms) calls for
   * it is cleaned, filthiest first; the cleaner checkpoint is written afterwards.
   */
  async runCleaner(): Promise<number> {
    const candidates: Array<{
      log: PartitionLog;
      dir: DataDir;
      ratio: number;
      range: Awaited<ReturnType<LogCleaner['cleanableRange']>>;
    }> = [];
    for (const [k, e] of this.#logs) {
      if (e.dir.offline || e.log.isOffline || !e.log.config.compact) continue;
      const range = await this.#cleaner.cleanableRange(e.log, e.dir.firstDirty.get(k));
      if (this.#cleaner.shouldClean(e.log, range))
        candidates.push({ log: e.log, dir: e.dir, ratio: range.dirtyRatio, range });
    }
    candidates.sort((a, b) => b.ratio - a.ratio);
    let cleaned = 0;
    for (const c of candidates) {
      if (this.#shuttingDown) break;
      try {
        // A wrong index entry is repaired and the pass retried; corrupt data fails it, logged once.
        const result = await c.log.withIndexRepair(() => this.#cleaner.clean(c.log, c.range));
        if (result) {
          cleaned++;
          c.dir.firstDirty.set(key(c.log.topic, c.log.partition), result.cleanedUpTo);
          this.#logger.info(
            { topic: c.log.topic, partition: c.log.partition, ...result, cleanedUpTo: String(result.cleanedUpTo) },
            'cleaned log',
          );
        }
      } catch (err) {
        if (err instanceof KafkaError) continue;
        this.#markDirOffline(c.dir, err);
      }
    }
    for (const dir of this.#dirs) {
      if (dir.offline || dir.firstDirty.size === 0) continue;
      try {
        await dir.cleanerOffsets.write(dir.firstDirty);
      } catch (err) {
        this.#markDirOffline(dir, err);
      }
    }
    return cleaned;
  }

  get cleaner(): LogCleaner {
    return this.#cleaner;
  }

  // ------------------------------------------------------------------------------------------
  // Shutdown

  /**
   * Clean shutdown: stops the schedules, closes every log (fdatasync + trimmed indexes), writes the
   * checkpoints and then the clean-shutdown marker of each online directory.
   */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    for (const t of this.#timers) clearTimeout(t);
    for (const t of this.#deleteTimers) clearTimeout(t);
    this.#deleteTimers.clear();
    await Promise.allSettled([...this.#background]);
    // Several logs at a time: each close waits for its fdatasyncs, and concurrent ones share the
    // file system's journal commits (one at a time, 10,000 logs took 26 s to close).
    const entries = [...this.#logs.values()];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(SHUTDOWN_CONCURRENCY, entries.length) }, async () => {
        while (next < entries.length) {
          const { log, dir } = entries[next++]!;
          if (dir.offline) continue;
          try {
            await log.close();
          } catch (err) {
            this.#markDirOffline(dir, err, false);
          }
        }
      }),
    );
    await this.checkpointRecoveryPoints();
    await this.checkpointLogStartOffsets();
    for (const dir of this.#dirs) {
      if (dir.offline) continue;
      try {
        if (dir.firstDirty.size > 0) await dir.cleanerOffsets.write(dir.firstDirty);
        const f = await this.#files.open(join(dir.path, CLEAN_SHUTDOWN_FILE), 'w+');
        await f.datasync();
        await f.close();
        await this.#files.fsyncDir(dir.path);
      } catch (err) {
        this.#markDirOffline(dir, err, false);
      }
    }
    this.#files.reservation?.close?.();
  }
}
