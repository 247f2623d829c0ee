/**
 * The transaction index under random crash points (process crash or power loss through the faulty
 * file layer): reopening never fails because of a .txnindex, and every entry it keeps names an
 * abort marker that survived; a damaged file is reported (corruptTxnIndexFrom) for the rebuild.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { isControl } from '../../../src/protocol/records/batch-header.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { buildControlBatch, readControlRecord } from '../../../src/protocol/records/control-record.ts';
import { iterateBatches } from '../../../src/protocol/records/iterate-batches.ts';
import { decodeRecordsSync } from '../../../src/protocol/records/record.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { PartitionLog } from '../../../src/storage/partition-log.ts';
import { FaultyFileLayer, seededRandom } from './faulty-file-layer.ts';
import { tempDir } from './helpers.ts';

const ITERATIONS = Number(process.env.CRASH_ITERATIONS ?? 40);

test(`aborted-transaction entries stay consistent with the log over ${ITERATIONS} random crash points`, async (t) => {
  const root = await tempDir(t, 'samsa-txn-crash-');
  let kept = 0;
  let corrupt = 0;
  for (let iter = 0; iter < ITERATIONS; iter++) {
    const random = seededRandom(7000 + iter);
    const dir = join(root, `p${iter}`, 'topic-0');
    const config = new LogConfig({
      'flush.messages': random() < 0.5 ? '1' : '1000000',
      'segment.bytes': String(600 + Math.floor(random() * 1500)),
      'file.delete.delay.ms': '0',
    });
    const files = new FaultyFileLayer();
    const log = await PartitionLog.open({ dir, topic: 'topic', partition: 0, config, files });
    const crashAt = files.writes + 2 + Math.floor(random() * 60);
    const tear = random() < 0.5;
    files.crashBeforeWrite = (n) => {
      if (n !== crashAt) return false;
      if (!tear) return true;
      files.tearNextWrite(Math.floor(random() * 200));
      return false;
    };
    try {
      for (let pid = 1n; ; pid++) {
        const first = await log.append(
          buildRecordBatchSync({
            records: [{ key: null, value: Buffer.from(`v${pid}`), timestamp: 0n }],
            producerId: pid,
            producerEpoch: 0,
            baseSequence: 0,
            transactional: true,
          }),
        );
        const type = random() < 0.7 ? 'abort' : 'commit';
        const m = await log.append(
          buildControlBatch({ type, producerId: pid, producerEpoch: 0, coordinatorEpoch: 0, timestamp: 0n }),
          { origin: 'coordinator' },
        );
        if (type === 'abort') {
          await log.appendAbortedTxn({
            producerId: pid,
            firstOffset: first.firstOffset,
            lastOffset: m.lastOffset,
            lastStableOffset: m.lastOffset + 1n,
          });
        }
        if (random() < 0.2) await log.flush();
      }
    } catch {
      // the crash
    }
    await log.closeWithoutFlush();
    await files.crash({ random, garbage: iter % 3 === 0 });

    const reopened = await PartitionLog.open({ dir, topic: 'topic', partition: 0, config });
    if (reopened.corruptTxnIndexFrom !== null) corrupt++;
    const entries = await reopened.collectAbortedTxns(0n, reopened.logEndOffset);
    for (const e of entries) {
      assert.ok(e.lastOffset < reopened.logEndOffset, `iteration ${iter}: entry past the log end`);
      const r = await reopened.read(e.lastOffset, 1 << 16, { isolation: 'logEnd' });
      const [b] = [...iterateBatches(r.records)];
      assert.ok(b && isControl(b.header.attributes), `iteration ${iter}: entry at ${e.lastOffset} names no marker`);
      assert.equal(b.header.producerId, e.producerId);
      const rec = decodeRecordsSync(r.records.subarray(b.offset, b.offset + b.size))[0]!;
      assert.equal(readControlRecord(rec).type, 'abort');
      kept++;
    }
    // The log goes on: a replay from the start rebuilds the index without complaint.
    await reopened.truncateAbortedTxnsFrom(0n);
    assert.equal(reopened.corruptTxnIndexFrom, null);
    await reopened.close();
  }
  assert.ok(kept > 0, 'some entries survived');
  t.diagnostic(`entries checked ${kept}, damaged indexes ${corrupt}`);
});
