/**
 * A real `kill -9` of a process appending with flush.messages=1: every append it acknowledged
 * (printed) must be in the log after reopening, and offsets continue without gaps. Two rounds, so
 * the second child recovers the first one's torn tail before it is killed too.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { LogConfig } from '../../../src/storage/log-config.ts';
import { PartitionLog } from '../../../src/storage/partition-log.ts';
import { readAll, str, tempDir } from './helpers.ts';

const fixture = fileURLToPath(new URL('../../fixtures/storage-appender.ts', import.meta.url));

async function runAndKill(dir: string, tag: string, minAcks: number): Promise<Map<bigint, string>> {
  const child = spawn(process.execPath, [fixture, dir, tag], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acked = new Map<bigint, string>();
  let buffer = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`child made no progress: ${stderr}`)), 30_000);
    child.on('error', reject);
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const [kind, first, ...values] = line.split(' ');
        if (kind !== 'ACK') continue;
        values.forEach((v, i) => {
          acked.set(BigInt(first!) + BigInt(i), v);
        });
      }
      if (acked.size >= minAcks && child.exitCode === null && !child.killed) {
        clearTimeout(deadline);
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.on('exit', () => {
      clearTimeout(deadline);
      if (acked.size < minAcks) reject(new Error(`child exited early: ${stderr}`));
    });
  });
  await exited;
  return acked;
}

test('kill -9 while appending with flush.messages=1 loses no acknowledged record', async (t) => {
  const dir = await tempDir(t, 'samsa-kill-');
  const first = await runAndKill(dir, 'r1', 300);
  const second = await runAndKill(dir, 'r2', 300);
  const log = await PartitionLog.open({
    dir: join(dir, 'killed-0'),
    topic: 'killed',
    partition: 0,
    config: new LogConfig({ 'segment.bytes': '20000' }),
  });
  try {
    const records = await readAll(log);
    records.forEach((r, i) => {
      assert.equal(r.offset, BigInt(i), `gap or duplicate at ${i}`);
    });
    for (const [offset, value] of [...first, ...second]) {
      assert.equal(str(records[Number(offset)]?.value ?? null), value, `acknowledged offset ${offset} lost`);
    }
    assert.ok(log.numberOfSegments > 1, 'the run crossed segment rolls');
    const next = await log.append(buildRecordBatchSync({ records: [{ key: null, value: Buffer.from('after') }] }));
    assert.equal(next.firstOffset, BigInt(records.length));
  } finally {
    await log.close();
  }
});
