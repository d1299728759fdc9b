import { isTaskId } from '../admin.js';
import type { Statements } from '../db/statements.js';
import type { PgTq } from '../pgtq.js';
import { TASK_STATES, type TaskState } from '../states.js';
import { HttpError } from './http-error.js';
import type { DashboardStatements } from './queries.js';

/**
 * What the dashboard reads and acts on: one schema, through a queue's pool. Its statements
 * are not prepared: each request is planned for its own filters (a generic plan of a list
 * with optional filters would read history in id order whatever the filter), and a
 * dashboard sends few enough that planning costs nothing worth keeping.
 */
export interface DashboardSource {
  readonly q: PgTq;
  readonly statements: Statements;
  readonly queries: DashboardStatements;
}

/** How far back the overview's chart goes. */
const CHART_MINUTES = 60;
/** The overview lists at most this many running tasks and held groups. */
const SHOWN = 50;
const PAGE = 50;
const MAX_PAGE = 500;

/** Everything the overview shows, read in parallel: of one queue, or (queue null) of every queue. */
export async function overview({ q, statements, queries }: DashboardSource, queue: string | null) {
  const [summary, throughput, processes, running, paused, groups, known] = await Promise.all([
    statements.listQueueSummary(q.pool, queue),
    queries.throughput(q.pool, queue, CHART_MINUTES),
    statements.listProcesses(q.pool),
    queries.running(q.pool, queue, SHOWN),
    statements.listPaused(q.pool, queue),
    statements.listFlowGroups(q.pool, queue),
    queries.queues(q.pool),
  ]);
  const mine = processes.filter((p) => queue === null || p.queue === queue);
  const queues = new Set([...known, ...[...summary, ...processes, ...paused].map((row) => row.queue)]);
  return {
    now: new Date(),
    queues: [...queues].sort(),
    summary: summary.map(({ queue, state, count, oldest_age, oldest_age_ms }) => ({
      queue,
      state,
      count,
      oldest_age,
      oldest_age_ms,
    })),
    throughput,
    processes: mine,
    running,
    paused,
    held: groups.filter((group) => group.held_by !== null).slice(0, SHOWN),
  };
}

/** A page of tasks, newest first, and the `before` of the next page (keyset paging, never OFFSET). */
export async function taskList({ q, statements }: DashboardSource, params: URLSearchParams) {
  const states = params.getAll('state').filter((s) => s !== '');
  for (const state of states) {
    if (!(TASK_STATES as readonly string[]).includes(state))
      throw new HttpError(400, `unknown state "${state}"`);
  }
  const before = text(params, 'before');
  if (before !== null && !isTaskId(before)) throw new HttpError(400, `before: "${before}" is not a task id`);
  const limit = Number(params.get('limit') ?? PAGE);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new HttpError(400, `limit: expected an integer from 1 to ${MAX_PAGE}`);
  }
  // One more than asked: whether there is a next page, without counting.
  const rows = await statements.listTasks(q.pool, {
    queue: text(params, 'queue'),
    states: states.length > 0 ? (states as TaskState[]) : null,
    name: text(params, 'name'),
    key: text(params, 'key'),
    group: text(params, 'group'),
    beforeId: before,
    limit: limit + 1,
  });
  const tasks = rows.slice(0, limit);
  return { tasks, next: rows.length > limit ? (tasks.at(-1)?.id ?? null) : null };
}

/** One task, with the tasks it waits for and those waiting for it. */
export async function taskDetail({ q, statements, queries }: DashboardSource, id: string) {
  if (!isTaskId(id)) throw new HttpError(400, `"${id}" is not a task id`);
  const [task, links] = await Promise.all([statements.getTask(q.pool, id), queries.taskLinks(q.pool, id)]);
  if (!task) throw new HttpError(404, `task ${id} not found`);
  const pick = (role: string) =>
    links.filter((link) => link.role === role).map(({ id, name, state }) => ({ id, name, state }));
  return { task, parents: pick('parent'), children: pick('child') };
}

export async function failures({ q, queries }: DashboardSource, queue: string | null) {
  return { failures: await queries.failures(q.pool, queue, 200) };
}

export async function schedules({ q, statements }: DashboardSource) {
  const rows = await statements.listSchedules(q.pool, null);
  return {
    schedules: rows.map(({ queue, name, cron, tz, task_name, next_fire_at, last_fired_at, error }) => ({
      queue,
      name,
      cron,
      tz,
      task_name,
      next_fire_at,
      last_fired_at,
      error,
    })),
  };
}

/** A query parameter, or null when absent or empty (an empty filter field means "any"). */
export function text(params: URLSearchParams, name: string): string | null {
  const value = params.get(name);
  if (value === null || value === '') return null;
  if (value.length > 1000) throw new HttpError(400, `${name}: too long`);
  return value;
}
