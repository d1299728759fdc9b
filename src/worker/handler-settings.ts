import type { Runtime } from '../runtime.js';

/**
 * Stores what each handler declares for the database to act on: its limits
 * (groupConcurrency, rateLimit), which every worker's claims read; its
 * dead-letter queue, which the statements that end tasks read; and whether it
 * has an undo, which a flow's rollback reads. What a handler no longer declares
 * is removed: the code that runs a task name defines them.
 */
export async function storeHandlerSettings(
  runtime: Pick<Runtime, 'queue' | 'statements' | 'pool' | 'handlers'>,
) {
  const handlers = [...runtime.handlers.values()];
  const limits = handlers.map((handler) => ({
    name: handler.taskName,
    groupConcurrency: handler.options.groupConcurrency ?? null,
    rateLimit: handler.options.rateLimit ?? null,
  }));
  await runtime.statements.setFlowLimits(runtime.pool, runtime.queue, limits);
  const deadLetters = handlers.map((handler) => ({
    name: handler.taskName,
    target: handler.options.deadLetter ?? handler.options.dead_letter ?? null,
  }));
  await runtime.statements.setDeadLetters(runtime.pool, runtime.queue, deadLetters);
  const undoable = handlers.map((handler) => ({
    name: handler.taskName,
    undoable: Boolean(handler.options.undo),
  }));
  await runtime.statements.setUndoNames(runtime.pool, runtime.queue, undoable);
}
