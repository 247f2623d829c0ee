/**
 * Fetch (key 1), versions 0-17.
 * v3: response max bytes (KIP-74: the first batch is returned even if larger). v4: isolation
 * level, last stable offset, aborted transactions (KIP-98). v5: log start offset. v7:
 * incremental fetch sessions (KIP-227). v9: current leader epoch, fenced (KIP-320). v11: rack id
 * (KIP-392). v12: flexible, diverging epoch. v13: topic IDs instead of names (KIP-516).
 * v15: replica state (KIP-903). v16: current leader hints (KIP-951): a partition failing with
 * NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH carries the leader and epoch the cluster view has,
 * and the response the live leaders' endpoints (Kafka's handleFetchRequest). v17: replica
 * directory id.
 * A request below min.bytes parks in the replica manager's delayed-fetch purgatory until an append
 * to one of its partitions or max.wait.ms, then reads again.
 * A replica id >= 0 (v0-14 replicaId, v15+ replicaState) is a follower's Fetch (Kafka's
 * ReplicaManager.fetchMessages for a follower): read up to the log end, the follower's position
 * recorded by the leader (ISR, high watermark), a lastFetchedEpoch that diverges from the leader's
 * log answered with divergingEpoch and no records (v12+, KIP-595's fetch-time truncation). It gets a
 * fetch session only if it asks for one (Samsa's fetcher does not). Replica id -2 (Kafka's
 * DEBUGGING_CONSUMER_ID) reads any replica here, follower or leader, up to its high watermark.
 * Not implemented: preferred read replicas (KIP-392).
 */
import type { TopicMetadata } from '../metadata/metadata-store.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type FetchRequest,
  type FetchResponseFetchableTopicResponseInput,
  type FetchResponseInput,
  type FetchResponsePartitionDataInput,
  readFetchRequest,
  writeFetchResponse,
} from '../protocol/messages/001-fetch.ts';
import type { FollowerReadResult, ReadResult } from './broker-services.ts';
import {
  type FetchSession,
  FINAL_EPOCH,
  INITIAL_EPOCH,
  type SessionPartition,
  sessionKey,
} from './fetch-session-cache.ts';
import type { RequestContext } from './handler.ts';
import { defineHandler } from './handler.ts';
import { currentLeader, LeaderEndpoints } from './partition-leaders.ts';

/**
 * Kafka's record set of an error partition: empty, never null. KafkaApis passes every partition of
 * a client Fetch through FetchResponse.recordsOrFail (null becomes MemoryRecords.EMPTY), and a
 * failed log read carries MemoryRecords.EMPTY. librdkafka refuses a whole response in which one
 * partition's record set is null ("invalid MessageSetSize -1") and fetches again at once, never
 * seeing the error: no auto.offset.reset, a spin on a deleted topic (issue 11 item 9).
 */
const NO_RECORDS = Buffer.alloc(0);

/** Kafka's FetchRequest.DEBUGGING_CONSUMER_ID: read any local replica, not only the leader. */
const DEBUGGING_REPLICA_ID = -2;

/** A partition of a Fetch response, with the fields the session compares always set. */
type PartitionData = FetchResponsePartitionDataInput & {
  errorCode: number;
  highWatermark: bigint;
  lastStableOffset: bigint;
  logStartOffset: bigint;
};

/** Kafka's FetchResponse.partitionResponse(partition, error). */
function partitionError(partition: number, errorCode: number): PartitionData {
  return {
    partitionIndex: partition,
    errorCode,
    highWatermark: -1n,
    lastStableOffset: -1n,
    logStartOffset: -1n,
    records: NO_RECORDS,
  };
}

/** The partitions a request names, as session entries (also used for sessionless fetches). */
function requestedPartitions(request: FetchRequest): SessionPartition[] {
  return request.topics.flatMap((t) =>
    t.partitions.map((p) => ({
      topicName: t.topic,
      topicId: t.topicId,
      partition: p.partition,
      fetchOffset: p.fetchOffset,
      partitionMaxBytes: p.partitionMaxBytes,
      currentLeaderEpoch: p.currentLeaderEpoch,
      lastHighWatermark: -1n,
      lastLogStartOffset: -1n,
      lastStableOffset: -1n,
    })),
  );
}

/** One partition's outcome of a read: its response data and how many record bytes it carries. */
interface ReadPartition {
  p: SessionPartition;
  /** The topic's name when it resolved (a v13+ request names topics by ID only). */
  topicName: string | undefined;
  topicId: string;
  data: PartitionData;
  bytes: number;
}

/**
 * Kafka's CachedPartition.maybeUpdateResponseData: whether a partition must be in an incremental
 * response (records, an error, or a high watermark, log start or last stable offset other than
 * the session last sent), updating the session with what the response sends. Called once per
 * partition of the response actually sent, never per read of a waiting fetch: a change seen by
 * an earlier read must still reach the client. After an error the remembered high watermark is
 * -1, so the partition is sent again once the error is gone.
 */
function updateSessionPartition(p: SessionPartition, data: PartitionData, bytes: number): boolean {
  let mustRespond = bytes > 0;
  if (data.highWatermark !== p.lastHighWatermark) {
    mustRespond = true;
    p.lastHighWatermark = data.highWatermark;
  }
  if (data.logStartOffset !== p.lastLogStartOffset) {
    mustRespond = true;
    p.lastLogStartOffset = data.logStartOffset;
  }
  if (data.lastStableOffset !== p.lastStableOffset) {
    mustRespond = true;
    p.lastStableOffset = data.lastStableOffset;
  }
  if (data.errorCode !== 0) {
    mustRespond = true;
    p.lastHighWatermark = -1n;
  }
  return mustRespond;
}

type SessionOutcome =
  | { kind: 'sessionless' }
  | { kind: 'full'; session: FetchSession | undefined }
  | { kind: 'incremental'; session: FetchSession }
  | { kind: 'error'; errorCode: number };

/** Applies KIP-227's rules for session id/epoch to the session cache. */
function resolveSession(ctx: RequestContext, request: FetchRequest, byId: boolean): SessionOutcome {
  const cache = ctx.services.fetchSessions;
  if (ctx.apiVersion < 7 || request.sessionEpoch === FINAL_EPOCH) {
    if (ctx.apiVersion >= 7 && request.sessionId !== 0) cache.remove(request.sessionId);
    return { kind: 'sessionless' };
  }
  const key = (topic: string, topicId: string, partition: number) => sessionKey(byId ? topicId : topic, partition);
  if (request.sessionEpoch === INITIAL_EPOCH) {
    if (request.sessionId !== 0) cache.remove(request.sessionId);
    const session = cache.create();
    if (session !== undefined) {
      for (const p of requestedPartitions(request)) session.partitions.set(key(p.topicName, p.topicId, p.partition), p);
    }
    return { kind: 'full', session };
  }
  const session = cache.get(request.sessionId);
  if (session === undefined) return { kind: 'error', errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND };
  if (session.epoch !== request.sessionEpoch)
    return { kind: 'error', errorCode: ErrorCode.INVALID_FETCH_SESSION_EPOCH };
  session.epoch = session.epoch >= 0x7fffffff ? 1 : session.epoch + 1;
  for (const p of requestedPartitions(request)) {
    const k = key(p.topicName, p.topicId, p.partition);
    const existing = session.partitions.get(k);
    if (existing === undefined) session.partitions.set(k, p);
    else {
      existing.fetchOffset = p.fetchOffset;
      existing.partitionMaxBytes = p.partitionMaxBytes;
      existing.currentLeaderEpoch = p.currentLeaderEpoch;
    }
  }
  for (const f of request.forgottenTopicsData) {
    for (const partition of f.partitions) session.partitions.delete(key(f.topic, f.topicId, partition));
  }
  return { kind: 'incremental', session };
}

export const fetchHandler = defineHandler<FetchRequest, FetchResponseInput>({
  apiKey: 1,
  readRequest: readFetchRequest,
  writeResponse: writeFetchResponse,
  minVersion: 0,
  maxVersion: 17,
  async handle(ctx, request) {
    const { logs, topics } = ctx.services;
    const byId = ctx.apiVersion >= 13;
    const replicaId = ctx.apiVersion >= 15 ? request.replicaState.replicaId : request.replicaId;
    const fromFollower = replicaId >= 0;
    // A follower replicates everything, transactional or not (Kafka ignores its isolation level).
    const readCommitted = !fromFollower && ctx.apiVersion >= 4 && request.isolationLevel === 1;
    const unknownTopicError = byId ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    const outcome = resolveSession(ctx, request, byId);
    if (outcome.kind === 'error')
      return { throttleTimeMs: 0, errorCode: outcome.errorCode, sessionId: 0, responses: [] };
    const session = outcome.kind === 'sessionless' ? undefined : outcome.session;
    // A follower's last fetched epoch per partition of this request (v12+). A session does not keep
    // it: a partition an incremental request leaves out is fetched without the epoch check, as
    // Kafka does for a partition whose fetch offset did not move.
    const lastFetchedEpochs = new Map<string, number>();
    if (fromFollower && ctx.apiVersion >= 12) {
      for (const t of request.topics)
        for (const q of t.partitions)
          lastFetchedEpochs.set(sessionKey(byId ? t.topicId : t.topic, q.partition), q.lastFetchedEpoch);
    }
    const incremental = outcome.kind === 'incremental';
    const wanted = session !== undefined ? [...session.partitions.values()] : requestedPartitions(request);
    const resolveTopic = (p: SessionPartition): TopicMetadata | undefined =>
      byId ? topics.getById(p.topicId) : topics.get(p.topicName);
    // One read of every partition; the purgatory runs it again while a parked fetch waits for
    // min.bytes (Kafka's DelayedFetch re-reads on completion too). Reads leave the session alone:
    // only the response built from the final read updates it.
    // A failed read reports the partition's offsets where this broker has them; a partition it
    // does not hold (another broker leads it) has none: -1, as Kafka's createLogReadResult.
    const errorData = (topic: TopicMetadata, p: SessionPartition, err: KafkaError): PartitionData => {
      const data = partitionError(p.partition, err.errorCode);
      try {
        const offsets = logs.offsets(topic, p.partition);
        return {
          ...data,
          highWatermark: offsets.highWatermark,
          lastStableOffset: offsets.lastStableOffset,
          logStartOffset: offsets.logStartOffset,
        };
      } catch (offsetsErr) {
        if (!(offsetsErr instanceof KafkaError)) throw offsetsErr;
        return data;
      }
    };
    const readAll = async () => {
      let budget = ctx.apiVersion >= 3 ? request.maxBytes : 0x7fffffff;
      let total = 0;
      let sawError = false;
      const read: ReadPartition[] = [];
      for (const p of wanted) {
        const topic = resolveTopic(p);
        if (topic === undefined || p.partition < 0 || p.partition >= topic.partitions) {
          read.push({
            p,
            topicName: undefined,
            topicId: p.topicId,
            data: partitionError(p.partition, unknownTopicError),
            bytes: 0,
          });
          sawError = true;
          continue;
        }
        try {
          const maxBytes = Math.min(p.partitionMaxBytes, budget);
          let result: ReadResult | FollowerReadResult;
          if (fromFollower) {
            const lastFetchedEpoch =
              lastFetchedEpochs.get(sessionKey(byId ? p.topicId : p.topicName, p.partition)) ?? -1;
            result = await logs.fetchForFollower(
              topic,
              p.partition,
              replicaId,
              p.fetchOffset,
              maxBytes,
              p.currentLeaderEpoch,
              lastFetchedEpoch,
            );
          } else if (replicaId === DEBUGGING_REPLICA_ID) {
            result = await logs.readReplica(topic, p.partition, p.fetchOffset, maxBytes);
          } else {
            // KIP-392: the leader sends a consumer in another rack to an in-sync replica in its
            // own, with no records (Kafka's readFromLocalLog with a preferred read replica).
            const preferred = ctx.apiVersion >= 11 ? logs.preferredReadReplica(topic, p.partition, request.rackId) : -1;
            if (preferred >= 0) {
              const offsets = logs.offsets(topic, p.partition);
              read.push({
                p,
                topicName: topic.name,
                topicId: topic.topicId,
                bytes: 0,
                data: {
                  partitionIndex: p.partition,
                  errorCode: 0,
                  highWatermark: offsets.highWatermark,
                  lastStableOffset: offsets.lastStableOffset,
                  logStartOffset: offsets.logStartOffset,
                  abortedTransactions: readCommitted ? [] : null,
                  preferredReadReplica: preferred,
                  records: NO_RECORDS,
                },
              });
              sawError = true; // answered at once
              continue;
            }
            // KIP-74: the first batch of the response is returned even if it exceeds the limits.
            // A v11+ consumer (client metadata) may read a follower (KIP-392).
            result = await logs.read(
              topic,
              p.partition,
              p.fetchOffset,
              maxBytes,
              readCommitted,
              total === 0,
              p.currentLeaderEpoch,
              ctx.apiVersion >= 11,
            );
          }
          const diverging = 'divergingEpoch' in result ? result.divergingEpoch : null;
          // Kafka's Partition.fetchRecords: a last fetched epoch whose end the leader cannot tell
          // (newer than any epoch here, or no epochs at all) is out of range, never a divergence
          // at offset -1, which the follower could not truncate to.
          if (diverging !== null && (diverging.epoch < 0 || diverging.endOffset < 0n))
            throw new KafkaError(
              ErrorCode.OFFSET_OUT_OF_RANGE,
              `the end of the last fetched epoch of ${topic.name}-${p.partition} is unknown here`,
            );
          total += result.bytes;
          budget = Math.max(0, budget - result.bytes);
          const data: PartitionData = {
            partitionIndex: p.partition,
            errorCode: 0,
            highWatermark: result.highWatermark,
            lastStableOffset: result.lastStableOffset,
            logStartOffset: result.logStartOffset,
            abortedTransactions: readCommitted
              ? 'abortedTransactions' in result
                ? (result.abortedTransactions ?? [])
                : []
              : null,
            records: result.records.length === 1 ? result.records[0]! : Buffer.concat(result.records, result.bytes),
          };
          if (diverging !== null) {
            data.divergingEpoch = diverging;
            // Answered at once: the follower must truncate before anything else (Kafka's
            // fetchMessages responds immediately to a diverging epoch).
            sawError = true;
          }
          read.push({ p, topicName: topic.name, topicId: topic.topicId, bytes: result.bytes, data });
        } catch (err) {
          if (!(err instanceof KafkaError)) throw err;
          sawError = true;
          read.push({ p, topicName: topic.name, topicId: topic.topicId, bytes: 0, data: errorData(topic, p, err) });
        }
      }
      return { bytes: total, hasError: sawError, read };
    };
    const watched = wanted.flatMap((p) => {
      const topic = resolveTopic(p);
      return topic === undefined ? [] : [{ topic, partition: p.partition }];
    });
    const { read } = await logs.fetch(watched, request.minBytes, request.maxWaitMs, readAll);
    const byTopic = new Map<
      string,
      FetchResponseFetchableTopicResponseInput & { partitions: FetchResponsePartitionDataInput[] }
    >();
    const endpoints = new LeaderEndpoints();
    for (const { p, topicName, topicId, data, bytes } of read) {
      // The session remembers what this response tells the client; an incremental response
      // carries only partitions with news against that (KIP-227).
      const mustRespond = session === undefined ? true : updateSessionPartition(p, data, bytes);
      if (incremental && !mustRespond) continue;
      if (
        ctx.apiVersion >= 16 &&
        topicName !== undefined &&
        (data.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER || data.errorCode === ErrorCode.FENCED_LEADER_EPOCH)
      ) {
        const leader = currentLeader(ctx.services.cluster, topicName, p.partition);
        data.currentLeader = { leaderId: leader.leaderId, leaderEpoch: leader.leaderEpoch };
        endpoints.add(leader.endpoint);
      }
      const topicKey = byId ? p.topicId : p.topicName;
      let entry = byTopic.get(topicKey);
      if (entry === undefined) {
        entry = { topic: p.topicName, topicId, partitions: [] };
        byTopic.set(topicKey, entry);
      }
      entry.partitions.push(data);
    }
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      sessionId: session?.id ?? 0,
      responses: [...byTopic.values()],
      ...(ctx.apiVersion >= 16 ? { nodeEndpoints: endpoints.list() } : {}),
    };
  },
  errorResponse(_ctx, request, errorCode) {
    return {
      errorCode,
      responses: request.topics.map((t) => ({
        topic: t.topic,
        topicId: t.topicId,
        partitions: t.partitions.map((p) => partitionError(p.partition, errorCode)),
      })),
    };
  },
});
