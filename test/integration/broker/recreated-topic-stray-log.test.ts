// A data directory whose metadata says topic `t` is a different topic (deleted and recreated under
// the same name elsewhere: here another broker's samsa-metadata.json replaces this one's) while
// the logs of the old `t` are still on disk: at start the broker must delete those logs (their
// partition.metadata names the old topic id, KIP-516) and serve the new `t` empty, instead of
// letting the old records resurface in it.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startBroker } from '../../../src/broker.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/index.ts';
import { LEVEL, LogCapture } from '../../helpers/log-capture.ts';
import { createTopic, fetchAll, produceBatch, RawConnection } from './helpers.ts';

function batchOf(value: string): Buffer {
  return buildRecordBatchSync({ records: [{ key: null, value: Buffer.from(value) }] });
}

test('the logs of a deleted topic do not resurface in a topic recreated under its name while the broker was down', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-stray-'));
  const otherDir = await mkdtemp(join(tmpdir(), 'samsa-stray-other-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  t.after(() => rm(otherDir, { recursive: true, force: true }));

  let broker = await startBroker({ dataDir });
  let conn = await RawConnection.connect(broker.bootstrap);
  const oldId = await createTopic(conn, 't', 1);
  for (const v of ['old-0', 'old-1', 'old-2'])
    assert.equal((await produceBatch(conn, 9, 't', 0, batchOf(v))).errorCode, 0);
  conn.close();
  await broker.close();
  assert.equal(await readFile(join(dataDir, 't-0', 'partition.metadata'), 'utf8'), `version: 0\ntopic_id: ${oldId}\n`);

  // The new `t`, created where the old one does not exist.
  const other = await startBroker({ dataDir: otherDir });
  const otherConn = await RawConnection.connect(other.bootstrap);
  const newId = await createTopic(otherConn, 't', 1);
  otherConn.close();
  await other.close();
  assert.notEqual(newId, oldId);
  await copyFile(join(otherDir, 'samsa-metadata.json'), join(dataDir, 'samsa-metadata.json'));

  const capture = new LogCapture('warn');
  broker = await startBroker({ dataDir, logger: capture.logger });
  t.after(() => broker.close());
  conn = await RawConnection.connect(broker.bootstrap);
  t.after(() => conn.close());
  assert.deepEqual(await fetchAll(conn, 't', 0), [], 'the new topic starts empty');
  const warning = capture.lines.find((l) => l.level === LEVEL.warn && l.topic === 't' && l.partition === 0);
  assert.ok(warning, `a warning names the deleted log: ${JSON.stringify(capture.lines)}`);
  assert.equal(warning.logTopicId, oldId);
  assert.equal(warning.topicId, newId);
  assert.equal(await readFile(join(dataDir, 't-0', 'partition.metadata'), 'utf8'), `version: 0\ntopic_id: ${newId}\n`);

  const p = await produceBatch(conn, 9, 't', 0, batchOf('new-0'));
  assert.equal(p.errorCode, 0);
  assert.equal(p.baseOffset, 0n, 'appends start at offset 0');
  assert.deepEqual(
    (await fetchAll(conn, 't', 0)).map((r) => r.value?.toString()),
    ['new-0'],
  );
});
