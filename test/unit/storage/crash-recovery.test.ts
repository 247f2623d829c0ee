/**
 * Crash recovery under flush.messages=1, over many random crash points: the faulty file layer
 * crashes before a chosen write, or tears it at a random byte, then cuts every file to its
 * fsynced bytes plus a random prefix of the rest (sometimes scrambling that prefix). Reopening
 * must keep every acknowledged record at its offset, serve only valid batches, and continue the
 * offsets without gaps or duplicates.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { PartitionLog } from '../../../src/storage/partition-log.ts';
import { FaultyFileLayer, seededRandom } from './faulty-file-layer.ts';
import { batch, readAll, str, tempDir } from './helpers.ts';

const ITERATIONS = Number(process.env.CRASH_ITERATIONS ?? 80);

test(`every acknowledged append survives ${ITERATIONS} random crash points`, async (t) => {
  const root = await tempDir(t, 'samsa-crash-');
  let truncatedRecoveries = 0;
  let totalAcked = 0;
  for (let iter = 0; iter < ITERATIONS; iter++) {
    const random = seededRandom(1000 + iter);
    const dir = join(root, `p${iter}`, 'topic-0');
    const config = new LogConfig({
      'flush.messages': '1',
      'segment.bytes': String(1500 + Math.floor(random() * 3000)),
      'index.interval.bytes': '200',
      'file.delete.delay.ms': '0',
    });
    const files = new FaultyFileLayer();
    const log = await PartitionLog.open({ dir, topic: 'topic', partition: 0, config, files });
    const crashAt = files.writes + 1 + Math.floor(random() * 40);
    const tear = random() < 0.5;
    files.crashBeforeWrite = (n) => {
      if (n !== crashAt) return false;
      if (!tear) return true;
      files.tearNextWrite(Math.floor(random() * 3000));
      return false;
    };
    const acked = new Map<bigint, string>();
    const attempted = new Set<string>();
    let seq = 0;
    const appender = async (id: number) => {
      for (;;) {
        const n = 1 + Math.floor(random() * 4);
        const values: string[] = [];
        for (let i = 0; i < n; i++) values.push(`i${iter}-a${id}-${seq++}`);
        for (const v of values) attempted.add(v);
        try {
          const info = await log.append(batch(values.map((v) => ({ value: v }))));
          values.forEach((v, i) => {
            acked.set(info.firstOffset + BigInt(i), v);
          });
        } catch {
          return;
        }
      }
    };
    await Promise.all([appender(0), appender(1), appender(2)]);
    assert.equal(log.isOffline, true, `iteration ${iter}: the crash took the log offline`);
    await log.closeWithoutFlush();
    await files.crash({ random, garbage: iter % 3 === 0 });

    const reopened = await PartitionLog.open({ dir, topic: 'topic', partition: 0, config });
    if (reopened.recoveredTruncatedBytes > 0) truncatedRecoveries++;
    totalAcked += acked.size;
    const records = await readAll(reopened);
    // Offsets are contiguous from 0 and every value is one we wrote, once.
    records.forEach((r, i) => {
      assert.equal(r.offset, BigInt(i), `iteration ${iter}: gap or duplicate at ${i}`);
    });
    assert.equal(reopened.logEndOffset, BigInt(records.length), `iteration ${iter}: log end`);
    const seen = new Set<string>();
    for (const r of records) {
      const v = str(r.value)!;
      assert.ok(attempted.has(v), `iteration ${iter}: unknown value ${v} served`);
      assert.ok(!seen.has(v), `iteration ${iter}: duplicate value ${v}`);
      seen.add(v);
    }
    for (const [offset, value] of acked) {
      assert.equal(
        str(records[Number(offset)]?.value ?? null),
        value,
        `iteration ${iter}: acked offset ${offset} lost`,
      );
    }
    const next = await reopened.append(batch([{ value: 'after' }]));
    assert.equal(next.firstOffset, BigInt(records.length), `iteration ${iter}: offsets continue`);
    await reopened.close();
  }
  // The scenarios must actually exercise torn tails and acknowledged data.
  assert.ok(truncatedRecoveries > ITERATIONS / 10, `only ${truncatedRecoveries} recoveries truncated anything`);
  assert.ok(totalAcked > ITERATIONS * 5);
});
