// Issue 12: `samsa consume` surfaces a partition whose leader cannot read its log (here a corrupt
// batch in the middle of a cleanly shut down segment, which the broker answers with
// KAFKA_STORAGE_ERROR instead of skipping) instead of idling silently: once on stderr, and with
// --exit-at-end it ends with exit code 1 after printing every record before the damage.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import { iterateBatches } from '../../../src/protocol/records/index.ts';
import { runCli } from './helpers.ts';

test('samsa consume reports KAFKA_STORAGE_ERROR once and, with --exit-at-end, exits 1', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-cli-rot-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  let broker = await startBroker({ dataDir, logLevel: 'silent' });
  const lines = Array.from({ length: 200 }, (_, i) => `v${i}`);
  assert.equal((await runCli(['topic', 'create', '-b', broker.bootstrap, '--topic', 'rot'])).code, 0);
  // One record per batch (linger 0, batch size 1), so the damage sits in the middle of the data.
  const produced = await runCli(
    ['produce', '-b', broker.bootstrap, '--topic', 'rot', '--linger-ms', '0', '--batch-size', '1'],
    `${lines.join('\n')}\n`,
  );
  assert.equal(produced.code, 0, produced.stderr);
  await broker.close();

  const logPath = join(dataDir, 'rot-0', '00000000000000000000.log');
  const data = await readFile(logPath);
  const batches = [...iterateBatches(data)];
  assert.ok(batches.length >= 100, `${batches.length} batches`);
  const victim = batches[Math.floor(batches.length / 2)]!;
  data.writeInt32BE(3, victim.offset + 8); // an impossible batch length
  await writeFile(logPath, data);

  broker = await startBroker({ dataDir, logLevel: 'silent' });
  t.after(() => broker.close());
  const r = await runCli([
    'consume',
    '-b',
    broker.bootstrap,
    '--topic',
    'rot',
    '--from-beginning',
    '--exit-at-end',
    '--timeout-ms',
    '20000',
  ]);
  assert.equal(r.code, 1, r.stderr);
  const printed = r.stdout.trimEnd().split('\n');
  assert.deepEqual(printed, lines.slice(0, printed.length), 'the records before the damage, in order');
  assert.ok(printed.length > 0 && printed.length < lines.length, `${printed.length} records printed`);
  const errorLines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.includes('KAFKA_STORAGE_ERROR'));
  assert.ok(errorLines.length >= 1 && errorLines.length <= 2, r.stderr);
  assert.match(r.stderr, /rot partition\(s\) 0: KAFKA_STORAGE_ERROR: the leader cannot read its log/);
});
