import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { described } from '../helpers/cli.js';
import { databaseUrl, dropSchema, uniqueSchemaName } from '../helpers/database.js';
import { startNode } from '../helpers/processes.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const tsc = join(root, 'node_modules/.bin/tsc');

/**
 * Runs a command to completion and resolves with its stdout; a failure rejects
 * with everything it printed. npm's own variables are left out, so an npm started
 * here reads no configuration from the `npm test` that may have started vitest.
 */
function run(command: string, args: string[], cwd: string): Promise<string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The README's main example, as an app would write it, with checks that fail the compile if types regress. */
const APP = `import pg from 'pg';
import { PgTq, ValidationError } from 'pgtq';
import { z } from 'zod';

const url = process.env.DATABASE_URL;
const q = new PgTq('emails', { connectionString: url });
await q.migrate();

export const addNumbers = q.handler(async function add_numbers(a: number, b: number) {
  return a + b;
});
export const sum = q.handler(
  { name: 'sum_task', args: z.tuple([z.number(), z.number()]), maxAttempts: 5 },
  async (a, b) => a + b,
);

// Never called: it only has to compile, which it does only if push's arguments are inferred from the schema.
export function typesOnly() {
  // @ts-expect-error: the schema wants numbers
  void sum.push('2', 3);
}

const direct: number = await addNumbers(2, 3);
const rejected = await sum.push('two' as unknown as number, 3).catch((error: unknown) => error);

const client = new pg.Client({ connectionString: url });
await client.connect();
await client.query('BEGIN');
const ref = await sum.with({ client }).push(2, 3);
await client.query('COMMIT');
await client.end();

const worker = q.worker({ concurrency: 2 });
await worker.start();
const result: number = await ref.result({ timeoutMs: 20_000 });
await worker.stop();
await q.close();
console.log(JSON.stringify({
  direct,
  result,
  rejected: rejected instanceof ValidationError ? rejected.message : String(rejected),
}));
`;

describe('the package, packed and installed as an app would', () => {
  let work: string;
  let tarball: string;
  let entries: string[];
  const app = () => join(work, 'app');
  const schemas: string[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'pgtq-package-'));
    // Pack a copy of the tree as a fresh clone has it (no dist/), so the tarball's dist/
    // proves that packing builds it; the repository's own dist/, which other test files
    // are running, is left alone.
    const clone = join(work, 'clone');
    const files = (await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], root))
      .split('\0')
      .filter((file) => file && existsSync(join(root, file)));
    for (const file of files) await cp(join(root, file), join(clone, file));
    expect(existsSync(join(clone, 'dist'))).toBe(false);
    await symlink(join(root, 'node_modules'), join(clone, 'node_modules'));
    const [packed] = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', work], clone));
    tarball = join(work, packed.filename);
    entries = (await run('tar', ['-tzf', tarball], work)).split('\n').filter(Boolean);

    await mkdir(app());
    await writeFile(
      join(app(), 'package.json'),
      JSON.stringify({ name: 'pgtq-package-test-app', private: true, type: 'module' }),
    );
    await writeFile(join(app(), 'app.ts'), APP);
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, 'pg'], app());
  }, 90_000);

  afterAll(async () => {
    for (const schema of schemas) await dropSchema(schema);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('holds the built code, its types, LICENSE, migrations and sql, and nothing of the tests or benchmarks', () => {
    const expected = [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/main.js',
      ...readdirSync(join(root, 'migrations')).map((file) => `migrations/${file}`),
      ...readdirSync(join(root, 'sql')).map((file) => `sql/${file}`),
    ];
    for (const file of expected) expect(entries).toContain(`package/${file}`);
    const stray = entries.filter((entry) => /^package\/(test|bench|src)\//.test(entry));
    expect(stray).toEqual([]);
    // Source maps would point at src/, which is not shipped.
    expect(entries.filter((entry) => entry.endsWith('.map'))).toEqual([]);
  });

  it('its pgtq command reports the package version', async () => {
    const result = await startNode([join(app(), 'node_modules/pgtq/dist/cli/main.js'), '--version']).finished;
    expect(result.code, described(result)).toBe(0);
    expect(result.stdout).toBe(`${pkg.version}\n`);
  });

  // zod is a peer: the app's own copy, at either end of the supported range, checks the arguments.
  it.each([
    ['zod 4', pkg.devDependencies.zod],
    ['zod 3', '3.25.76'],
  ])(
    'with %s, the README example compiles under tsc --strict and runs against the database',
    async (_, zodVersion) => {
      await run(
        'npm',
        ['install', '--prefer-offline', '--no-audit', '--no-fund', `zod@${zodVersion}`],
        app(),
      );
      const installed = JSON.parse(readFileSync(join(app(), 'node_modules/zod/package.json'), 'utf8'));
      expect(installed.version).toBe(zodVersion);
      // one zod: pgtq has no copy of its own
      expect(existsSync(join(app(), 'node_modules/pgtq/node_modules/zod'))).toBe(false);

      await rm(join(app(), 'out'), { recursive: true, force: true });
      const args = [
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
      ];
      await run(tsc, [...args, '--outDir', 'out', 'app.ts'], app());

      const schema = uniqueSchemaName('pgtq_package');
      schemas.push(schema);
      const env = { DATABASE_URL: databaseUrl(), PGTQ_SCHEMA: schema };
      const result = await startNode([join(app(), 'out/app.js')], env, { clean: true, timeoutMs: 30_000 })
        .finished;
      expect(result.code, described(result)).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({
        direct: 5,
        result: 5,
        rejected: expect.stringMatching(/^sum_task: args\[0\]: /),
      });
    },
    60_000,
  );
});
