import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import { DEFAULT_CONNECTION_LIMITS, SocketServer } from '../../../src/network/socket-server.ts';
import { sharedBufferPool } from '../../../src/util/buffer-pool.ts';

const quiet = { debug() {}, info() {}, warn() {} };

test('a pooled response chunk goes back to the shared pool once written, and only then', {
  timeout: 10_000,
}, async () => {
  const size = 300_000;
  let sent: Buffer | undefined;
  const server = new SocketServer(
    () => {
      // A response whose body is a pooled buffer, as a Fetch response's records are.
      sent = sharedBufferPool.acquire(size);
      for (let i = 0; i < size; i++) sent[i] = i % 253;
      const prefix = Buffer.alloc(4);
      prefix.writeInt32BE(size, 0);
      return [prefix, sent];
    },
    DEFAULT_CONNECTION_LIMITS,
    quiet,
  );
  const [address] = await server.listen([{ host: '127.0.0.1', port: 0 }]);
  const client = connect(address!.port, '127.0.0.1');
  await once(client, 'connect');
  const request = Buffer.alloc(4 + 8);
  request.writeInt32BE(8, 0);
  client.write(request);
  const received: Buffer[] = [];
  let bytes = 0;
  await new Promise<void>((resolve) => {
    client.on('data', (d: Buffer) => {
      received.push(d);
      bytes += d.length;
      if (bytes >= 4 + size) resolve();
    });
  });
  const body = Buffer.concat(received).subarray(4);
  assert.equal(body.length, size);
  assert.ok(
    body.every((b, i) => b === i % 253),
    'the bytes arrived intact',
  );
  // The write has completed (the client has every byte), so the buffer is back in the pool.
  const again = sharedBufferPool.acquire(size);
  assert.equal(again.buffer, sent?.buffer, 'the next acquire of that size reuses it');
  sharedBufferPool.release(again);
  client.destroy();
  await server.close(1000);
});
