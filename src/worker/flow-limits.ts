import type { Runtime } from '../runtime.js';

/**
 * Stores the limits (groupConcurrency, rateLimit) each handler declares, where
 * every worker's claims read them, and removes those a handler no longer
 * declares: the code that runs a task name is where its limits are defined.
 */
export async function storeFlowLimits(runtime: Pick<Runtime, 'queue' | 'statements' | 'pool' | 'handlers'>) {
  const limits = [...runtime.handlers.values()].map((handler) => ({
    name: handler.taskName,
    groupConcurrency: handler.options.groupConcurrency ?? null,
    rateLimit: handler.options.rateLimit ?? null,
  }));
  await runtime.statements.setFlowLimits(runtime.pool, runtime.queue, limits);
}
