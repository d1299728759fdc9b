import type pg from 'pg';
import { parse } from '../config.js';
import { withTransaction } from '../db/queryable.js';
import { ConfigError, DuplicateHandlerError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TaskRef } from '../task-ref.js';
import type { TaskContext } from './context.js';
import {
  type HandlerOptions,
  type HandlerOptionsInput,
  handlerOptions,
  type PushOptions,
  pushOptions,
} from './options.js';
import type { StandardResult, StandardSchemaV1 } from './standard-schema.js';

export type HandlerFunction<A extends unknown[], R> = (this: TaskContext, ...args: A) => R | Promise<R>;

/** Pushes tasks of one handler with options fixed by `handler.with(options)`. */
export interface Pusher<A extends unknown[], R> {
  /** Stores one task and returns at once. */
  push(...args: A): Promise<TaskRef<R>>;
  /** Stores one task per argument list, in one round trip. */
  pushMany(argsList: readonly A[]): Promise<TaskRef<R>[]>;
}

/**
 * A registered handler. It is still a function: calling it runs the work here and
 * now. `push` stores a task for a worker instead.
 * `A` is what push takes, `Run` what the function receives (they differ when an
 * argument schema transforms), `R` what it returns.
 */
export interface Handler<A extends unknown[] = unknown[], R = unknown, Run extends unknown[] = A>
  extends Pusher<A, R> {
  (...args: A): Promise<R>;
  /** The task name stored in the database. */
  readonly taskName: string;
  /** The name of the queue it is registered on. */
  readonly queueName: string;
  readonly options: Readonly<HandlerOptions>;
  /** Push with options: `{ client }` for the caller's transaction, runAt, delayMs, priority, key, maxAttempts. */
  with(options: PushOptions): Pusher<A, R>;
  /** Runs the function with a context (used by workers): checks the arguments, then calls it. */
  run(context: TaskContext, args: readonly unknown[]): Promise<R>;
  /** The arguments as the function will receive them, or a ValidationError. */
  parseArgs(args: readonly unknown[]): Run;
}

/** A handler of any arguments and result, as a queue holds them. */
export type AnyHandler = Handler<never[], unknown, unknown[]>;

/** What a handler needs from its queue. */
export interface HandlerHost {
  /** The queue's name. */
  readonly queue: string;
  readonly pool: pg.Pool;
  readonly logger: Logger;
  pushTasks(
    items: readonly { name: string; args: readonly unknown[] }[],
    options: PushOptions,
  ): Promise<TaskRef[]>;
}

const neverAborted = new AbortController().signal;

export function createHandler<A extends unknown[], R, Run extends unknown[]>(
  host: HandlerHost,
  options: HandlerOptions & { name: string },
  fn: HandlerFunction<Run, R>,
): Handler<A, Awaited<R>, Run> {
  const schema = options.args as StandardSchemaV1<unknown[], Run> | undefined;
  const taskName = options.name;

  const parseArgs = (args: readonly unknown[]): Run => {
    if (!schema) return args as unknown as Run;
    const result = schema['~standard'].validate(args);
    if (isPromiseLike(result)) {
      // parseArgs answers synchronously (push checks every task before it sends
      // anything), so a schema that can only answer later is refused, and its
      // pending answer is dropped without an unhandled rejection.
      result.then(undefined, () => {});
      throw new ValidationError(
        `${taskName}: the args schema validates asynchronously; pgtq needs a synchronous one (no async refinements or transforms)`,
      );
    }
    if (!result.issues) return result.value;
    throw new ValidationError(`${taskName}: ${describeIssues(result)}`, { cause: result.issues });
  };

  const run = async (context: TaskContext, args: readonly unknown[]): Promise<Awaited<R>> =>
    await fn.apply(context, parseArgs(args));

  const pusher = (pushWith: PushOptions): Pusher<A, Awaited<R>> => {
    parse(pushOptions, pushWith, `${taskName}: push options`, ValidationError);
    return {
      push: async (...args) => {
        const [ref] = await host.pushTasks([{ name: taskName, args }], pushWith);
        return ref as TaskRef<Awaited<R>>;
      },
      pushMany: async (argsList) => {
        if (pushWith.key !== undefined) {
          throw new ValidationError(
            `${taskName}: a key names one task; give each task its own key with queue.pushMany`,
          );
        }
        const refs = await host.pushTasks(
          argsList.map((args) => ({ name: taskName, args })),
          pushWith,
        );
        return refs as TaskRef<Awaited<R>>[];
      },
    };
  };

  const direct = (...args: A): Promise<Awaited<R>> => {
    const context = {
      task: null,
      signal: neverAborted,
      logger: host.logger,
      progress: () => {},
      parents: Promise.resolve([]),
    };
    if (!options.transactional) return run({ ...context, tx: undefined }, args);
    return withTransaction(host.pool, (tx) => run({ ...context, tx }, args));
  };
  const defaultPusher = pusher({});
  return Object.assign(direct, {
    taskName,
    queueName: host.queue,
    options: Object.freeze({ ...options }),
    push: defaultPusher.push,
    pushMany: defaultPusher.pushMany,
    with: pusher,
    run,
    parseArgs,
  });
}

/** `args[0][email]: Invalid email address`, for each issue. */
function describeIssues(result: Extract<StandardResult<unknown>, { issues: unknown }>): string {
  return result.issues
    .map((issue) => {
      const path = (issue.path ?? []).map((part) => (typeof part === 'object' ? part.key : part));
      return `args${path.map((part) => `[${String(part)}]`).join('')}: ${issue.message}`;
    })
    .join('; ');
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Makes a handler from `q.handler`'s arguments: `fn`, or options and `fn`. Its name
 * is `options.name` or the function's, and must be new among `registered`.
 */
export function defineHandler(
  host: HandlerHost,
  registered: ReadonlyMap<string, AnyHandler>,
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
  if (name.startsWith('pgtq.')) throw new ConfigError(`handler: names beginning with "pgtq." are pgtq's own`);
  if (registered.has(name)) throw new DuplicateHandlerError(name);
  return createHandler(host, { ...options, name }, fn) as unknown as AnyHandler;
}
