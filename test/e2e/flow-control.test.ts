import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { waitFor } from '../helpers/database.js';
import { startNode } from '../helpers/processes.js';
import { useTestSchema } from '../helpers/queue.js';

// Flow control across 4 worker processes: the limits hold fleet-wide.
const db = await useTestSchema('pgtq_e2e_flow');
await db.rows(
  'CREATE TABLE :schema.spans (task_id bigint, group_key text, started timestamptz, ended timestamptz)',
);
await db.rows('CREATE TABLE :schema.starts (task_id bigint PRIMARY KEY, started timestamptz)');

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const handlers = fileURLToPath(new URL('./fixtures/flow-handlers.mjs', import.meta.url));
const env = { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema };
const q = db.queue('flow');
const count = async (sql: string) => Number((await db.rows<{ n: string }>(sql))[0]?.n);
const finished = (name: string) =>
  count(`SELECT count(*) AS n FROM :schema.finished_tasks WHERE name = '${name}'`);

/** Runs 4 worker processes (killed after each test, see startNode) until `done`, then stops them. */
async function withWorkers(done: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const workers = Array.from({ length: 4 }, () =>
    startNode([cli, 'worker', handlers, '--concurrency', '10'], env),
  );
  await waitFor(done, { timeoutMs, intervalMs: 100 });
  for (const worker of workers) worker.child.kill('SIGTERM');
  const exits = await Promise.all(workers.map((w) => w.finished));
  expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0]);
}

it('2,000 tasks in 20 groups with groupConcurrency 2: never more than 2 of a group running', async () => {
  await q.pushMany(
    Array.from({ length: 2_000 }, (_, n) => ({ name: 'sync', args: [], group: `g${n % 20}` })),
  );
  await withWorkers(async () => (await finished('sync')) === 2_000, 120_000);
  // For each task: how many of its group were running when it started (itself included).
  const [overlap] = await db.rows<{ most: number; tasks: number }>(`
    SELECT max(running)::int AS most, count(*)::int AS tasks FROM (
      SELECT a.task_id, count(*) AS running
      FROM :schema.spans AS a JOIN :schema.spans AS b
        ON b.group_key = a.group_key AND b.started <= a.started AND b.ended > a.started
      GROUP BY a.task_id) AS s`);
  expect(overlap).toEqual({ most: 2, tasks: 2_000 });
  expect(
    await count("SELECT count(*) AS n FROM :schema.finished_tasks WHERE name = 'sync' AND attempts <> 1"),
  ).toBe(0);
}, 180_000);

it('rateLimit 50 per second: never more than 50 starts in any one-second window', async () => {
  const startedAt = Date.now();
  await q.pushMany(Array.from({ length: 160 }, () => ({ name: 'call', args: [] })));
  await withWorkers(async () => (await finished('call')) === 160, 60_000);
  const elapsedMs = Date.now() - startedAt;
  // For each start: the starts in the second that begins with it.
  const [window] = await db.rows<{ most: number }>(`
    SELECT max(n)::int AS most FROM (
      SELECT (SELECT count(*) FROM :schema.starts AS b
              WHERE b.started >= a.started AND b.started < a.started + interval '1 s') AS n
      FROM :schema.starts AS a) AS w`);
  expect(window?.most).toBe(50);
  expect(elapsedMs).toBeGreaterThanOrEqual(3_000); // 160 at 50/s: the fourth 50 start after 3 s
}, 120_000);

it('rateLimit 400 per second, tasks claimed ahead: never more than 400 handlers begin in any one-second window', async () => {
  await db.rows('TRUNCATE :schema.starts');
  await q.pushMany(Array.from({ length: 1_200 }, () => ({ name: 'burst', args: [] })));
  await withWorkers(async () => (await finished('burst')) === 1_200, 60_000);
  // The starts are the handlers' own, not the claims': a task claimed ahead begins later.
  const [window] = await db.rows<{ most: number; starts: number }>(`
    SELECT max(n)::int AS most, count(*)::int AS starts FROM (
      SELECT (SELECT count(*) FROM :schema.starts AS b
              WHERE b.started >= a.started AND b.started < a.started + interval '1 s') AS n
      FROM :schema.starts AS a) AS w`);
  console.info(`at most ${window?.most} handlers began in one second`);
  expect(window?.starts).toBe(1_200);
  expect(window?.most).toBeLessThanOrEqual(400);
  expect(window?.most).toBeGreaterThan(200);
}, 120_000);

it('a group of 10,000 tasks and 9 groups of 10: the small groups all finish long before the big one', async () => {
  await q.pushMany(Array.from({ length: 10_000 }, () => ({ name: 'fair', args: [], group: 'big' })));
  await q.pushMany(
    Array.from({ length: 90 }, (_, n) => ({ name: 'fair', args: [], group: `small${n % 9}` })),
  );
  await withWorkers(async () => (await finished('fair')) === 10_090, 120_000);
  const [when] = await db.rows<{ big_before: number }>(`
    SELECT count(*)::int AS big_before FROM :schema.finished_tasks
    WHERE group_key = 'big' AND finished_at <= (
      SELECT max(finished_at) FROM :schema.finished_tasks WHERE group_key LIKE 'small%')`);
  console.info(`the last small group finished after ${when?.big_before} of the big group's 10,000`);
  expect(when?.big_before).toBeLessThan(2_000);
}, 180_000);
