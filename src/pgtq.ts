import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { z } from 'zod';
import { Admin, type CancelResult, type ProgressOptions, type TaskFilter } from './admin.js';
import { type Connection, parse, queueName, resolveConnection } from './config.js';
import { Listener } from './db/listener.js';
import { migrate } from './db/migrate.js';
import { Statements, type TaskRow } from './db/statements.js';
import {
  ConfigError,
  DuplicateHandlerError,
  TaskFailedError,
  TaskNotFoundError,
  TimeoutError,
} from './errors.js';
import { createHandler, type Handler, type HandlerFunction } from './handler/handler.js';
import {
  backoffOptions,
  type HandlerOptionsInput,
  handlerOptions,
  type PushOptions,
} from './handler/options.js';
import { type PushItem, pushTasks } from './handler/push.js';
import type { Logger } from './logger.js';
import { Scheduler, type SchedulerOptions } from './scheduler/scheduler.js';
import {
  defineSchedule,
  listSchedules,
  removeSchedule,
  type ScheduledHandler,
  type ScheduleInfo,
  type ScheduleOptions,
} from './scheduler/schedules.js';
import { isFinished } from './states.js';
import type { ResultOptions, TaskRef } from './task-ref.js';
import { ClaimedTask } from './worker/claimed-task.js';
import { Worker, type WorkerOptions } from './worker/worker.js';

/** Options of a handler with an argument schema: the function's arguments are inferred from it. */
type WithArgs<S extends z.ZodType<unknown[], unknown[]>> = Omit<HandlerOptionsInput, 'args'> & { args: S };
type AnyHandler = Handler<never[], unknown, unknown[]>;
/** One task of `pushMany`: a task name, its arguments, and its own push options. */
export type TaskToPush = { name: string; args: readonly unknown[] } & Omit<PushOptions, 'client'>;

const DEFAULT_LEASE_MS = 20_000;
const RESULT_POLL_MS = 5_000;

/**
 * A named queue in a PostgreSQL database: register handlers on it, push tasks to
 * it (in your own transaction if you like), and run workers over it.
 */
export class PgTq {
  readonly name: string;
  readonly schema: string;
  readonly pool: pg.Pool;
  readonly logger: Logger;
  /** @internal the typed wrappers of sql/ for this schema */
  readonly statements: Statements;
  readonly #handlers = new Map<string, AnyHandler>();
  readonly #ownsPool: boolean;
  readonly #clientConfig: pg.ClientConfig;
  #listener: Listener | undefined;
  #closed = false;
  readonly #services = new Set<Worker | Scheduler>();
  readonly #admin: Admin;

  /**
   * @param name the queue's name; tasks pushed here are run by workers of this queue
   * @param connection a connection string, pg connection options, or `{ pool }`, plus
   *   `schema` (default 'pgtq') and `logger`. @default the PG* environment variables
   */
  constructor(name: string, connection?: Connection) {
    this.name = parse(queueName, name, 'queue name');
    const resolved = resolveConnection(connection);
    this.schema = resolved.schema;
    this.pool = resolved.pool;
    this.logger = resolved.logger;
    this.#ownsPool = resolved.ownsPool;
    this.#clientConfig = resolved.clientConfig;
    this.statements = new Statements(this.schema, resolved.limits);
    this.#admin = new Admin(this.statements, this.pool, this.name);
    // An idle pooled connection that dies must not crash the process.
    if (this.#ownsPool)
      this.pool.on('error', (error) => this.logger.warn('idle connection lost', { error: error.message }));
  }

  /** Creates or updates pgtq's schema. Idempotent; safe when several processes start at once. */
  migrate(): Promise<string[]> {
    return migrate(this.pool, this.schema, this.logger);
  }

  /** The handlers registered on this queue, by task name. */
  get handlers(): ReadonlyMap<string, AnyHandler> {
    return this.#handlers;
  }

  /**
   * Registers `fn` as the handler of tasks named after it (or `options.name`).
   * With `options.args` (a zod tuple) arguments are checked at push and before each run.
   */
  handler<A extends unknown[], R>(fn: HandlerFunction<A, R>): Handler<A, Awaited<R>>;
  handler<S extends z.ZodType<unknown[], unknown[]>, R>(
    options: WithArgs<S>,
    fn: HandlerFunction<z.output<S>, R>,
  ): Handler<z.input<S>, Awaited<R>, z.output<S>>;
  handler<A extends unknown[], R>(
    options: Omit<HandlerOptionsInput, 'args'>,
    fn: HandlerFunction<A, R>,
  ): Handler<A, Awaited<R>>;
  handler(
    optionsOrFn: HandlerOptionsInput | HandlerFunction<unknown[], unknown>,
    maybeFn?: HandlerFunction<unknown[], unknown>,
  ): AnyHandler {
    const fn = typeof optionsOrFn === 'function' ? optionsOrFn : maybeFn;
    if (typeof fn !== 'function') throw new ConfigError('handler: expected a function');
    const options = parse(
      handlerOptions,
      typeof optionsOrFn === 'function' ? {} : optionsOrFn,
      'handler options',
    );
    const name = options.name ?? fn.name;
    if (!name) throw new ConfigError('handler: an anonymous function needs a name: q.handler({ name }, fn)');
    if (this.#handlers.has(name)) throw new DuplicateHandlerError(name);
    const handler = createHandler(this.#handlerHost(), { ...options, name }, fn) as unknown as AnyHandler;
    this.#handlers.set(name, handler);
    return handler;
  }

  /**
   * Pushes a task by name, without the handler's code at hand. When this queue has
   * handlers registered, the name must be one of them and its arguments are checked.
   */
  async push(name: string, args: readonly unknown[] = [], options: PushOptions = {}): Promise<TaskRef> {
    const [ref] = await pushTasks(this.#pushTarget(), [{ name, args }], options);
    return ref as TaskRef;
  }

  /** Pushes many tasks, each with its own name, arguments and options, in one round trip. */
  pushMany(tasks: readonly TaskToPush[], options: Pick<PushOptions, 'client'> = {}): Promise<TaskRef[]> {
    const items = tasks.map(({ name, args, ...own }): PushItem => ({ name, args, options: own }));
    return pushTasks(this.#pushTarget(), items, options);
  }

  /**
   * Claims the next ready task of this queue, or returns null. The claim holds a
   * lease of `leaseMs`; call `complete` or `fail` on the task before it runs out.
   */
  async pop(options: { names?: readonly string[]; leaseMs?: number } = {}): Promise<ClaimedTask | null> {
    const leaseId = randomUUID();
    const [row] = await this.statements.claimMany(this.pool, {
      queue: this.name,
      names: options.names ?? null,
      limit: 1,
      leaseId,
      leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
      workerId: `pop:${process.pid}`,
    });
    if (!row) return null;
    const backoff = this.#handlers.get(row.name)?.options.backoff ?? backoffOptions.parse({});
    return new ClaimedTask(row, leaseId, { statements: this.statements, db: this.pool, backoff });
  }

  /** A worker running this queue's tasks; call `start()`. */
  worker(options: WorkerOptions = {}): Worker {
    return this.#track(new Worker(this, options));
  }

  /** A scheduler for this queue's schema (it serves every queue in it); call `start()`. */
  scheduler(options: SchedulerOptions = {}): Scheduler {
    return this.#track(new Scheduler(this, options));
  }

  #track<T extends Worker | Scheduler>(service: T): T {
    this.#services.add(service);
    service.once('stop', () => this.#services.delete(service));
    return service;
  }

  /**
   * Registers (or updates) a cron schedule: each fire time pushes one task of
   * `task` (a handler or a task name) with `args`, however many schedulers run.
   * Five fields, or six with seconds; `tz` defaults to UTC.
   */
  schedule(
    name: string,
    cron: string,
    task: string | ScheduledHandler,
    args: readonly unknown[] = [],
    options: ScheduleOptions = {},
  ): Promise<void> {
    return defineSchedule(this, name, cron, task, args, options);
  }

  /** Removes a schedule; returns whether it existed. */
  unschedule(name: string): Promise<boolean> {
    return removeSchedule(this, name);
  }

  /** This queue's schedules. */
  schedules(): Promise<ScheduleInfo[]> {
    return listSchedules(this);
  }

  /** One task by id, pending or finished. */
  async getTask(id: string) {
    const task = await this.statements.getTask(this.pool, id);
    if (!task) throw new TaskNotFoundError(id);
    return task;
  }

  /** Tasks of this queue, pending or finished, newest first. */
  listTasks(filter: TaskFilter = {}): Promise<TaskRow[]> {
    return this.#admin.listTasks(filter);
  }

  /** Makes failed or cancelled tasks ready again with fresh attempts; returns the ids retried. */
  retry(ids: string | readonly string[]): Promise<string[]> {
    return this.#admin.retry(ids);
  }

  /** Retries every failed task of this queue (of one task name, if given); returns how many. */
  retryFailed(options: { name?: string } & ProgressOptions = {}): Promise<number> {
    return this.#admin.retryFailed(options);
  }

  /**
   * Cancels pending tasks at once; asks running ones to stop (their handler's
   * signal aborts, in whatever process runs it, and they end cancelled).
   */
  cancel(ids: string | readonly string[], reason?: string): Promise<CancelResult> {
    return this.#admin.cancel(ids, reason);
  }

  /** Moves a pending task to run at `runAt`; false if it is not pending. */
  reschedule(id: string, runAt: Date): Promise<boolean> {
    return this.#admin.reschedule(id, runAt);
  }

  /** Deletes pending or finished tasks for good (running ones: cancel them); returns the ids deleted. */
  delete(ids: string | readonly string[]): Promise<string[]> {
    return this.#admin.delete(ids);
  }

  /** Pending (scheduled or ready) tasks of this queue. */
  length(): Promise<number> {
    return this.#admin.length();
  }

  /** Deletes this queue's pending tasks; running tasks and history stay. Returns how many. */
  flush(options: ProgressOptions = {}): Promise<number> {
    return this.#admin.flush(options);
  }

  /**
   * Resolves with the result of task `id` once it succeeds (from any process),
   * woken by NOTIFY; rejects with TaskFailedError if it fails or is cancelled.
   */
  async result<R = unknown>(id: string, options: ResultOptions = {}): Promise<R> {
    const listener = this.listener();
    let wake: () => void = () => {};
    const unsubscribe = await listener.on('task_finished', (queue) => queue === this.name && wake());
    const stopReconnect = listener.onReconnect(() => wake());
    const deadline =
      options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
    try {
      for (;;) {
        options.signal?.throwIfAborted();
        const task = await this.getTask(id);
        if (isFinished(task.state)) {
          if (task.state === 'succeeded') return task.result as R;
          throw new TaskFailedError(id, task.state === 'failed' ? 'failed' : 'cancelled', task.error);
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new TimeoutError(`Task ${id} did not finish within ${options.timeoutMs} ms`);
        // NOTIFY is a hint; the slow poll covers one lost while reconnecting.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(left, RESULT_POLL_MS));
          options.signal?.addEventListener('abort', done, { once: true });
          function done() {
            clearTimeout(timer);
            options.signal?.removeEventListener('abort', done);
            resolve();
          }
          wake = done;
        });
      }
    } finally {
      unsubscribe();
      stopReconnect();
    }
  }

  /** @internal the LISTEN connection shared by this instance's workers and waiters */
  listener(): Listener {
    if (this.#closed) throw new ConfigError(`queue "${this.name}" is closed`);
    this.#listener ??= new Listener(this.#clientConfig, this.schema, this.logger);
    return this.#listener;
  }

  /**
   * Stops the workers and schedulers made by this instance (see Worker.stop), then
   * closes the LISTEN connection and, if pgtq created it, the pool. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Workers and schedulers need the connections to stop cleanly.
    await Promise.all([...this.#services].map((service) => service.stop()));
    await this.#listener?.close();
    if (this.#ownsPool) await this.pool.end();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #pushTarget() {
    return {
      name: this.name,
      pool: this.pool,
      statements: this.statements,
      handlers: this.#handlers,
      result: this.result.bind(this),
    };
  }

  #handlerHost() {
    return {
      name: this.name,
      pool: this.pool,
      logger: this.logger,
      pushTasks: (items: readonly PushItem[], options: PushOptions) =>
        pushTasks(this.#pushTarget(), items, options),
    };
  }
}
