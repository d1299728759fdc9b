import { type ChildProcess, spawn } from 'node:child_process';
import { afterEach } from 'vitest';

const running = new Set<ChildProcess>();
afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The variables pgtq reads: a clean environment leaves them out. */
const PGTQ_VARIABLES = [
  'DATABASE_URL',
  'PGTQ_SCHEMA',
  'PGTQ_QUEUE',
  'PGTQ_LISTEN',
  'PGTQ_PREPARED_STATEMENTS',
];

/**
 * A Node.js process started from the repository root, with the test process's
 * environment plus `env`; killed after the test if still running.
 * `clean`: leave out the variables pgtq reads, so only `env` sets them.
 * `timeoutMs`: kill it after this long, so a hang fails on its exit code.
 */
export function startNode(
  args: string[],
  env: Record<string, string> = {},
  options: { clean?: boolean; timeoutMs?: number; cwd?: string } = {},
) {
  const base = { ...process.env };
  if (options.clean) for (const name of PGTQ_VARIABLES) delete base[name];
  const child = spawn(process.execPath, args, {
    env: { ...base, ...env },
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const finished = new Promise<Finished>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    child,
    finished,
    output: () => stdout,
    errors: () => stderr,
  };
}

/** Runs an ES module given as source text, importing pgtq from the built package. */
export function runScript(source: string, env: Record<string, string> = {}) {
  return startNode(['--input-type=module', '-e', source], env);
}
