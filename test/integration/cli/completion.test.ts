// `samsa completion bash|zsh`: the bash script, loaded into a real bash, completes commands,
// actions, options and option values; every option it offers exists in the command's --help.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { COMPLETION_TABLE } from '../../../src/admin/completion-command.ts';
import { CLI, runCli } from './helpers.ts';

const run = promisify(execFile);

/** What bash's completion offers for the words typed (the last one being completed). */
async function complete(words: string[]): Promise<string[]> {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const script = `source <('${process.execPath}' '${CLI}' completion bash)
COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _samsa; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const { stdout } = await run('bash', ['-c', script]);
  return stdout.split('\n').filter((l) => l !== '');
}

test('bash completion: commands, actions, options, option values', async () => {
  assert.deepEqual(await complete(['samsa', 'c']), ['cluster', 'consume', 'completion']);
  assert.deepEqual(await complete(['samsa', '--v']), ['--version']);
  assert.deepEqual(await complete(['samsa', 'group', 'de']), ['describe', 'delete', 'delete-offsets']);
  assert.deepEqual(await complete(['samsa', 'consume', '--exit']), ['--exit-at-end']);
  assert.deepEqual(await complete(['samsa', 'topic', 'describe', '--bootstrap-s']), ['--bootstrap-server']);
  assert.deepEqual(await complete(['samsa', 'consume', '--value-format', '']), ['text', 'hex', 'base64']);
  assert.deepEqual(await complete(['samsa', 'cluster', 'info', '--format', 'j']), ['json']);
});

test('every option the completion offers is in the command --help', async () => {
  for (const [command, { options }] of Object.entries(COMPLETION_TABLE)) {
    const args = command === 'perf' ? ['perf', 'produce', '--help'] : [command, '--help'];
    const help = await runCli(args);
    const text = command === 'perf' ? (await runCli(['perf', '--help'])).stdout : help.stdout;
    for (const option of options) {
      if (option === '--bootstrap-server' || option === '--help') continue;
      assert.ok(text.includes(option), `${option} is not in 'samsa ${command} --help'`);
    }
  }
});

test('every option in a command --help is offered by the completion', async () => {
  for (const command of ['cluster', 'topic', 'produce', 'consume', 'perf', 'group']) {
    const help = (await runCli([command, '--help'])).stdout;
    const offered = new Set(COMPLETION_TABLE[command]!.options);
    for (const option of new Set(help.match(/--[a-z][a-z-]*/g) ?? [])) {
      assert.ok(offered.has(option), `'samsa ${command} --help' has ${option}, the completion does not`);
    }
  }
});

test('zsh completion script is valid zsh; bad shells are one-line errors', async (t) => {
  const zsh = await runCli(['completion', 'zsh']);
  assert.equal(zsh.code, 0, zsh.stderr);
  assert.match(zsh.stdout, /^#compdef samsa\n/);
  const hasZsh = await run('zsh', ['-c', 'true']).then(
    () => true,
    () => false,
  );
  if (hasZsh) await run('zsh', ['-n', '-c', zsh.stdout]);
  else t.diagnostic('zsh is not installed: its script was not parsed');
  const fish = await runCli(['completion', 'fish']);
  assert.equal(fish.code, 2);
  assert.equal(fish.stderr, "samsa completion: 'fish' is not bash or zsh (see 'samsa completion --help')\n");
});
