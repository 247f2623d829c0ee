/**
 * Running the `samsa` CLI as a child process against an in-process broker.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';

export const CLI = fileURLToPath(new URL('../../../src/cli.ts', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A broker on port 0 in a temporary directory; the caller closes it (`t.after` or a suite's `after`). */
export function startTestBroker(): Promise<RunningBroker> {
  return startBroker({ logLevel: 'silent' });
}

export function randomTopic(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** `env` is added to this process's environment (SAMSA_BROKERS removed unless given). */
export function spawnCli(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  const base = { ...process.env };
  delete base.SAMSA_BROKERS;
  return spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...base, ...env } });
}

/** Collects a child's output; resolves when it exits. */
export function collect(child: ChildProcess, timeoutMs = 60_000): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `samsa <args>` with `input` (text or bytes) on stdin. */
export function runCli(
  args: readonly string[],
  input: string | Buffer = '',
  timeoutMs?: number,
  env?: Record<string, string>,
): Promise<CliResult> {
  const child = spawnCli(args, env);
  const result = collect(child, timeoutMs);
  child.stdin?.on('error', () => {});
  child.stdin?.end(input);
  return result;
}

/** Runs `samsa <args>` and keeps stdout as bytes (for binary output). */
export function runCliBytes(
  args: readonly string[],
  input: string | Buffer = '',
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  const child = spawnCli(args);
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => chunks.push(d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin?.on('error', () => {});
  child.stdin?.end(input);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI timed out after ${timeoutMs} ms\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(chunks), stderr });
    });
  });
}
