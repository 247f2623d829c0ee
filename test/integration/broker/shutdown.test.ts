// Regression: a clean shutdown used to wait out file.delete.delay.ms (60 s by default) after a
// topic deletion. Now the renamed `-delete` directory is left for the next start to remove.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import { WireClient } from '../../helpers/wire-client.ts';

test('shutdown after a topic deletion does not wait for file.delete.delay.ms; the next start removes the data', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-shutdown-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const broker = await startBroker({ dataDir, temporary: false });
  const client = await WireClient.connect(broker.bootstrap);
  await client.request(19, 4, {
    topics: [{ name: 'doomed', numPartitions: 2, replicationFactor: 1 }],
    timeoutMs: 5000,
  });
  await client.request(20, 4, { topicNames: ['doomed'], timeoutMs: 5000 });
  client.close();
  const started = Date.now();
  await broker.close();
  // Far below the 60 s default delay: close() no longer waits for the deferred deletion.
  assert.ok(Date.now() - started < 20000, `close took ${Date.now() - started} ms`);
  const pending = (await readdir(dataDir)).filter((f) => f.endsWith('-delete'));
  assert.equal(pending.length, 2, 'renamed partition directories await removal');

  const again = await startBroker({ dataDir, temporary: false });
  for (let i = 0; i < 100 && (await readdir(dataDir)).some((f) => f.endsWith('-delete')); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(
    (await readdir(dataDir)).filter((f) => f.startsWith('doomed')),
    [],
  );
  await again.close();
});
