import { isTaskId } from '../admin.js';
import { parse, queueName, taskName } from '../config.js';
import { inBatches } from '../db/batches.js';
import { ValidationError } from '../errors.js';
import { HttpError } from './http-error.js';
import type { DashboardSource } from './reads.js';

/** What an action did, in words the page shows, and anything more it returns. */
export interface ActionResult {
  message: string;
  [more: string]: unknown;
}

type Body = Record<string, unknown>;

/** A failures group is retried in batches this big, each its own transaction. */
const BATCH = 5_000;

/** The actions on one task, by name. */
export const taskActions: Record<
  string,
  (source: DashboardSource, id: string, body: Body) => Promise<ActionResult>
> = {
  async retry({ q, statements }, id) {
    const [retried] = await statements.retryTasks(q.pool, [taskId(id)]);
    if (!retried) {
      throw new HttpError(
        409,
        `task ${id} was not retried: only a failed or cancelled task can be, unless a pending task holds its key`,
      );
    }
    return { message: `task ${id} is ready again` };
  },

  async cancel({ q, statements }, id) {
    const [row] = await statements.cancelTasks(q.pool, [taskId(id)], 'cancelled from the dashboard');
    if (!row) throw new HttpError(409, `task ${id} was not cancelled: it is not pending or running`);
    return {
      message: row.outcome === 'cancelled' ? `task ${id} is cancelled` : `task ${id} is asked to stop`,
    };
  },

  async delete({ q, statements }, id) {
    const [deleted] = await statements.deleteTasks(q.pool, [taskId(id)]);
    if (!deleted) throw new HttpError(409, `task ${id} was not deleted: only a pending task can be`);
    return { message: `task ${id} is deleted` };
  },

  async reschedule({ q, statements }, id, body) {
    const runAt = typeof body.runAt === 'string' ? new Date(body.runAt) : undefined;
    if (!runAt || Number.isNaN(runAt.getTime())) throw new HttpError(400, 'runAt: expected a date and time');
    if (!(await statements.rescheduleTask(q.pool, taskId(id), runAt))) {
      throw new HttpError(409, `task ${id} was not rescheduled: only a task waiting to start can be`);
    }
    return { message: `task ${id} runs at ${runAt.toISOString()}` };
  },
};

/** Retries every failed task of one group of the failures view. */
export async function retryFailureGroup({ q, queries }: DashboardSource, body: Body): Promise<ActionResult> {
  const group = { queue: field(body, 'queue'), name: field(body, 'name'), error: field(body, 'error', true) };
  const retried = await inBatches(BATCH, () => queries.retryFailureGroup(q.pool, group, BATCH));
  return { message: `${retried} ${retried === 1 ? 'task is' : 'tasks are'} ready again`, retried };
}

/** Pauses or resumes a queue, or one task name of it. */
export async function setPaused(
  { q, statements }: DashboardSource,
  queue: string,
  paused: boolean,
  body: Body,
): Promise<ActionResult> {
  parse(queueName, queue, 'queue name', ValidationError);
  const name =
    body.name === undefined || body.name === null
      ? null
      : parse(taskName, body.name, 'task name', ValidationError);
  const what = name === null ? `queue ${queue}` : `${name} in queue ${queue}`;
  const changed = paused
    ? await statements.pauseQueue(q.pool, queue, name)
    : await statements.resumeQueue(q.pool, queue, name);
  const verb = paused ? 'paused' : 'resumed';
  return { message: changed ? `${what} is ${verb}` : `${what} was already ${verb}`, changed };
}

function taskId(id: string): string {
  if (!isTaskId(id)) throw new HttpError(400, `"${id}" is not a task id`);
  return id;
}

function field(body: Body, name: string, emptyAllowed = false): string {
  const value = body[name];
  if (typeof value !== 'string' || (!emptyAllowed && value === '') || value.length > 10_000) {
    throw new HttpError(400, `${name}: expected a string`);
  }
  return value;
}
