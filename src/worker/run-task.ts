import type pg from 'pg';
import type { ClaimedRow, Statements } from '../db/statements.js';
import { LeaseLostError, TimeoutError, ValidationError } from '../errors.js';
import type { TaskContext, TaskInfo } from '../handler/context.js';
import type { Handler } from '../handler/handler.js';
import type { Logger } from '../logger.js';
import { failureOutcome, type Outcome, successOutcome } from './outcomes.js';
import { recordOutcomes } from './record-outcomes.js';

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

export function taskInfo(row: ClaimedRow): TaskInfo {
  return {
    id: row.id,
    queue: row.queue,
    name: row.name,
    args: row.args,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    key: row.key,
  };
}

/**
 * Runs one attempt and decides its outcome. For a transactional handler the
 * outcome is stored here, in the handler's own transaction, and `stored` is true;
 * otherwise the caller stores it.
 */
export async function runTask(
  deps: RunTaskDeps,
  handler: Handler<never[], unknown, unknown[]>,
  task: TaskInfo,
  leaseId: string,
  signal: AbortSignal,
): Promise<{ outcome: Outcome; stored: boolean; startedAt: Date }> {
  const logger = deps.logger;
  // The claim may have been made ahead of a free slot: the attempt starts now.
  const startedAt = new Date();
  const attempt = async (tx: pg.PoolClient | undefined): Promise<Outcome> => {
    await deps.hooks.before?.(task);
    const context: TaskContext = { task, signal, logger, tx };
    const result = await untilAborted(handler.run(context, task.args), signal);
    return successOutcome(result, deps.statements.limits.maxResultBytes);
  };
  const failed = (error: unknown): Outcome =>
    // Arguments that fail the handler's schema will fail every time: no retry storm.
    failureOutcome(error, task, handler.options.backoff, { retryable: !(error instanceof ValidationError) });

  let outcome: Outcome;
  if (!handler.options.transactional) {
    outcome = await attempt(undefined).catch(failed);
  } else {
    const client = await deps.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      outcome = await attempt(client);
      if (outcome.kind === 'succeeded') {
        const lost = await recordOutcomes(
          deps.statements,
          client,
          [{ id: task.id, leaseId, outcome, startedAt }],
          true,
        );
        if (lost.size > 0) throw new LeaseLostError(task.id);
        await deps.hooks.after?.(task, outcome);
        await client.query('COMMIT');
        return { outcome, stored: true, startedAt };
      }
      await client.query('ROLLBACK');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      if (error instanceof LeaseLostError) throw error;
      outcome = failed(error);
    } finally {
      client.release(broken);
    }
  }
  await deps.hooks.after?.(task, outcome);
  return { outcome, stored: false, startedAt };
}

/** Settles with `work`, or rejects with the signal's reason once it aborts (a handler may ignore its signal). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new TimeoutError('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
