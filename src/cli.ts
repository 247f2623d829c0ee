/**
 * The `samsa` command: `samsa start` runs a broker; the other commands are clients that speak
 * the Kafka protocol to any broker (--bootstrap).
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './config/broker-config.ts';
import { DataDirectoryLockedError } from './storage/data-dir-lock.ts';

type Command = (argv: string[]) => Promise<number>;

/** Each command's module is loaded only when it runs: `samsa start` loads no client code. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  start: async () => (await import('./admin/start-command.ts')).startCommand,
  topic: async () => (await import('./admin/topic-command.ts')).topicCommand,
  produce: async () => (await import('./admin/produce-command.ts')).produceCommand,
  consume: async () => (await import('./admin/consume-command.ts')).consumeCommand,
  perf: async () => (await import('./admin/perf-command.ts')).perfCommand,
  group: async () => (await import('./admin/group-command.ts')).groupCommand,
  cluster: async () => (await import('./admin/cluster-command.ts')).clusterCommand,
  transactions: async () => (await import('./admin/transactions-command.ts')).transactionsCommand,
  completion: async () => (await import('./admin/completion-command.ts')).completionCommand,
};

const USAGE = `Usage: samsa <command> [options]

Commands:
  start        run a broker
  cluster      up: a local cluster (etcd + N brokers); info: controller, brokers, leaders
  topic        create|list|describe|delete|alter-config|add-partitions|trim topics
  produce      send lines of stdin (or files) as records
  consume      print a topic's records, alone or as a consumer group member
  perf         produce|consume load tests (like kafka-*-perf-test)
  group        list|describe|delete|delete-offsets|reset-offsets consumer groups
  transactions list|describe|describe-producers|find-hanging|abort transactions
  completion   bash|zsh: print a shell completion script

Client commands take -b/--bootstrap HOST:PORT (alias --bootstrap-server), else $SAMSA_BROKERS.

Each command prints its options with --help; samsa --version prints the version.`;

/**
 * The version in Samsa's package.json: the nearest one above this module, which is src/ in a
 * checkout and dist/bin/ in the built package.
 */
function packageVersion(): string {
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'samsa' && pkg.version !== undefined) return pkg.version;
    } catch {
      // none here: look further up
    }
    if (dir.pathname === '/') return 'unknown';
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const load = command !== undefined && Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (load !== undefined) return (await load())(rest);
  switch (command) {
    case '--version':
      console.log(packageVersion());
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`samsa: unknown command '${command}' (see 'samsa --help')`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (
      err instanceof ConfigError ||
      err instanceof DataDirectoryLockedError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      console.error(`samsa: ${(err as Error).message}`);
      process.exitCode = 2;
      return;
    }
    console.error(err);
    process.exitCode = 1;
  },
);
