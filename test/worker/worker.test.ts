import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Cancel, Fail, PgTq, Retry, TaskFailedError, type Worker } from '../../src/index.js';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';
import { gate, useServices } from '../helpers/services.js';

const db = await useTestSchema('pgtq_worker');
const services = useServices();
const startWorker = (worker: Worker) => services.start(worker);
const startScheduler = (q: ReturnType<typeof db.queue>) => services.start(q.scheduler());

const finished = (id: string) =>
  db.rows<{ state: string; result: unknown; error: string | null; attempts: number }>(
    'SELECT state, result, error, attempts FROM :schema.finished_tasks WHERE id = $1',
    [id],
  );

describe('worker', () => {
  it('runs pushed tasks, stores results, and ref.result() resolves across connections', async () => {
    const q = db.queue('basic');
    const add = q.handler(async function add(a: number, b: number) {
      return a + b;
    });
    await startWorker(q.worker({ concurrency: 4 }));
    const ref = await add.push(2, 3);
    await expect(ref.result({ timeoutMs: 5_000 })).resolves.toBe(5);
    const producer = db.queue('basic'); // another instance, as in another process
    await expect(producer.result(ref.id)).resolves.toBe(5);
    expect(await finished(ref.id)).toEqual([{ state: 'succeeded', result: 5, error: null, attempts: 1 }]);
  });

  it('an idle worker starts a pushed task within 50 ms (woken by NOTIFY, not by polling)', async () => {
    const q = db.queue('latency');
    let startedAt = 0;
    const ping = q.handler(async function ping() {
      startedAt = Date.now();
    });
    await startWorker(q.worker({ pollIntervalMs: 60_000 }));
    await new Promise((resolve) => setTimeout(resolve, 100)); // let it go idle
    const pushedAt = Date.now();
    await ping.push();
    await waitFor(() => startedAt);
    expect(startedAt - pushedAt).toBeLessThan(50);
  });

  it('retries a throwing task with back-off through scheduled, then fails it after maxAttempts', async () => {
    const q = db.queue('retries');
    let calls = 0;
    const flaky = q.handler(
      { name: 'flaky', maxAttempts: 3, backoff: { baseMs: 10, jitter: 0 } },
      async function flaky() {
        calls++;
        throw new Error(`failure ${calls}`);
      },
    );
    const retries: number[] = [];
    const worker = await startWorker(q.worker());
    worker.on('task:retry', (_task, _error, delayMs) => retries.push(delayMs));
    await startScheduler(q);
    const ref = await flaky.push();
    const error = await ref.result({ timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect((error as Error).message).toContain('failure 3');
    expect(calls).toBe(3);
    expect(retries).toEqual([10, 20]);
    expect(await finished(ref.id)).toMatchObject([{ state: 'failed', attempts: 3 }]);
  });

  it('obeys Retry and Cancel', async () => {
    const q = db.queue('outcomes');
    let tries = 0;
    const snooze = q.handler(async function snooze() {
      tries++;
      if (tries === 1) throw new Retry({ delayMs: 5 });
      return tries;
    });
    const stop = q.handler(async function stop() {
      throw new Cancel('not needed any more');
    });
    await startWorker(q.worker());
    await startScheduler(q);
    await expect((await snooze.push()).result({ timeoutMs: 5_000 })).resolves.toBe(2);
    const cancelled = await stop.push();
    await expect(cancelled.result({ timeoutMs: 5_000 })).rejects.toThrow(
      /cancelled: Cancel: not needed any more/,
    );
  });

  it('fails arguments that break the handler’s schema at once, without retrying', async () => {
    const q = db.queue('schema');
    q.handler({ name: 'typed', args: z.tuple([z.number()]) }, async (n) => n);
    await startWorker(q.worker());
    const [{ id } = { id: '' }] = await db.rows<{ id: string }>(
      `SELECT :schema.push('schema', 'typed', '["not a number"]'::jsonb, max_attempts => 5) AS id`,
    );
    await expect(q.result(id, { timeoutMs: 5_000 })).rejects.toThrow(/expected number/);
    expect(await finished(id)).toMatchObject([{ state: 'failed', attempts: 1 }]);
  });

  it('leaves tasks it has no handler for to a worker that has one', async () => {
    const q = db.queue('partial');
    q.handler(async function known() {
      return 'ok';
    });
    await startWorker(q.worker());
    const unknown = await db.queue('partial').push('unknown_task', []);
    const known = await q.push('known', []);
    await expect(known.result({ timeoutMs: 5_000 })).resolves.toBe('ok');
    expect((await q.getTask(unknown.id)).state).toBe('ready');
  });

  it('cuts off a handler that never settles at its timeout', async () => {
    const q = db.queue('timeouts');
    let aborted = false;
    const hang = q.handler({ name: 'hang', timeoutMs: 50, maxAttempts: 1 }, function hang() {
      this.signal.addEventListener('abort', () => {
        aborted = true;
      });
      return new Promise<never>(() => {});
    });
    await startWorker(q.worker());
    const ref = await hang.push();
    await expect(ref.result({ timeoutMs: 5_000 })).rejects.toThrow(/timed out after 50 ms/);
    expect(aborted).toBe(true);
  });

  it('transactional handler: its writes and the completion commit together, or neither', async () => {
    const q = db.queue('tx');
    await db.rows('CREATE TABLE IF NOT EXISTS :schema.side_effects (task text PRIMARY KEY)');
    const write = q.handler(
      { name: 'write', transactional: true, maxAttempts: 1 },
      async function write(fail: boolean) {
        await this.tx?.query(`INSERT INTO "${db.schema}".side_effects VALUES ($1)`, [this.task?.id]);
        if (fail) throw new Error('rolled back');
        return 'committed';
      },
    );
    await startWorker(q.worker());
    const ok = await write.push(false);
    const bad = await write.push(true);
    await expect(ok.result({ timeoutMs: 5_000 })).resolves.toBe('committed');
    await expect(bad.result({ timeoutMs: 5_000 })).rejects.toThrow(/rolled back/);
    const effects = await db.rows<{ task: string }>('SELECT task FROM :schema.side_effects');
    expect(effects.map((e) => e.task)).toEqual([ok.id]);
  });

  it('runs hooks and emits events around each task', async () => {
    const q = db.queue('hooks');
    const seen: string[] = [];
    const job = q.handler(async function job() {
      seen.push('run');
      return 1;
    });
    const worker = q.worker({
      hooks: {
        before: (task) => {
          seen.push(`before ${task.name}`);
        },
        after: (_task, outcome) => {
          seen.push(`after ${outcome.kind}`);
        },
      },
    });
    worker.on('task:start', () => seen.push('event start'));
    worker.on('task:success', (_task, result) => seen.push(`event success ${result}`));
    await startWorker(worker);
    await (await job.push()).result({ timeoutMs: 5_000 });
    await waitFor(() => seen.includes('event success 1'));
    expect(seen).toEqual(['event start', 'before job', 'run', 'after succeeded', 'event success 1']);
  });

  it('task:end follows every outcome with its pickup and run times, and the task knows when it was due', async () => {
    const q = db.queue('ends');
    const job = q.handler(
      { maxAttempts: 2, backoff: { baseMs: 10, jitter: 0 } },
      async function job(kind: string) {
        await new Promise((resolve) => setTimeout(resolve, 30));
        if (kind === 'fail') throw new Fail('no');
        if (kind === 'cancel') throw new Cancel('not needed');
        if (kind === 'flaky' && this.task?.attempt === 1) throw new Error('once');
        return kind;
      },
    );
    const ends: [string, string, number, number, Date, Date][] = [];
    const worker = q.worker();
    worker.on('task:end', (task, end) =>
      ends.push([String(task.args[0]), end.outcome, end.pickupMs, end.runMs, task.runAt, task.startedAt]),
    );
    await startWorker(worker);
    await services.start(q.scheduler()); // promotes the delayed task and the retry
    const due = new Date(Date.now() + 300);
    await job.with({ runAt: due }).push('ok');
    await job.push('fail');
    await job.push('cancel');
    await job.push('flaky');
    await waitFor(() => ends.length === 5);
    expect(ends.map(([kind, outcome]) => [kind, outcome]).sort()).toEqual([
      ['cancel', 'cancelled'],
      ['fail', 'failed'],
      ['flaky', 'retried'],
      ['flaky', 'succeeded'],
      ['ok', 'succeeded'],
    ]);
    for (const [, , pickupMs, runMs, runAt, startedAt] of ends) {
      expect(runMs).toBeGreaterThanOrEqual(25);
      expect(pickupMs).toBe(Math.max(0, startedAt.getTime() - runAt.getTime()));
    }
    const ok = ends.find(([kind]) => kind === 'ok');
    expect(ok?.[4].getTime()).toBe(due.getTime());
  });

  it('stop() lets running tasks finish, is idempotent, and leaves nothing running', async () => {
    const q = db.queue('drain');
    const { closed, open: release } = gate();
    const slow = q.handler(async function slow() {
      await closed;
      return 'done';
    });
    const worker = await startWorker(q.worker());
    const ref = await slow.push();
    await waitFor(() => worker.running === 1);
    const stopping = worker.stop();
    expect(worker.stop()).toBe(stopping);
    setTimeout(release, 50);
    await stopping;
    expect(await finished(ref.id)).toMatchObject([{ state: 'succeeded', result: 'done' }]);
    expect(await db.rows("SELECT 1 FROM :schema.tasks WHERE state = 'running'")).toHaveLength(0);
  });

  it('claims short tasks ahead of free slots, and gives back those it never started on stop()', async () => {
    const q = db.queue('prefetch');
    const { closed, open: release } = gate();
    const quick = q.handler(async function quick() {});
    const gated = q.handler(async function gated() {
      await closed;
    });
    const worker = await startWorker(q.worker({ concurrency: 1, prefetch: 5 }));
    // A task run first sets the pace: short tasks are worth claiming ahead.
    await (await quick.push()).result({ timeoutMs: 5_000 });
    const first = await gated.push();
    const rest = await q.pushMany([1, 2, 3].map(() => ({ name: 'quick', args: [] })));
    await waitFor(
      async () => (await db.rows("SELECT 1 FROM :schema.tasks WHERE state = 'running'")).length === 4,
    );
    expect(worker.running).toBe(1);
    const stopping = worker.stop();
    setTimeout(release, 50);
    await stopping;
    expect(await finished(first.id)).toMatchObject([{ state: 'succeeded' }]);
    const back = await db.rows<{ state: string; attempts: number; lease_id: string | null }>(
      'SELECT state, attempts, lease_id FROM :schema.tasks WHERE id = ANY ($1::bigint[])',
      [rest.map((ref) => ref.id)],
    );
    expect(back).toEqual([1, 2, 3].map(() => ({ state: 'ready', attempts: 0, lease_id: null })));
  });

  it('a task claimed ahead and cancelled before it starts ends cancelled without running', async () => {
    const q = db.queue('prefetch-cancel');
    const { closed, open: release } = gate();
    const ran: number[] = [];
    const quick = q.handler(async function quick(n: number) {
      ran.push(n);
    });
    const gated = q.handler(async function gated() {
      await closed;
    });
    await startWorker(q.worker({ concurrency: 1, prefetch: 5 }));
    await (await quick.push(0)).result({ timeoutMs: 5_000 }); // sets the pace
    await gated.push();
    const [doomed, kept] = await quick.pushMany([[1], [2]]);
    await waitFor(
      async () => (await db.rows("SELECT 1 FROM :schema.tasks WHERE state = 'running'")).length === 3,
    );
    expect(await q.cancel(doomed?.id ?? '')).toEqual({ cancelled: [], cancelRequested: [doomed?.id] });
    await waitFor(async () => (await finished(doomed?.id ?? ''))[0]?.state === 'cancelled');
    release();
    await kept?.result({ timeoutMs: 5_000 });
    expect(ran).toEqual([0, 2]);
  });

  it('a task claimed ahead records when it really started, so history shows its true wait and run time', async () => {
    const q = db.queue('prefetch-times');
    const { closed, open: release } = gate();
    const quick = q.handler(async function quick() {});
    const gated = q.handler(async function gated() {
      await closed;
    });
    await startWorker(q.worker({ concurrency: 1, prefetch: 5 }));
    await (await quick.push()).result({ timeoutMs: 5_000 }); // sets the pace
    const first = await gated.push();
    const behind = await quick.push();
    await waitFor(
      async () => (await db.rows("SELECT 1 FROM :schema.tasks WHERE state = 'running'")).length === 2,
    );
    await new Promise((resolve) => setTimeout(resolve, 150));
    release();
    await behind.result({ timeoutMs: 5_000 });
    const [row] = await db.rows<{ ms: number }>(
      `SELECT extract(epoch FROM b.started_at - g.started_at) * 1000 AS ms
       FROM :schema.finished_tasks AS g, :schema.finished_tasks AS b WHERE g.id = $1 AND b.id = $2`,
      [first.id, behind.id],
    );
    const startedAfterMs = Number(row?.ms);
    expect(startedAfterMs).toBeGreaterThanOrEqual(150);
  });

  it('tasks claimed ahead start by priority, then age, like single claims', async () => {
    const q = db.queue('prefetch-order');
    const order: number[] = [];
    q.handler(async function job(n: number) {
      order.push(n);
    });
    const priorities = [3, 9, 1, 7, 5, 9, 0, 2];
    await q.pushMany([
      { name: 'job', args: [100], priority: 100 }, // runs alone first and sets the pace
      ...priorities.map((priority, i) => ({ name: 'job', args: [i], priority })),
    ]);
    await startWorker(q.worker({ concurrency: 1, prefetch: 20 }));
    await waitFor(() => order.length === priorities.length + 1);
    const expected = priorities
      .map((priority, i) => ({ priority, i }))
      .sort((a, b) => b.priority - a.priority || a.i - b.i)
      .map(({ i }) => i);
    expect(order).toEqual([100, ...expected]);
  });
});

describe('a result or error PostgreSQL cannot store fails its own task, not the batch it is stored in', () => {
  it('a result that is not JSON fails its task at once; tasks finishing with it succeed', async () => {
    const q = db.queue('bad-results');
    const { closed, open: release } = gate();
    let started = 0;
    // (unknown: the compiler would refuse the bigint, which is the point here)
    const give = q.handler(
      { name: 'give', maxAttempts: 5 },
      async function give(kind: string): Promise<unknown> {
        started++;
        await closed;
        if (kind === 'surrogate') return { text: 'ab\uD800' };
        if (kind === 'nul-key') return Object.fromEntries([['a\u0000', 1]]);
        if (kind === 'bigint') return [1n];
        return kind;
      },
    );
    await startWorker(q.worker({ concurrency: 10 }));
    const kinds = ['ok-1', 'surrogate', 'ok-2', 'nul-key', 'ok-3', 'bigint', 'ok-4'];
    const refs = await give.pushMany(kinds.map((kind) => [kind]));
    await waitFor(() => started === kinds.length);
    // Released together, their outcomes reach the completer together and are stored in one or two statements.
    release();
    await Promise.allSettled(refs.map((ref) => ref.result({ timeoutMs: 5_000 })));
    const rows = await Promise.all(refs.map(async (ref) => (await finished(ref.id))[0]));
    const byKind = Object.fromEntries(kinds.map((kind, i) => [kind, rows[i]]));
    for (const ok of ['ok-1', 'ok-2', 'ok-3', 'ok-4']) {
      expect(byKind[ok]).toEqual({ state: 'succeeded', result: ok, error: null, attempts: 1 });
    }
    // Not retried: the handler would return the same value again.
    expect(byKind.surrogate).toMatchObject({ state: 'failed', attempts: 1, result: null });
    expect(byKind.surrogate?.error).toMatch(
      /^NotJsonError: result\.text: the string holds a lone surrogate at index 2/,
    );
    expect(byKind['nul-key']?.error).toMatch(/^NotJsonError: result: the key "a\\u0000" holds U\+0000/);
    expect(byKind.bigint?.error).toMatch(/^NotJsonError: result\[0\]: a BigInt is not JSON/);
  });

  it('a result over maxResultBytes fails its task with PayloadTooLargeError', async () => {
    const q = new PgTq('big-results', { connectionString: db.url, schema: db.schema, maxResultBytes: 100 });
    services.track({ stop: () => q.close() });
    const echo = q.handler(async function echo(text: string) {
      return text;
    });
    await startWorker(q.worker());
    const [fits, over] = await echo.pushMany([['x'.repeat(98)], ['x'.repeat(99)]]);
    await expect(fits?.result({ timeoutMs: 5_000 })).resolves.toBe('x'.repeat(98));
    await expect(over?.result({ timeoutMs: 5_000 })).rejects.toThrow(
      'PayloadTooLargeError: result: 101 bytes of JSON, over the limit of 100 bytes (the maxResultBytes option)',
    );
    expect(await finished(over?.id as string)).toMatchObject([{ state: 'failed', attempts: 1 }]);
  });

  it('an error message holding U+0000 or a lone surrogate is stored with those replaced', async () => {
    const q = db.queue('bad-errors');
    const { closed, open: release } = gate();
    let started = 0;
    const job = q.handler({ name: 'job', maxAttempts: 1 }, async function job(fail: boolean) {
      started++;
      await closed;
      if (fail) throw new Error('bad \u0000 byte and \uDC00 half');
      return 'ok';
    });
    await startWorker(q.worker());
    const refs = await job.pushMany([[false], [true], [false]]);
    await waitFor(() => started === 3);
    release();
    await Promise.allSettled(refs.map((ref) => ref.result({ timeoutMs: 5_000 })));
    const [first, failed, last] = await Promise.all(refs.map(async (ref) => (await finished(ref.id))[0]));
    expect([first?.state, last?.state]).toEqual(['succeeded', 'succeeded']);
    expect(failed?.state).toBe('failed');
    expect(failed?.error).toMatch(/^Error: bad \\0 byte and \uFFFD half\n/);
  });

  it('ClaimedTask.complete with a result that cannot be stored fails the task', async () => {
    const q = new PgTq('pop-results', { connectionString: db.url, schema: db.schema, maxResultBytes: 50 });
    services.track({ stop: () => q.close() });
    await q.pushMany([
      { name: 't', args: [] },
      { name: 't', args: [] },
    ]);
    const surrogate = await q.pop();
    await expect(surrogate?.complete({ ok: '\uD83D' })).resolves.toMatchObject({ kind: 'failed' });
    const large = await q.pop();
    await expect(large?.complete('x'.repeat(60))).resolves.toMatchObject({
      kind: 'failed',
      error: expect.stringMatching(/^PayloadTooLargeError: result: 62 bytes of JSON, over the limit of 50/),
    });
    expect(await finished(surrogate?.id as string)).toMatchObject([
      { state: 'failed', error: expect.stringMatching(/^NotJsonError: result\.ok: the string holds a lone/) },
    ]);
    expect(await finished(large?.id as string)).toMatchObject([{ state: 'failed', result: null }]);
  });
});
