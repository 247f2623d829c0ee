/**
 * The broker's partition data service (the `LogService` handlers see): maps topic partitions to
 * their PartitionLog, checks idempotent-producer sequences around appends, parks long-poll
 * fetches until an append, and creates/removes logs as topics come and go.
 *
 * Idempotent batches of one partition are checked, appended and recorded under a per-partition
 * queue so a retry can never race its original; other batches go straight to the log (whose
 * own queue orders them and shares fsyncs between concurrent appends).
 * Producer state survives restarts: a snapshot is written on clean shutdown and the batches
 * appended after the newest snapshot are replayed when it is loaded. It is loaded when first
 * needed (an idempotent append, DescribeProducers), not at start, and snapshots are written only
 * where it changed: with 10,000 partitions, reading and writing one file each at every start,
 * stop and 30 s pass cost seconds (issue 11 item 18).
 */
import { readdir, readFile, rename, rm, statfs, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { BrokerConfig } from './broker-config.ts';
import type { AppendResult, LogService, PartitionOffsets, ReadResult } from './handlers/broker-services.ts';
import type { TopicMetadata } from './metadata/local-metadata-store.ts';
import type { PartitionLogLifecycle } from './metadata/topic-manager.ts';
import { ErrorCode, KafkaError } from './protocol/error-codes.ts';
import { ProtocolError, ProtocolErrorCodes } from './protocol/errors.ts';
import { isTransactional, type RecordBatchHeader, readBatchHeader } from './protocol/records/batch-header.ts';
import { iterateBatches } from './protocol/records/iterate-batches.ts';
import { type LogConfig, logConfigDefaultsFromBroker, logManagerSettingsFromBroker } from './storage/log-config.ts';
import { LogManager } from './storage/log-manager.ts';
import type { PartitionLog } from './storage/partition-log.ts';
import { type ProducerEntry, ProducerStateManager } from './storage/producer-state.ts';
import { CorruptSegmentError } from './storage/segment.ts';
import { SerialQueue } from './util/serial-queue.ts';

const SNAPSHOT_SUFFIX = '.snapshot';
/** How often producer state is snapshotted, bounding the log replayed after a crash. */
const SNAPSHOT_INTERVAL_MS = 30000;
const SNAPSHOTS_KEPT = 2;
const REPLAY_CHUNK_BYTES = 8 * 1024 * 1024;

interface PartitionState {
  log: PartitionLog;
  /** null until loaded (`producersOf`): a clean start reads no snapshot. */
  producers: ProducerStateManager | null;
  loading: Promise<ProducerStateManager> | null;
  idempotentQueue: SerialQueue;
  /** The log end offset when this service adopted the log: snapshots past it are stale. */
  openedAt: bigint;
  /** Offsets of the snapshot files in the partition directory, ascending; null until listed. */
  snapshots: bigint[] | null;
  /**
   * Offset of a snapshot file that holds the current producer state (unless `changed`); null when
   * none does. Its content also holds for any later log end until an idempotent batch arrives.
   */
  current: bigint | null;
  /** The producer state changed since it was loaded or last snapshotted. */
  changed: boolean;
}

/** Partitions handled at once at start, stop and in a snapshot pass (the file system work is per partition). */
const PARTITION_CONCURRENCY = 16;

async function forEachConcurrently<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(PARTITION_CONCURRENCY, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function key(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export class PartitionLogService implements LogService, PartitionLogLifecycle {
  private readonly partitions = new Map<string, PartitionState>();
  private readonly dataDir: string;
  private readonly log: Logger;
  private topicConfig: (t: TopicMetadata) => LogConfig = () => {
    throw new Error('topic configs not wired');
  };
  private producerIdExpirationMs: number;
  /** Parked long-poll fetches; shutdown wakes them so in-flight requests finish promptly. */
  private readonly waiters = new Set<() => void>();
  private shuttingDown = false;
  private expiryTimer: NodeJS.Timeout | undefined;
  private snapshotTimer: NodeJS.Timeout | undefined;

  private readonly manager: LogManager;

  private constructor(dataDir: string, log: Logger, producerIdExpirationMs: number, manager: LogManager) {
    this.dataDir = dataDir;
    this.log = log;
    this.producerIdExpirationMs = producerIdExpirationMs;
    this.manager = manager;
  }

  /**
   * Loads every partition log of the data directory (instantly after a clean shutdown, with
   * recovery from the checkpointed recovery points otherwise) and starts the background tasks
   * (retention, flush, checkpoints, cleaner).
   */
  static async open(
    config: BrokerConfig,
    log: Logger,
    topicOverrides: (topic: string) => Readonly<Record<string, string>> | undefined,
  ): Promise<PartitionLogService> {
    const expiration = Number(config.properties['producer.id.expiration.ms'] ?? 86400000);
    const manager = new LogManager({
      dataDirs: [config.dataDir],
      logger: log,
      settings: logManagerSettingsFromBroker(config.properties),
      brokerDefaults: logConfigDefaultsFromBroker(config.properties),
      topicConfigs: topicOverrides,
    });
    await manager.startup();
    const service = new PartitionLogService(config.dataDir, log, expiration, manager);
    service.expiryTimer = setInterval(() => service.expireProducers(), Math.min(expiration, 600000));
    service.expiryTimer.unref();
    service.snapshotTimer = setInterval(() => {
      service.snapshotProducers().catch((err: unknown) => log.warn({ err }, 'producer snapshot failed'));
    }, SNAPSHOT_INTERVAL_MS);
    service.snapshotTimer.unref();
    return service;
  }

  /** Wires the effective config of each topic (the topic manager owns the rules). */
  setTopicConfigs(configOf: (t: TopicMetadata) => LogConfig): void {
    this.topicConfig = configOf;
  }

  /**
   * Adopts the logs loaded at startup for the topics the metadata knows, removes the logs of
   * topics that no longer exist (a crash between deleting a topic and its data), creates any
   * missing ones, then starts the background tasks.
   */
  async openAll(topics: readonly TopicMetadata[]): Promise<void> {
    const known = new Map(topics.map((t) => [t.name, t]));
    for (const log of this.manager.allLogs) {
      const t = known.get(log.topic);
      if (t === undefined || log.partition >= t.partitions) await this.manager.deleteLog(log.topic, log.partition);
    }
    for (const t of topics) await this.createLogs(t, 0);
    this.manager.start();
  }

  async createLogs(topic: TopicMetadata, fromPartition: number): Promise<void> {
    const config = this.topicConfig(topic);
    const wanted: number[] = [];
    for (let p = fromPartition; p < topic.partitions; p++) if (!this.partitions.has(key(topic.name, p))) wanted.push(p);
    await forEachConcurrently(wanted, async (p) => {
      const created = this.manager.getLog(topic.name, p) === undefined;
      const log = await this.manager.getOrCreateLog(topic.name, p, topic.configs);
      log.updateConfig(config);
      // A log created empty just now has no producers and no snapshots: nothing to load, ever.
      const fresh = created && log.logEndOffset === 0n;
      this.partitions.set(key(topic.name, p), {
        log,
        producers: fresh ? new ProducerStateManager() : null,
        loading: null,
        idempotentQueue: new SerialQueue(),
        openedAt: log.logEndOffset,
        snapshots: fresh ? [] : null,
        current: null,
        changed: false,
      });
    });
  }

  async deleteLogs(topic: TopicMetadata): Promise<void> {
    for (let p = 0; p < topic.partitions; p++) {
      this.partitions.delete(key(topic.name, p));
      // Renamed to <topic>-<partition>.<uuid>-delete now, removed in the background.
      await this.manager.deleteLog(topic.name, p);
    }
  }

  updateConfig(topic: TopicMetadata): void {
    const config = this.topicConfig(topic);
    for (let p = 0; p < topic.partitions; p++) this.partitions.get(key(topic.name, p))?.log.updateConfig(config);
  }

  private state(topic: TopicMetadata, partition: number): PartitionState {
    const s = this.partitions.get(key(topic.name, partition));
    if (s === undefined)
      throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `${topic.name}-${partition} has no log`);
    return s;
  }

  async append(topic: TopicMetadata, partition: number, records: Buffer, _requiredAcks: number): Promise<AppendResult> {
    const s = this.state(topic, partition);
    const first = firstBatchHeader(records);
    if (isTransactional(first.attributes)) {
      // Without a transaction coordinator a transactional batch could never be committed or
      // aborted, and would hold the last stable offset back forever.
      throw new KafkaError(ErrorCode.INVALID_TXN_STATE, 'transactions are not supported by this broker yet');
    }
    if (first.producerId < 0n) {
      const info = await s.log.append(records, { leaderEpoch: topic.leaderEpochs[partition] ?? 0 });
      return { baseOffset: info.firstOffset, logAppendTimeMs: info.logAppendTime, logStartOffset: info.logStartOffset };
    }
    return s.idempotentQueue.run(async () => {
      const producers = await this.producersOf(s);
      // Kafka checks every batch of the request; a produce request carries one batch per
      // partition from idempotent producers, so the first decides for the request.
      const identity = {
        producerId: first.producerId,
        producerEpoch: first.producerEpoch,
        baseSequence: first.baseSequence,
        lastOffsetDelta: first.lastOffsetDelta,
        maxTimestamp: first.maxTimestamp,
      };
      const check = producers.check(identity);
      if (check.kind === 'duplicate') {
        return { baseOffset: check.firstOffset, logAppendTimeMs: -1n, logStartOffset: s.log.logStartOffset };
      }
      const info = await s.log.append(records, { leaderEpoch: topic.leaderEpochs[partition] ?? 0 });
      const now = Date.now();
      s.changed = true;
      for (const h of info.batches) {
        producers.record(
          {
            producerId: h.producerId,
            producerEpoch: h.producerEpoch,
            baseSequence: h.baseSequence,
            lastOffsetDelta: h.lastOffsetDelta,
            maxTimestamp: h.maxTimestamp,
          },
          h.baseOffset,
          h.baseOffset + BigInt(h.lastOffsetDelta),
          now,
        );
      }
      return { baseOffset: info.firstOffset, logAppendTimeMs: info.logAppendTime, logStartOffset: info.logStartOffset };
    });
  }

  async read(
    topic: TopicMetadata,
    partition: number,
    fetchOffset: bigint,
    maxBytes: number,
    readCommitted: boolean,
    minOneBatch: boolean,
  ): Promise<ReadResult> {
    const s = this.state(topic, partition);
    const info = await s.log.read(fetchOffset, maxBytes, {
      isolation: readCommitted ? 'txnCommitted' : 'highWatermark',
      minOneMessage: minOneBatch,
    });
    return {
      records: info.records.length > 0 ? [info.records] : [],
      bytes: info.records.length,
      logStartOffset: info.logStartOffset,
      highWatermark: info.highWatermark,
      lastStableOffset: info.lastStableOffset,
      logEndOffset: info.logEndOffset,
      leaderEpoch: topic.leaderEpochs[partition] ?? 0,
    };
  }

  offsets(topic: TopicMetadata, partition: number): PartitionOffsets {
    const { log } = this.state(topic, partition);
    return {
      logStartOffset: log.logStartOffset,
      highWatermark: log.highWatermark,
      lastStableOffset: log.lastStableOffset,
      logEndOffset: log.logEndOffset,
      leaderEpoch: topic.leaderEpochs[partition] ?? 0,
    };
  }

  async offsetForTimestamp(topic: TopicMetadata, partition: number, timestamp: bigint) {
    const found = await this.state(topic, partition).log.fetchOffsetByTimestamp(timestamp);
    return found === null ? null : { offset: found.offset, timestamp: found.timestamp };
  }

  async maxTimestamp(topic: TopicMetadata, partition: number) {
    const found = await this.state(topic, partition).log.fetchOffsetByTimestamp(-3n);
    return found === null ? null : { offset: found.offset, timestamp: found.timestamp };
  }

  endOffsetForEpoch(
    topic: TopicMetadata,
    partition: number,
    leaderEpoch: number,
  ): { epoch: number; endOffset: bigint } {
    return this.state(topic, partition).log.endOffsetForEpoch(leaderEpoch);
  }

  async deleteRecordsBefore(topic: TopicMetadata, partition: number, offset: bigint): Promise<bigint> {
    return this.state(topic, partition).log.deleteRecordsBefore(offset);
  }

  async producers(topic: TopicMetadata, partition: number): Promise<ProducerEntry[]> {
    return (await this.producersOf(this.state(topic, partition))).entries();
  }

  partitionSize(topic: TopicMetadata, partition: number): number {
    return this.state(topic, partition).log.size;
  }

  /** The partition's log is offline (its directory failed: reads and appends answer KAFKA_STORAGE_ERROR). */
  isOffline(topic: TopicMetadata, partition: number): boolean {
    return this.partitions.get(key(topic.name, partition))?.log.isOffline ?? false;
  }

  async logDirs(): Promise<
    { path: string; totalBytes: bigint; usableBytes: bigint; offline: boolean; outOfSpace: boolean }[]
  > {
    const fs = await statfs(this.dataDir, { bigint: true });
    return [
      {
        path: resolve(this.dataDir),
        totalBytes: fs.blocks * fs.bsize,
        usableBytes: fs.bavail * fs.bsize,
        offline: [...this.partitions.values()].some((s) => s.log.isOffline),
        outOfSpace: this.manager.outOfSpaceDirs.length > 0,
      },
    ];
  }

  waitForData(partitions: { topic: TopicMetadata; partition: number }[], timeoutMs: number): Promise<boolean> {
    if (this.shuttingDown) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const unsubscribes: (() => void)[] = [];
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        for (const u of unsubscribes) u();
        this.waiters.delete(finish);
        resolve(!this.shuttingDown);
      };
      this.waiters.add(finish);
      const timer = setTimeout(finish, timeoutMs);
      for (const p of partitions) {
        const s = this.partitions.get(key(p.topic.name, p.partition));
        if (s !== undefined) unsubscribes.push(s.log.onAppend(finish));
      }
    });
  }

  private expireProducers(): void {
    const now = Date.now();
    for (const s of this.partitions.values()) {
      if (s.producers !== null && s.producers.expire(now, this.producerIdExpirationMs) > 0) s.changed = true;
    }
  }

  /** The partition's producer state, loaded on first use. */
  private producersOf(s: PartitionState): Promise<ProducerStateManager> {
    if (s.producers !== null) return Promise.resolve(s.producers);
    s.loading ??= this.loadProducerState(s).then(
      (producers) => {
        s.producers = producers;
        return producers;
      },
      (err: unknown) => {
        s.loading = null;
        throw err;
      },
    );
    return s.loading;
  }

  /** Snapshot files of the partition, listed once; those past the log end at start are stale and go. */
  private async listSnapshots(s: PartitionState): Promise<bigint[]> {
    if (s.snapshots !== null) return s.snapshots;
    const all = (await readdir(s.log.dir))
      .filter((f) => f.endsWith(SNAPSHOT_SUFFIX))
      .map((f) => BigInt(f.slice(0, -SNAPSHOT_SUFFIX.length)))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // Written before a crash whose recovery cut the log below them: they describe lost data.
    for (const o of all) if (o > s.openedAt) await rm(join(s.log.dir, snapshotName(o)), { force: true });
    s.snapshots = all.filter((o) => o <= s.openedAt);
    return s.snapshots;
  }

  /**
   * Newest readable snapshot at or below the log end at start, then the batches appended after
   * it (Kafka's loadProducerState). Producers that expired meanwhile are dropped.
   */
  private async loadProducerState(s: PartitionState): Promise<ProducerStateManager> {
    const log = s.log;
    const snapshots = await this.listSnapshots(s);
    let producers = new ProducerStateManager();
    let from = log.logStartOffset;
    let loadedFrom: bigint | null = null;
    for (let i = snapshots.length - 1; i >= 0 && loadedFrom === null; i--) {
      const offset = snapshots[i]!;
      try {
        producers = ProducerStateManager.fromSnapshot(await readFile(join(log.dir, snapshotName(offset))));
        loadedFrom = offset;
        if (offset > from) from = offset;
      } catch (err) {
        this.log.warn({ err, dir: log.dir }, 'unreadable producer snapshot; rebuilding from an older one or the log');
      }
    }
    const now = Date.now();
    let replayed = false;
    while (from < log.logEndOffset) {
      let chunk: Awaited<ReturnType<PartitionLog['read']>>;
      try {
        chunk = await log.read(from, REPLAY_CHUNK_BYTES, { isolation: 'logEnd', minOneMessage: true });
      } catch (err) {
        if (!(err instanceof CorruptSegmentError)) throw err;
        // One damaged partition must not keep the broker from starting; reads reaching the damage fail.
        this.log.warn(
          { dir: log.dir, offset: String(from), err: err.message },
          'producer state replay stopped at a corrupt record batch; idempotent producers may see sequence errors',
        );
        break;
      }
      if (chunk.records.length === 0) break;
      let next = from;
      for (const { header } of iterateBatches(chunk.records, { partialTail: 'stop', verifyCrc: false })) {
        const last = header.baseOffset + BigInt(header.lastOffsetDelta);
        if (last >= from && header.producerId >= 0n) {
          replayed = true;
          producers.record(
            {
              producerId: header.producerId,
              producerEpoch: header.producerEpoch,
              baseSequence: header.baseSequence,
              lastOffsetDelta: header.lastOffsetDelta,
              maxTimestamp: header.maxTimestamp,
            },
            header.baseOffset,
            last,
            now,
          );
        }
        next = last + 1n;
      }
      if (next <= from) break;
      from = next;
    }
    const expired = producers.expire(now, this.producerIdExpirationMs) > 0;
    // The snapshot still describes the state unless the replay or the expiry changed it.
    s.current = replayed || expired ? null : loadedFrom;
    s.changed = replayed || expired;
    return producers;
  }

  /** Wakes parked fetches and makes new ones return at once (the first step of shutdown). */
  stopWaiting(): void {
    this.shuttingDown = true;
    for (const finish of [...this.waiters]) finish();
  }

  /**
   * Snapshots the producer state of the partitions where it changed since the last snapshot, so
   * a restart after a crash replays only the log after it (Kafka snapshots at segment roll).
   * Partitions whose producer state did not change cost nothing: their log end may have moved,
   * but the last snapshot still holds their state. Taken under the partition's idempotent queue:
   * every idempotent batch below the log end offset is then recorded, which is what a snapshot
   * at that offset must contain.
   */
  async snapshotProducers(): Promise<void> {
    const started = performance.now();
    const changed = [...this.partitions.values()].filter((s) => s.changed && !s.log.closed);
    let written = 0;
    await forEachConcurrently(changed, (s) =>
      s.idempotentQueue.run(async () => {
        if (!s.changed || s.log.closed || s.producers === null) return;
        await this.writeSnapshot(s, s.producers);
        written++;
      }),
    );
    this.log.debug(
      { partitions: this.partitions.size, written, ms: Math.round(performance.now() - started) },
      'producer state snapshot pass',
    );
  }

  /** Writes the producer state as the snapshot at the log end and drops the oldest beyond those kept. */
  private async writeSnapshot(s: PartitionState, producers: ProducerStateManager): Promise<void> {
    const end = s.log.logEndOffset;
    const snapshots = await this.listSnapshots(s);
    const path = join(s.log.dir, snapshotName(end));
    s.changed = false;
    try {
      await writeFile(`${path}.tmp`, producers.toSnapshot());
      await rename(`${path}.tmp`, path);
    } catch (err) {
      s.changed = true;
      throw err;
    }
    s.current = end;
    if (snapshots.at(-1) !== end) snapshots.push(end);
    await this.#dropOldSnapshots(s, snapshots);
  }

  async #dropOldSnapshots(s: PartitionState, snapshots: bigint[]): Promise<void> {
    while (snapshots.length > SNAPSHOTS_KEPT)
      await rm(join(s.log.dir, snapshotName(snapshots.shift()!)), { force: true });
  }

  /**
   * At a clean stop, the newest snapshot of each partition must hold its state at the log end,
   * so the next start replays nothing. Where the state changed it is written; where only the
   * log end moved, the snapshot holding the unchanged state is renamed to the log end (it was
   * loaded, or the start found it at the log end); where nothing moved, nothing is done.
   */
  private async snapshotAtStop(s: PartitionState): Promise<void> {
    const end = s.log.logEndOffset;
    if (s.producers !== null) {
      if (s.changed || s.current === null) {
        // (An empty log needs no snapshot: there is nothing to replay.)
        if (s.changed || end > s.log.logStartOffset) await this.writeSnapshot(s, s.producers);
        return;
      }
    } else {
      if (end === s.openedAt) return; // the files are as the start found them
      const snapshots = await this.listSnapshots(s);
      // Only plain batches since the start (an idempotent one would have loaded the state): a
      // snapshot at the start's log end still holds. Otherwise the state stays for the replay.
      if (snapshots.at(-1) !== s.openedAt) return;
      s.current = s.openedAt;
    }
    const from = s.current!;
    if (from === end) return;
    await rename(join(s.log.dir, snapshotName(from)), join(s.log.dir, snapshotName(end)));
    const snapshots = await this.listSnapshots(s);
    snapshots.splice(snapshots.indexOf(from), 1);
    snapshots.push(end);
    s.current = end;
  }

  /**
   * Clean shutdown: producer snapshots where needed (while the logs are still open: a state not
   * yet loaded may need the log to rebuild it), then every log flushed and closed with its
   * checkpoints.
   */
  async close(): Promise<void> {
    this.stopWaiting();
    if (this.expiryTimer !== undefined) clearInterval(this.expiryTimer);
    if (this.snapshotTimer !== undefined) clearInterval(this.snapshotTimer);
    const states = [...this.partitions.values()];
    await forEachConcurrently(states, async (s) => {
      await s.idempotentQueue.run(async () => {
        if (s.log.closed || s.log.isOffline) return;
        try {
          await this.snapshotAtStop(s);
        } catch (err) {
          this.log.warn({ err, dir: s.log.dir }, 'could not write producer snapshot');
        }
      });
    });
    await this.manager.shutdown();
    this.partitions.clear();
  }
}

/** The first batch's header; malformed or legacy bytes are the partition's error, as in Kafka. */
function firstBatchHeader(records: Buffer): RecordBatchHeader {
  try {
    return readBatchHeader(records, 0);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    const code =
      err.code === ProtocolErrorCodes.unsupportedVersion
        ? ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT
        : ErrorCode.CORRUPT_MESSAGE;
    throw new KafkaError(code, err.message, { cause: err });
  }
}

function snapshotName(offset: bigint): string {
  return `${offset.toString().padStart(20, '0')}${SNAPSHOT_SUFFIX}`;
}
