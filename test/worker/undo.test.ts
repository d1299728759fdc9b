import { describe, expect, it } from 'vitest';
import { ConfigError, ValidationError } from '../../src/index.js';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';
import { useServices } from '../helpers/services.js';

// A handler's undo, pushed by q.undo(id) as a task of its own, at most once per task.
const db = await useTestSchema('pgtq_undo');
const services = useServices();

describe('undo', () => {
  it('runs the handler’s undo with the task’s arguments and result, once, however often it is asked', async () => {
    const q = db.queue('payments');
    const refunds: unknown[] = [];
    const charge = q.handler(
      {
        name: 'charge',
        undo: async function (args, result) {
          refunds.push({ args, result, attempt: this.task?.attempt });
        },
      },
      async (customer: string, cents: number) => ({ chargeId: `ch_${customer}_${cents}` }),
    );
    await services.start(q.worker());
    const ref = await charge.push('ada', 500);
    await ref.result();

    const [first, second] = await Promise.all([q.undo(ref.id), q.undo(ref.id)]);
    expect(first?.id).toBe(second?.id);
    expect([first?.inserted, second?.inserted].sort()).toEqual([false, true]);
    expect(first?.name).toBe('pgtq.undo.charge');
    await first?.result();
    expect(refunds).toEqual([{ args: ['ada', 500], result: { chargeId: 'ch_ada_500' }, attempt: 1 }]);
    // After the compensation ran: the same task, not another.
    const later = await q.undo(ref.id);
    expect(later).toMatchObject({ id: first?.id, inserted: false });
    const [history] = await db.rows('SELECT undone_by::text FROM :schema.task_history WHERE id = $1', [
      ref.id,
    ]);
    expect(history).toEqual({ undone_by: first?.id });
    expect(refunds).toHaveLength(1);
  });

  it('refuses, with a typed error and nothing stored, a task that did not succeed, is pending, unknown, or has no undo', async () => {
    const q = db.queue('refusals');
    q.handler({ name: 'plain' }, async () => 'done');
    q.handler({ name: 'fragile', maxAttempts: 1, undo: async () => {} }, async () => {
      throw new Error('broken');
    });
    q.handler({ name: 'later', undo: async () => {} }, async () => {});
    await services.start(q.worker());
    const plain = await q.push('plain');
    await plain.result();
    const fragile = await q.push('fragile');
    await waitFor(async () => (await q.getTask(fragile.id)).state === 'failed');
    const later = await q.push('later', [], { delayMs: 3_600_000 });

    await expect(q.undo(plain.id)).rejects.toThrow(ConfigError);
    await expect(q.undo(fragile.id)).rejects.toThrow(
      /task \d+ ended failed: only a succeeded task can be undone/,
    );
    await expect(q.undo(fragile.id)).rejects.toThrow(ValidationError);
    await expect(q.undo(later.id)).rejects.toThrow(/has not finished/);
    await expect(q.undo('999999999')).rejects.toThrow(/does not exist/);
    await expect(q.undo('not-an-id')).rejects.toThrow(ValidationError);
    const [row] = await db.rows<{ n: number }>(
      "SELECT count(*)::int AS n FROM :schema.all_tasks WHERE queue = 'refusals' AND name LIKE 'pgtq.undo.%'",
    );
    expect(row?.n).toBe(0);
  });

  it('a producer without the handler’s code can undo; the worker that has it runs the compensation', async () => {
    const worker = db.queue('shared');
    const undone: unknown[] = [];
    worker.handler(
      { name: 'reserve', undo: async (args) => void undone.push(args) },
      async (seat: string) => seat,
    );
    await services.start(worker.worker());
    const producer = db.queue('shared');
    const ref = await producer.push('reserve', ['12A']);
    await ref.result();
    const undo = await producer.undo(ref.id);
    await undo.result();
    expect(undone).toEqual([['12A']]);
  });
});
