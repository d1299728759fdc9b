import type { Runtime } from '../runtime.js';

/**
 * Stores the limits (groupConcurrency, rateLimit) each handler declares, where
 * every worker's claims read them, and removes those a handler no longer
 * declares: the code that runs a task name is where its limits are defined.
 */
export async function storeFlowLimits(runtime: Pick<Runtime, 'queue' | 'statements' | 'pool' | 'handlers'>) {
  for (const handler of runtime.handlers.values()) {
    await runtime.statements.setFlowLimits(runtime.pool, {
      queue: runtime.queue,
      name: handler.taskName,
      groupConcurrency: handler.options.groupConcurrency ?? null,
      rateLimit: handler.options.rateLimit ?? null,
    });
  }
}
