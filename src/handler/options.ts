import { z } from 'zod/v4';
import { isTaskId } from '../admin.js';
import { queueName, taskName } from '../config.js';
import { type Client, toQueryable } from '../db/clients.js';
import type { Queryable } from '../db/queryable.js';
import type { TaskContext } from './context.js';
import { isStandardSchema, type StandardSchemaV1 } from './standard-schema.js';

const int32 = z.number().int().min(-2147483648).max(2147483647);

export const backoffOptions = z
  .object({
    /** Delay before the second attempt. @default 1000 */
    baseMs: z.number().int().nonnegative().default(1000),
    /** Each further attempt waits this many times longer. @default 2 */
    factor: z.number().min(1).default(2),
    /** The delay never exceeds this. @default 3_600_000 (one hour) */
    maxMs: z.number().int().nonnegative().default(3_600_000),
    /** Fraction of the delay drawn at random, so failed tasks do not retry in lockstep. @default 0.2 */
    jitter: z.number().min(0).max(1).default(0.2),
  })
  .strict();
export type BackoffOptions = z.input<typeof backoffOptions>;
export type Backoff = z.output<typeof backoffOptions>;

export const handlerOptions = z
  .object({
    /** The task name stored in the database. @default the function's name */
    name: taskName.optional(),
    /**
     * A schema of the argument tuple (zod, valibot, arktype: any Standard Schema), checked
     * at push and again before each run. Its check must be synchronous.
     */
    args: z
      .custom<StandardSchemaV1<unknown[], unknown[]>>(
        isStandardSchema,
        'expected a schema implementing Standard Schema (zod 3.24+ or 4, valibot, arktype)',
      )
      .optional(),
    /** Attempts before the task fails for good. @default 10 */
    maxAttempts: z.number().int().min(1).max(1_000_000).optional(),
    /** Default priority of its tasks; higher runs first. @default 0 */
    priority: int32.optional(),
    /** An attempt running longer than this is aborted and counts as failed. @default 300_000 (five minutes) */
    timeoutMs: z.number().int().positive().max(2_147_483_647).default(300_000),
    backoff: backoffOptions.default(backoffOptions.parse({})),
    /** Run in a transaction that also records the outcome; `this.tx` is its client. @default false */
    transactional: z.boolean().default(false),
    /**
     * At most this many of its tasks run at once per group (`with({ group })`), counted
     * across every worker on the database. Each push must then name a group.
     */
    groupConcurrency: z.number().int().min(1).max(1_000_000).optional(),
    /** At most `limit` of its tasks start per `periodMs`, fleet-wide, or per group with `perGroup`. */
    rateLimit: z
      .object({
        limit: z.number().int().min(1).max(100_000),
        periodMs: z.number().int().min(1).max(2_147_483_647),
        /** Each group has its own limit; each push must then name a group. @default false */
        perGroup: z.boolean().default(false),
      })
      .strict()
      .optional(),
    /**
     * A queue that gets a copy of each task that fails for good (same name and
     * arguments, its error as last_error, key `dead:<id>`), as its workers store it.
     */
    deadLetter: queueName.optional(),
    /** The same as `deadLetter`, spelled as in SQL: give one or the other. */
    dead_letter: queueName.optional(),
    /**
     * Undoes what a succeeded task did, given its arguments and result: `q.undo(id)`
     * then pushes a task that calls it (at most once per task). `this` is as in the handler.
     */
    undo: z
      .custom<UndoFunction>((value) => typeof value === 'function', 'expected a function (args, result)')
      .optional(),
  })
  .strict()
  .refine((o) => !(o.deadLetter && o.dead_letter && o.deadLetter !== o.dead_letter), {
    message: 'deadLetter and dead_letter name different queues: give one',
    path: ['dead_letter'],
  });
/** A handler's `undo`: called with the arguments and the result of the task it undoes. */
export type UndoFunction = (this: TaskContext, args: unknown[], result: unknown) => unknown;

/** (Never a task contract, which q.handler takes in its own place: see defineTask.) */
export type HandlerOptionsInput = z.input<typeof handlerOptions> & { returns?: never };
export type HandlerOptions = z.output<typeof handlerOptions>;
/** Options of a handler with an argument schema: the function's arguments are inferred from it. */
export type HandlerOptionsWithArgs<S extends StandardSchemaV1<unknown[], unknown[]>> = Omit<
  HandlerOptionsInput,
  'args'
> & { args: S };

/** Tasks to run after: refs from push, or task ids. */
const afterTasks = z
  .array(
    z.union([
      z.string().refine(isTaskId, 'expected a task id'),
      z.custom<{ id: string }>(
        (value) =>
          typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string',
        'expected a task ref or id',
      ),
    ]),
  )
  .min(1, 'name at least one task to run after')
  .max(100_000);

export const pushOptions = z
  .object({
    /** Push on this client, inside its transaction if it has one open. @default the queue's pool */
    client: z
      .custom<Client>(
        (value) => toQueryable(value) !== undefined,
        'expected a node-postgres client or pool, or a Kysely, Drizzle or postgres.js transaction',
      )
      .transform((value) => toQueryable(value) as Queryable)
      .optional(),
    /** Run no earlier than this. @default now */
    runAt: z
      .date()
      .refine((date) => !Number.isNaN(date.getTime()), 'invalid date')
      .optional(),
    /** Run this long after runAt (or after now, by the database's clock). */
    delayMs: z.number().int().nonnegative().optional(),
    /** Higher runs first. @default the handler's priority, else 0 */
    priority: int32.optional(),
    /** At most one pending task per key and queue: pushing again returns the pending task. */
    key: z.string().min(1).max(1000).optional(),
    /** @default the handler's maxAttempts, else 10 */
    maxAttempts: z.number().int().min(1).max(1_000_000).optional(),
    /**
     * With a key, when a task with that key is pending: 'keep' it and store nothing
     * (the default), or 'replace' its arguments, runAt, priority, group and ttl with
     * this push's (debounce: it keeps its id and its place).
     */
    onConflict: z.enum(['keep', 'replace']).optional(),
    /** With a key: a running task with that key is cancelled (its signal aborts); implies 'replace'. */
    supersede: z.boolean().optional(),
    /** The group of the task, for its handler's groupConcurrency and rateLimit, and for fair turns. */
    group: z.string().min(1).max(200).optional(),
    /** Not started within this many ms of the push, it never runs, and ends cancelled as expired. */
    ttlMs: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    /**
     * Run once these tasks (refs from push, or ids) have succeeded; it waits meanwhile.
     * A parent that fails or is cancelled cancels it, unless `onFailure: 'run'`; with
     * `'undo'` it also undoes the flow's steps that succeeded, newest first (a saga).
     */
    after: z
      .union([
        afterTasks,
        z
          .object({ tasks: afterTasks, onFailure: z.enum(['cancel', 'run', 'undo']).default('cancel') })
          .strict(),
      ])
      .optional(),
  })
  .strict();
export type PushOptions = z.input<typeof pushOptions>;
