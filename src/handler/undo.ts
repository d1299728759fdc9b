import { isTaskId } from '../admin.js';
import type { Queryable } from '../db/queryable.js';
import type { Statements } from '../db/statements.js';
import { ConfigError, ValidationError } from '../errors.js';
import { type ResultSource, TaskRef } from '../task-ref.js';
import type { TaskContext } from './context.js';
import { type AnyHandler, createHandler, type HandlerHost } from './handler.js';
import { refusedAsValidation } from './push.js';

/** The task name of a compensation: this, then the name of the task it undoes. */
export const UNDO_PREFIX = 'pgtq.undo.';

/** What a compensation task receives: the task it undoes, with its arguments and result. */
interface Undoing {
  task: string;
  args: unknown[];
  result: unknown;
}

/**
 * The handlers of compensations, one for each handler with `undo`: named
 * `pgtq.undo.<name>`, with the handler's attempts, back-off and timeout.
 */
export function undoHandlers(host: HandlerHost, handlers: Iterable<AnyHandler>): AnyHandler[] {
  return [...handlers].flatMap((handler) => {
    // A compensation keeps the handler's attempts, back-off, timeout and priority;
    // not its argument schema, limits, dead letters, nor an undo of its own.
    const { undo, args, groupConcurrency, rateLimit, deadLetter, dead_letter, ...options } = handler.options;
    if (!undo) return [];
    const name = `${UNDO_PREFIX}${handler.taskName}`;
    const compensate = function (this: TaskContext, undoing: Undoing) {
      return undo.call(this, undoing.args, undoing.result);
    };
    return [createHandler(host, { ...options, name }, compensate) as unknown as AnyHandler];
  });
}

export interface UndoTarget extends ResultSource {
  readonly queue: string;
  readonly pool: Queryable;
  readonly statements: Statements;
  readonly handlers: ReadonlyMap<string, AnyHandler>;
}

/**
 * Undoes succeeded task `id`: stores a compensation task, or returns the one a
 * previous call stored. A queue with handlers must know the task's name and the
 * handler must have `undo`; one without (a producer) leaves that to its workers.
 */
export async function undoTask(target: UndoTarget, id: string): Promise<TaskRef> {
  if (!isTaskId(id))
    throw new ValidationError(`undo: expected a task id (a positive integer as a string), got ${id}`);
  if (target.handlers.size > 0) {
    const task = await target.statements.getTask(target.pool, id);
    const handler = task && target.handlers.get(task.name);
    if (task && !handler?.options.undo) {
      throw new ConfigError(`undo: task ${id} is a "${task.name}" task, whose handler here has no undo`);
    }
  }
  const undo = await refusedAsValidation(target.statements.undoTask(target.pool, id), 'undo: ');
  return new TaskRef(target, undo);
}
