/**
 * DescribeLogDirs (key 35), versions 0-4 (KIP-113).
 * v1: same as v0. v2: flexible. v3: top-level error code (KIP-784). v4: total and usable bytes
 * of the directory (KIP-827). Null topics = every partition.
 */
import { ErrorCode } from '../protocol/error-codes.ts';
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
    const { topics, logs } = ctx.services;
    const wanted =
      request.topics === null
        ? topics.list().map((t) => ({ topic: t, partitions: Array.from({ length: t.partitions }, (_, i) => i) }))
        : request.topics.flatMap((r) => {
            const t = topics.get(r.topic);
            return t === undefined
              ? []
              : [{ topic: t, partitions: r.partitions.filter((p) => p >= 0 && p < t.partitions) }];
          });
    const dirs = await logs.logDirs();
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      results: dirs.map((d) => ({
        // A full directory too: appends to it fail (Kafka would have taken it offline).
        errorCode: d.offline || d.outOfSpace ? ErrorCode.KAFKA_STORAGE_ERROR : 0,
        logDir: d.path,
        topics: wanted.map((w) => ({
          name: w.topic.name,
          partitions: w.partitions.map((p) => ({
            partitionIndex: p,
            partitionSize: BigInt(logs.partitionSize(w.topic, p)),
            offsetLag: 0n,
            isFutureKey: false,
          })),
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
