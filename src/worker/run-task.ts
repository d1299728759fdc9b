import type pg from 'pg';
import { withTransaction } from '../db/queryable.js';
import type { Statements } from '../db/statements.js';
import type { ClaimedRow, ParentTask } from '../db/task-rows.js';
import { LeaseLostError, ValidationError } from '../errors.js';
import type { TaskContext, TaskInfo } from '../handler/context.js';
import type { AnyHandler } from '../handler/handler.js';
import type { Logger } from '../logger.js';
import { failureOutcome, type Outcome, successOutcome } from './outcomes.js';
import { recordOutcomes } from './record-outcomes.js';
import type { TaskAbort } from './task-abort.js';
import type { TaskProgress } from './task-progress.js';

export interface TaskHooks {
  /** Runs before the handler; throw (a `Retry` or `Cancel`, say) to stop the task from running. */
  before?(task: TaskInfo): void | Promise<void>;
  /** Runs after the handler with the attempt's outcome, before it is stored. */
  after?(task: TaskInfo, outcome: Outcome): void | Promise<void>;
}

export interface RunTaskDeps {
  pool: pg.Pool;
  statements: Statements;
  logger: Logger;
  hooks: TaskHooks;
}

export function taskInfo(row: ClaimedRow, startedAt = new Date()): TaskInfo {
  return {
    id: row.id,
    queue: row.queue,
    name: row.name,
    args: row.args,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    key: row.key,
    group: row.group_key,
    runAt: new Date(row.run_at_s * 1000),
    startedAt,
  };
}

/**
 * Runs one attempt and decides its outcome. For a transactional handler the
 * outcome is stored here, in the handler's own transaction, and `stored` is true;
 * otherwise the caller stores it.
 */
export async function runTask(
  deps: RunTaskDeps,
  handler: AnyHandler,
  task: TaskInfo,
  leaseId: string,
  abort: TaskAbort,
  progress: TaskProgress,
): Promise<{ outcome: Outcome; stored: boolean; startedAt: Date }> {
  const logger = deps.logger;
  // The claim may have been made ahead of a free slot: the attempt starts now.
  const startedAt = new Date();
  let parents: Promise<ParentTask[]> | undefined;
  const attempt = async (tx: pg.PoolClient | undefined): Promise<Outcome> => {
    await deps.hooks.before?.(task);
    const context: TaskContext = {
      task,
      get signal() {
        return abort.signal;
      },
      logger,
      tx,
      progress: (value) => progress.report(value),
      get parents() {
        parents ??= deps.statements.listParents(deps.pool, task.id);
        return parents;
      },
    };
    const result = await abort.race(handler.run(context, task.args));
    return successOutcome(result, deps.statements.limits.maxResultBytes);
  };
  const failed = (error: unknown): Outcome =>
    // Arguments that fail the handler's schema will fail every time: no retry storm.
    failureOutcome(error, task, handler.options.backoff, { retryable: !(error instanceof ValidationError) });

  let outcome: Outcome;
  if (!handler.options.transactional) {
    outcome = await attempt(undefined).catch(failed);
  } else {
    try {
      return await withTransaction(deps.pool, async (tx) => {
        const result = await attempt(tx);
        // Only a success commits the handler's writes.
        if (result.kind !== 'succeeded') throw new RolledBack(result);
        const lost = await recordOutcomes(
          deps.statements,
          tx,
          [{ id: task.id, leaseId, outcome: result, startedAt, progress: progress.unsaved()?.value }],
          true,
        );
        if (lost.size > 0) throw new LeaseLostError(task.id);
        await deps.hooks.after?.(task, result);
        return { outcome: result, stored: true, startedAt };
      });
    } catch (error) {
      if (error instanceof LeaseLostError) throw error;
      outcome = error instanceof RolledBack ? error.outcome : failed(error);
    }
  }
  await deps.hooks.after?.(task, outcome);
  return { outcome, stored: false, startedAt };
}

/** Rolls back a transactional handler's work when its attempt did not succeed. */
class RolledBack extends Error {
  constructor(readonly outcome: Outcome) {
    super('rolled back');
  }
}
