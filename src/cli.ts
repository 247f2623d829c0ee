/**
 * The `samsa` command: `samsa start` runs a broker; the other commands are clients that speak
 * the Kafka protocol to any broker (--bootstrap).
 */

import { consumeCommand } from './admin/consume-command.ts';
import { perfCommand } from './admin/perf-command.ts';
import { produceCommand } from './admin/produce-command.ts';
import { START_USAGE, startCommand } from './admin/start-command.ts';
import { topicCommand } from './admin/topic-command.ts';
import { ConfigError } from './broker-config.ts';

const USAGE = `Usage: samsa <command> [options]

Commands:
  start        run a broker
  topic        create|list|describe|delete|alter-config topics
  produce      send lines of stdin as records
  consume      print a topic's records
  perf         produce|consume load tests (like kafka-*-perf-test)

Each command prints its options with --help.

${START_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return startCommand(rest);
    case 'topic':
      return topicCommand(rest);
    case 'produce':
      return produceCommand(rest);
    case 'consume':
      return consumeCommand(rest);
    case 'perf':
      return perfCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`samsa: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`samsa: ${(err as Error).message}`);
      process.exitCode = 2;
      return;
    }
    console.error(err);
    process.exitCode = 1;
  },
);
