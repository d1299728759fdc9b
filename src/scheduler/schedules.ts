import { z } from 'zod/v4';
import { parse, taskName as taskNameSchema } from '../config.js';
import type { Queryable } from '../db/queryable.js';
import type { ScheduleRow } from '../db/schedule-rows.js';
import type { Statements } from '../db/statements.js';
import { UnknownHandlerError, ValidationError } from '../errors.js';
import { assertJson } from '../json.js';
import { parseCron } from './cron.js';

const int32 = z.number().int().min(-2147483648).max(2147483647);

/**
 * What to do with fire times missed while no scheduler ran (downtime): `'skip'`
 * pushes only the latest one; `{ backfill: n }` pushes every missed one, at most
 * the latest n. Either way each fire time pushes one task at most.
 */
export type CatchUp = 'skip' | { backfill: number };

export const scheduleOptions = z
  .object({
    /** IANA time zone the expression is read in, DST included. @default 'UTC' */
    tz: z.string().optional(),
    /** Priority of the tasks pushed. @default the handler's priority, else 0 */
    priority: int32.optional(),
    /** @default the handler's maxAttempts, else 10 */
    maxAttempts: z.number().int().min(1).max(1_000_000).optional(),
    /** @default 'skip' */
    catchUp: z
      .union([z.literal('skip'), z.object({ backfill: z.number().int().min(1).max(10_000) }).strict()])
      .optional(),
  })
  .strict();
export type ScheduleOptions = z.input<typeof scheduleOptions>;

const scheduleName = z.string().min(1, 'a schedule name cannot be empty').max(200);

/** The queue a schedule belongs to. */
export interface ScheduleTarget {
  readonly queue: string;
  readonly pool: Queryable;
  readonly statements: Statements;
  /** The queue's handlers: when it has any, the task name must be one of them. */
  readonly handlers?: ReadonlyMap<string, ScheduledHandler>;
}

/** What a schedule uses of a handler (a registered Handler fits). */
export interface ScheduledHandler {
  readonly taskName: string;
  readonly queueName?: string;
  readonly options?: { readonly priority?: number | undefined; readonly maxAttempts?: number | undefined };
  parseArgs?(args: readonly unknown[]): unknown;
}

export interface ScheduleInfo {
  queue: string;
  name: string;
  cron: string;
  tz: string;
  taskName: string;
  args: unknown[];
  priority: number;
  maxAttempts: number;
  catchUp: CatchUp;
  /** null until a scheduler has computed it (new or changed schedule), or when invalid. */
  nextFireAt: Date | null;
  lastFiredAt: Date | null;
  /** Why the schedule is skipped (set by a scheduler for a schedule registered from SQL). */
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * Creates or updates the schedule `scheduleName` of the target's queue: at every
 * fire time of `cron` (5 fields, or 6 with seconds first) in `options.tz`, a
 * scheduler pushes one task `task` with `args`, due at that fire time. The
 * expression, time zone, options and arguments are checked here, before anything
 * is stored. Registering again with the same expression and time zone keeps the
 * schedule's place (missed fire times are caught up per `catchUp`); a new
 * expression or time zone starts from its next fire time.
 */
export async function defineSchedule(
  target: ScheduleTarget,
  name: string,
  cron: string,
  task: string | ScheduledHandler,
  args: readonly unknown[] = [],
  options: ScheduleOptions = {},
): Promise<void> {
  parse(scheduleName, name, 'schedule name', ValidationError);
  const {
    tz = 'UTC',
    priority,
    maxAttempts,
    catchUp = 'skip',
  } = parse(scheduleOptions, options, `schedule "${name}": options`, ValidationError);
  const spec = parseCron(cron, tz);
  const handler = resolveHandler(target, task);
  const taskName = typeof task === 'string' ? task : task.taskName;
  parse(taskNameSchema, taskName, `schedule "${name}": task name`, ValidationError);
  if (!Array.isArray(args)) {
    throw new ValidationError(`schedule "${name}": arguments must be an array (the handler's arguments)`);
  }
  handler?.parseArgs?.(args);
  assertJson(args, `${name}.args`);
  await target.statements.upsertSchedule(target.pool, {
    queue: target.queue,
    name,
    cron: spec.expression,
    tz: spec.tz,
    taskName,
    args,
    priority: priority ?? handler?.options?.priority ?? 0,
    maxAttempts: maxAttempts ?? handler?.options?.maxAttempts ?? 10,
    catchUp: catchUp === 'skip' ? 'skip' : 'backfill',
    backfillLimit: catchUp === 'skip' ? null : catchUp.backfill,
  });
}

/** Removes a schedule (tasks it already pushed stay); returns whether there was one. */
export function removeSchedule(target: ScheduleTarget, name: string): Promise<boolean> {
  return target.statements.deleteSchedule(target.pool, target.queue, name);
}

/** The schedules of the target's queue (or of every queue), by name. */
export async function listSchedules(target: ScheduleTarget, allQueues = false): Promise<ScheduleInfo[]> {
  const rows = await target.statements.listSchedules(target.pool, allQueues ? null : target.queue);
  return rows.map(toInfo);
}

function resolveHandler(target: ScheduleTarget, task: string | ScheduledHandler) {
  if (typeof task !== 'string') {
    if (task.queueName !== undefined && task.queueName !== target.queue) {
      throw new ValidationError(
        `handler "${task.taskName}" is registered on queue "${task.queueName}", not "${target.queue}"`,
      );
    }
    return task;
  }
  const handler = target.handlers?.get(task);
  // As with push: a queue with handlers knows its task names, so an unknown one is a mistake.
  if (!handler && target.handlers && target.handlers.size > 0) {
    throw new UnknownHandlerError(task, [...target.handlers.keys()]);
  }
  return handler;
}

function toInfo(row: ScheduleRow): ScheduleInfo {
  return {
    queue: row.queue,
    name: row.name,
    cron: row.cron,
    tz: row.tz,
    taskName: row.task_name,
    args: row.args,
    priority: row.priority,
    maxAttempts: row.max_attempts,
    catchUp: row.catch_up === 'backfill' ? { backfill: row.backfill_limit ?? 1 } : 'skip',
    nextFireAt: row.next_fire_at,
    lastFiredAt: row.last_fired_at,
    error: row.error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
