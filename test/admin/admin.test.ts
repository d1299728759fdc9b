import { afterEach, describe, expect, it } from 'vitest';
import { type PgTq, ValidationError, type Worker } from '../../src/index.js';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';

const db = await useTestSchema('pgtq_admin');
const running: Worker[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((worker) => worker.stop()));
});

/** Pops the next task and fails it for good. */
async function failNext(q: PgTq, error = 'boom'): Promise<string> {
  const task = await q.pop();
  if (!task) throw new Error('nothing to pop');
  await task.fail(new Error(error));
  return task.id;
}

const states = async (ids: string[]) =>
  Promise.all(ids.map(async (id) => (await db.queue('any').getTask(id)).state));

describe('listTasks', () => {
  it('filters pending and finished tasks by state, name and key, newest first, and pages', async () => {
    const q = db.queue('list');
    const refs = await q.pushMany([
      { name: 'a', args: [1], maxAttempts: 1 },
      { name: 'b', args: [2], key: 'k2' },
      { name: 'a', args: [3] },
      { name: 'a', args: [4], delayMs: 60_000 },
    ]);
    const failed = await failNext(q);
    const ids = refs.map((ref) => ref.id);

    expect((await q.listTasks()).map((t) => t.id)).toEqual([...ids].reverse());
    expect((await q.listTasks({ name: 'a' })).map((t) => t.args)).toEqual([[4], [3], [1]]);
    expect((await q.listTasks({ state: 'failed' })).map((t) => t.id)).toEqual([failed]);
    expect((await q.listTasks({ state: ['ready', 'scheduled'] })).map((t) => t.state)).toEqual([
      'scheduled',
      'ready',
      'ready',
    ]);
    expect((await q.listTasks({ key: 'k2' })).map((t) => t.name)).toEqual(['b']);
    const page1 = await q.listTasks({ limit: 3 });
    const page2 = await q.listTasks({ limit: 3, beforeId: page1.at(-1)?.id });
    expect([...page1, ...page2].map((t) => t.id)).toEqual([...ids].reverse());
    expect(await db.queue('other').listTasks()).toEqual([]);
  });

  it('filters by group, in the queue and in history, and returns group and worker', async () => {
    const q = db.queue('list-groups');
    await q.pushMany([
      { name: 'g', args: [1], group: 'tenant:1' },
      { name: 'g', args: [2], group: 'tenant:2' },
      { name: 'g', args: [3], group: 'tenant:1', maxAttempts: 1 },
    ]);
    const popped = await q.pop();
    await popped?.complete('done');
    const tenant1 = await q.listTasks({ group: 'tenant:1' });
    expect(tenant1.map((t) => [t.args[0], t.group_key])).toEqual([
      [3, 'tenant:1'],
      [1, 'tenant:1'],
    ]);
    const finished = (await q.listTasks({ state: 'succeeded' }))[0];
    expect(finished).toMatchObject({ id: popped?.id, worker_id: `pop:${process.pid}` });
  });

  it('rejects a bad filter with a ValidationError', async () => {
    const q = db.queue('list');
    await expect(q.listTasks({ state: 'done' as never })).rejects.toThrow(ValidationError);
    await expect(q.listTasks({ limit: 0 })).rejects.toThrow(/limit/);
    await expect(q.listTasks({ beforeId: 'x' })).rejects.toThrow(/task id/);
  });
});

describe('retry', () => {
  it('makes a failed or cancelled task ready again with fresh attempts, keeping its last error', async () => {
    const q = db.queue('retry');
    const [a, b] = await q.pushMany([
      { name: 'a', args: [], maxAttempts: 1 },
      { name: 'b', args: [] },
    ]);
    const failed = await failNext(q, 'first try failed');
    await q.cancel(b?.id ?? '');
    expect(await q.retry([failed, b?.id ?? ''])).toEqual(expect.arrayContaining([failed, b?.id]));
    expect(failed).toBe(a?.id);
    const again = await q.pop();
    expect(again).toMatchObject({ id: failed, attempt: 1 });
    const [row] = await db.rows<{ last_error: string }>(
      'SELECT last_error FROM :schema.tasks WHERE id = $1',
      [b?.id],
    );
    expect(row?.last_error).toBe('cancelled');
    // Only finished failed or cancelled tasks: retrying a running one does nothing.
    expect(await q.retry(failed)).toEqual([]);
  });

  it('leaves a failed task in history when its key is held by a pending task', async () => {
    const q = db.queue('retry-key');
    await q.push('a', [], { key: 'once', maxAttempts: 1 });
    const failed = await failNext(q);
    await q.push('a', [], { key: 'once' });
    expect(await q.retry(failed)).toEqual([]);
    expect((await q.getTask(failed)).state).toBe('failed');
  });

  it('retryFailed retries every failed task of one name, in batches, reporting progress', async () => {
    const q = db.queue('retry-many');
    await q.pushMany([
      ...Array.from({ length: 3 }, () => ({ name: 'a', args: [], maxAttempts: 1 })),
      ...Array.from({ length: 2 }, () => ({ name: 'b', args: [], maxAttempts: 1 })),
    ]);
    for (let i = 0; i < 5; i++) await failNext(q);
    const progress: number[] = [];
    expect(await q.retryFailed({ name: 'a', onProgress: (n) => progress.push(n) })).toBe(3);
    expect(progress).toEqual([3]);
    expect((await q.listTasks({ state: 'ready' })).map((t) => t.name)).toEqual(['a', 'a', 'a']);
    expect((await q.listTasks({ state: 'failed' })).map((t) => t.name)).toEqual(['b', 'b']);
    expect(await q.retryFailed()).toBe(2);
    expect(await q.length()).toBe(5);
  });
});

describe('cancel', () => {
  it('cancels pending tasks at once and asks running ones to stop; a running handler sees its signal abort', async () => {
    const q = db.queue('cancel');
    let aborted: unknown;
    q.handler(async function wait(this: { signal: AbortSignal }) {
      await new Promise((_, reject) =>
        this.signal.addEventListener('abort', () => {
          aborted = this.signal.reason;
          reject(this.signal.reason);
        }),
      );
    });
    const worker = q.worker({ concurrency: 1 });
    running.push(worker);
    await worker.start();
    const [runs, waits] = await q.pushMany([
      { name: 'wait', args: [] },
      { name: 'wait', args: [], delayMs: 60_000 },
    ]);
    const ids = [runs?.id ?? '', waits?.id ?? ''];
    await waitFor(async () => (await q.getTask(ids[0] ?? '')).state === 'running');

    expect(await q.cancel([...ids, '999999999'], 'not needed')).toEqual({
      cancelled: [ids[1]],
      cancelRequested: [ids[0]],
    });
    expect(await q.getTask(ids[1] ?? '')).toMatchObject({ state: 'cancelled', error: 'not needed' });
    await waitFor(async () => (await q.getTask(ids[0] ?? '')).state === 'cancelled');
    expect(aborted).toMatchObject({ name: 'CancelRequested' });
    expect(await q.cancel(ids)).toEqual({ cancelled: [], cancelRequested: [] });
  });

  it('a task asked to cancel whose worker is lost is cancelled by the rescue, not run again', async () => {
    const q = db.queue('cancel-lost');
    const ref = await q.push('t', []);
    await q.pop({ leaseMs: 1000 }); // and then the worker dies
    expect(await q.cancel(ref.id)).toEqual({ cancelled: [], cancelRequested: [ref.id] });
    await q.scheduler().rescuer.runOnce(new Date(Date.now() + 60_000));
    expect(await q.getTask(ref.id)).toMatchObject({ state: 'cancelled' });
    expect(await q.pop()).toBeNull();
  });
});

describe('reschedule, delete, length and flush', () => {
  it('reschedule moves a pending task to the future or makes it ready now; not a finished one', async () => {
    const q = db.queue('reschedule');
    const ref = await q.push('t', []);
    const later = new Date(Date.now() + 3_600_000);
    expect(await q.reschedule(ref.id, later)).toBe(true);
    expect(await q.getTask(ref.id)).toMatchObject({ state: 'scheduled', run_at: later });
    expect(await q.pop()).toBeNull();
    expect(await q.reschedule(ref.id, new Date(Date.now() - 1000))).toBe(true);
    const task = await q.pop();
    expect(task?.id).toBe(ref.id);
    await task?.complete();
    expect(await q.reschedule(ref.id, later)).toBe(false);
    await expect(q.reschedule(ref.id, new Date('nope'))).rejects.toThrow(ValidationError);
  });

  it('delete removes pending and finished tasks for good, never a running one', async () => {
    const q = db.queue('delete');
    const [done, claimed, pending] = await q.pushMany([1, 2, 3].map((n) => ({ name: 't', args: [n] })));
    await (await q.pop())?.complete();
    await q.pop();
    const ids = [done?.id ?? '', claimed?.id ?? '', pending?.id ?? ''];
    expect((await q.delete(ids)).sort()).toEqual([done?.id, pending?.id].sort());
    expect(await states([claimed?.id ?? ''])).toEqual(['running']);
    await expect(q.getTask(done?.id ?? '')).rejects.toThrow(/No task/);
    await expect(q.delete('0')).rejects.toThrow(ValidationError);
  });

  it('length counts pending tasks; flush deletes them in batches with progress, keeping running tasks and history', async () => {
    const q = db.queue('flush');
    await q.pushMany(Array.from({ length: 3 }, (_, i) => ({ name: 't', args: [i] })));
    await (await q.pop())?.complete();
    const runningTask = await q.pop();
    await q.pushMany(
      Array.from({ length: 12_000 }, (_, i) => ({ name: 't', args: [i], delayMs: i % 2 ? 60_000 : 0 })),
    );
    expect(await q.length()).toBe(12_001);
    const progress: number[] = [];
    expect(await q.flush({ onProgress: (n) => progress.push(n) })).toBe(12_001);
    expect(progress).toEqual([5_000, 10_000, 12_001]);
    expect(await q.length()).toBe(0);
    expect((await q.listTasks()).map((t) => t.state)).toEqual(['running', 'succeeded']);
    expect(runningTask).not.toBeNull();
  });
});

describe('pop', () => {
  it("gives the task's attempt and the lease's end as the database stored them", async () => {
    const q = db.queue('pop');
    await q.push('job', [1]);
    const task = await q.pop({ leaseMs: 30_000 });
    if (!task) throw new Error('nothing to pop');
    const [stored] = await db.rows<{ ends: Date; attempts: number }>(
      'SELECT lease_expires_at AS ends, attempts FROM :schema.tasks WHERE id = $1',
      [task.id],
    );
    expect(task.attempt).toBe(stored?.attempts);
    expect(task.leaseExpiresAt).toEqual(stored?.ends);
    await task.complete(null);
  });
});

describe('from SQL', () => {
  it('the same functions and the failures and throughput views work from plain SQL', async () => {
    const q = db.queue('sql');
    await q.pushMany(
      Array.from({ length: 4 }, (_, i) => ({ name: i < 3 ? 'mail' : 'sms', args: [], maxAttempts: 1 })),
    );
    await failNext(q, 'smtp down\n  at send (mail.js:1)');
    await failNext(q, 'smtp down\n  at send (mail.js:2)');
    await (await q.pop())?.complete('ok');
    const [length] = await db.rows<{ n: string }>("SELECT :schema.queue_length('sql') AS n");
    expect(length?.n).toBe('1');

    const failures = await db.rows<{ name: string; error: string; count: string }>(
      "SELECT name, error, count FROM :schema.failures WHERE queue = 'sql'",
    );
    expect(failures).toEqual([{ name: 'mail', error: 'Error: smtp down', count: '2' }]);
    const throughput = await db.rows<{ name: string; finished: string; succeeded: string; failed: string }>(
      "SELECT name, finished, succeeded, failed FROM :schema.throughput WHERE queue = 'sql' ORDER BY name",
    );
    expect(throughput).toEqual([{ name: 'mail', finished: '3', succeeded: '1', failed: '2' }]);

    const [retried] = await db.rows<{ n: string }>("SELECT :schema.retry_failed('sql', 'mail') AS n");
    expect(retried?.n).toBe('2');
    const [flushed] = await db.rows<{ n: string }>("SELECT :schema.flush('sql') AS n");
    expect(flushed?.n).toBe('3');
  });
});
