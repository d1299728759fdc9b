import pg from 'pg';
import { afterAll } from 'vitest';
import { PgTq } from '../../src/index.js';
import { databaseUrl, dropSchema, uniqueSchemaName } from './database.js';

/**
 * A migrated schema of its own for the calling test file, dropped after the file,
 * with a pool for direct SQL and a factory of queues in that schema.
 */
export async function useTestSchema(prefix = 'pgtq_test') {
  const schema = uniqueSchemaName(prefix);
  const url = databaseUrl();
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const queues: PgTq[] = [];
  const queue = (name = 'default') => {
    const q = new PgTq(name, { connectionString: url, schema });
    queues.push(q);
    return q;
  };
  await queue('migrations').migrate();
  afterAll(async () => {
    await Promise.all(queues.map((q) => q.close()));
    await pool.end();
    await dropSchema(schema);
  });
  /** Rows of `sql`, with `:schema` standing for the quoted schema name. */
  const rows = async <R extends pg.QueryResultRow = Record<string, unknown>>(
    sql: string,
    values: unknown[] = [],
  ) => (await pool.query<R>(sql.replaceAll(':schema', `"${schema}"`), values)).rows;
  return { schema, url, pool, queue, rows };
}
