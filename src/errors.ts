/** Every error pgtq throws is a PgTqError with a stable `code`. */
export class PgTqError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad configuration: connection, schema name, worker or scheduler options. */
export class ConfigError extends PgTqError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_PGTQ_CONFIG', message, options);
  }
}

/** Bad input at a boundary: task arguments, push options, cron expressions. Nothing was stored. */
export class ValidationError extends PgTqError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_PGTQ_VALIDATION', message, options);
  }
}

/** Task arguments or a result that cannot be stored as JSON. Nothing was stored. */
export class NotJsonError extends PgTqError {
  /** Where in the value the problem is, such as `args[1].tags[0]`. */
  readonly path: string;
  constructor(path: string, message: string) {
    super('ERR_PGTQ_NOT_JSON', `${path}: ${message}`);
    this.path = path;
  }
}

/**
 * The JSON of a task's arguments, or of its result, is larger than the queue
 * allows (the `maxArgsBytes` and `maxResultBytes` options). Nothing was stored.
 */
export class PayloadTooLargeError extends PgTqError {
  /** The size of the JSON, in bytes of UTF-8. */
  readonly bytes: number;
  readonly limit: number;
  /** @param what the value, naming its task: `send_mail.args`, `tasks[3].args of send_mail`, `result` */
  constructor(what: string, bytes: number, limit: number, option: 'maxArgsBytes' | 'maxResultBytes') {
    super(
      'ERR_PGTQ_TOO_LARGE',
      `${what}: ${bytes} bytes of JSON, over the limit of ${limit} bytes (the ${option} option)`,
    );
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** A task name with no handler registered on this queue. */
export class UnknownHandlerError extends PgTqError {
  readonly taskName: string;
  constructor(taskName: string, known: readonly string[]) {
    const hint = suggest(taskName, known);
    super(
      'ERR_PGTQ_UNKNOWN_HANDLER',
      `No handler named "${taskName}"${hint ? `; did you mean "${hint}"?` : ''} Known: ${known.join(', ') || '(none)'}.`,
    );
    this.taskName = taskName;
  }
}

/** Two handlers registered under one name. */
export class DuplicateHandlerError extends PgTqError {
  constructor(taskName: string) {
    super('ERR_PGTQ_DUPLICATE_HANDLER', `A handler named "${taskName}" is already registered on this queue.`);
  }
}

export class TaskNotFoundError extends PgTqError {
  readonly taskId: string;
  constructor(taskId: string) {
    super('ERR_PGTQ_TASK_NOT_FOUND', `No task with id ${taskId}.`);
    this.taskId = taskId;
  }
}

/**
 * The worker's lease on a task ran out and the task was handed on: this attempt's
 * outcome was not stored, so it cannot overwrite the newer attempt.
 */
export class LeaseLostError extends PgTqError {
  readonly taskId: string;
  constructor(taskId: string) {
    super('ERR_PGTQ_LEASE_LOST', `Task ${taskId}: the lease was lost; this attempt's outcome was discarded.`);
    this.taskId = taskId;
  }
}

/** A task ended as failed or cancelled; raised by `ref.result()`. */
export class TaskFailedError extends PgTqError {
  readonly taskId: string;
  readonly state: 'failed' | 'cancelled';
  constructor(taskId: string, state: 'failed' | 'cancelled', error: string | null) {
    super('ERR_PGTQ_TASK_FAILED', `Task ${taskId} ${state}: ${error ?? 'no error recorded'}`);
    this.taskId = taskId;
    this.state = state;
  }
}

/** Waiting for something took longer than allowed. */
export class TimeoutError extends PgTqError {
  constructor(message: string) {
    super('ERR_PGTQ_TIMEOUT', message);
  }
}

/** The schema is missing, or older than this version of pgtq: run the migrations. */
export class NotMigratedError extends PgTqError {
  readonly schema: string;
  constructor(schema: string, options?: ErrorOptions) {
    super(
      'ERR_PGTQ_NOT_MIGRATED',
      `schema "${schema}" is not migrated (or is older than this version of pgtq): run "pgtq migrate" or q.migrate() first`,
      options,
    );
    this.schema = schema;
  }
}

/** invalid_schema_name, undefined_table, undefined_function, undefined_column: what an unmigrated schema answers. */
const NOT_MIGRATED = new Set(['3F000', '42P01', '42883', '42703']);

/** `error` as a NotMigratedError when PostgreSQL's answer says the schema is not migrated, else itself. */
export function notMigrated(error: unknown, schema: string): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NOT_MIGRATED.has(code)
    ? new NotMigratedError(schema, { cause: error })
    : error;
}

/**
 * Whether `error` says the connection was cut while in use (class 57P, operator
 * intervention: a terminated backend or a restart; class 08, connection exception),
 * so trying again on a new connection may well succeed.
 */
export function isConnectionLost(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('57P') || code.startsWith('08'));
}

/** The closest of `known` to `name` when it is close enough to be a likely typo. */
export function suggest(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** `error` as an Error, for events and logs that expect one. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
