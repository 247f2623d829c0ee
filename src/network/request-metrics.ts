/**
 * Per-API request timings, as Kafka's RequestMetrics (TotalTimeMs, LocalTimeMs,
 * ResponseQueueTimeMs): from the moment a request's last byte was read to the moment its response
 * was handed to the socket, split into the handler's time and the wait behind earlier responses
 * of the same connection (responses go out in request order). Histograms, not samples, so tail
 * percentiles are exact.
 */
import { apiKeyInfo } from '../protocol/messages/api-keys.ts';
import { LatencyHistogram } from '../util/latency-histogram.ts';

export interface ApiTimings {
  apiKey: number;
  /** Kafka's request name (`Produce`, `Fetch`, ...), as its RequestMetrics' `request` tag. */
  name: string;
  requests: number;
  /** Read complete -> response written to the socket. */
  total: LatencyHistogram;
  /** Read complete -> handler finished. */
  local: LatencyHistogram;
}

export class RequestMetrics {
  private readonly byApi = new Map<number, ApiTimings>();

  record(apiKey: number, localMs: number, totalMs: number): void {
    let t = this.byApi.get(apiKey);
    if (t === undefined) {
      const name = apiKeyInfo(apiKey)?.name ?? `ApiKey${apiKey}`;
      t = { apiKey, name, requests: 0, total: new LatencyHistogram(), local: new LatencyHistogram() };
      this.byApi.set(apiKey, t);
    }
    t.requests++;
    t.local.record(localMs);
    t.total.record(totalMs);
  }

  /** Timings of every API key seen so far, by key. */
  apis(): ApiTimings[] {
    return [...this.byApi.values()].sort((a, b) => a.apiKey - b.apiKey);
  }

  reset(): void {
    this.byApi.clear();
  }
}
