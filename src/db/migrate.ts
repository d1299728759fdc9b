import { runner } from 'node-pg-migrate';
import type pg from 'pg';
import type { Logger } from '../logger.js';
import { withClient } from './queryable.js';

const MIGRATIONS_DIR = new URL('../../migrations/', import.meta.url).pathname;

/**
 * Brings `schema` up to date. Several processes may call this at the same moment:
 * a session advisory lock per schema lets one migrate while the others wait, and
 * they then find nothing left to do.
 */
export async function migrate(pool: pg.Pool, schema: string, logger: Logger): Promise<string[]> {
  const lockKey = `pgtq.migrate:${schema}`;
  return withClient(pool, async (client) => {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [lockKey]);
    try {
      const applied = await runner({
        dbClient: client,
        dir: MIGRATIONS_DIR,
        schema,
        createSchema: true,
        migrationsSchema: schema,
        createMigrationsSchema: true,
        migrationsTable: 'migrations',
        direction: 'up',
        noLock: true,
        log: (message: string) => logger.debug(message),
      });
      for (const migration of applied)
        logger.info('applied migration', { migration: migration.name, schema });
      return applied.map((migration) => migration.name);
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]);
      // The runner set search_path on this pooled connection; do not hand that on.
      await client.query('RESET search_path');
    }
  });
}
