import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';
import { gate, useServices } from '../helpers/services.js';

// this.progress(…): reported by handlers, stored with heartbeats, kept in history.
const db = await useTestSchema('pgtq_progress');
const services = useServices();

describe('progress', () => {
  it('many reports make a few writes; the latest shows in the views and by ref.progress(), and history keeps the last', async () => {
    const q = db.queue('reports');
    const hold = gate();
    q.handler({ name: 'long' }, async function long() {
      for (let done = 1; done <= 1_000; done++) this.progress({ done, total: 1_000 });
      await hold.closed;
      this.progress({ done: 1_000, total: 1_000, note: 'finishing' });
      return 'ok';
    });
    let beats = 0;
    const beat = q.statements.heartbeatMany.bind(q.statements);
    q.statements.heartbeatMany = (...args) => {
      beats++;
      return beat(...args);
    };
    await services.start(q.worker());
    const ref = await q.push('long');
    expect(await waitFor(async () => (await ref.progress()) ?? undefined)).toEqual({
      done: 1_000,
      total: 1_000,
    });
    expect(beats).toBeLessThanOrEqual(2);
    const [live] = await db.rows('SELECT state::text, progress FROM :schema.all_tasks WHERE id = $1', [
      ref.id,
    ]);
    expect(live).toEqual({ state: 'running', progress: { done: 1_000, total: 1_000 } });
    hold.open();
    expect(await ref.result()).toBe('ok');
    // Reported after the last heartbeat: stored with the outcome.
    const [history] = await db.rows('SELECT progress FROM :schema.task_history WHERE id = $1', [ref.id]);
    expect(history).toEqual({ progress: { done: 1_000, total: 1_000, note: 'finishing' } });
    expect(await ref.progress()).toEqual({ done: 1_000, total: 1_000, note: 'finishing' });
  });

  it('a report that is not JSON or is over 8 KiB is a typed error in the handler, and stores nothing', async () => {
    const q = db.queue('bad-reports');
    q.handler({ name: 'bad' }, async function bad() {
      const errors: string[] = [];
      for (const value of [{ at: 1n }, 'x'.repeat(9_000), { f: () => 1 }]) {
        try {
          this.progress(value);
        } catch (error) {
          errors.push((error as Error).name);
        }
      }
      return errors;
    });
    await services.start(q.worker());
    const ref = await q.push('bad');
    expect(await ref.result()).toEqual(['NotJsonError', 'ValidationError', 'NotJsonError']);
    expect(await ref.progress()).toBeNull();
  });

  it('a transactional handler’s last report commits with its outcome; a direct call ignores reports', async () => {
    const q = db.queue('tx-reports');
    const step = q.handler({ name: 'step', transactional: true }, async function step(n: number) {
      this.progress({ step: n });
      return n;
    });
    expect(await step(3)).toBe(3);
    await services.start(q.worker());
    const ref = await step.push(7);
    expect(await ref.result()).toBe(7);
    expect(await ref.progress()).toEqual({ step: 7 });
  });
});
