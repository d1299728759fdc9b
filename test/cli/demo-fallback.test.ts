import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, described } from '../helpers/cli.js';
import { waitFor } from '../helpers/database.js';
import { startNode } from '../helpers/processes.js';

// `npm start` without DATABASE_URL: the demo on a throwaway server, with a TMPDIR of its own that must be
// empty again however the demo ended.
const folders: string[] = [];
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

async function demoWithoutDatabase() {
  const tmp = await mkdtemp(join(tmpdir(), 'pgtq-tmp-'));
  folders.push(tmp);
  // Like /tmp: the server's user (when we are root) must be able to enter it.
  await chmod(tmp, 0o755);
  const demo = startNode([cli, 'demo'], { TMPDIR: tmp }, { clean: true, timeoutMs: 150_000 });
  return { ...demo, tmp };
}

describe('pgtq demo without DATABASE_URL', () => {
  it('runs on a throwaway server and removes it', { timeout: 180_000 }, async () => {
    const demo = await demoWithoutDatabase();
    const result = await demo.finished;
    expect(result.code, described(result)).toBe(0);
    expect(result.stdout).toMatch(/^No DATABASE_URL: starting a throwaway PostgreSQL…\n/);
    expect(result.stdout).toContain('1000 follower notifications written');
    expect(result.stdout).toContain('Done: every committed task ran once');
    expect(await readdir(demo.tmp)).toEqual([]);
  });

  it.each([
    { signal: 'SIGINT', code: 130, after: 'No DATABASE_URL' },
    { signal: 'SIGTERM', code: 143, after: 'Migrating schema' },
  ] as const)(
    '$signal after "$after" ends it at once, and removes the server',
    { timeout: 180_000 },
    async ({ signal, code, after }) => {
      const demo = await demoWithoutDatabase();
      await waitFor(() => demo.output().includes(after), { timeoutMs: 120_000 });
      demo.child.kill(signal);
      const result = await demo.finished;
      expect(result.code, described(result)).toBe(code);
      expect(result.stderr).toBe(`\npgtq demo: interrupted by ${signal}\n`);
      expect(await readdir(demo.tmp)).toEqual([]);
    },
  );
});
