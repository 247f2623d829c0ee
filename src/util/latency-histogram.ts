/**
 * A log-linear latency histogram (HdrHistogram-style) in microseconds: exact below 2.048 ms,
 * then 1024 buckets per power of two (relative error below 0.1%), up to about 19 hours.
 * Constant memory whatever the number of samples, so a perf run of a billion records can report
 * p99.9 exactly as well as one of a thousand.
 */
const LINEAR_LIMIT = 2048;
const SUB_BUCKETS = 1024;
const MAX_EXPONENT = 26;
const BUCKETS = LINEAR_LIMIT + MAX_EXPONENT * SUB_BUCKETS;
const MAX_MICROS = LINEAR_LIMIT * 2 ** MAX_EXPONENT - 1;

function bucketOf(micros: number): number {
  if (micros < LINEAR_LIMIT) return micros;
  let exponent = Math.floor(Math.log2(micros)) - 10;
  let sub = Math.floor(micros / 2 ** exponent);
  // Math.log2 may land one off near powers of two; the sub-bucket tells.
  if (sub >= 2 * SUB_BUCKETS) sub = Math.floor(micros / 2 ** ++exponent);
  else if (sub < SUB_BUCKETS) sub = Math.floor(micros / 2 ** --exponent);
  return LINEAR_LIMIT + (exponent - 1) * SUB_BUCKETS + (sub - SUB_BUCKETS);
}

/** The middle of a bucket's range, in microseconds. */
function bucketMidpoint(bucket: number): number {
  if (bucket < LINEAR_LIMIT) return bucket;
  const exponent = Math.floor((bucket - LINEAR_LIMIT) / SUB_BUCKETS) + 1;
  const sub = ((bucket - LINEAR_LIMIT) % SUB_BUCKETS) + SUB_BUCKETS;
  const width = 2 ** exponent;
  return sub * width + (width - 1) / 2;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  private sumMicros = 0;
  private maxMicros = 0;

  /** Records `n` samples of `ms` milliseconds. */
  record(ms: number, n = 1): void {
    const micros = Math.min(MAX_MICROS, Math.max(0, Math.round(ms * 1000)));
    this.counts[bucketOf(micros)]! += n;
    this.count += n;
    this.sumMicros += micros * n;
    if (micros > this.maxMicros) this.maxMicros = micros;
  }

  get meanMs(): number {
    return this.count === 0 ? 0 : this.sumMicros / this.count / 1000;
  }

  get maxMs(): number {
    return this.maxMicros / 1000;
  }

  /** The latency (ms) at or below which a fraction `q` (0..1) of the samples fall. */
  percentileMs(q: number): number {
    if (this.count === 0) return 0;
    const target = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= target) return Math.min(bucketMidpoint(b), this.maxMicros) / 1000;
    }
    return this.maxMs;
  }
}
