import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { cli, described, lines } from '../helpers/cli.js';
import { startNode } from '../helpers/processes.js';
import { useTestSchema } from '../helpers/queue.js';

// `pgtq worker` on handler modules written in TypeScript: Node strips the types itself from
// 22.18; before that (this machine runs Node 20), through the app's tsx.
const db = await useTestSchema('pgtq_cli_typescript');
const env = { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema };
const folder = fileURLToPath(new URL('./fixtures/typescript/', import.meta.url));
const lonely = await mkdtemp(join(tmpdir(), 'pgtq-ts-'));
afterAll(() => rm(lonely, { recursive: true, force: true }));

it('finds handlers.ts in a folder and runs its handlers', async () => {
  const run = startNode([cli, 'worker', folder, '-c', '2'], env, { clean: true, timeoutMs: 60_000 });
  try {
    const q = db.queue('typescript');
    const ref = await q.push('count_items', [{ id: 1, items: ['a', 'b', 'c'] }]);
    expect(await q.result(ref.id, { timeoutMs: 30_000 })).toBe(3);
  } finally {
    run.child.kill('SIGTERM');
  }
  const result = await run.finished;
  expect(result.code, described(result)).toBe(0);
});

it.runIf(!(process.features as { typescript?: unknown }).typescript)(
  'says what to do when neither Node nor tsx can run TypeScript: exit 2, one line',
  async () => {
    const file = join(lonely, 'handlers.ts');
    await writeFile(file, 'export const answer: number = 42;\n');
    const result = await startNode([cli, 'worker', file], env, {
      clean: true,
      timeoutMs: 20_000,
      cwd: lonely,
    }).finished;
    expect(result.code, described(result)).toBe(2);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /handlers\.ts is TypeScript, which Node [\d.]+ cannot run by itself: install tsx/,
      ),
    ]);
  },
);
