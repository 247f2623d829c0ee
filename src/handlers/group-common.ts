/**
 * Helpers shared by the group coordinator's handlers (FindCoordinator, JoinGroup ...
 * ConsumerGroupDescribe): who is asking, and turning a coordinator failure into the API's
 * error response. Not a handler itself.
 */
import type { RequestInfo } from '../coordinator/group/group-coordinator.ts';
import { KafkaError } from '../protocol/error-codes.ts';
import type { RequestContext } from './handler.ts';

/**
 * The request's version, client id and client host. Kafka shows the host as Java's
 * InetAddress.toString() does, `/address` without the port; the connection knows `address:port`.
 */
export function requestInfo(ctx: RequestContext): RequestInfo {
  const remote = ctx.connection.remoteAddress;
  const colon = remote.lastIndexOf(':');
  const host = colon > 0 && /^\d+$/.test(remote.slice(colon + 1)) ? remote.slice(0, colon) : remote;
  return { apiVersion: ctx.apiVersion, clientId: ctx.clientId ?? '', clientHost: `/${host}` };
}

/**
 * Runs a coordinator call; a KafkaError (COORDINATOR_LOAD_IN_PROGRESS while loading, a
 * failed append) becomes the API's error response with that code. Other errors propagate
 * (the dispatcher answers UNKNOWN_SERVER_ERROR).
 */
export async function orErrorResponse<Res>(
  call: () => Promise<Res>,
  onError: (errorCode: number) => Res,
): Promise<Res> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof KafkaError) return onError(err.errorCode);
    throw err;
  }
}
