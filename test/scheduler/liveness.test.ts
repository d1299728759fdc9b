import { expect, it } from 'vitest';
import { PgTq } from '../../src/index.js';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';
import { gate, useServices } from '../helpers/services.js';

const db = await useTestSchema('pgtq_liveness');
const { start, track } = useServices();

interface LiveRow {
  id: string;
  kind: string;
  queue: string;
  pid: number;
  running: string;
  details: { concurrency?: number; handlers?: string[] };
}
const live = () => db.rows<LiveRow>('SELECT * FROM :schema.live_processes ORDER BY kind');

it('live_processes shows running workers and schedulers with their running tasks, and forgets them on stop', async () => {
  const q = db.queue('live');
  const { closed: blocked, open: release } = gate();
  const slow = q.handler(async function slow() {
    await blocked;
  });
  const worker = await start(q.worker({ concurrency: 3 }));
  const scheduler = await start(q.scheduler());
  await slow.push();
  await waitFor(async () => (await live()).find((row) => row.kind === 'worker')?.running === '1');

  const rows = await live();
  expect(rows.map((row) => [row.kind, row.id, row.queue, row.pid])).toEqual([
    ['scheduler', scheduler.id, 'live', process.pid],
    ['worker', worker.id, 'live', process.pid],
  ]);
  expect(rows[1]?.details).toEqual({ concurrency: 3, handlers: ['slow'] });

  release();
  await worker.stop();
  await scheduler.stop();
  expect(await live()).toEqual([]);
});

it('a process that stops beating drops out of the view; an hour later its row is deleted', async () => {
  await db.rows(
    `INSERT INTO :schema.processes (id, kind, queue, hostname, pid, heartbeat_at, expires_at) VALUES
       ('dead-recently', 'worker', 'x', 'h', 1, now() - interval '1 minute', now() - interval '45 seconds'),
       ('dead-long-ago', 'worker', 'x', 'h', 2, now() - interval '2 hours', now() - interval '2 hours')`,
  );
  expect(await live()).toEqual([]);
  // Any beat tidies up.
  await start(db.queue('tidy').scheduler());
  const ids = await db.rows<{ id: string }>('SELECT id FROM :schema.processes ORDER BY id');
  expect(ids.map((row) => row.id)).toContain('dead-recently');
  expect(ids.map((row) => row.id)).not.toContain('dead-long-ago');
  await db.rows("DELETE FROM :schema.processes WHERE id = 'dead-recently'");
});

it('a worker warns once when scheduled tasks are overdue and no scheduler is alive, and they run once one starts', async () => {
  const q = db.queue('lonely');
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, error() {}, warn: (message: string) => warnings.push(message) };
  const lonely = new PgTq('lonely', { connectionString: db.url, schema: db.schema, logger });
  track({ stop: () => lonely.close() });
  const ran: number[] = [];
  lonely.handler(async function job(n: number) {
    ran.push(n);
  });
  // Two tasks that came due 30 s ago, pushed with the clock of a minute ago.
  await db.rows(
    `SELECT * FROM :schema.push_many(
       jsonb_build_array(
         jsonb_build_object('queue', 'lonely', 'name', 'job', 'args', '[1]'::jsonb, 'run_at', now() - interval '30 seconds'),
         jsonb_build_object('queue', 'lonely', 'name', 'job', 'args', '[2]'::jsonb, 'run_at', now() - interval '30 seconds')),
       now() - interval '1 minute')`,
  );
  const missing: number[] = [];
  const worker = lonely.worker({ livenessIntervalMs: 100 });
  worker.on('scheduler:missing', (overdue) => missing.push(overdue));
  await start(worker);
  await new Promise((resolve) => setTimeout(resolve, 600)); // about six beats
  expect(missing).toEqual([2]);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(/2 scheduled tasks of queue "lonely" are overdue and no scheduler is running/);
  expect(ran).toEqual([]);

  await start(q.scheduler());
  await waitFor(() => ran.length === 2);
  expect(ran.sort()).toEqual([1, 2]);
  expect(missing).toEqual([2]);
});
