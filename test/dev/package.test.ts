import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { described } from '../helpers/cli.js';
import { startNode } from '../helpers/processes.js';

const checkout = fileURLToPath(new URL('../..', import.meta.url));
let installed: string | undefined;
afterAll(async () => {
  if (installed) await rm(installed, { recursive: true, force: true });
});

it('the published package leaves the development code out, and works without it', {
  timeout: 60_000,
}, async () => {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: checkout,
  });
  const files = (JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((file) => file.path);
  expect(files).toEqual(
    expect.arrayContaining(['dist/index.js', 'dist/cli/main.js', 'dist/cli/commands/demo.js']),
  );
  expect(files.filter((file) => file.startsWith('dist/dev/') || file.startsWith('src/'))).toEqual([]);

  // As installed: the packed files, with the checkout's dependencies beside them.
  installed = await mkdtemp(join(tmpdir(), 'pgtq-installed-'));
  for (const file of files) {
    await mkdir(dirname(join(installed, file)), { recursive: true });
    await copyFile(join(checkout, file), join(installed, file));
  }
  await symlink(join(checkout, 'node_modules'), join(installed, 'node_modules'));

  // The library loads without it...
  const entry = pathToFileURL(join(installed, 'dist', 'index.js')).href;
  const library = await startNode(
    [
      '--input-type=module',
      '-e',
      `const { PgTq } = await import(${JSON.stringify(entry)}); console.log(typeof PgTq);`,
    ],
    {},
    { clean: true, timeoutMs: 20_000 },
  ).finished;
  expect(library.stdout, described(library)).toBe('function\n');

  // ...and the demo, with no database given, says in one line what it needs.
  const demo = await startNode(
    [join(installed, 'dist', 'cli', 'main.js'), 'demo'],
    {},
    { clean: true, timeoutMs: 20_000 },
  ).finished;
  expect(demo.code, described(demo)).toBe(1);
  expect(demo.stdout).toBe('');
  expect(demo.stderr).toBe(
    'pgtq: no DATABASE_URL: set DATABASE_URL (or --database-url) to the PostgreSQL to run the demo on\n',
  );
});
