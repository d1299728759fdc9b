import { fileURLToPath } from 'node:url';
import { type Finished, startNode } from './processes.js';

/** The built command. */
export const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Nothing listens here: connections are refused at once. */
export const UNREACHABLE = 'postgres://postgres@127.0.0.1:1/x';

/**
 * Runs `pgtq <args>` to completion, with exactly `env` for the variables pgtq
 * reads (the developer's settings never leak in). A process still running after
 * `timeoutMs` is killed, so a hang fails on its exit code, not a test timeout.
 */
export function pgtq(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<Finished> {
  return startNode([cli, ...args], env, { clean: true, timeoutMs }).finished;
}

/** The lines of a stream's output, without the final newline. */
export const lines = (text: string) => text.replace(/\n$/, '').split('\n');

/** A Node.js stack frame line, as `error.stack` prints it. */
export const STACK_FRAME = /^\s+at /m;

/** What a process printed, for failure messages. */
export const described = (r: Finished) =>
  `exit ${r.code} (${r.signal})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
