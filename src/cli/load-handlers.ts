import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PgTq } from '../index.js';
import { UsageError } from './common.js';

const HANDLER_FILE = /^(handlers?|tasks?)\.(m?js)$/;

/**
 * Imports handler modules: files as given, and in a folder every file named
 * handlers.js or tasks.js (at any depth, outside node_modules), as djutils
 * discovers commands.py. Returns the PgTq queues the modules export.
 */
export async function loadHandlers(paths: string[]): Promise<PgTq[]> {
  if (paths.length === 0) throw new UsageError('name at least one handler module or folder');
  const files = (await Promise.all(paths.map((path) => discover(resolve(path))))).flat();
  if (files.length === 0)
    throw new UsageError(`no handler modules (handlers.js, tasks.js) found in ${paths.join(', ')}`);
  const queues = new Set<PgTq>();
  for (const file of files) {
    const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const value of Object.values(module)) if (isQueue(value)) queues.add(value);
  }
  if (queues.size === 0)
    throw new UsageError(`the handler modules export no PgTq queue (export const q = new PgTq(…))`);
  return [...queues];
}

/** A PgTq, even one loaded from another copy of the package. */
function isQueue(value: unknown): value is PgTq {
  return (
    value instanceof PgTq ||
    (typeof value === 'object' &&
      value !== null &&
      typeof (value as PgTq).worker === 'function' &&
      (value as PgTq).handlers instanceof Map)
  );
}

async function discover(path: string): Promise<string[]> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new UsageError(`no such file or folder: ${path}`);
  if (info.isFile()) return [path];
  const found: string[] = [];
  for (const entry of await readdir(path, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = join(path, entry.name);
    if (entry.isDirectory()) found.push(...(await discover(full)));
    else if (HANDLER_FILE.test(entry.name)) found.push(full);
  }
  return found.sort();
}
