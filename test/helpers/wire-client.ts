/**
 * A minimal test client speaking raw Kafka frames with the generated codecs: one request at a
 * time over a plain socket. For protocol-precise integration tests.
 */
import { connect, type Socket } from 'node:net';
import { apiSpec, requestHeaderVersion, responseHeaderVersion } from '../../src/protocol/messages/index.ts';
import { writeRequestHeader } from '../../src/protocol/messages/request-header.ts';
import { readResponseHeader } from '../../src/protocol/messages/response-header.ts';
import { Reader } from '../../src/protocol/reader.ts';
import { Writer } from '../../src/protocol/writer.ts';

export class WireClient {
  private readonly socket: Socket;
  private buffered = Buffer.alloc(0);
  private waiting: ((frame: Buffer) => void) | undefined;
  private correlationId = 0;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.deliver();
    });
    socket.on('error', () => {});
  }

  static async connect(bootstrap: string): Promise<WireClient> {
    const [host, port] = bootstrap.split(':');
    const socket = connect(Number(port), host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return new WireClient(socket);
  }

  private deliver(): void {
    if (this.waiting === undefined || this.buffered.length < 4) return;
    const size = this.buffered.readInt32BE(0);
    if (this.buffered.length < 4 + size) return;
    const frame = this.buffered.subarray(4, 4 + size);
    this.buffered = this.buffered.subarray(4 + size);
    const w = this.waiting;
    this.waiting = undefined;
    w(frame);
  }

  /** Sends one request and decodes its response with the generated codecs. */
  async request<T = Record<string, unknown>>(apiKey: number, version: number, body: object): Promise<T> {
    const spec = apiSpec(apiKey)!;
    const w = new Writer();
    const at = w.reserveInt32();
    const correlationId = this.correlationId++;
    writeRequestHeader(w, requestHeaderVersion(apiKey, version), {
      requestApiKey: apiKey,
      requestApiVersion: version,
      correlationId,
      clientId: 'wire-client',
    });
    spec.writeRequest(w, version, body as never);
    w.patchInt32(at, w.length - 4);
    const frame = await new Promise<Buffer>((resolve) => {
      this.waiting = resolve;
      this.socket.write(w.toBuffer());
      this.deliver();
    });
    const r = new Reader(frame);
    const header = readResponseHeader(r, responseHeaderVersion(apiKey, version));
    if (header.correlationId !== correlationId)
      throw new Error(`correlation id ${header.correlationId} != ${correlationId}`);
    return spec.readResponse(r, version) as T;
  }

  close(): void {
    this.socket.destroy();
  }
}
