/**
 * `samsa completion bash|zsh`: prints a shell completion script for commands, actions and
 * options (`source <(samsa completion bash)`, or `samsa completion zsh > ~/.zfunc/_samsa`).
 * Options come from one table per command below; a test checks it against each `--help`.
 */
import { runCommand, UsageError } from './cli-common.ts';

export const COMPLETION_USAGE = `Usage: samsa completion bash|zsh

Prints a completion script for the shell:
  bash:  source <(samsa completion bash)         (or save it in /etc/bash_completion.d/samsa)
  zsh:   source <(samsa completion zsh)          (or save it as _samsa in a directory of $fpath)`;

const CLIENT = ['--bootstrap', '--bootstrap-server', '--help'];

/** command -> its actions (empty: none) and options. */
export const COMPLETION_TABLE: Record<string, { actions: string[]; options: string[] }> = {
  start: { actions: [], options: ['--help'] },
  cluster: {
    actions: ['info', 'up', 'drain'],
    options: [
      ...CLIENT,
      '--format',
      '--timeout-ms',
      '--brokers',
      '--data-dir',
      '--port',
      '--http-port',
      '--etcd',
      '--metadata',
      '--override',
      '--broker',
      '--no-wait',
      '--wait-ms',
    ],
  },
  topic: {
    actions: [
      'create',
      'list',
      'describe',
      'delete',
      'alter-config',
      'add-partitions',
      'trim',
      'reassign',
      'elect-leaders',
    ],
    options: [
      ...CLIENT,
      '--format',
      '--timeout-ms',
      '--topic',
      '--partitions',
      '--replication-factor',
      '--config',
      '--if-not-exists',
      '--if-exists',
      '--validate-only',
      '--exclude-internal',
      '--set',
      '--delete',
      '--num',
      '--partition',
      '--offset',
      '--replicas',
      '--cancel',
      '--list',
      '--reassignment-json-file',
      '--wait',
      '--wait-ms',
      '--unclean',
    ],
  },
  produce: {
    actions: [],
    options: [
      ...CLIENT,
      '--topic',
      '--key-separator',
      '--partition',
      '--header',
      '--parse-headers',
      '--value-format',
      '--key-format',
      '--value-file',
      '--acks',
      '--compression',
      '--batch-size',
      '--linger-ms',
      '--max-in-flight',
      '--retries',
      '--timeout-ms',
    ],
  },
  consume: {
    actions: [],
    options: [
      ...CLIENT,
      '--topic',
      '--group',
      '--group-protocol',
      '--from-beginning',
      '--offset',
      '--partition',
      '--max-messages',
      '--exit-at-end',
      '--timeout-ms',
      '--format',
      '--value-format',
      '--key-format',
      '--print-key',
      '--print-offset',
      '--print-timestamp',
      '--print-headers',
      '--print-partition',
      '--separator',
      '--isolation-level',
      '--max-wait-ms',
      '--fetch-max-bytes',
    ],
  },
  perf: {
    actions: ['produce', 'consume'],
    options: [
      ...CLIENT,
      '--topic',
      '--num-records',
      '--record-size',
      '--throughput',
      '--acks',
      '--compression',
      '--batch-size',
      '--max-in-flight',
      '--partitions',
      '--warmup-records',
      '--messages',
      '--from-latest',
      '--fetch-size',
      '--decode',
      '--timeout-ms',
      '--reporting-interval',
    ],
  },
  group: {
    actions: ['list', 'describe', 'delete', 'delete-offsets', 'reset-offsets'],
    options: [
      ...CLIENT,
      '--format',
      '--timeout-ms',
      '--group',
      '--all-groups',
      '--all-topics',
      '--state',
      '--type',
      '--topic',
      '--to-earliest',
      '--to-latest',
      '--to-offset',
      '--shift-by',
      '--to-datetime',
      '--execute',
    ],
  },
  transactions: {
    actions: ['list', 'describe', 'describe-producers', 'find-hanging', 'abort'],
    options: [
      ...CLIENT,
      '--format',
      '--timeout-ms',
      '--state',
      '--producer-id',
      '--duration-filter',
      '--transactional-id',
      '--topic',
      '--partition',
      '--broker-id',
      '--max-transaction-timeout-ms',
      '--start-offset',
    ],
  },
  completion: { actions: ['bash', 'zsh'], options: [] },
};

export function completionCommand(argv: string[]): Promise<number> {
  return runCommand('completion', COMPLETION_USAGE, async () => {
    const [shell, ...rest] = argv;
    if (shell === undefined || shell === '--help' || shell === '-h' || shell === 'help') {
      console.log(COMPLETION_USAGE);
      return shell === undefined ? 2 : 0;
    }
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
    if (shell === 'bash') console.log(bashScript());
    else if (shell === 'zsh') console.log(zshScript());
    else throw new UsageError(`'${shell}' is not bash or zsh`);
    return 0;
  });
}

function caseArms(pick: (c: { actions: string[]; options: string[] }) => string[]): string {
  return Object.entries(COMPLETION_TABLE)
    .map(([name, c]) => `    ${name}) echo "${pick(c).join(' ')}" ;;`)
    .join('\n');
}

function bashScript(): string {
  return `# samsa bash completion: source <(samsa completion bash)
_samsa_actions() {
  case "$1" in
${caseArms((c) => c.actions)}
  esac
}
_samsa_options() {
  case "$1" in
${caseArms((c) => c.options)}
  esac
}
_samsa() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${Object.keys(COMPLETION_TABLE).join(' ')} help --help --version" -- "$cur") )
    return
  fi
  local cmd=\${COMP_WORDS[1]}
  local actions; actions=$(_samsa_actions "$cmd")
  if [ "$COMP_CWORD" -eq 2 ] && [ -n "$actions" ] && [[ "$cur" != -* ]]; then
    COMPREPLY=( $(compgen -W "$actions" -- "$cur") )
    return
  fi
  case "\${COMP_WORDS[COMP_CWORD-1]}" in
    --format) COMPREPLY=( $(compgen -W "text json" -- "$cur") ); return ;;
    --value-format|--key-format) COMPREPLY=( $(compgen -W "text hex base64" -- "$cur") ); return ;;
    --compression) COMPREPLY=( $(compgen -W "none gzip snappy lz4 zstd" -- "$cur") ); return ;;
    --isolation-level) COMPREPLY=( $(compgen -W "read_uncommitted read_committed" -- "$cur") ); return ;;
    --group-protocol) COMPREPLY=( $(compgen -W "consumer classic" -- "$cur") ); return ;;
    --value-file) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
  esac
  COMPREPLY=( $(compgen -W "$(_samsa_options "$cmd")" -- "$cur") )
}
complete -F _samsa samsa`;
}

function zshScript(): string {
  return `#compdef samsa
# samsa zsh completion: source <(samsa completion zsh), or save as _samsa in $fpath
_samsa_actions() {
  case "$1" in
${caseArms((c) => c.actions)}
  esac
}
_samsa_options() {
  case "$1" in
${caseArms((c) => c.options)}
  esac
}
_samsa() {
  local cur=\${words[CURRENT]}
  if (( CURRENT == 2 )); then
    compadd -- ${Object.keys(COMPLETION_TABLE).join(' ')} help --help --version
    return
  fi
  local cmd=\${words[2]}
  local -a actions; actions=(\${=$(_samsa_actions $cmd)})
  if (( CURRENT == 3 )) && (( \${#actions} > 0 )) && [[ $cur != -* ]]; then
    compadd -- $actions
    return
  fi
  case "\${words[CURRENT-1]}" in
    --format) compadd -- text json; return ;;
    --value-format|--key-format) compadd -- text hex base64; return ;;
    --compression) compadd -- none gzip snappy lz4 zstd; return ;;
    --isolation-level) compadd -- read_uncommitted read_committed; return ;;
    --group-protocol) compadd -- consumer classic; return ;;
    --value-file) _files; return ;;
  esac
  compadd -- \${=$(_samsa_options $cmd)}
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _samsa "$@"
else
  compdef _samsa samsa
fi`;
}
