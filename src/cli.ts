/**
 * The `samsa` command: `samsa start` runs a broker; the other commands are clients that speak
 * the Kafka protocol to any broker (--bootstrap).
 */

import { START_USAGE, startCommand } from './admin/start-command.ts';
import { ConfigError } from './broker-config.ts';

const USAGE = `Usage: samsa <command> [options]

Commands:
  start        run a broker

${START_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return startCommand(rest);
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
