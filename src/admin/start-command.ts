/**
 * `samsa start`: runs a broker in the foreground until SIGTERM/SIGINT. The first signal stops
 * accepting connections, finishes in-flight requests, flushes and closes the logs cleanly
 * (the next start needs no recovery) and exits 0; a second signal exits at once.
 */
import { parseArgs } from 'node:util';
import { BrokerStartError, type RunningBroker, startBroker } from '../broker.ts';
import { ConfigError, loadBrokerConfig, parseHostPort } from '../config/broker-config.ts';
import { createLogger } from './logger.ts';

export const START_USAGE = `Usage: samsa start [options]
  --listen HOST:PORT       listener address (repeatable; default 127.0.0.1:9092)
  --advertise HOST:PORT    address given to clients in metadata
  --data-dir DIR           data directory (default ./data)
  --node-id N              broker id (default 1)
  --metadata etcd://HOST:PORT[,HOST:PORT...][/PREFIX]
                           join the cluster whose metadata is on that etcd (default: a
                           single node, metadata in the data directory)
  --config FILE            Kafka server.properties-style file
  --override KEY=VALUE     set a config key (repeatable)
  --log-level LEVEL        trace|debug|info|warn|error (default info)
  --http-listen HOST:PORT  HTTP listener for /metrics, /health and /ready, or none (default
                           127.0.0.1:9644; 127.0.0.1:0, a free port, when --listen has port 0)`;

export async function startCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', multiple: true },
      advertise: { type: 'string' },
      'data-dir': { type: 'string' },
      'node-id': { type: 'string' },
      config: { type: 'string' },
      metadata: { type: 'string' },
      override: { type: 'string', multiple: true },
      'log-level': { type: 'string', default: 'info' },
      'http-listen': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(START_USAGE);
    return 0;
  }
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
  const level = values['log-level'];
  if (!levels.includes(level)) throw new ConfigError(`--log-level: '${level}' is not one of ${levels.join(', ')}`);
  const overrides: Record<string, string> = {};
  for (const o of values.override ?? []) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--override: '${o}' is not KEY=VALUE`);
    overrides[o.slice(0, eq)] = o.slice(eq + 1);
  }
  if (values.metadata !== undefined) overrides['samsa.metadata.url'] = values.metadata;
  let nodeId: number | undefined;
  if (values['node-id'] !== undefined) {
    if (!/^\d+$/.test(values['node-id'])) throw new ConfigError(`--node-id: '${values['node-id']}' is not a number`);
    nodeId = Number(values['node-id']);
  }
  const log = await createLogger(level);
  const sources = {
    configFile: values.config,
    overrides,
    listen: values.listen,
    defaultListen: ['127.0.0.1:9092'],
    advertise: values.advertise,
    dataDir: values['data-dir'],
    nodeId,
  };
  // Validate everything before listening (exit code 2 on bad input).
  const { config } = loadBrokerConfig(sources);
  const httpListen = httpListenOption(values['http-listen'], config.listeners);
  const started = performance.now();
  let broker: RunningBroker;
  try {
    broker = await startBroker({
      ...sources,
      dataDir: config.dataDir,
      temporary: false,
      logger: log,
      httpListen,
    });
  } catch (err) {
    // Where or how it was told to start cannot work: one line saying what to do, no stack trace.
    if (!(err instanceof BrokerStartError)) throw err;
    log.flush();
    console.error(`samsa: ${err.message}`);
    return 2;
  }
  const ms = (performance.now() - started).toFixed(0);
  log.info(
    {
      listeners: broker.listeners,
      advertised: broker.advertised,
      dataDir: broker.dataDir,
      http: broker.httpAddress,
      startupMs: Number(ms),
    },
    'broker started',
  );
  // The handlers are in place before the listening line: whoever waits for that line may signal
  // at once, and a signal before them would kill the process the default way.
  const exitCode = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting at once');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'shutting down');
      broker.close().then(
        () => {
          log.info('shutdown complete');
          resolve(0);
        },
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  // `listening on HOST:PORT` is what scripts wait for and parse; the advertised address is what
  // clients are sent to after bootstrapping (the host's name for a listener on 0.0.0.0).
  const listener = broker.listeners[0]!;
  // Before the listening line: whoever waited for that one finds this one printed already.
  const http = broker.httpAddress;
  if (http !== undefined)
    console.log(
      `Samsa HTTP listening on http://${http.host.includes(':') ? `[${http.host}]` : http.host}:${http.port} (/metrics, /health, /ready)`,
    );
  const advertised = broker.bootstrap;
  console.log(
    `Samsa broker ${broker.config.nodeId} listening on ${listener.host.includes(':') ? `[${listener.host}]` : listener.host}:${listener.port} ` +
      `(advertised as ${advertised}; data in ${broker.dataDir})`,
  );
  return await exitCode;
}

/** The HTTP listener's default: a fixed port, or a free one for a broker whose Kafka port is free too. */
export const DEFAULT_HTTP_LISTEN = '127.0.0.1:9644';

/**
 * --http-listen: HOST:PORT, or none. Without it, 127.0.0.1:9644, unless the (first) Kafka
 * listener asked for a free port (`--listen 127.0.0.1:0`, as tests and throwaway brokers do):
 * then the HTTP listener takes a free port too, so that such brokers never collide on 9644.
 */
function httpListenOption(value: string | undefined, listeners: readonly { port: number }[]): string {
  if (value === 'none') return value;
  if (value !== undefined) {
    parseHostPort(value, '--http-listen');
    return value;
  }
  return listeners[0]?.port === 0 ? '127.0.0.1:0' : DEFAULT_HTTP_LISTEN;
}
