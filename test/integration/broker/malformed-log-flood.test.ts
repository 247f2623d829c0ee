// Issue 11 item 19: every malformed frame logged one warning (193,000 lines, 40 MB in one fuzz
// run). Now a client address gets at most one 'closing connection' line per
// samsa.client.log.interval.ms, and the next line it gets says how many were held back. Real
// sockets send the bad frames to a broker whose pino logger writes into this test.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { startBroker } from '../../../src/broker.ts';
import { apiVersionsRoundTrip, splitHostPort, waitFor } from './helpers.ts';

interface LogLine {
  time: number;
  msg: string;
  /** The client's address and port. */
  remote?: string;
  reason?: string;
  suppressed?: number;
}

const INTERVAL_MS = 1500;

/** Opens a connection from `localAddress`, sends a frame with API key 999, waits for the close. */
async function malformedFrame(bootstrap: string, localAddress: string): Promise<void> {
  const { host, port } = splitHostPort(bootstrap);
  const socket = connect({ host, port, localAddress });
  socket.on('error', () => {});
  await once(socket, 'connect');
  const frame = Buffer.alloc(4 + 12);
  frame.writeInt32BE(12, 0);
  frame.writeInt16BE(999, 4); // unknown API key: the broker closes the connection
  const closed = once(socket, 'close');
  socket.end(frame);
  await closed;
}

test('malformed frames from one address log one line per interval, the next line counting those held back', async (t) => {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  const broker = await startBroker({
    logger: pino({ level: 'warn' }, sink),
    overrides: { 'samsa.client.log.interval.ms': String(INTERVAL_MS) },
  });
  t.after(() => broker.close());
  const closing = (client: string) =>
    lines.filter((l) => l.msg === 'closing connection' && l.remote?.startsWith(`${client}:`));

  // A fuzzer's flood from 127.0.0.1, with one bad frame from 127.0.0.2 in the middle of it.
  const FLOOD = 300;
  for (let i = 0; i < FLOOD; i += 20) {
    await Promise.all(Array.from({ length: 20 }, () => malformedFrame(broker.bootstrap, '127.0.0.1')));
    if (i === 100) await malformedFrame(broker.bootstrap, '127.0.0.2');
  }
  // Another address is not held back by the first one's flood: its one line is there.
  assert.equal(closing('127.0.0.2').length, 1, 'the other address got its own line');
  const flood = closing('127.0.0.1');
  assert.ok(flood.length >= 1);
  assert.ok(flood.length < FLOOD / 10, `${flood.length} lines for ${FLOOD} malformed frames`);
  // Once the interval since the last line has passed, the next bad frame is logged with the count.
  const last = flood.at(-1)!.time;
  await waitFor(() => Date.now() > last + INTERVAL_MS, 10_000, 'the interval to pass');
  await malformedFrame(broker.bootstrap, '127.0.0.1');
  const all = closing('127.0.0.1');
  assert.equal(all.length, flood.length + 1);
  assert.ok((all.at(-1)!.suppressed ?? 0) > 0, 'the line after the flood counts the lines held back');
  // Every malformed frame is accounted for: logged, or counted in a later line.
  const accounted = all.reduce((n, l) => n + 1 + (l.suppressed ?? 0), 0);
  assert.equal(accounted, FLOOD + 1);
  // And the lines of one address are at least an interval apart.
  for (let i = 1; i < all.length; i++) assert.ok(all[i]!.time - all[i - 1]!.time >= INTERVAL_MS);
  // The broker still serves.
  await apiVersionsRoundTrip(broker.bootstrap);
});
