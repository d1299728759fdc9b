import type { Runtime } from '../runtime.js';
import type { EmitWorkerEvent } from './options.js';

/** A scheduled task this late (ms) is overdue: a live scheduler promotes within milliseconds. */
const OVERDUE_GRACE_MS = 10_000;

/**
 * Returns a check, run after each presence beat, that warns once when this
 * queue's scheduled tasks are overdue and no scheduler runs anywhere, and again
 * only after a scheduler was seen in between.
 */
export function watchScheduler(runtime: Runtime, emit: EmitWorkerEvent): () => Promise<void> {
  let warned = false;
  return async () => {
    const { overdue, scheduler_alive } = await runtime.statements.checkScheduler(
      runtime.pool,
      runtime.queue,
      OVERDUE_GRACE_MS,
    );
    if (scheduler_alive) warned = false;
    if (scheduler_alive || overdue === 0 || warned) return;
    warned = true;
    runtime.logger.warn(
      `${overdue >= 1000 ? '1000+' : overdue} scheduled tasks of queue "${runtime.queue}" are overdue and no scheduler is running: ` +
        'delayed tasks and retries wait until one runs (start `pgtq scheduler`, or `pgtq worker --with-scheduler`)',
      { queue: runtime.queue, overdue },
    );
    emit('scheduler:missing', overdue);
  };
}
