import { parse } from '../config.js';
import { ConfigError } from '../errors.js';
import { createHandler, type HandlerFunction, type HandlerHost, type Pusher } from './handler.js';
import type { JsonHonest } from './json-types.js';
import { type HandlerOptionsInput, handlerOptions, type PushOptions } from './options.js';
import type { SchemaInput, SchemaOutput, StandardSchemaV1 } from './standard-schema.js';

/**
 * A task's name, argument types (and schema) and result type, apart from its handler:
 * what a producer imports to push it typed, and what the worker implements with
 * `q.handler(contract, fn)`. `A` is what push takes, `Run` what the handler receives.
 */
export interface TaskContract<A extends unknown[] = unknown[], R = unknown, Run extends unknown[] = A> {
  readonly name: string;
  /** Checked at push and before each run. */
  readonly args: StandardSchemaV1<A, Run> | undefined;
  /** The same contract, with the handler's result type `R2` (types only). */
  returns<R2>(): TaskContract<A, R2, Run>;
  /** Types only: never set. */
  readonly '~types'?: { args: A; result: R; run: Run };
}

/**
 * Declares a task: `defineTask<[email: string], { sent: string }>('send_welcome')`, or
 * with an argument schema, `defineTask('remind', { args: schema }).returns<string>()`.
 */
export function defineTask<A extends unknown[], R = unknown>(name: string): TaskContract<A, R>;
export function defineTask<S extends StandardSchemaV1<unknown[], unknown[]>>(
  name: string,
  options: { args: S },
): TaskContract<SchemaInput<S>, unknown, SchemaOutput<S>>;
export function defineTask(name: string, options: { args?: StandardSchemaV1<unknown[], unknown[]> } = {}) {
  const checked = parse(handlerOptions, { name, args: options.args }, `task ${name}`);
  const contract: TaskContract = {
    name: checked.name ?? name,
    args: options.args,
    // the result type is the compiler's alone: the same object serves
    returns: <R2>() => contract as TaskContract<unknown[], R2>,
  };
  return Object.freeze(contract);
}

export function isTaskContract(value: unknown): value is TaskContract<never[], unknown, unknown[]> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as TaskContract).name === 'string' &&
    typeof (value as TaskContract).returns === 'function'
  );
}

/** The function a worker implements a contract with: its argument and result types are the contract's. */
export type ContractFunction<A extends unknown[], R, Run extends unknown[]> = HandlerFunction<
  NoInfer<Run>,
  NoInfer<R>
> &
  JsonHonest<A, R>;

/** A contract's handler options: its name and schema come from the contract. */
export type ContractHandlerOptions = Omit<HandlerOptionsInput, 'args' | 'name'>;

/** `q.handler(contract, fn)` or `q.handler(contract, options, fn)` as `q.handler(options, fn)`. */
export function contractHandlerArgs(
  contract: TaskContract<never[], unknown, unknown[]>,
  rest: unknown[],
): [HandlerOptionsInput, unknown] {
  const [optionsOrFn, maybeFn] = rest;
  const options = typeof optionsOrFn === 'function' ? {} : (optionsOrFn as HandlerOptionsInput);
  const fn = typeof optionsOrFn === 'function' ? optionsOrFn : maybeFn;
  return [{ ...options, name: contract.name, args: contract.args }, fn];
}

/** Pushes of a contract's tasks, each checked against its schema first. */
export interface ContractPusher<A extends unknown[], R> extends Pusher<A, R> {
  with(options: PushOptions): Pusher<A, R>;
}

export function contractPusher<A extends unknown[], R>(
  host: HandlerHost,
  contract: TaskContract<A, R, unknown[]>,
): ContractPusher<A, R> {
  const options = parse(
    handlerOptions,
    { name: contract.name, args: contract.args },
    `task ${contract.name}`,
  );
  const unrunnable = () => {
    throw new ConfigError(`task ${contract.name} runs in a worker whose queue implements it`);
  };
  // Never registered: a producer's queue learns no handler from a contract.
  const handler = createHandler<A, R, unknown[]>(host, { ...options, name: contract.name }, unrunnable);
  const checked = (pusher: Pusher<A, R>): Pusher<A, R> => ({
    push: (...args) => {
      handler.parseArgs(args);
      return pusher.push(...args);
    },
    pushMany: (argsList) => {
      for (const args of argsList) handler.parseArgs(args);
      return pusher.pushMany(argsList);
    },
  });
  return { ...checked(handler), with: (pushWith) => checked(handler.with(pushWith)) };
}

/**
 * The contracts of a queue's tasks by name, as a PgTq's type parameter:
 * `new PgTq<{ send_welcome: typeof sendWelcome }>('emails')` types `q.push('send_welcome', args)`.
 */
export type TaskTypes = Record<string, { readonly '~types'?: { args: readonly unknown[]; result: unknown } }>;

/** What `q.push(name, args)` takes for task `N` of `T`, and what its ref resolves to. */
export type PushArgs<T extends TaskTypes, N extends keyof T> = NonNullable<T[N]['~types']>['args'];
export type PushResult<T extends TaskTypes, N extends keyof T> = NonNullable<T[N]['~types']>['result'];
