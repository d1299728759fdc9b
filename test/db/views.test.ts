import { expect, it } from 'vitest';
import { useTestSchema } from '../helpers/queue.js';

const db = await useTestSchema('pgtq_views');

it('queue_summary, task_history and all_tasks show a known set of tasks', async () => {
  const q = db.queue('views');
  const at = new Date('2030-01-01T00:00:00Z');
  await q.pushMany([
    { name: 'a', args: [1] },
    { name: 'a', args: [2] },
    { name: 'b', args: [3] },
    { name: 'b', args: [4], runAt: at },
  ]);
  const succeeded = await q.pop();
  await succeeded?.complete({ ok: true });
  const failed = await q.pop({ names: ['b'] });
  await failed?.fail(new Error('boom'));
  const running = await q.pop();

  const summary = await db.rows(
    "SELECT state, count::int, oldest_run_at FROM :schema.queue_summary WHERE queue = 'views' ORDER BY state",
  );
  expect(summary).toMatchObject([
    { state: 'scheduled', count: 2 }, // the delayed task, and the failed one waiting for its retry
    { state: 'running', count: 1 },
  ]);
  expect(running).not.toBeNull();

  const [history] = await db.rows<Record<string, unknown>>(
    "SELECT id, name, state, attempts, result, error, wait_time >= '0' AS waited, run_time >= '0' AS ran FROM :schema.task_history WHERE queue = 'views'",
  );
  expect(history).toEqual({
    id: succeeded?.id,
    name: 'a',
    state: 'succeeded',
    attempts: 1,
    result: { ok: true },
    error: null,
    waited: true,
    ran: true,
  });

  const [retry] = await db.rows<{ state: string; error: string }>(
    'SELECT state, error FROM :schema.all_tasks WHERE id = $1',
    [failed?.id],
  );
  expect(retry?.state).toBe('scheduled');
  expect(retry?.error).toMatch(/^Error: boom/);
  const [{ count } = { count: 0 }] = await db.rows<{ count: number }>(
    "SELECT count(*)::int AS count FROM :schema.all_tasks WHERE queue = 'views'",
  );
  expect(count).toBe(4);
});

it('tasks_without_handler shows the ready tasks no live worker of their queue handles', async () => {
  const mail = db.queue('mail');
  await mail.pushMany([
    { name: 'send', args: [] },
    { name: 'sned', args: [] },
    { name: 'sned', args: [] },
    { name: 'later', args: [], delayMs: 60_000 }, // not ready: not listed
  ]);
  await db.queue('orphan').push('anything', []);
  // A live worker of queue mail with a handler of send only; and one of another queue that long died.
  await db.rows(
    `INSERT INTO :schema.processes (id, kind, queue, hostname, pid, details, expires_at) VALUES
       ('w1', 'worker', 'mail', 'h', 1, '{"concurrency": 2, "handlers": ["send", "later"]}', now() + interval '1 minute'),
       ('w2', 'worker', 'orphan', 'h', 2, '{"handlers": ["anything"]}', now() - interval '1 minute')`,
  );
  const rows = await db.rows(
    "SELECT queue, name, ready::int, live_workers::int FROM :schema.tasks_without_handler WHERE queue IN ('mail', 'orphan') ORDER BY queue",
  );
  expect(rows).toEqual([
    { queue: 'mail', name: 'sned', ready: 2, live_workers: 1 },
    { queue: 'orphan', name: 'anything', ready: 1, live_workers: 0 },
  ]);
});
