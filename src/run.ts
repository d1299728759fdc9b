import type { PgTq } from './pgtq.js';
import type { SchedulerOptions } from './scheduler/scheduler.js';
import type { WorkerOptions } from './worker/worker.js';

/**
 * The worker main loop: runs `queue`'s tasks until `signal` aborts, then drains
 * (see Worker.stop) and returns.
 */
export async function runWorker(
  queue: PgTq,
  options: WorkerOptions & { signal: AbortSignal },
): Promise<void> {
  const { signal, ...workerOptions } = options;
  await runUntilAborted(queue.worker(workerOptions), signal);
}

/** The scheduler main loop: runs until `signal` aborts, then returns. */
export async function runScheduler(
  queue: PgTq,
  options: SchedulerOptions & { signal: AbortSignal },
): Promise<void> {
  const { signal, ...schedulerOptions } = options;
  await runUntilAborted(queue.scheduler(schedulerOptions), signal);
}

async function runUntilAborted(
  service: { start(): Promise<void>; stop(): Promise<void> },
  signal: AbortSignal,
) {
  if (signal.aborted) return;
  await service.start();
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  await service.stop();
}
