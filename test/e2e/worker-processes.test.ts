import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { LeaseLostError, PgTq, type Scheduler, type SchedulerOptions } from '../../src/index.js';
import { recordOutcomes } from '../../src/worker/record-outcomes.js';
import { waitFor } from '../helpers/database.js';
import { startNode } from '../helpers/processes.js';
import { useTestSchema } from '../helpers/queue.js';

const db = await useTestSchema('pgtq_e2e');
await db.rows('CREATE TABLE :schema.runs (n integer PRIMARY KEY, worker_pid integer)');
await db.rows('CREATE TABLE :schema.attempts (task_id bigint, attempt integer, worker_pid integer)');
await db.rows('CREATE TABLE :schema.aborts (task_id bigint, reason text)');

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const handlers = fileURLToPath(new URL('./fixtures/handlers.mjs', import.meta.url));
const env = { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema };
const startWorkerProcess = (...flags: string[]) => startNode([cli, 'worker', handlers, ...flags], env);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
async function scheduler(q: PgTq, options: SchedulerOptions = { rescueIntervalMs: 100 }): Promise<Scheduler> {
  const s = q.scheduler(options);
  await s.start();
  cleanups.push(() => s.stop());
  return s;
}
const count = async (sql: string) => Number((await db.rows<{ n: string }>(sql))[0]?.n);

describe('worker processes', () => {
  it('4 processes over 20,000 tasks: each runs exactly once, none left behind', async () => {
    const q = db.queue('e2e');
    await q.pushMany(Array.from({ length: 20_000 }, (_, n) => ({ name: 'record', args: [n] })));
    const startedAt = Date.now();
    const workers = Array.from({ length: 4 }, () => startWorkerProcess('--concurrency', '10'));
    await waitFor(
      async () =>
        (await count("SELECT count(*) AS n FROM :schema.finished_tasks WHERE name = 'record'")) === 20_000,
      {
        timeoutMs: 120_000,
        intervalMs: 100,
      },
    );
    const elapsedMs = Date.now() - startedAt;
    for (const worker of workers) worker.child.kill('SIGTERM');
    const exits = await Promise.all(workers.map((w) => w.finished));
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0]);
    expect(await count('SELECT count(*) AS n FROM :schema.runs')).toBe(20_000);
    expect(
      await count(
        "SELECT count(*) AS n FROM :schema.finished_tasks WHERE name = 'record' AND (state <> 'succeeded' OR attempts <> 1)",
      ),
    ).toBe(0);
    expect(await count("SELECT count(*) AS n FROM :schema.tasks WHERE name = 'record'")).toBe(0);
    // every process took a share
    expect(await count('SELECT count(DISTINCT worker_pid) AS n FROM :schema.runs')).toBe(4);
    console.info(`4 worker processes ran 20,000 tasks in ${elapsedMs} ms`);
  }, 180_000);

  it.each([
    {
      settings: 'a 1 s lease',
      leaseFlags: ['--lease-ms', '1000'],
      schedulerOptions: { rescueIntervalMs: 100 },
    },
    { settings: 'default settings', leaseFlags: [], schedulerOptions: {} },
  ])(
    'with $settings, a SIGKILLed worker’s task completes on another worker after its lease expires; the old attempt is fenced out',
    async ({ settings, leaseFlags, schedulerOptions }) => {
      const q = db.queue('e2e');
      const first = startWorkerProcess(...leaseFlags);
      const ref = await q.push('hang_once', []);
      await waitFor(() => count(`SELECT count(*) AS n FROM :schema.attempts WHERE task_id = ${ref.id}`));
      const [held] = await db.rows<{ lease_id: string }>('SELECT lease_id FROM :schema.tasks WHERE id = $1', [
        ref.id,
      ]);
      first.child.kill('SIGKILL');
      await first.finished;

      const killedAt = Date.now();
      const second = startWorkerProcess(...leaseFlags);
      await scheduler(q, schedulerOptions);
      await expect(ref.result({ timeoutMs: 40_000 })).resolves.toBe('done on attempt 2');
      const rescuedAfterMs = Date.now() - killedAt;
      second.child.kill('SIGTERM');
      expect((await second.finished).code).toBe(0);

      // The killed attempt reports late: refused, the newer outcome stands.
      const lost = await recordOutcomes(q.statements, q.pool, [
        { id: ref.id, leaseId: held?.lease_id ?? '', outcome: { kind: 'failed', error: 'late' } },
      ]);
      expect(lost.has(ref.id)).toBe(true);
      expect(await q.getTask(ref.id)).toMatchObject({
        state: 'succeeded',
        attempts: 2,
        result: 'done on attempt 2',
      });
      console.info(`SIGKILLed worker's task completed ${rescuedAfterMs} ms after the kill (${settings})`);
    },
    60_000,
  );

  it('pgtq cancel stops a task running in another worker process: its signal fires and it ends cancelled', async () => {
    const q = db.queue('e2e');
    const worker = startWorkerProcess();
    const ref = await q.push('until_cancelled', []);
    await waitFor(() => count(`SELECT count(*) AS n FROM :schema.attempts WHERE task_id = ${ref.id}`));

    const cancel = await startNode(
      [cli, 'cancel', ref.id, '--queue', 'e2e', '--reason', 'operator said so'],
      env,
    ).finished;
    expect(cancel).toMatchObject({ code: 0, stdout: `${ref.id} running: asked to stop\n` });
    await expect(ref.result({ timeoutMs: 10_000 })).rejects.toThrow(/cancelled/);
    expect(await db.rows('SELECT reason FROM :schema.aborts WHERE task_id = $1', [ref.id])).toEqual([
      { reason: 'CancelRequested' },
    ]);
    expect(await q.getTask(ref.id)).toMatchObject({ state: 'cancelled', attempts: 1 });
    expect(worker.errors()).toMatch(/cancelled .*task=until_cancelled/);
    worker.child.kill('SIGTERM');
    expect((await worker.finished).code).toBe(0);
  }, 30_000);

  it('SIGTERM during work: running tasks finish, the process exits 0, nothing stays running', async () => {
    const q = db.queue('e2e');
    const worker = startWorkerProcess('--concurrency', '5');
    const refs = await q.pushMany(Array.from({ length: 5 }, () => ({ name: 'sleep', args: [300] })));
    await waitFor(() => worker.errors().split('running').length - 1 >= 5);
    worker.child.kill('SIGTERM');
    const exit = await worker.finished;
    expect(exit.code).toBe(0);
    for (const ref of refs) expect((await q.getTask(ref.id)).state).toBe('succeeded');
    expect(await count("SELECT count(*) AS n FROM :schema.tasks WHERE state = 'running'")).toBe(0);
    expect(exit.stderr).toMatch(/worker stopped/);
  }, 30_000);
});

describe('fencing', () => {
  it('a popped task whose lease expired and was rescued cannot complete over the new attempt', async () => {
    const q = db.queue('fence');
    await q.push('t', []);
    const stale = await q.pop({ leaseMs: 1000 });
    const future = new Date(Date.now() + 60_000);
    await expect(q.scheduler().rescuer.runOnce(future)).resolves.toEqual({ retried: 1, failed: 0 });
    const fresh = await q.pop();
    expect(fresh?.attempt).toBe(2);
    await expect(stale?.complete('stale')).rejects.toThrow(LeaseLostError);
    await fresh?.complete('fresh');
    expect((await q.getTask(fresh?.id ?? '')).result).toBe('fresh');
  });

  it('a task out of attempts whose worker is lost fails with "worker lost"', async () => {
    const q = db.queue('fence');
    const ref = await q.push('t', [], { maxAttempts: 1 });
    await q.pop({ leaseMs: 1000 });
    await q.scheduler().rescuer.runOnce(new Date(Date.now() + 60_000));
    const task = await q.getTask(ref.id);
    expect(task.state).toBe('failed');
    expect(task.error).toMatch(/worker lost/);
  });
});

describe('lost connections', () => {
  it('pg_terminate_backend on the worker’s connections and its LISTEN connection: it recovers, nothing lost', async () => {
    const appName = `victim_${db.schema}`;
    const url = new URL(db.url);
    url.searchParams.set('application_name', appName);
    const q = new PgTq('terminate', { connectionString: url.toString(), schema: db.schema });
    cleanups.push(() => q.close());
    let runs = 0;
    const job = q.handler(async function job(n: number) {
      runs++;
      return n;
    });
    const worker = q.worker({ pollIntervalMs: 60_000 });
    worker.on('worker:error', () => {});
    await worker.start();
    cleanups.push(() => worker.stop());
    await expect((await job.push(1)).result({ timeoutMs: 5_000 })).resolves.toBe(1);

    const killed = await db.rows<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE application_name IN ($1, 'pgtq listener') AND datname = current_database()`,
      [appName],
    );
    expect(killed[0]?.n).toBeGreaterThanOrEqual(2);
    // Pushed while the worker is reconnecting: found after the reconnect, not by the minute-long poll.
    const producer = db.queue('terminate');
    const refs = await producer.pushMany(Array.from({ length: 20 }, (_, n) => ({ name: 'job', args: [n] })));
    for (const ref of refs) await expect(ref.result({ timeoutMs: 15_000 })).resolves.toBeTypeOf('number');
    expect(runs).toBe(21);
  }, 30_000);
});
