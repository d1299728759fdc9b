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

/** A Node.js process started from the repository root; killed after the test if still running. */
export function startNode(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
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
