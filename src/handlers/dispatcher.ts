import {
  type ClientIdentity,
  type ConnectionInfo,
  clientFields,
  type FrameHandler,
  type NetworkLogger,
} from '../network/connection.ts';
import { LogRateLimiter, suppressedField } from '../network/log-limiter.ts';
import { ErrorCode } from '../protocol/error-codes.ts';
import { ProtocolError, ProtocolErrorCodes } from '../protocol/errors.ts';
import type { ApiVersionsRequest } from '../protocol/messages/018-api-versions.ts';
import { apiKeyInfo, requestHeaderVersion, responseHeaderVersion } from '../protocol/messages/api-keys.ts';
import { readRequestHeader } from '../protocol/messages/request-header.ts';
import { writeResponseHeader } from '../protocol/messages/response-header.ts';
import { Reader } from '../protocol/reader.ts';
import { Writer } from '../protocol/writer.ts';
import type { BrokerServices } from './broker-services.ts';
import type { ApiHandler, RequestContext } from './handler.ts';

const API_VERSIONS_KEY = 18;

/**
 * Turns request frames into response frames: decodes the header and body with the generated
 * codecs, calls the API's handler, encodes the response with the right header version.
 * A malformed frame, unknown API key or unsupported version throws (the connection closes),
 * except ApiVersions, which answers an unsupported version in v0 format (KIP-511). Bytes after
 * the body are ignored, as Kafka ignores them.
 * A handler exception becomes the API's UNKNOWN_SERVER_ERROR response plus one log line (at
 * most one per client host and API per interval: a client can repeat such a request at will).
 */
export class RequestDispatcher {
  private readonly handlers: (ApiHandler | undefined)[] = [];
  private readonly services: BrokerServices;
  private readonly log: NetworkLogger & { error(obj: object, msg: string): void };
  private readonly errorLogLimiter: LogRateLimiter;

  /** `clientLogIntervalMs`: samsa.client.log.interval.ms (unexpected-error lines per client host and API). */
  constructor(
    handlers: readonly ApiHandler[],
    services: BrokerServices,
    log: NetworkLogger & { error(obj: object, msg: string): void },
    clientLogIntervalMs = 10000,
  ) {
    for (const h of handlers) this.handlers[h.apiKey] = h;
    this.services = services;
    this.log = log;
    this.errorLogLimiter = new LogRateLimiter(clientLogIntervalMs);
  }

  /** The handlers, for the ApiVersions response. */
  registered(): ApiHandler[] {
    return this.handlers.filter((h): h is ApiHandler => h !== undefined);
  }

  readonly handleFrame: FrameHandler = (frame, connection) => this.dispatch(frame, connection);

  private dispatch(frame: Buffer, connection: ConnectionInfo): Promise<Buffer[] | null> | Buffer[] | null {
    const r = new Reader(frame);
    const apiKey = r.int16();
    const apiVersion = r.int16();
    const handler = this.handlers[apiKey];
    const spec = apiKeyInfo(apiKey);
    if (handler === undefined || spec === undefined) {
      throw new ProtocolError(ProtocolErrorCodes.unsupportedVersion, `unknown or unsupported API key ${apiKey}`);
    }
    r.pos = 0;
    const header = readRequestHeader(r, requestHeaderVersion(apiKey, apiVersion));
    const ctx: RequestContext = {
      apiKey,
      apiVersion,
      correlationId: header.correlationId,
      clientId: header.clientId,
      connection,
      services: this.services,
    };
    if (apiVersion < handler.minVersion || apiVersion > handler.maxVersion) {
      if (apiKey === API_VERSIONS_KEY) return this.unsupportedApiVersions(ctx, handler);
      throw new ProtocolError(
        ProtocolErrorCodes.unsupportedVersion,
        `${spec.name} v${apiVersion} is not supported (${handler.minVersion}-${handler.maxVersion})`,
      );
    }
    let request: unknown;
    try {
      request = handler.readRequest(r, apiVersion);
    } catch (err) {
      // ApiVersions from a newer client may carry fields we cannot parse: answer as Kafka does.
      if (apiKey === API_VERSIONS_KEY) return this.unsupportedApiVersions(ctx, handler);
      throw err;
    }
    if (connection.client === undefined) this.identify(connection, header.clientId, apiKey, apiVersion, request);
    if (r.remaining !== 0) {
      // Kafka parses what the schema names and ignores the rest of the frame (RequestContext.
      // parseRequest), and clients rely on it: librdkafka 2.x ends every all-topics Metadata v9+
      // request with 3 such bytes (its bug #5049). So do we, with a debug line.
      this.log.debug(
        {
          connection: connection.id,
          api: spec.name,
          apiVersion,
          trailingBytes: r.remaining,
          clientId: header.clientId,
        },
        'ignoring bytes after the request body',
      );
    }
    let result: unknown;
    try {
      result = handler.handle(ctx, request as never);
    } catch (err) {
      return this.failure(ctx, handler, request, err);
    }
    if (result instanceof Promise) {
      return result.then(
        (response: unknown) => this.encodeOrFail(ctx, handler, request, response),
        (err: unknown) => this.failure(ctx, handler, request, err),
      );
    }
    return this.encodeOrFail(ctx, handler, request, result);
  }

  /**
   * The client's first request names it: its client id, and (ApiVersions v3+, KIP-511, the
   * first request of every modern client) its software name and version. One debug line.
   */
  private identify(
    connection: ConnectionInfo,
    clientId: string | null,
    apiKey: number,
    apiVersion: number,
    request: unknown,
  ): void {
    const client: ClientIdentity = { clientId };
    if (apiKey === API_VERSIONS_KEY && apiVersion >= 3) {
      const { clientSoftwareName, clientSoftwareVersion } = request as ApiVersionsRequest;
      if (clientSoftwareName !== '') client.softwareName = clientSoftwareName;
      if (clientSoftwareVersion !== '') client.softwareVersion = clientSoftwareVersion;
    }
    connection.client = client;
    this.log.debug(
      { connection: connection.id, remote: connection.remoteAddress, ...clientFields(client) },
      'client identified',
    );
  }

  /** A response the codec refuses (a handler bug) is logged and answered as UNKNOWN_SERVER_ERROR. */
  private encodeOrFail(ctx: RequestContext, handler: ApiHandler, request: unknown, response: unknown): Buffer[] | null {
    if (response === null) return null;
    try {
      return this.encode(ctx, response);
    } catch (err) {
      return this.failure(ctx, handler, request, err);
    }
  }

  private failure(ctx: RequestContext, handler: ApiHandler, request: unknown, err: unknown): Buffer[] {
    const suppressed = this.errorLogLimiter.admit(`${ctx.connection.remoteHost} ${ctx.apiKey}`);
    if (suppressed !== undefined) {
      this.log.error(
        {
          err,
          api: apiKeyInfo(ctx.apiKey)?.name,
          apiVersion: ctx.apiVersion,
          clientId: ctx.clientId,
          correlationId: ctx.correlationId,
          remote: ctx.connection.remoteAddress,
          ...suppressedField(suppressed),
        },
        'request failed with an unexpected error',
      );
    }
    return this.encode(ctx, handler.errorResponse(ctx, request as never, ErrorCode.UNKNOWN_SERVER_ERROR));
  }

  /** Encodes a response frame (size, header, body) as chunks; large record data is not copied. */
  encode(ctx: RequestContext, response: unknown, version = ctx.apiVersion): Buffer[] {
    const handler = this.handlers[ctx.apiKey]!;
    const w = new Writer(256);
    const sizeAt = w.reserveInt32();
    writeResponseHeader(w, responseHeaderVersion(ctx.apiKey, version), { correlationId: ctx.correlationId });
    handler.writeResponse(w, version, response as never);
    w.patchInt32(sizeAt, w.length - 4);
    return w.toChunks();
  }

  private unsupportedApiVersions(ctx: RequestContext, handler: ApiHandler): Buffer[] {
    return this.encode(
      ctx,
      {
        errorCode: ErrorCode.UNSUPPORTED_VERSION,
        apiKeys: [{ apiKey: API_VERSIONS_KEY, minVersion: handler.minVersion, maxVersion: handler.maxVersion }],
      },
      0,
    );
  }
}
