/**
 * The handler module the chaos suite's worker processes run (`pgtq worker
 * test/chaos/handlers.mjs`), and that its producers push through. Reads
 * DATABASE_URL; pgtq's schema is the default, `pgtq`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PgTq } from '../../dist/index.js';

export const QUEUE = 'chaos';
export const TASK = 'chaos_effect';

export const q = new PgTq(QUEUE, { connectionString: process.env.DATABASE_URL });

/**
 * Writes one effect row for its logical id, in the transaction that also records
 * the task's completion: the row exists if and only if the attempt that wrote it
 * completed. effects has no unique constraint, so a second completion of the same
 * push would show up as a second row rather than as an error.
 *
 * The row is written first, then the handler works for `plan.slowMs`, then fails if
 * planned: so every attempt killed, stopped, cut off or failed holds an uncommitted
 * effect that must vanish with its transaction.
 *
 * maxAttempts is high because every fault that hits a running attempt costs one:
 * the suite checks that no task fails, and a task failing from too many faults
 * would say nothing about pgtq. The back-off is short so that the drain is too.
 */
export const effect = q.handler(
  {
    name: TASK,
    transactional: true,
    maxAttempts: 1000,
    backoff: { baseMs: 200, factor: 2, maxMs: 3000 },
  },
  async function chaos_effect(logicalId, plan) {
    const { task, tx, signal } = this;
    if (!task || !tx) throw new Error('chaos_effect runs in a worker, as a transactional handler');
    await tx.query(
      'INSERT INTO chaos.effects (logical_id, task_id, attempt, worker_pid) VALUES ($1, $2, $3, $4)',
      [logicalId, task.id, task.attempt, process.pid],
    );
    if (plan.slowMs > 0) await sleep(plan.slowMs, undefined, { signal });
    if (plan.failFirst && task.attempt === 1) {
      throw new Error(`planned failure of ${logicalId} on its first attempt`);
    }
    return logicalId;
  },
);
