/**
 * The machine's ceilings for the broker benchmark, run as separate processes:
 *   produce-server PORT FILE   accepts int32-framed frames, CRC-32C checks each, appends it to FILE
 *                              (reads, checksums and up to 8 writes overlap; frame buffers are reused)
 *   produce-client PORT MB     sends MB frames of 1 MiB as fast as the socket takes them (a run
 *                              over 20 s also reports the rate of its last 10 s)
 *   consume-server PORT FILE   streams FILE (read once, served from the page cache) to each client
 *   consume-client PORT        reads until the server closes, prints bytes
 * Each client prints one JSON line {bytes, seconds}.
 */

import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { crc32c } from '@node-rs/crc32';

const [mode, portText, arg] = process.argv.slice(2);
const port = Number(portText);

async function produceServer(file: string): Promise<void> {
  const fh = await open(file, 'w');
  let position = 0;
  const server = createServer((socket) => {
    // Frames are copied once into recycled buffers (fresh ones page-fault on first touch), checked
    // with CRC-32C, and written at increasing file positions with up to 8 writes in flight, so
    // reading the socket, checksumming and writing overlap as in a broker.
    const free: Buffer[] = [];
    let frame: Buffer | undefined;
    let filled = 0;
    const header = Buffer.alloc(4);
    let headerFilled = 0;
    let writes = 0;
    let ended = false;
    const finish = () => {
      if (ended && writes === 0) socket.end('ok');
    };
    socket.on('data', (chunk: Buffer) => {
      let at = 0;
      while (at < chunk.length) {
        if (frame === undefined) {
          const n = Math.min(4 - headerFilled, chunk.length - at);
          chunk.copy(header, headerFilled, at, at + n);
          headerFilled += n;
          at += n;
          if (headerFilled < 4) return;
          const size = header.readInt32BE(0);
          const reused = free.pop();
          frame = reused !== undefined && reused.length === size ? reused : Buffer.allocUnsafe(size);
          filled = 0;
          headerFilled = 0;
        }
        const n = Math.min(frame.length - filled, chunk.length - at);
        chunk.copy(frame, filled, at, at + n);
        filled += n;
        at += n;
        if (filled < frame.length) return;
        const full = frame;
        frame = undefined;
        crc32c(full); // what a broker must do to validate a batch
        writes++;
        if (writes >= 8) socket.pause();
        fh.write(full, 0, full.length, position).then(
          () => {
            writes--;
            free.push(full);
            if (writes < 8) socket.resume();
            finish();
          },
          () => socket.destroy(),
        );
        position += full.length;
      }
    });
    socket.on('end', () => {
      ended = true;
      finish();
    });
    socket.on('error', () => {});
  });
  server.listen(port, '127.0.0.1', () => console.log('ready'));
}

function produceClient(megabytes: number): void {
  const frame = Buffer.alloc(4 + 1024 * 1024, 7);
  frame.writeInt32BE(1024 * 1024, 0);
  const socket = connect(port, '127.0.0.1');
  const started = process.hrtime.bigint();
  let sent = 0;
  // When each frame left for the kernel: the rate of the last 10 s is the sustained one.
  const flushedAt: number[] = [];
  const onFlushed = () => flushedAt.push(performance.now());
  const pump = () => {
    while (sent < megabytes) {
      sent++;
      if (!socket.write(frame, onFlushed)) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  socket.on('connect', pump);
  socket.on('data', () => {});
  socket.on('close', () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const last = flushedAt.at(-1) ?? 0;
    const lastTenSeconds = flushedAt.filter((t) => t >= last - 10_000).length;
    const lastTenSecondsMbPerSec = seconds > 20 ? lastTenSeconds / 10 : Number.NaN;
    console.log(JSON.stringify({ bytes: megabytes * 1024 * 1024, seconds, lastTenSecondsMbPerSec }));
  });
}

function consumeServer(file: string): void {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(socket);
  });
  server.listen(port, '127.0.0.1', () => console.log('ready'));
}

function consumeClient(): void {
  const socket = connect(port, '127.0.0.1');
  const started = process.hrtime.bigint();
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  socket.on('close', () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(JSON.stringify({ bytes, seconds }));
  });
}

switch (mode) {
  case 'produce-server':
    await produceServer(arg!);
    break;
  case 'produce-client':
    produceClient(Number(arg));
    break;
  case 'consume-server':
    consumeServer(arg!);
    break;
  case 'consume-client':
    consumeClient();
    break;
  default:
    console.error('usage: ceiling-servers.ts produce-server|produce-client|consume-server|consume-client PORT [ARG]');
    process.exit(2);
}
