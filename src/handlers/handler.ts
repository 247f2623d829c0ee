import type { ConnectionInfo } from '../network/connection.ts';
import type { Reader } from '../protocol/reader.ts';
import type { Writer } from '../protocol/writer.ts';
import type { BrokerServices } from './broker-services.ts';

/** What a handler learns about the request it serves. */
export interface RequestContext {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  readonly connection: ConnectionInfo;
  readonly services: BrokerServices;
}

/**
 * One Kafka API. `handle` returns the response (or null for no response at all, as for
 * Produce with acks=0); `errorResponse` builds the response Kafka sends when the handler
 * fails unexpectedly: every partition/resource carries the given error code.
 */
export interface ApiHandler<Req = never, Res = unknown> {
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** The generated codecs of this API (only the APIs the broker serves get loaded). */
  readonly readRequest: (r: Reader, version: number) => Req;
  readonly writeResponse: (w: Writer, version: number, response: Res) => void;
  handle(ctx: RequestContext, request: Req): Promise<Res | null> | Res | null;
  errorResponse(ctx: RequestContext, request: Req, errorCode: number): Res;
}

/** Helper so each handler file is typed by its generated request/response types. */
export function defineHandler<Req, Res>(handler: ApiHandler<Req, Res>): ApiHandler<Req, Res> {
  return handler;
}
