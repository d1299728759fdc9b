import { runner } from 'node-pg-migrate';
import type pg from 'pg';
import type { Logger } from '../logger.js';
import { quoteIdent, withTransaction } from './queryable.js';

const MIGRATIONS_DIR = new URL('../../migrations/', import.meta.url).pathname;

/**
 * Brings `schema` up to date, in one transaction. Several processes may call this at
 * the same moment: a transaction-level advisory lock per schema lets one migrate while
 * the others wait, and they then find nothing left to do.
 *
 * Nothing outlives the transaction (no session lock, no session search_path), so this
 * works through a pooler in transaction mode (PgBouncer) as well as on a direct
 * connection: a pooler may hand each transaction another server connection, on
 * which a session lock could not be released, and a session search_path would leak
 * to other clients.
 */
export async function migrate(pool: pg.Pool, schema: string, logger: Logger): Promise<string[]> {
  const lockKey = `pgtq.migrate:${schema}`;
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockKey]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    // The migrations create their objects in the first schema of the search_path.
    await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
    // With singleTransaction, the runner's own BEGIN finds this transaction open (a
    // warning, no error) and its COMMIT, after the last migration, commits it, lock
    // and all; withTransaction's COMMIT then has nothing left to do. No `schema`
    // option: the runner would SET the search_path for the whole session.
    const applied = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      migrationsSchema: schema,
      createMigrationsSchema: true,
      migrationsTable: 'migrations',
      direction: 'up',
      singleTransaction: true,
      noLock: true,
      log: (message: string) => logger.debug(message),
    });
    for (const migration of applied) logger.info('applied migration', { migration: migration.name, schema });
    return applied.map((migration) => migration.name);
  });
}
