import type { Runtime } from '../runtime.js';
import { retryWhileConnectionLost } from '../service.js';

/** Tries at start: a connection cut meanwhile is no reason to fail it (as for the first heartbeat). */
const START_ATTEMPTS = 4;

/**
 * Stores the limits (groupConcurrency, rateLimit) each handler declares, where
 * every worker's claims read them, and removes those a handler no longer
 * declares: the code that runs a task name is where its limits are defined.
 */
export async function storeFlowLimits(runtime: Pick<Runtime, 'queue' | 'statements' | 'pool' | 'handlers'>) {
  for (const handler of runtime.handlers.values()) {
    const limits = {
      queue: runtime.queue,
      name: handler.taskName,
      groupConcurrency: handler.options.groupConcurrency ?? null,
      rateLimit: handler.options.rateLimit ?? null,
    };
    await retryWhileConnectionLost(
      () => runtime.statements.setFlowLimits(runtime.pool, limits),
      START_ATTEMPTS,
    );
  }
}
