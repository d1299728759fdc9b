import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PgTq } from '../index.js';
import { UsageError } from './common.js';

const HANDLER_FILE = /^(handlers?|tasks?)\.(m?[jt]s)$/;
const TYPESCRIPT = /\.[mc]?ts$/;

/**
 * Imports handler modules: files as given, and in a folder every file named
 * handlers.js or tasks.js (at any depth, outside node_modules), as djutils
 * discovers commands.py. Returns the PgTq queues the modules export.
 */
export async function loadHandlers(paths: string[]): Promise<PgTq[]> {
  if (paths.length === 0) throw new UsageError('name at least one handler module or folder');
  const files = (await Promise.all(paths.map((path) => discover(resolve(path))))).flat();
  if (files.length === 0)
    throw new UsageError(`no handler modules (handlers.js, tasks.js, .ts too) found in ${paths.join(', ')}`);
  const typescript = files.find((file) => TYPESCRIPT.test(file));
  if (typescript) await loadTypeScript(typescript);
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

/**
 * Makes `import()` of TypeScript work: Node strips types itself from 22.18 and 23.6
 * (process.features.typescript); older versions need tsx, found from the handler
 * module's folder (the app's own dependency), then from the working directory.
 */
async function loadTypeScript(file: string): Promise<void> {
  if ((process.features as { typescript?: string | false }).typescript) return;
  for (const from of [file, join(process.cwd(), 'noop.js')]) {
    const api = tsxApi(from);
    if (!api) continue;
    const { register } = (await import(pathToFileURL(api).href)) as { register(): unknown };
    register();
    return;
  }
  throw new UsageError(
    `${file} is TypeScript, which Node ${process.versions.node} cannot run by itself: install tsx in the app ` +
      '(npm install --save-dev tsx), run Node 22.18 or later, or build the handlers to JavaScript',
  );
}

/**
 * The ES module of tsx's API as seen from `from`, by its package's exports (a require()
 * resolution would give the CommonJS one), or undefined without tsx there.
 */
function tsxApi(from: string): string | undefined {
  let manifest: string;
  try {
    manifest = createRequire(from).resolve('tsx/package.json');
  } catch {
    return undefined;
  }
  type Target = string | { import?: Target; default?: Target };
  const { exports } = JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: Record<string, Target> };
  let target = exports?.['./esm/api'];
  while (target !== undefined && typeof target !== 'string') target = target.import ?? target.default;
  return target === undefined ? undefined : join(dirname(manifest), target);
}
