import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { waitFor } from '../helpers/database.js';
import { startNode } from '../helpers/processes.js';
import { useTestSchema } from '../helpers/queue.js';

// A diamond flow (A → B, C → D) across 2 worker processes.
const db = await useTestSchema('pgtq_e2e_graph');
await db.rows(
  'CREATE TABLE :schema.runs (task_id bigint, step text, began timestamptz, ended timestamptz, pid int, parents jsonb)',
);
await db.rows('CREATE TABLE :schema.undos (step text, result text, pid int)');
const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const handlers = fileURLToPath(new URL('./fixtures/graph-handlers.mjs', import.meta.url));
const env = { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema };
const q = db.queue('graph');

/** Pushes A → B, C → D in one transaction; B fails if asked; D rolls the flow back if asked. */
async function pushDiamond(failB: boolean, onFailure: 'cancel' | 'undo' = 'cancel') {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    const a = await q.push('step', ['A', false], { client });
    const b = await q.push('step', ['B', failB], { client, after: [a], maxAttempts: 1 });
    const c = await q.push('step', ['C', false], { client, after: [a] });
    const d = await q.push('step', ['D', false], { client, after: { tasks: [b, c], onFailure } });
    await client.query('COMMIT');
    return { a, b, c, d };
  } finally {
    client.release();
  }
}

it("across 2 worker processes: D runs once, after B and C, and sees both results; a failing B cancels D, and with onFailure 'undo' undoes A and C", async () => {
  const workers = Array.from({ length: 2 }, () =>
    startNode([cli, 'worker', handlers, '--concurrency', '4'], env),
  );
  const ok = await Promise.all(Array.from({ length: 5 }, () => pushDiamond(false)));
  const broken = await pushDiamond(true);
  const saga = await pushDiamond(true, 'undo');
  const ids = [...ok, broken, saga].flatMap((g) => Object.values(g)).map((t) => t.id);
  await waitFor(
    async () => {
      const [row] = await db.rows<{ n: number }>(
        'SELECT count(*)::int AS n FROM :schema.finished_tasks WHERE id = ANY ($1::bigint[])',
        [ids],
      );
      return row?.n === ids.length;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  // The saga's compensations run after the flow's tasks have ended.
  await waitFor(async () => (await db.rows('SELECT 1 FROM :schema.undos')).length >= 2, {
    timeoutMs: 30_000,
  });
  for (const worker of workers) worker.child.kill('SIGTERM');
  expect((await Promise.all(workers.map((w) => w.finished))).map((e) => e.code)).toEqual([0, 0]);

  const runs = await db.rows<{
    task_id: string;
    step: string;
    began: Date;
    ended: Date;
    pid: number;
    parents: { id: string; result: string }[];
  }>('SELECT task_id::text, step, began, ended, pid, parents FROM :schema.runs');
  const runOf = (id: string) => runs.filter((r) => r.task_id === id);
  for (const g of ok) {
    const [d] = runOf(g.d.id);
    const [b] = runOf(g.b.id);
    const [c] = runOf(g.c.id);
    expect(runOf(g.d.id)).toHaveLength(1);
    expect(d && b && c && d.began >= b.ended && d.began >= c.ended).toBe(true);
    expect(d?.parents).toEqual([
      { id: g.b.id, result: `B:${b?.pid}` },
      { id: g.c.id, result: `C:${c?.pid}` },
    ]);
  }
  // Both processes took part.
  expect(new Set(runs.map((r) => r.pid)).size).toBe(2);
  expect(runOf(broken.d.id)).toEqual([]);
  const [d] = await db.rows('SELECT state::text, error FROM :schema.task_history WHERE id = $1', [
    broken.d.id,
  ]);
  expect(d).toEqual({
    state: 'cancelled',
    error: `cancelled: a task it runs after ended failed (task ${broken.b.id})`,
  });
  // The saga: D cancelled, and A and C (which succeeded) undone once each, with their results.
  const [a, c] = [runOf(saga.a.id)[0], runOf(saga.c.id)[0]];
  const undos = await db.rows<{ step: string; result: string }>(
    'SELECT step, result FROM :schema.undos ORDER BY step',
  );
  expect(undos).toEqual([
    { step: 'A', result: `A:${a?.pid}` },
    { step: 'C', result: `C:${c?.pid}` },
  ]);
  const [sagaD] = await db.rows('SELECT state::text FROM :schema.task_history WHERE id = $1', [saga.d.id]);
  expect(sagaD).toEqual({ state: 'cancelled' });
}, 120_000);
