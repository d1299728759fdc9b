import type pg from 'pg';
import { Admin } from './admin.js';
import { type Connection, parse, queueName, resolveConnection, survivePoolErrors } from './config.js';
import { type Notifications, openNotifications } from './db/listener.js';
import { migrate } from './db/migrate.js';
import { Statements } from './db/statements.js';
import { ConfigError } from './errors.js';
import {
  type ContractFunction,
  type ContractHandlerOptions,
  type ContractPusher,
  contractHandlerArgs,
  contractPusher,
  isTaskContract,
  type PushArgs,
  type PushResult,
  type TaskContract,
  type TaskTypes,
} from './handler/contract.js';
import { type AnyHandler, defineHandler, type Handler, type HandlerFunction } from './handler/handler.js';
import type { JsonHonest } from './handler/json-types.js';
import type { HandlerOptionsInput, HandlerOptionsWithArgs, PushOptions } from './handler/options.js';
import { type PushItem, pushTasks, type TaskToPush } from './handler/push.js';
import type { SchemaInput, SchemaOutput, StandardSchemaV1 } from './handler/standard-schema.js';
import { undoTask } from './handler/undo.js';
import { HTTP_TASK, type HttpRequest, type HttpResponse } from './http/request.js';
import type { Logger } from './logger.js';
import { QueueAdmin } from './queue-admin.js';
import type { Runtime } from './runtime.js';
import { Scheduler, type SchedulerOptions } from './scheduler/scheduler.js';
import {
  defineSchedule,
  listSchedules,
  removeSchedule,
  type ScheduledHandler,
  type ScheduleInfo,
  type ScheduleOptions,
} from './scheduler/schedules.js';
import type { ResultOptions, TaskRef } from './task-ref.js';
import { waitForResult } from './task-result.js';
import { type ClaimedTask, type PopOptions, popTask } from './worker/claimed-task.js';
import { Worker, type WorkerOptions } from './worker/worker.js';

/**
 * A named queue in a PostgreSQL database: register handlers on it, push tasks to
 * it (in your own transaction if you like), and run workers over it.
 */
export class PgTq<Tasks extends TaskTypes = TaskTypes> extends QueueAdmin {
  readonly name: string;
  readonly schema: string;
  readonly pool: pg.Pool;
  /** @internal the typed wrappers of sql/ for this schema */
  readonly statements: Statements;
  readonly #handlers = new Map<string, AnyHandler>();
  readonly #ownsPool: boolean;
  readonly #listenConfig: pg.ClientConfig | null;
  #logger: Logger;
  #loggerGiven: boolean;
  #listener: Notifications | undefined;
  #closed = false;
  readonly #services = new Set<Worker | Scheduler>();
  /** @internal */
  protected readonly admin: Admin;
  readonly #runtime: Runtime;

  /**
   * @param name the queue's name; tasks pushed here are run by workers of this queue
   * @param connection a connection string, pg connection options, or `{ pool }`, plus `schema`
   *   (default $PGTQ_SCHEMA, else 'pgtq') and `logger`. @default $DATABASE_URL, else the PG* variables
   */
  constructor(name: string, connection?: Connection) {
    super();
    this.name = parse(queueName, name, 'queue name');
    const resolved = resolveConnection(connection);
    this.schema = resolved.schema;
    this.pool = resolved.pool;
    this.#logger = resolved.logger;
    this.#loggerGiven = resolved.loggerGiven;
    this.#ownsPool = resolved.ownsPool;
    this.#listenConfig = resolved.listenConfig;
    this.statements = new Statements(this.schema, resolved.limits, resolved);
    this.admin = new Admin(this.statements, this.pool, this.name);
    const queue = this;
    this.#runtime = {
      queue: this.name,
      schema: this.schema,
      pool: this.pool,
      statements: this.statements,
      handlers: this.#handlers,
      listening: this.#listenConfig !== null,
      get logger() {
        return queue.#logger;
      },
      listener: () => this.#openListener(),
      pushTasks: (items, options) => pushTasks(this.#runtime, items, options),
      result: (id, options) => waitForResult(this.#runtime, id, options ?? {}),
      progress: async (id) => (await this.admin.getTask(id)).progress,
    };
    if (this.#ownsPool) survivePoolErrors(this.pool, () => this.#logger);
  }

  /** Where pgtq reports what it does (the `logger` option); a no-op by default. */
  get logger(): Logger {
    return this.#logger;
  }

  /** Uses `logger` if this queue was created without one (as the pgtq command does); true if it did. */
  adoptLogger(logger: Logger): boolean {
    if (this.#loggerGiven) return false;
    this.#logger = logger;
    return true;
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
   * Registers `fn` as the handler of tasks named after it (or `options.name`); arguments are checked
   * at push and before each run against `options.args` (zod, valibot, arktype: any Standard Schema).
   */
  handler<A extends unknown[], R>(fn: HandlerFunction<A, R> & JsonHonest<A, R>): Handler<A, Awaited<R>>;
  handler<S extends StandardSchemaV1<unknown[], unknown[]>, R>(
    options: HandlerOptionsWithArgs<S>,
    fn: HandlerFunction<SchemaOutput<S>, R> & JsonHonest<SchemaInput<S>, R>,
  ): Handler<SchemaInput<S>, Awaited<R>, SchemaOutput<S>>;
  handler<A extends unknown[], R>(
    options: Omit<HandlerOptionsInput, 'args'>,
    fn: HandlerFunction<A, R> & JsonHonest<A, R>,
  ): Handler<A, Awaited<R>>;
  /** Implements a task contract (see defineTask): its name and schema, and the function's types, are the contract's. */
  handler<A extends unknown[], R, Run extends unknown[]>(
    contract: TaskContract<A, R, Run>,
    ...rest:
      | [fn: ContractFunction<A, R, Run>]
      | [options: ContractHandlerOptions, fn: ContractFunction<A, R, Run>]
  ): Handler<A, R, Run>;
  handler(first: unknown, ...rest: unknown[]): AnyHandler {
    const [optionsOrFn, maybeFn] = isTaskContract(first)
      ? contractHandlerArgs(first, rest)
      : [first, rest[0]];
    const handler = defineHandler(
      this.#runtime,
      this.#handlers,
      optionsOrFn as HandlerOptionsInput,
      maybeFn as HandlerFunction<unknown[], unknown>,
    );
    this.#handlers.set(handler.taskName, handler);
    return handler;
  }

  /** Pushes of a task declared by a contract, typed by it, without its handler here (a producer's). */
  task<A extends unknown[], R>(contract: TaskContract<A, R, unknown[]>): ContractPusher<A, R> {
    return contractPusher(this.#runtime, contract);
  }

  /** Pushes a task by name; a queue with handlers checks the name is one of them, and its arguments. */
  async push<N extends keyof Tasks & string>(
    name: N,
    args: PushArgs<Tasks, N> = [],
    options: PushOptions = {},
  ): Promise<TaskRef<PushResult<Tasks, N>>> {
    const [ref] = await this.#runtime.pushTasks([{ name, args }], options);
    return ref as TaskRef<PushResult<Tasks, N>>;
  }

  /** Pushes many tasks, each with its own name, arguments and options, in one round trip. */
  pushMany(tasks: readonly TaskToPush[], options: Pick<PushOptions, 'client'> = {}): Promise<TaskRef[]> {
    const items = tasks.map(({ name, args, ...own }): PushItem => ({ name, args, options: own }));
    return this.#runtime.pushTasks(items, options);
  }

  /** Pushes an HTTP task: a worker with the `http` option sends the request (see README, HTTP tasks). */
  pushHttp(request: HttpRequest, options: PushOptions = {}): Promise<TaskRef<HttpResponse>> {
    return this.push(HTTP_TASK, [request], options) as Promise<TaskRef<HttpResponse>>;
  }

  /** Claims the next ready task (or null) under a lease of `leaseMs`: `complete` or `fail` it in time. */
  pop(options: PopOptions = {}): Promise<ClaimedTask | null> {
    return popTask(this.#runtime, options);
  }

  /** A worker running this queue's tasks; call `start()`. */
  worker(options: WorkerOptions = {}): Worker {
    return this.#track(new Worker(this.#runtime, options));
  }

  /** A scheduler for this queue's schema (it serves every queue in it); call `start()`. */
  scheduler(options: SchedulerOptions = {}): Scheduler {
    return this.#track(new Scheduler(this.#runtime, options));
  }

  #track<T extends Worker | Scheduler>(service: T): T {
    this.#services.add(service);
    service.once('stop', () => this.#services.delete(service));
    return service;
  }

  /**
   * Registers (or updates) a cron schedule (five fields, or six with seconds; `tz` defaults to UTC): each
   * fire time pushes one task of `task` (a handler or a task name) with `args`, however many schedulers run.
   */
  schedule(
    name: string,
    cron: string,
    task: string | ScheduledHandler,
    args: readonly unknown[] = [],
    options: ScheduleOptions = {},
  ): Promise<void> {
    return defineSchedule(this.#runtime, name, cron, task, args, options);
  }

  /** Removes a schedule; returns whether it existed. */
  unschedule(name: string): Promise<boolean> {
    return removeSchedule(this.#runtime, name);
  }

  /** This queue's schedules, or (allQueues) those of every queue in the schema. */
  schedules(options: { allQueues?: boolean } = {}): Promise<ScheduleInfo[]> {
    return listSchedules(this.#runtime, options.allQueues);
  }

  /** Pushes a task that runs succeeded task `id`'s `undo`, at most once (later calls return it). */
  undo(id: string): Promise<TaskRef> {
    return undoTask(this.#runtime, id);
  }

  /** Task `id`'s result once it succeeds (woken by NOTIFY); a TaskFailedError if it fails or is cancelled. */
  result<R = unknown>(id: string, options: ResultOptions = {}): Promise<R> {
    return this.#runtime.result<R>(id, options);
  }

  /** The LISTEN connection shared by this instance's workers and waiters. */
  #openListener(): Notifications {
    if (this.#closed) throw new ConfigError(`queue "${this.name}" is closed`);
    this.#listener ??= openNotifications(this.#listenConfig, this.schema, this.#runtime.logger);
    return this.#listener;
  }

  /** Stops its workers and schedulers, then closes the LISTEN connection and its own pool. Idempotent. */
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
}
