import type { PgTq } from './pgtq.js';
import type { SchedulerOptions } from './scheduler/scheduler.js';
import type { WorkerOptions } from './worker/worker.js';

/**
 * The worker main loop: runs `queue`'s tasks until `signal` aborts, then drains
 * (see Worker.stop) and returns. Rejects if the worker cannot start.
 */
export async function runWorker(
  queue: PgTq,
  options: WorkerOptions & { signal: AbortSignal },
): Promise<void> {
  const { signal, ...workerOptions } = options;
  await runUntilAborted(queue.worker(workerOptions), signal);
}

/** The scheduler main loop: runs until `signal` aborts, then returns. Rejects if it cannot start. */
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
): Promise<void> {
  // Listen before starting: an abort during start() must stop the service too.
  const stopped = new Promise<void>((resolve) => {
    const stop = () => resolve(service.stop());
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  try {
    await service.start();
  } catch (error) {
    await service.stop();
    throw error;
  }
  await stopped;
}
