import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { adoptWithSharedReadBuffer } from '../../../src/network/shared-read-buffer.ts';

test('accepted sockets read into the one shared buffer; writes, end and server.close() still work', {
  timeout: 10_000,
}, async () => {
  const shared = Buffer.alloc(4096);
  const received: Buffer[] = [];
  let allInShared = true;
  const adopted: Socket[] = [];
  const server = createServer({ pauseOnConnect: true }, (accepted) => {
    const { socket, shared: isShared } = adoptWithSharedReadBuffer(accepted, shared, (chunk) => {
      allInShared &&= chunk.buffer === shared.buffer && chunk.byteOffset === shared.byteOffset;
      received.push(Buffer.from(chunk));
    });
    assert.ok(isShared, 'this Node exposes the accepted handle');
    adopted.push(socket);
    socket.on('end', () => socket.end(`got ${Buffer.concat(received).length}`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;

  const payload = Buffer.alloc(100_000);
  for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
  const client = connect(port, '127.0.0.1');
  const replies: Buffer[] = [];
  client.on('data', (d: Buffer) => replies.push(d));
  client.end(payload);
  await once(client, 'close');

  assert.ok(allInShared, 'every read landed in the shared buffer');
  assert.ok(received.length >= Math.ceil(payload.length / shared.length), 'reads are at most the buffer size');
  assert.ok(Buffer.concat(received).equals(payload));
  assert.equal(Buffer.concat(replies).toString(), `got ${payload.length}`);
  // The server's own count of connections went down with the adopted socket: close() completes.
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  assert.equal(adopted.length, 1);
});
