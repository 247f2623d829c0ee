/**
 * DescribeLogDirs (key 35), versions 0-4 (KIP-113).
 * v1: same as v0. v2: flexible. v3: top-level error code (KIP-784). v4: total and usable bytes
 * of the directory (KIP-827). Null topics = every partition. Only the partitions this broker
 * holds a replica of are listed (Kafka lists its local logs): in a cluster the others live on
 * other brokers' disks.
 */
import type { TopicMetadata } from '../metadata/metadata-store.ts';
import { ErrorCode, KafkaError } from '../protocol/error-codes.ts';
import {
  type DescribeLogDirsRequest,
  type DescribeLogDirsResponseInput,
  readDescribeLogDirsRequest,
  writeDescribeLogDirsResponse,
} from '../protocol/messages/035-describe-log-dirs.ts';
import { defineHandler } from './handler.ts';

export const describeLogDirsHandler = defineHandler<DescribeLogDirsRequest, DescribeLogDirsResponseInput>({
  apiKey: 35,
  readRequest: readDescribeLogDirsRequest,
  writeResponse: writeDescribeLogDirsResponse,
  minVersion: 0,
  maxVersion: 4,
  async handle(ctx, request) {
    const { topics, logs, cluster, nodeId } = ctx.services;
    const dirs = await logs.logDirs();
    // A partition assigned here whose log is not created yet (an instant after its topic) is left
    // out, as a broker lists only the logs it has.
    const sizes = (topic: TopicMetadata, partitions: number[]) =>
      partitions.flatMap((p) => {
        if (cluster.partitionState(topic.name, p)?.replicas.includes(nodeId) !== true) return [];
        try {
          return [{ partitionIndex: p, partitionSize: BigInt(logs.partitionSize(topic, p)) }];
        } catch (err) {
          if (!(err instanceof KafkaError)) throw err;
          return [];
        }
      });
    const wanted =
      request.topics === null
        ? topics.list().map((t) => ({ topic: t, partitions: Array.from({ length: t.partitions }, (_, i) => i) }))
        : request.topics.flatMap((r) => {
            const t = topics.get(r.topic);
            return t === undefined
              ? []
              : [{ topic: t, partitions: r.partitions.filter((p) => p >= 0 && p < t.partitions) }];
          });
    const local = wanted.map((w) => ({ name: w.topic.name, partitions: sizes(w.topic, w.partitions) }));
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      results: dirs.map((d) => ({
        // A full directory too: appends to it fail (Kafka would have taken it offline).
        errorCode: d.offline || d.outOfSpace ? ErrorCode.KAFKA_STORAGE_ERROR : 0,
        logDir: d.path,
        topics: local.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => ({ ...p, offsetLag: 0n, isFutureKey: false })),
        })),
        totalBytes: ctx.apiVersion >= 4 ? d.totalBytes : -1n,
        usableBytes: ctx.apiVersion >= 4 ? d.usableBytes : -1n,
      })),
    };
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode, results: [] };
  },
});
