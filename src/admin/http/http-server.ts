/**
 * The broker's HTTP listener (`samsa start --http-listen`, `startBroker({ httpListen })`):
 * `/metrics` in Prometheus text format, `/health` (200 while the process serves) and `/ready`
 * (200 once the logs are recovered, the group coordinator has loaded and the Kafka listeners are
 * bound; 503 with the reason before). The REST API and the web console will live here too.
 *
 * Loaded by the composition root only when the listener is enabled: fastify and prom-client
 * are not read at all by a broker without it.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { BrokerMetricsView } from '../../broker-metrics.ts';
import { brokerRegistry } from './prometheus-metrics.ts';

export interface HttpAddress {
  host: string;
  port: number;
}

export interface BrokerHttpServer {
  /** The bound address (a port 0 resolved to the real port). */
  readonly address: HttpAddress;
  close(): Promise<void>;
}

/** Listens on `address`; rejects with the listen error (EADDRINUSE...) when it cannot. */
export async function startHttpServer(address: HttpAddress, view: BrokerMetricsView): Promise<BrokerHttpServer> {
  const registry = brokerRegistry(view);
  const app: FastifyInstance = Fastify({ logger: false });
  app.get('/metrics', async (_request, reply) => {
    const text = await registry.metrics();
    return reply.header('content-type', registry.contentType).send(text);
  });
  app.get('/health', async (_request, reply) => reply.type('text/plain').send('ok\n'));
  app.get('/ready', async (_request, reply) => {
    const readiness = view.readiness();
    if (readiness.ready) return reply.type('text/plain').send('ready\n');
    return reply.code(503).type('text/plain').send(`not ready: ${readiness.reason}\n`);
  });
  try {
    await app.listen({ host: address.host, port: address.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  const info = app.server.address();
  if (info === null || typeof info === 'string') throw new Error('HTTP listener has no address');
  return {
    address: { host: address.host, port: info.port },
    close: () => app.close(),
  };
}
