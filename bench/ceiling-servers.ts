/**
 * The machine's ceilings for the broker benchmark, run as separate processes:
 *   produce-server PORT FILE   accepts int32-framed frames, CRC-32C checks each, appends it to FILE
 *   produce-client PORT MB     sends MB frames of 1 MiB as fast as the socket takes them
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
  const server = createServer((socket) => {
    let chunks: Buffer[] = [];
    let buffered = 0;
    let writing = Promise.resolve();
    let need = -1; // size of the frame being collected, -1 until its header arrived
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      buffered += chunk.length;
      for (;;) {
        if (need < 0) {
          if (buffered < 4) return;
          if (chunks[0]!.length < 4) chunks = [Buffer.concat(chunks, buffered)];
          need = chunks[0]!.readInt32BE(0);
        }
        if (buffered < 4 + need) return;
        // Concatenate once per complete frame, as a broker would.
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, buffered);
        const frame = all.subarray(4, 4 + need);
        crc32c(frame); // what a broker must do to validate a batch
        socket.pause();
        writing = writing.then(async () => {
          await fh.write(frame);
          socket.resume();
        });
        const rest = all.subarray(4 + need);
        chunks = rest.length > 0 ? [rest] : [];
        buffered = rest.length;
        need = -1;
      }
    });
    socket.on('end', () => {
      writing.then(
        () => socket.end('ok'),
        () => socket.destroy(),
      );
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
  const pump = () => {
    while (sent < megabytes) {
      sent++;
      if (!socket.write(frame)) {
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
    console.log(JSON.stringify({ bytes: megabytes * 1024 * 1024, seconds }));
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
