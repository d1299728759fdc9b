import { type ParseArgsConfig, parseArgs } from 'node:util';
import { isTaskId, type Logger, PgTq } from '../index.js';

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {}

export interface CommandContext {
  argv: string[];
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
}

export interface Command {
  summary: string;
  usage: string;
  run(context: CommandContext): Promise<number | undefined>;
}

const globalOptions = {
  'database-url': { type: 'string' },
  schema: { type: 'string' },
  listen: { type: 'string' },
  'prepared-statements': { type: 'string' },
  queue: { type: 'string', short: 'q' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const GLOBAL_HELP = `Options for every command:
  --database-url <url>  PostgreSQL to use (default: $DATABASE_URL)
  --schema <name>       pgtq's schema (default: $PGTQ_SCHEMA or pgtq)
  --listen <url|off>    where LISTEN connects, e.g. directly to PostgreSQL when the
                        database URL goes through PgBouncer; off: poll only
                        (default: $PGTQ_LISTEN, else the database URL)
  --prepared-statements <on|off>
                        off: unnamed statements, for PgBouncer before 1.21 in
                        transaction mode (default: $PGTQ_PREPARED_STATEMENTS or on)
  -q, --queue <name>    the queue (default: $PGTQ_QUEUE or default)
  --json                machine-readable output
  -v, --verbose         debug logging, and stack traces on errors
  -h, --help            this help`;

/** Runs `parse` (a node:util parseArgs call), reporting what it rejects as bad usage, in one line. */
function parseUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n', 1)[0] ?? 'bad usage');
  }
}

type ParsedCommand<O extends NonNullable<ParseArgsConfig['options']>> = ReturnType<
  typeof parseArgs<{ args: string[]; options: typeof globalOptions & O; allowPositionals: boolean }>
>;

/**
 * Parses a command's arguments: the options every command takes plus `options`.
 * What parseArgs rejects is bad usage. Positional arguments only when asked for.
 */
export function parseCommand<const O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O = {} as O,
  { positionals = false } = {},
): ParsedCommand<O> {
  return parseUsage(() =>
    parseArgs({ args: argv, options: { ...globalOptions, ...options }, allowPositionals: positionals }),
  );
}

/** The value of option `--name` as a positive integer, or `fallback` when it is absent. */
export function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${name} must be a positive integer, got "${value}"`);
  return n;
}

/** The value of option `--name` as a TCP port (0: any free one), or `fallback` when it is absent. */
export function portNumber(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    throw new UsageError(`--${name} must be a port number, got "${value}"`);
  }
  return n;
}

type ConnectionFlags = {
  'database-url'?: string;
  schema?: string;
  listen?: string;
  'prepared-statements'?: string;
};

/**
 * Puts the connection flags into the variables a `new PgTq(name)` without a
 * connection reads ($DATABASE_URL, $PGTQ_SCHEMA, $PGTQ_LISTEN,
 * $PGTQ_PREPARED_STATEMENTS): before handler modules load, they follow the command line.
 */
export function applyConnectionFlags(values: ConnectionFlags): void {
  const flag = values['prepared-statements'];
  if (flag !== undefined && !/^(on|off)$/.test(flag)) {
    throw new UsageError(`--prepared-statements must be on or off, got "${flag}"`);
  }
  if (values['database-url']) process.env.DATABASE_URL = values['database-url'];
  if (values.schema) process.env.PGTQ_SCHEMA = values.schema;
  if (values.listen) process.env.PGTQ_LISTEN = values.listen;
  if (flag) process.env.PGTQ_PREPARED_STATEMENTS = flag;
}

/** The queue named by --queue and the connection flags (or the environment). */
export function openQueue(values: ConnectionFlags & { queue?: string }, logger?: Logger): PgTq {
  applyConnectionFlags(values);
  const url = process.env.DATABASE_URL;
  if (!url) throw new UsageError('no database: set DATABASE_URL or pass --database-url');
  return new PgTq(values.queue ?? process.env.PGTQ_QUEUE ?? 'default', {
    connectionString: url,
    schema: process.env.PGTQ_SCHEMA ?? 'pgtq',
    ...(logger ? { logger } : {}),
  });
}

/** Runs `work` with the queue named by the options, and closes it whatever happens. */
export async function withQueue<T>(
  values: Parameters<typeof openQueue>[0],
  work: (q: PgTq) => Promise<T>,
  logger?: Logger,
): Promise<T> {
  const q = openQueue(values, logger);
  try {
    return await work(q);
  } finally {
    await q.close();
  }
}

/**
 * Closes `queues`, waiting at most `ms`: a connection still trying to reach an
 * unreachable host cannot be closed sooner, and the process exit ends it anyway.
 */
export async function closeQueues(queues: readonly PgTq[], ms = 2_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race([Promise.all(queues.map((q) => q.close())), timeout]);
  clearTimeout(timer);
}

/** Task ids from positional arguments: at least one, each a positive integer. */
export function taskIds(positionals: readonly string[], usage: string): string[] {
  if (positionals.length === 0) throw new UsageError(`expected: ${usage}`);
  for (const id of positionals) {
    if (!isTaskId(id)) throw new UsageError(`"${id}" is not a task id`);
  }
  return [...positionals];
}

/**
 * Progress of a long operation, redrawn in place on stderr when it is a terminal
 * (and not --json); silent otherwise, so scripts and logs stay clean.
 */
export function progress(err: NodeJS.WriteStream, label: string, json = false) {
  const shown = err.isTTY === true && !json;
  let drawn = false;
  return {
    update(done: number) {
      if (!shown) return;
      err.write(`\r${label}: ${done.toLocaleString('en-US')}`);
      drawn = true;
    },
    end() {
      if (drawn) err.write('\n');
    },
  };
}

/**
 * A logger writing one line per message to stderr: `time level message key=value`,
 * or with `json` one JSON object per line (time, level, msg and the fields).
 */
export function lineLogger(
  stream: NodeJS.WritableStream,
  options: { verbose?: boolean; json?: boolean } = {},
): Logger {
  const write = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    const time = new Date().toISOString();
    if (options.json) {
      stream.write(`${JSON.stringify({ time, level, msg: message, ...fields })}\n`);
      return;
    }
    const extra = fields
      ? Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      : [];
    stream.write(`${time} ${level} ${message}${extra.join('')}\n`);
  };
  return {
    debug: options.verbose ? write('debug') : () => {},
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  };
}

interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Beyond the grace period, how long a stop may take before the process exits anyway. */
const STOP_MARGIN_MS = 10_000;

/**
 * Starts `services` in order and runs them until SIGINT or SIGTERM, then stops
 * them all. A signal during start-up stops them too; a start that fails stops
 * what started and rejects (the caller prints one line and exits 1). If stopping
 * takes longer than `graceMs` plus a margin, or a second signal comes, the
 * process exits at once: a signal always ends it.
 */
export async function serveUntilSignal(
  services: readonly Service[],
  options: { log: Logger; graceMs: number; onStarted?: () => void },
): Promise<void> {
  const { log } = options;
  let received: NodeJS.Signals | undefined;
  let stopping: Promise<unknown> | undefined;
  const stopAll = () => {
    stopping ??= Promise.all(services.map((service) => service.stop()));
    return stopping;
  };
  let signalled: () => void = () => {};
  const untilSignal = new Promise<void>((resolve) => {
    signalled = resolve;
  });
  const onSignal = (name: NodeJS.Signals) => {
    if (received) {
      log.warn('second signal: exiting without waiting', { signal: name });
      process.exit(130);
    }
    received = name;
    log.info('stopping: finishing running tasks', { signal: name });
    const deadline = setTimeout(() => {
      log.error('did not stop in time; exiting', { waitedMs: options.graceMs + STOP_MARGIN_MS });
      process.exit(1);
    }, options.graceMs + STOP_MARGIN_MS);
    deadline.unref();
    void stopAll();
    signalled();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    try {
      for (const service of services) {
        if (received) break;
        await service.start();
      }
    } catch (error) {
      await stopAll();
      throw error;
    }
    if (!received) options.onStarted?.();
    await untilSignal;
    await stopAll();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Prints rows as an aligned table. */
export function table(rows: readonly Record<string, unknown>[], columns?: string[]): string {
  if (rows.length === 0) return '(none)\n';
  const keys = columns ?? Object.keys(rows[0] ?? {});
  const cell = (value: unknown) =>
    value === null || value === undefined
      ? ''
      : value instanceof Date
        ? value.toISOString()
        : typeof value === 'object'
          ? JSON.stringify(value)
          : String(value);
  const widths = keys.map((key) => Math.max(key.length, ...rows.map((row) => cell(row[key]).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return `${[line(keys), line(widths.map((w) => '-'.repeat(w))), ...rows.map((row) => line(keys.map((k) => cell(row[k]))))].join('\n')}\n`;
}
