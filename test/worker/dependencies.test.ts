import { describe, expect, it } from 'vitest';
import { type ParentTask, ValidationError } from '../../src/index.js';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';
import { useServices } from '../helpers/services.js';

// Tasks that run after others (the `after` push option), in one process.
const db = await useTestSchema('pgtq_after');
const services = useServices();

const stateOf = async (id: string) =>
  (await db.rows<{ state: string }>('SELECT state::text FROM :schema.all_tasks WHERE id = $1', [id]))[0]
    ?.state;
const finishedAll = (ids: string[]) =>
  waitFor(async () => {
    const rows = await db.rows<{ n: number }>(
      'SELECT count(*)::int AS n FROM :schema.finished_tasks WHERE id = ANY ($1::bigint[])',
      [ids],
    );
    return rows[0]?.n === ids.length;
  });

describe('after', () => {
  it('a diamond pushed in one transaction: the last runs once, after both middles, and reads their results', async () => {
    const q = db.queue('diamond');
    const order: string[] = [];
    const fetchUser = q.handler({ name: 'fetch_user' }, async (id: number) => {
      order.push('user');
      return { id, name: 'Ada' };
    });
    const resize = q.handler({ name: 'resize' }, async function (size: string) {
      const [user] = await this.parents;
      if (!user) throw new Error('resize runs after fetch_user');
      order.push(size);
      return `${(user.result as { name: string }).name}-${size}.png`;
    });
    const notify = q.handler({ name: 'notify' }, async function () {
      const parents: readonly ParentTask[] = await this.parents;
      order.push('notify');
      return parents.map((p) => p.result);
    });
    const client = await db.pool.connect();
    let last: Awaited<ReturnType<typeof notify.push>>;
    try {
      await client.query('BEGIN');
      const user = await fetchUser.with({ client }).push(42);
      const a = await resize.with({ client, after: [user] }).push('small');
      const b = await resize.with({ client, after: [user] }).push('large');
      last = await notify.with({ client, after: [a, b] }).push();
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await stateOf(last.id)).toBe('waiting');
    const [summary] = await db.rows(
      "SELECT count FROM :schema.queue_summary WHERE queue = 'diamond' AND state = 'waiting'",
    );
    expect(summary).toEqual({ count: '3' });
    await services.start(q.worker({ concurrency: 4 }));
    expect(await last.result()).toEqual(['Ada-small.png', 'Ada-large.png']);
    expect(order[0]).toBe('user');
    expect(order.slice(1, 3).sort()).toEqual(['large', 'small']);
    expect(order[3]).toBe('notify');
    expect(order).toHaveLength(4);
  });

  it('a rolled-back transaction stores none of the graph', async () => {
    const q = db.queue('rolled-back');
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const first = await q.push('a', [], { client });
      await q.push('b', [], { client, after: [first] });
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    expect(await db.rows("SELECT id FROM :schema.all_tasks WHERE queue = 'rolled-back'")).toEqual([]);
  });

  it('a parent that fails for good cancels its dependents and theirs; onFailure "run" runs anyway', async () => {
    const q = db.queue('failing');
    const ran: string[] = [];
    q.handler({ name: 'step', maxAttempts: 1 }, async function (name: string) {
      ran.push(name);
      if (name === 'B') throw new Error('B broke');
      return (await this.parents).map((p) => `${p.state}:${p.id}`);
    });
    const a = await q.push('step', ['A']);
    const b = await q.push('step', ['B'], { after: [a] });
    const c = await q.push('step', ['C'], { after: [a] });
    const d = await q.push('step', ['D'], { after: [b, c] });
    const e = await q.push('step', ['E'], { after: [d] });
    const f = await q.push('step', ['F'], { after: { tasks: [b, c], onFailure: 'run' } });
    await services.start(q.worker());
    await finishedAll([a, b, c, d, e, f].map((t) => t.id));
    expect(ran.sort()).toEqual(['A', 'B', 'C', 'F']);
    const ended = await db.rows<{ id: string; state: string; error: string | null }>(
      'SELECT id::text, state::text, error FROM :schema.task_history WHERE id = ANY ($1::bigint[]) ORDER BY id',
      [[d.id, e.id]],
    );
    expect(ended.map((t) => t.state)).toEqual(['cancelled', 'cancelled']);
    expect(ended[0]?.error).toBe(`cancelled: a task it runs after ended failed (task ${b.id})`);
    expect(ended[1]?.error).toBe(`cancelled: a task it runs after ended cancelled (task ${d.id})`);
    expect(await f.result()).toEqual([`failed:${b.id}`, `succeeded:${c.id}`]);
  });

  it('refuses an unknown or failed parent, and a key, with a typed error, storing nothing', async () => {
    const q = db.queue('refused-after');
    q.handler({ name: 'broken', maxAttempts: 1 }, async () => {
      throw new Error('no');
    });
    q.handler({ name: 'next' }, async () => {});
    await services.start(q.worker());
    const broken = await q.push('broken');
    await finishedAll([broken.id]);
    const cases: [object, RegExp][] = [
      [{ after: ['999999999'] }, /no task with id 999999999/],
      [{ after: [broken] }, new RegExp(`task ${broken.id} ended failed, so a task after it would never run`)],
      [{ after: [broken], key: 'k' }, /cannot have a key/],
      [{ after: [] }, /at least one task/],
      [{ after: ['x1'] }, /task id/],
    ];
    for (const [options, message] of cases) {
      await expect(q.push('next', [], options)).rejects.toThrow(ValidationError);
      await expect(q.push('next', [], options)).rejects.toThrow(message);
    }
    // From SQL, the same checks.
    await expect(
      db.rows(
        `SELECT :schema.push_after('{"queue": "refused-after", "name": "next"}', ARRAY[$1::bigint], 'bogus')`,
        [broken.id],
      ),
    ).rejects.toThrow(/after_failure 'cancel', 'run' or 'undo'/);
    await expect(
      db.rows(`SELECT :schema.push_after('{"queue": "refused-after", "name": "next"}', ARRAY[$1::bigint])`, [
        broken.id,
      ]),
    ).rejects.toThrow(/ended failed/);
    // After a failed parent, with onFailure 'run': allowed, and ready at once.
    const anyway = await q.push('next', [], { after: { tasks: [broken], onFailure: 'run' } });
    await anyway.result();
    const [row] = await db.rows<{ n: number }>(
      "SELECT count(*)::int AS n FROM :schema.all_tasks WHERE queue = 'refused-after' AND name = 'next'",
    );
    expect(row?.n).toBe(1);
  });

  it('cancelling a waiting task cancels its dependents; fan-out and fan-in of 1,000 finish', async () => {
    const q = db.queue('fans');
    q.handler({ name: 'n' }, async function () {
      return (await this.parents).length;
    });
    const root = await q.push('n', [], { delayMs: 3_600_000 });
    const middle = await q.push('n', [], { after: [root] });
    const leaf = await q.push('n', [], { after: [middle] });
    await q.cancel(middle.id);
    expect(await stateOf(middle.id)).toBe('cancelled');
    expect(await stateOf(leaf.id)).toBe('cancelled');

    const parent = await q.push('n');
    const children = await q.pushMany(
      Array.from({ length: 1_000 }, () => ({ name: 'n', args: [], after: [parent] })),
    );
    const fanIn = await q.push('n', [], { after: children });
    await services.start(q.worker({ concurrency: 20 }));
    expect(await fanIn.result()).toBe(1_000);
    expect(await children[999]?.result()).toBe(1);
  });

  it('deleting or flushing a pending parent cancels its dependents; deleting a waiting task leaves no edge', async () => {
    const q = db.queue('deleted-parents');
    const later = { delayMs: 3_600_000 };
    const parent = await q.push('n', [], later);
    const child = await q.push('n', [], { after: [parent] });
    const anyway = await q.push('n', [], { after: { tasks: [parent], onFailure: 'run' } });
    expect(await q.delete(parent.id)).toEqual([parent.id]);
    const [row] = await db.rows('SELECT state::text, error FROM :schema.task_history WHERE id = $1', [
      child.id,
    ]);
    expect(row).toEqual({
      state: 'cancelled',
      error: `cancelled: a task it runs after was deleted (task ${parent.id})`,
    });
    expect(await stateOf(anyway.id)).toBe('ready');

    const ready = await q.push('n');
    const afterReady = await q.push('n', [], { after: [ready] });
    expect(await q.flush()).toBeGreaterThanOrEqual(1);
    expect(await stateOf(afterReady.id)).toBe('cancelled');

    const root = await q.push('n', [], later);
    const waiting = await q.push('n', [], { after: [root] });
    await q.delete(waiting.id);
    expect(await db.rows('SELECT parent FROM :schema.task_parents WHERE child = $1', [waiting.id])).toEqual(
      [],
    );
  });

  it("onFailure 'undo': a failed step rolls back the flow, undoing the steps that succeeded, newest first", async () => {
    const q = db.queue('saga');
    const undone: string[] = [];
    const step = q.handler(
      {
        name: 'book',
        maxAttempts: 1,
        undo: async (args) => {
          undone.push(String(args[0]));
        },
      },
      async (what: string, fails = false) => {
        if (fails) throw new Error(`${what} is sold out`);
        return what;
      },
    );
    await services.start(q.worker({ concurrency: 1 }));
    // A → B (fails), C → D; C is done before B fails (one at a time: A, C, then B).
    const a = await step.push('flight');
    const c = await step.with({ after: [a] }).push('hotel');
    await c.result();
    // B and D in one transaction: B must not fail before D, which runs after it, exists.
    const client = await db.pool.connect();
    let b: Awaited<ReturnType<typeof step.push>>;
    let d: typeof b;
    try {
      await client.query('BEGIN');
      b = await step.with({ client, after: [a] }).push('car', true);
      d = await step.with({ client, after: { tasks: [b, c], onFailure: 'undo' } }).push('confirm');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await waitFor(() => undone.length === 2, { timeoutMs: 10_000 });
    expect(undone).toEqual(['hotel', 'flight']);
    expect(await stateOf(d.id)).toBe('cancelled');
    expect(await stateOf(b.id)).toBe('failed');
    const marks = await db.rows<{ id: string; undone: boolean }>(
      'SELECT id::text, undone_by IS NOT NULL AS undone FROM :schema.task_history WHERE id = ANY ($1::bigint[]) ORDER BY id',
      [[a.id, c.id]],
    );
    expect(marks).toEqual([
      { id: a.id, undone: true },
      { id: c.id, undone: true },
    ]);
  });
});
