import { Socket } from 'node:net';

/**
 * Makes an accepted connection read into `buffer`, shared by every connection of a server,
 * instead of into a fresh 64 KiB allocation per read (Node's default). Those allocations are
 * V8 "external memory": at a few hundred MB/s of produce traffic they crossed V8's external
 * memory limit every ~250 ms, and each crossing ran a full mark-compact whose pause (3-18 ms)
 * was most of the broker's produce latency tail. Sharing is safe because `onBytes` must consume
 * or copy the bytes before returning (FrameReader does), and reads run one at a time on the
 * event loop.
 *
 * Node offers a reusable read buffer (`onread`) only to sockets it constructs from options, so
 * the accepted socket (from a server created with `pauseOnConnect`, so nothing has been read)
 * hands its handle to a new Socket built with `onread`; the old object is destroyed without
 * its handle, which keeps the server's connection count right. `_handle` is internal to Node:
 * if it is missing, the accepted socket is used as it is, reading the ordinary way (its 'data'
 * events), and the caller's 'data' listener does the work.
 */
export function adoptWithSharedReadBuffer(
  accepted: Socket,
  buffer: Buffer,
  onBytes: (chunk: Buffer) => void,
): { socket: Socket; shared: boolean } {
  const internal = accepted as unknown as { _handle: object | null };
  const handle = internal._handle;
  if (handle === null || typeof handle !== 'object') {
    accepted.resume();
    return { socket: accepted, shared: false };
  }
  const socket = new Socket({
    handle: handle as never,
    readable: true,
    writable: true,
    onread: {
      buffer,
      callback: (bytes: number) => {
        onBytes(buffer.subarray(0, bytes));
        return true;
      },
    },
  });
  internal._handle = null;
  accepted.destroy();
  return { socket, shared: true };
}
