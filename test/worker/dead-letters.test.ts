import { describe, expect, it } from 'vitest';
import { Cancel, ConfigError, Fail } from '../../src/index.js';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';
import { useServices } from '../helpers/services.js';

// The deadLetter handler option: tasks that fail for good are copied to another queue.
const db = await useTestSchema('pgtq_dead_letters');
const services = useServices();

/** The tasks of `queue` still pending, as stored. */
const pendingIn = (queue: string) =>
  db.rows<{ name: string; args: unknown; key: string; error: string; state: string }>(
    'SELECT name, args, key, last_error AS error, state::text FROM :schema.tasks WHERE queue = $1 ORDER BY id',
    [queue],
  );

describe('dead letters', () => {
  it('a task that fails for good is copied, with its error, to the dead-letter queue; others are not', async () => {
    const q = db.queue('orders');
    q.handler(
      { name: 'charge', deadLetter: 'orders-dead', maxAttempts: 2, backoff: { baseMs: 0 } },
      async (kind: string) => {
        if (kind === 'fails') throw new Error('card declined');
        if (kind === 'refused') throw new Fail('no such customer');
        if (kind === 'cancels') throw new Cancel('not needed');
        return kind;
      },
    );
    await services.start(q.scheduler());
    await services.start(q.worker());
    const refs = [];
    for (const kind of ['fails', 'refused', 'cancels', 'works'])
      refs.push(await q.push('charge', [kind, { order: 7 }]));
    await waitFor(async () => {
      const [row] = await db.rows<{ n: number }>(
        "SELECT count(*)::int AS n FROM :schema.finished_tasks WHERE queue = 'orders'",
      );
      return row?.n === 4;
    });
    const kind = (task: { args: unknown }) => String((task.args as unknown[])[0]);
    const dead = (await pendingIn('orders-dead')).sort((a, b) => kind(a).localeCompare(kind(b)));
    expect(dead).toEqual([
      expect.objectContaining({ name: 'charge', args: ['fails', { order: 7 }], key: `dead:${refs[0]?.id}` }),
      expect.objectContaining({
        name: 'charge',
        args: ['refused', { order: 7 }],
        key: `dead:${refs[1]?.id}`,
      }),
    ]);
    expect(dead[0]?.error).toMatch(/^Error: card declined/);
    expect(dead[1]?.error).toMatch(/^Fail: no such customer/);
    expect(dead.every((task) => task.state === 'ready')).toBe(true);
    // The dead-letter queue is a queue like any other: a worker of it runs the copies.
    const morgue = db.queue('orders-dead');
    const seen: string[] = [];
    morgue.handler({ name: 'charge' }, async (kind: string) => {
      seen.push(kind);
    });
    await services.start(morgue.worker());
    await waitFor(() => seen.length === 2);
    expect(seen.sort()).toEqual(['fails', 'refused']);
  });

  it('a task rescued after its worker was lost, with no attempt left, is copied too', async () => {
    const q = db.queue('lost');
    q.handler({ name: 'job', deadLetter: 'lost-dead', maxAttempts: 1 }, async () => {});
    // A worker stores the handler's settings at its first claim; this one then dies.
    const worker = await services.start(q.worker());
    await worker.stop();
    const ref = await q.push('job', ['x']);
    const task = await q.pop({ leaseMs: 1_000 });
    expect(task?.id).toBe(ref.id);
    await services.start(q.scheduler({ rescueIntervalMs: 100 }));
    const [copy] = await waitFor(async () => {
      const rows = await pendingIn('lost-dead');
      return rows.length > 0 ? rows : undefined;
    });
    expect(copy).toMatchObject({ name: 'job', args: ['x'], key: `dead:${ref.id}` });
    expect(copy?.error).toMatch(/^worker lost/);
  });

  it('a handler that drops its deadLetter stops copying; a bad queue name is refused', async () => {
    const q = db.queue('fickle');
    q.handler({ name: 'job', deadLetter: 'fickle-dead' }, async () => {});
    await (await services.start(q.worker())).stop();
    const [stored] = await db.rows("SELECT target FROM :schema.dead_letters WHERE queue = 'fickle'");
    expect(stored).toEqual({ target: 'fickle-dead' });
    const again = db.queue('fickle');
    again.handler({ name: 'job' }, async () => {});
    await (await services.start(again.worker())).stop();
    expect(await db.rows("SELECT target FROM :schema.dead_letters WHERE queue = 'fickle'")).toEqual([]);
    expect(() => q.handler({ name: 'other', deadLetter: '' }, async () => {})).toThrow(ConfigError);
    expect(() => q.handler({ name: 'both', deadLetter: 'a', dead_letter: 'b' }, async () => {})).toThrow(
      /deadLetter and dead_letter name different queues/,
    );
    // Spelled as in SQL, the same option.
    const snake = db.queue('snake');
    snake.handler({ name: 'job', dead_letter: 'snake-dead' }, async () => {});
    await (await services.start(snake.worker())).stop();
    expect(await db.rows("SELECT target FROM :schema.dead_letters WHERE queue = 'snake'")).toEqual([
      { target: 'snake-dead' },
    ]);
  });
});
