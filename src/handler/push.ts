import { parse } from '../config.js';
import { isPool, type Queryable, withTransaction } from '../db/queryable.js';
import type { Statements } from '../db/statements.js';
import type { PushInput } from '../db/task-rows.js';
import { UnknownHandlerError, ValidationError } from '../errors.js';
import { HTTP_TASK, httpArgs } from '../http/request.js';
import { assertJson, assertJsonSize, unstorable } from '../json.js';
import { type ResultSource, TaskRef } from '../task-ref.js';
import { tracedPush } from '../tracing.js';
import type { AnyHandler } from './handler.js';
import { type PushOptions, pushOptions } from './options.js';

/** Options of one task in a batch (built once: zod compiles a schema on first use). */
const taskPushOptions = pushOptions.omit({ client: true });

/** One task of `pushMany`: a task name, its arguments, and its own push options. */
export type TaskToPush = { name: string; args: readonly unknown[] } & Omit<PushOptions, 'client'>;

/** One task to push: its name, its arguments, and options of its own. */
export interface PushItem {
  name: string;
  args: readonly unknown[];
  options?: Omit<PushOptions, 'client'>;
}

export interface PushTarget extends ResultSource {
  readonly queue: string;
  readonly pool: Queryable;
  readonly statements: Statements;
  readonly handlers: ReadonlyMap<string, AnyHandler>;
}

/**
 * Checks every task, then stores them all in one statement on `shared.client` (the
 * caller's transaction) or the pool. Any bad task rejects the whole call before
 * anything is sent, so a push either stores every task or none.
 */
export async function pushTasks(
  target: PushTarget,
  items: readonly PushItem[],
  shared: PushOptions,
): Promise<TaskRef[]> {
  const { client, ...sharedOptions } = parse(pushOptions, shared, 'push options', ValidationError);
  const inputs = items.map((item, index) =>
    toInput(target, item, sharedOptions, items.length > 1 ? `tasks[${index}]` : ''),
  );
  if (inputs.length === 0) return [];
  const db = client ?? target.pool;
  const ids = await tracedPush(
    target.statements.schema,
    db,
    target.queue,
    inputs.map((input) => input.name),
    () => pushInputs(target, db, inputs),
    (rows) => rows.flatMap((row) => (row.inserted && row.id !== null ? [row.id] : [])),
  );
  return inputs.map(
    (input, index) =>
      new TaskRef(target, {
        id: ids[index]?.id as string,
        queue: input.queue,
        name: input.name,
        inserted: ids[index]?.inserted ?? false,
      }),
  );
}

/** The parents' ids and what their failure does, from the `after` push option. */
function afterInput(after: NonNullable<PushOptions['after']>): PushInput['after'] {
  const { tasks, onFailure = 'cancel' } = Array.isArray(after) ? { tasks: after } : after;
  return { parents: tasks.map((task) => (typeof task === 'string' ? task : task.id)), onFailure };
}

async function pushInputs(target: PushTarget, db: Queryable, inputs: PushInput[]) {
  const { statements } = target;
  if (inputs.some((input) => input.after)) return pushWithParents(target, db, inputs);
  const push = (batch: PushInput[]) =>
    refusedAsValidation(
      batch.length === 1 && batch[0] ? statements.pushOne(db, batch[0]) : statements.pushMany(db, batch),
    );
  if (inputs.some((input) => input.replace)) return pushReplacing(target, db, inputs);
  const rows = await push(inputs);
  const results = rows.map((row) => ({ id: row.id, inserted: row.inserted }));
  // A key whose pending task was committed by another transaction while this
  // statement ran is neither inserted nor visible to it; a second statement sees it.
  const unseen = results.flatMap((result, index) => (result.id === null ? [index] : []));
  if (unseen.length > 0) {
    const again = await push(unseen.map((index) => inputs[index] as PushInput));
    again.forEach((row, i) => {
      results[unseen[i] as number] = { id: row.id, inserted: row.inserted };
    });
  }
  return results;
}

/**
 * Tasks that replace a pending one with their key: one statement each (an
 * INSERT … ON CONFLICT DO UPDATE, which waits for a claim of that task and then
 * inserts instead), all in one transaction, the caller's if it has one.
 */
async function pushReplacing(target: PushTarget, db: Queryable, inputs: PushInput[]) {
  const run = async (tx: Queryable) => {
    const results: { id: string | null; inserted: boolean }[] = [];
    for (const input of inputs) {
      const [row] = await refusedAsValidation(
        input.replace ? target.statements.pushReplace(tx, input) : target.statements.pushOne(tx, input),
      );
      results.push({ id: row?.id ?? null, inserted: row?.inserted ?? false });
    }
    return results;
  };
  return inputs.length === 1 || !isPool(db) ? run(db) : withTransaction(db, run);
}

/**
 * A batch with tasks that run after others: those in one statement (push_after),
 * the others as usual, all in one transaction, the caller's if it has one.
 */
async function pushWithParents(target: PushTarget, db: Queryable, inputs: PushInput[]) {
  const run = async (tx: Queryable) => {
    const results: { id: string | null; inserted: boolean }[] = inputs.map(() => ({
      id: null,
      inserted: true,
    }));
    const split = (after: boolean) =>
      inputs.flatMap((input, i) => (Boolean(input.after) === after ? [i] : []));
    const [withParents, without] = [split(true), split(false)];
    if (without.length > 0) {
      const rest = await pushInputs(
        target,
        tx,
        without.map((i) => inputs[i] as PushInput),
      );
      rest.forEach((result, k) => {
        results[without[k] as number] = result;
      });
    }
    const ids = await refusedAsValidation(
      target.statements.pushAfter(
        tx,
        withParents.map((i) => inputs[i] as PushInput),
      ),
    );
    ids.forEach((id, k) => {
      results[withParents[k] as number] = { id, inserted: true };
    });
    return results;
  };
  return isPool(db) ? withTransaction(db, run) : run(db);
}

function toInput(
  target: PushTarget,
  item: PushItem,
  shared: Omit<PushOptions, 'client'>,
  where: string,
): PushInput {
  const at = where ? `${where}: ` : '';
  if (typeof item.name !== 'string' || item.name.length === 0) {
    throw new ValidationError(`${at}a task name must be a non-empty string`);
  }
  const own = item.options ? parse(taskPushOptions, item.options, `${at}options`, ValidationError) : {};
  const options = { ...shared, ...own };
  // PostgreSQL refuses U+0000 in text, and the driver would replace a lone surrogate.
  const badName = unstorable(item.name);
  if (badName) throw new ValidationError(`${at}the task name ${JSON.stringify(item.name)} ${badName}`);
  for (const field of ['key', 'group'] as const) {
    const bad = options[field] && unstorable(options[field]);
    if (bad)
      throw new ValidationError(`${at}${item.name}: the ${field} ${JSON.stringify(options[field])} ${bad}`);
  }
  if (!Array.isArray(item.args)) {
    throw new ValidationError(
      `${at}${item.name}: arguments must be an array (the handler's positional arguments)`,
    );
  }
  const handler = target.handlers.get(item.name);
  // A queue with no handlers here is a pure producer and may push any name; a
  // queue that has handlers knows its names, so an unknown one is a mistake.
  // HTTP tasks need no handler here: a worker with `http` runs them.
  if (item.name === HTTP_TASK) parse(httpArgs, item.args, `${at}${HTTP_TASK}.args`, ValidationError);
  else if (!handler && target.handlers.size > 0)
    throw new UnknownHandlerError(item.name, [...target.handlers.keys()]);
  handler?.parseArgs(item.args);
  checkFlow(item.name, handler, options, at);
  const atMost = assertJson(item.args, `${where || item.name}.args`);
  const what = where ? `${where}.args of ${item.name}` : `${item.name}.args`;
  const limit = target.statements.limits.maxArgsBytes;
  const argsJson = assertJsonSize(item.args, atMost, limit, what, 'maxArgsBytes');
  return {
    queue: target.queue,
    name: item.name,
    args: item.args,
    argsJson,
    priority: options.priority ?? handler?.options.priority,
    run_at: options.runAt,
    delay_ms: options.delayMs,
    max_attempts: options.maxAttempts ?? handler?.options.maxAttempts,
    key: options.key,
    group_key: options.group,
    ttl_ms: options.ttlMs,
    replace: options.onConflict === 'replace' || options.supersede === true,
    supersede: options.supersede,
    after: options.after && afterInput(options.after),
  };
}

/** Refuses what flow control could not honour: a group missing where limits need one, a TTL ending too soon. */
function checkFlow(
  name: string,
  handler: AnyHandler | undefined,
  options: Omit<PushOptions, 'client'>,
  at: string,
) {
  const limits = handler?.options;
  if (options.group === undefined && (limits?.groupConcurrency || limits?.rateLimit?.perGroup)) {
    const which = limits.groupConcurrency ? 'groupConcurrency' : 'rateLimit.perGroup';
    throw new ValidationError(`${at}${name}: its ${which} holds per group; push it with .with({ group })`);
  }
  if (options.after && options.key !== undefined) {
    throw new ValidationError(`${at}${name}: a task that runs after others cannot have a key`);
  }
  if ((options.onConflict !== undefined || options.supersede) && options.key === undefined) {
    throw new ValidationError(`${at}${name}: onConflict and supersede need a key`);
  }
  if (options.ttlMs === undefined) return;
  const dueIn = (options.runAt ? options.runAt.getTime() - Date.now() : 0) + (options.delayMs ?? 0);
  if (dueIn >= options.ttlMs) {
    throw new ValidationError(`${at}${name}: its ttlMs of ${options.ttlMs} ms ends before it is due`);
  }
}

/**
 * `statement`, with pgtq's own refusals of bad input in the database (a message
 * 'pgtq: …', invalid_parameter_value: task_group, push_after_many, undo_task) as
 * a ValidationError whose message begins with `what`.
 */
export function refusedAsValidation<T>(statement: Promise<T>, what = ''): Promise<T> {
  return statement.catch((error: unknown) => {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (code !== '22023' || typeof message !== 'string' || !message.startsWith('pgtq: ')) throw error;
    throw new ValidationError(`${what}${message.slice('pgtq: '.length)}`, { cause: error });
  });
}
