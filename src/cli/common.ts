import { type ParseArgsConfig, parseArgs } from 'node:util';
import { isTaskId } from '../admin.js';
import type { Logger } from '../logger.js';
import { PgTq } from '../pgtq.js';

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
  queue: { type: 'string', short: 'q' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const GLOBAL_HELP = `Options for every command:
  --database-url <url>  PostgreSQL to use (default: $DATABASE_URL)
  --schema <name>       pgtq's schema (default: $PGTQ_SCHEMA or pgtq)
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

/** The queue named by --queue, --database-url and --schema (or the environment). */
export function openQueue(
  values: { 'database-url'?: string; schema?: string; queue?: string },
  logger?: Logger,
): PgTq {
  const url = values['database-url'] ?? process.env.DATABASE_URL;
  if (!url) throw new UsageError('no database: set DATABASE_URL or pass --database-url');
  return new PgTq(values.queue ?? process.env.PGTQ_QUEUE ?? 'default', {
    connectionString: url,
    schema: values.schema ?? process.env.PGTQ_SCHEMA ?? 'pgtq',
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

/** A logger writing one line per message to stderr, as `time level message key=value`. */
export function lineLogger(stream: NodeJS.WriteStream, verbose: boolean): Logger {
  const write = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    const extra = fields
      ? Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      : [];
    stream.write(`${new Date().toISOString()} ${level} ${message}${extra.join('')}\n`);
  };
  return {
    debug: verbose ? write('debug') : () => {},
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
  };
}

/** Resolves once SIGINT or SIGTERM arrives. */
export function untilSignal(): { signal: AbortSignal; received: () => NodeJS.Signals | undefined } {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    process.once(name, () => {
      received = name;
      controller.abort();
    });
  }
  return { signal: controller.signal, received: () => received };
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
