// The ground for cluster tests (issue 13): a real etcd started on free ports in a temporary
// directory, spoken to with etcd3 (the client the etcd metadata store will use). Checks what the
// store will rely on: reads see writes, a compare-and-swap with a stale expectation fails, a key
// under a lease goes when the lease is revoked, and a watch sees a change.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { etcdAvailable, startEtcd } from '../../helpers/etcd.ts';

test('etcd harness: put/get, compare-and-swap, leases and watches against a real etcd', async (t) => {
  if (!etcdAvailable()) {
    t.skip('etcd is not installed (Debian package etcd-server; .ci/run installs it)');
    return;
  }
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const client = new Etcd3({ hosts: etcd.endpoint });
  t.after(() => client.close());

  await client.put('/samsa/test/controller').value('1');
  assert.equal(await client.get('/samsa/test/controller').string(), '1');

  // Compare-and-swap on the version, as partition-state updates will be guarded by epochs.
  const swapped = await client
    .if('/samsa/test/controller', 'Value', '==', '1')
    .then(client.put('/samsa/test/controller').value('2'))
    .commit();
  assert.equal(swapped.succeeded, true);
  const stale = await client
    .if('/samsa/test/controller', 'Value', '==', '1')
    .then(client.put('/samsa/test/controller').value('3'))
    .commit();
  assert.equal(stale.succeeded, false, 'a stale expectation does not overwrite a newer value');
  assert.equal(await client.get('/samsa/test/controller').string(), '2');

  // A broker registration under a lease disappears with the lease.
  const lease = client.lease(10);
  await lease.put('/samsa/test/brokers/1').value('{"host":"127.0.0.1"}');
  assert.equal(await client.get('/samsa/test/brokers/1').string(), '{"host":"127.0.0.1"}');
  const watcher = await client.watch().key('/samsa/test/brokers/1').create();
  const deleted = new Promise<void>((resolve) => watcher.once('delete', () => resolve()));
  await lease.revoke();
  await deleted;
  await watcher.cancel();
  assert.equal(await client.get('/samsa/test/brokers/1').string(), null);

  const dir = etcd.dataDir;
  await etcd.stop();
  assert.equal(existsSync(dir), false, 'the temporary directory is removed');
});
