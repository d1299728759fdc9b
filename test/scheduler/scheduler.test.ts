import { expect, it } from 'vitest';
import type { Scheduler } from '../../src/index.js';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';
import { useServices } from '../helpers/services.js';

const db = await useTestSchema('pgtq_scheduler');
const { start } = useServices();

it('three schedulers at once over 1,000 delayed tasks: each promoted exactly once', async () => {
  const q = db.queue('promote');
  const at = new Date('2030-01-01T00:00:00Z');
  await q.pushMany(Array.from({ length: 1000 }, (_, i) => ({ name: 't', args: [i], runAt: at })));
  const schedulers = [q.scheduler(), q.scheduler(), q.scheduler()];
  const due = new Date(at.getTime() + 1);
  const promoted = await Promise.all(schedulers.map((s: Scheduler) => s.promoter.runOnce(due)));
  expect(promoted.reduce((a, b) => a + b, 0)).toBe(1000);
  const [row] = await db.rows<{ ready: number }>(
    "SELECT count(*) FILTER (WHERE state = 'ready')::int AS ready FROM :schema.tasks WHERE queue = 'promote'",
  );
  expect(row?.ready).toBe(1000);
  expect(await q.scheduler().promoter.runOnce(due)).toBe(0);
});

it('a task pushed with delayMs 200 runs no earlier than 200 ms, and on time rather than at a fallback poll, with an idle worker and scheduler', async () => {
  const q = db.queue('delay');
  let ranAt = 0;
  const job = q.handler(async function job() {
    ranAt = Date.now();
  });
  await start(q.worker({ pollIntervalMs: 60_000 }));
  await start(q.scheduler());
  await new Promise((resolve) => setTimeout(resolve, 50)); // idle
  const pushedAt = Date.now();
  await job.with({ delayMs: 200 }).push();
  await waitFor(() => ranAt);
  const lateness = ranAt - pushedAt - 200;
  expect(lateness).toBeGreaterThanOrEqual(0);
  // Woken for its due time, not by the worker's poll (60 s here) or the scheduler's longest
  // sleep (30 s). How late exactly is for the benchmark to say: a loaded machine adds tens of ms.
  expect(lateness).toBeLessThan(1_000);
});

it('history: partitions are created a week ahead and expired ones dropped while workers finish tasks', async () => {
  const q = db.queue('history');
  const job = q.handler(async function job() {});
  const keeper = q.scheduler({ retentionMs: 86_400_000 }).history;
  // 100,000 finished tasks, ten days old, in their own partition
  const old = new Date(Date.now() - 10 * 86_400_000);
  await db.rows('SELECT :schema.create_history_partitions($1::date, 1)', [old.toISOString().slice(0, 10)]);
  await db.rows(
    `INSERT INTO :schema.finished_tasks (id, queue, name, args, state, priority, run_at, attempts, max_attempts, created_at, finished_at)
     SELECT -g, 'history', 'job', '[]', 'succeeded', 0, $1, 1, 1, $1, $1 FROM generate_series(1, 100000) AS g`,
    [old],
  );
  await start(q.worker({ concurrency: 20 }));
  const refs = job.pushMany(Array.from({ length: 2000 }, () => []));
  const { created, dropped } = await keeper.runOnce();
  expect(created).toBeGreaterThanOrEqual(0);
  expect(dropped).toEqual([`finished_tasks_${old.toISOString().slice(0, 10).replaceAll('-', '')}`]);
  for (const ref of await refs) await ref.result({ timeoutMs: 20_000 });
  const [counts] = await db.rows<{ old: number; today: number }>(
    `SELECT count(*) FILTER (WHERE id < 0)::int AS old, count(*) FILTER (WHERE id > 0)::int AS today
     FROM :schema.finished_tasks WHERE queue = 'history'`,
  );
  expect(counts).toEqual({ old: 0, today: 2000 });
  const partitions = await q.statements.listHistoryPartitions(q.pool);
  const lastDay = partitions.at(-1)?.ends_at.getTime() ?? 0;
  expect(lastDay - Date.now()).toBeGreaterThan(6 * 86_400_000);
});

it('a running scheduler fires an every-second cron schedule, and workers run its tasks', async () => {
  const q = db.queue('cron');
  const fired: string[] = [];
  const tick = q.handler(async function tick(label: string) {
    fired.push(label);
  });
  await q.schedule('every-second', '* * * * * *', tick, ['tick']);
  await start(q.worker());
  await start(q.scheduler());
  await waitFor(() => fired.length >= 2, { timeoutMs: 5_000 });
  expect(fired.slice(0, 2)).toEqual(['tick', 'tick']);
  await expect(q.schedule('bad', '61 * * * *', tick, ['x'])).rejects.toThrow(/Invalid cron expression/);
});

it('a lease the rescuer skipped while another transaction held its task is rescued later, by a full pass', async () => {
  const q = db.queue('rescue-held');
  await q.push('a', []);
  const popped = await q.pop({ leaseMs: 1 });
  expect(popped).not.toBeNull();
  // Its lease has run out, but its row stays locked past the bounded passes' 5 s margin.
  const holder = await db.pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM "${db.schema}".tasks WHERE id = $1 FOR UPDATE`, [popped?.id]);
    await start(q.scheduler({ rescueIntervalMs: 20 }));
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect((await q.getTask(popped?.id ?? '')).state).toBe('running');
  } finally {
    await holder.query('COMMIT');
    holder.release();
  }
  await waitFor(async () => (await q.getTask(popped?.id ?? '')).state === 'ready', { timeoutMs: 5_000 });
}, 15_000);
