import { TaskFailedError, TaskNotFoundError, TimeoutError } from './errors.js';
import type { Runtime } from './runtime.js';
import { isFinished } from './states.js';
import type { ResultOptions } from './task-ref.js';

/** NOTIFY is a hint; this slow poll covers one lost while the listener reconnects. */
const RESULT_POLL_MS = 5_000;
/** Without LISTEN (the `listen: false` connection option) polling is all there is. */
const RESULT_POLL_WITHOUT_LISTEN_MS = 250;

/**
 * Resolves with the result of task `id` once it succeeds (in any process), woken
 * by NOTIFY; rejects with TaskFailedError if it fails or is cancelled.
 */
export async function waitForResult<R>(runtime: Runtime, id: string, options: ResultOptions): Promise<R> {
  const listener = runtime.listener();
  const pollMs = runtime.listening ? RESULT_POLL_MS : RESULT_POLL_WITHOUT_LISTEN_MS;
  let wake: () => void = () => {};
  const unsubscribe = await listener.on('task_finished', (queue) => queue === runtime.queue && wake());
  const stopReconnect = listener.onReconnect(() => wake());
  const deadline =
    options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const task = await runtime.statements.getTask(runtime.pool, id);
      if (!task) throw new TaskNotFoundError(id);
      if (isFinished(task.state)) {
        if (task.state === 'succeeded') return task.result as R;
        throw new TaskFailedError(id, task.state === 'failed' ? 'failed' : 'cancelled', task.error);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`Task ${id} did not finish within ${options.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, pollMs));
        options.signal?.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', done);
          resolve();
        }
        wake = done;
      });
    }
  } finally {
    unsubscribe();
    stopReconnect();
  }
}
