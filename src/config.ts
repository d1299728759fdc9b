import pg from 'pg';
// zod is the app's own (a peer dependency): its zod/v4 entry is the same API in zod 3.25+ and 4.
import { z } from 'zod/v4';
import { ConfigError, suggest, type ValidationError } from './errors.js';
import { type Logger, silentLogger } from './logger.js';

/**
 * A schema name pgtq can own: lower case so that psql users never need quotes,
 * short enough that "<schema>.task_scheduled" fits PostgreSQL's 63-byte channel names.
 */
export const schemaName = z
  .string()
  .regex(
    /^[a-z_][a-z0-9_]{0,39}$/,
    'a schema name is 1–40 characters of a–z, 0–9 and _, not starting with a digit',
  );

export const queueName = z.string().min(1).max(200);
export const taskName = z.string().min(1, 'a task name cannot be empty').max(200);

const logger = z.custom<Logger>(
  (value) =>
    typeof value === 'object' && value !== null && 'warn' in value && typeof value.warn === 'function',
  'expected a logger with debug, info, warn and error methods',
);

/** A bound on the limits: PostgreSQL's jsonb cannot hold a value of 256 MiB or more. */
const JSONB_MAX_BYTES = 255 * 1024 * 1024;
/** 1 MiB: larger values are seldom meant, and every claim and result read carries them. */
const DEFAULT_MAX_JSON_BYTES = 1_048_576;
const jsonBytes = z.number().int().min(2).max(JSONB_MAX_BYTES);

/** How large the JSON that pgtq stores for one task may be, in bytes of UTF-8. */
export interface PayloadLimits {
  readonly maxArgsBytes: number;
  readonly maxResultBytes: number;
}

export const defaultLimits: PayloadLimits = Object.freeze({
  maxArgsBytes: DEFAULT_MAX_JSON_BYTES,
  maxResultBytes: DEFAULT_MAX_JSON_BYTES,
});

const connectionOptions = z
  .object({
    connectionString: z.string().min(1).optional(),
    host: z.string().optional(),
    port: z.number().int().positive().optional(),
    user: z.string().optional(),
    password: z.string().optional(),
    database: z.string().optional(),
    ssl: z.union([z.boolean(), z.record(z.string(), z.unknown())]).optional(),
    /** An existing pool to use; pgtq never ends a pool it did not create. */
    // z.custom, not z.instanceof: its declared type exists in every zod that pgtq supports
    pool: z.custom<pg.Pool>(isPool, 'expected a pg.Pool').optional(),
    /** Size of the pool pgtq creates. @default 10 */
    max: z.number().int().positive().optional(),
    /** Schema holding pgtq's tables and functions. @default $PGTQ_SCHEMA, else 'pgtq' */
    schema: schemaName.optional(),
    /** @default a logger that says nothing */
    logger: logger.optional(),
    /**
     * The largest JSON of one task's arguments, in bytes of UTF-8: a push holding a
     * larger task is refused with PayloadTooLargeError and stores nothing. @default 1_048_576 (1 MiB)
     */
    maxArgsBytes: jsonBytes.optional(),
    /**
     * The largest JSON of one task's result, in bytes of UTF-8: a handler returning
     * more fails its task (without retrying) with PayloadTooLargeError. @default 1_048_576 (1 MiB)
     */
    maxResultBytes: jsonBytes.optional(),
    /**
     * Whether statements run as named prepared statements, parsed and planned once
     * per connection. Set false behind a pooler that cannot keep them, such as
     * PgBouncer before 1.21 in transaction mode: each statement is then sent unnamed
     * (still with $n parameters). @default $PGTQ_PREPARED_STATEMENTS (on or off), else true
     */
    preparedStatements: z.boolean().optional(),
    /**
     * Where the LISTEN connection goes: the pool's own settings by default; a
     * connection string (or `{ connectionString }`) for a direct connection to the
     * server when the pool goes through a pooler in transaction mode, which cannot
     * LISTEN; or false for no LISTEN at all, when workers, schedulers and
     * `result()` find work by polling only (and poll more often).
     * @default $PGTQ_LISTEN (off, or a connection string), else the pool's settings
     */
    listen: z
      .union(
        [z.literal(false), z.string().min(1), z.object({ connectionString: z.string().min(1) }).strict()],
        'expected false, a connection string, or { connectionString }',
      )
      .optional(),
  })
  .strict();

/** A pg.Pool, also one from the app's own copy of pg (another version than pgtq's). */
function isPool(value: unknown): boolean {
  if (value instanceof pg.Pool) return true;
  const pool = value as Partial<pg.Pool> | null;
  return (
    typeof pool === 'object' &&
    pool !== null &&
    typeof pool.connect === 'function' &&
    typeof pool.query === 'function' &&
    typeof pool.on === 'function' &&
    typeof pool.options === 'object'
  );
}

export type ConnectionOptions = z.input<typeof connectionOptions>;
/** A connection string, connection options, or `{ pool }`. */
export type Connection = string | ConnectionOptions;

export interface ResolvedConnection {
  readonly pool: pg.Pool;
  /** Whether pgtq created the pool, and so ends it on close. */
  readonly ownsPool: boolean;
  /** How to open the dedicated LISTEN connection, or null: no LISTEN, polling only. */
  readonly listenConfig: pg.ClientConfig | null;
  /** Whether statements run as named prepared statements. */
  readonly preparedStatements: boolean;
  readonly schema: string;
  readonly logger: Logger;
  /** Whether the caller chose the logger. */
  readonly loggerGiven: boolean;
  readonly limits: PayloadLimits;
}

/** Settings that say where the server is; with none of them, $DATABASE_URL does. */
const SERVER_SETTINGS = ['connectionString', 'host', 'port', 'user', 'password', 'database'] as const;

export function resolveConnection(connection: Connection | undefined): ResolvedConnection {
  const options = parse(
    connectionOptions,
    typeof connection === 'string' ? { connectionString: connection } : (connection ?? {}),
    'connection',
  );
  const {
    pool,
    schema = defaultSchema(),
    logger = silentLogger,
    max,
    maxArgsBytes = defaultLimits.maxArgsBytes,
    maxResultBytes = defaultLimits.maxResultBytes,
    preparedStatements = defaultPreparedStatements(),
    listen = defaultListen(),
    ...clientConfig
  } = options;
  const limits = Object.freeze({ maxArgsBytes, maxResultBytes });
  const listenTo = (poolConfig: pg.ClientConfig): pg.ClientConfig | null =>
    listen === false
      ? null
      : listen === undefined
        ? poolConfig
        : { connectionString: typeof listen === 'string' ? listen : listen.connectionString };
  const loggerGiven = options.logger !== undefined;
  if (pool) {
    if (Object.keys(clientConfig).length > 0 || max !== undefined) {
      throw new ConfigError('connection: give either { pool } or connection settings, not both');
    }
    return Object.freeze({
      pool,
      ownsPool: false,
      listenConfig: listenTo(pool.options),
      preparedStatements,
      schema,
      logger,
      loggerGiven,
      limits,
    });
  }
  // Like psql: $DATABASE_URL when set, else pg reads PGHOST, PGPORT, PGUSER, PGDATABASE…
  if (SERVER_SETTINGS.every((key) => clientConfig[key] === undefined) && process.env.DATABASE_URL) {
    clientConfig.connectionString = process.env.DATABASE_URL;
  }
  return Object.freeze({
    pool: new pg.Pool({ ...clientConfig, max: max ?? 10 }),
    ownsPool: true,
    listenConfig: listenTo(clientConfig),
    preparedStatements,
    schema,
    logger,
    loggerGiven,
    limits,
  });
}

/** $PGTQ_PREPARED_STATEMENTS: off (false, 0) sends every statement unnamed; on by default. */
function defaultPreparedStatements(): boolean {
  const value = process.env.PGTQ_PREPARED_STATEMENTS ?? '';
  if (/^(|on|true|1)$/i.test(value)) return true;
  if (/^(off|false|0)$/i.test(value)) return false;
  throw new ConfigError(`PGTQ_PREPARED_STATEMENTS: expected on or off, got "${value}"`);
}

/** $PGTQ_LISTEN: off for no LISTEN at all, or the connection string LISTEN uses. */
function defaultListen(): false | string | undefined {
  const value = process.env.PGTQ_LISTEN ?? '';
  if (value === '') return undefined;
  return /^off$/i.test(value) ? false : value;
}

/** $PGTQ_SCHEMA, else 'pgtq'. */
function defaultSchema(): string {
  return parse(schemaName, process.env.PGTQ_SCHEMA ?? 'pgtq', 'PGTQ_SCHEMA');
}

/** Parses with zod, turning its issues into one readable ConfigError (or ValidationError). */
export function parse<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
  ErrorClass: typeof ConfigError | typeof ValidationError = ConfigError,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ErrorClass(`${what}: ${describeIssues(result.error, schema)}`, { cause: result.error });
}

function describeIssues(error: z.ZodError, schema: z.ZodType): string {
  return error.issues
    .map((issue) => {
      const at = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      if (issue.code === 'unrecognized_keys') {
        const known = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
        return issue.keys
          .map((key) => {
            const hint = suggest(key, known);
            return `${at}unknown option "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`;
          })
          .join('; ');
      }
      return `${at}${issue.message}`;
    })
    .join('; ');
}

/** A connection URL fit to print: its password masked. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable URL>';
  }
}

/**
 * Keeps a dying connection (a restart, a failover, pg_terminate_backend) from
 * ending the process: pg emits 'error' on its client, idle in the pool or checked
 * out, and an 'error' nobody listens to is thrown. The query under way fails instead.
 */
export function survivePoolErrors(pool: pg.Pool, logger: () => Logger): void {
  pool.on('error', (error) => logger().warn('idle connection lost', { error: error.message }));
  pool.on('connect', (client) => client.on('error', () => {}));
}
