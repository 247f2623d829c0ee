/**
 * `samsa start`: runs a broker in the foreground until SIGTERM/SIGINT. The first signal stops
 * accepting connections, finishes in-flight requests, flushes and closes the logs cleanly
 * (the next start needs no recovery) and exits 0; a second signal exits at once.
 */
import { parseArgs } from 'node:util';
import { BrokerStartError, type RunningBroker, startBroker } from '../broker.ts';
import { ConfigError, loadBrokerConfig } from '../broker-config.ts';
import { createLogger } from './logger.ts';

export const START_USAGE = `Usage: samsa start [options]
  --listen HOST:PORT       listener address (repeatable; default 127.0.0.1:9092)
  --advertise HOST:PORT    address given to clients in metadata
  --data-dir DIR           data directory (default ./data)
  --node-id N              broker id (default 1)
  --config FILE            Kafka server.properties-style file
  --override KEY=VALUE     set a config key (repeatable)
  --log-level LEVEL        trace|debug|info|warn|error (default info)`;

export async function startCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', multiple: true },
      advertise: { type: 'string' },
      'data-dir': { type: 'string' },
      'node-id': { type: 'string' },
      config: { type: 'string' },
      override: { type: 'string', multiple: true },
      'log-level': { type: 'string', default: 'info' },
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
  const started = performance.now();
  let broker: RunningBroker;
  try {
    broker = await startBroker({ ...sources, dataDir: config.dataDir, temporary: false, logger: log });
  } catch (err) {
    // Where or how it was told to start cannot work: one line saying what to do, no stack trace.
    if (!(err instanceof BrokerStartError)) throw err;
    log.flush();
    console.error(`samsa: ${err.message}`);
    return 2;
  }
  const ms = (performance.now() - started).toFixed(0);
  log.info(
    { listeners: broker.listeners, advertised: broker.advertised, dataDir: broker.dataDir, startupMs: Number(ms) },
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
  const advertised = broker.bootstrap;
  console.log(
    `Samsa broker ${broker.config.nodeId} listening on ${listener.host.includes(':') ? `[${listener.host}]` : listener.host}:${listener.port} ` +
      `(advertised as ${advertised}; data in ${broker.dataDir})`,
  );
  return await exitCode;
}
