import type pg from 'pg';

/** Anything that runs a query: a pool, a client, or a client inside the caller's transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>>;
}

export function isQueryable(value: unknown): value is Queryable {
  return typeof value === 'object' && value !== null && typeof (value as Queryable).query === 'function';
}

/** Whether `db` is a pool (each query may run on another connection), not one client. */
export function isPool(db: Queryable): db is pg.Pool {
  return 'totalCount' in db && typeof (db as pg.Pool).connect === 'function';
}

/**
 * A client of `pool`, and how to give it back. While a client is checked out,
 * pg-pool does not listen for its errors: a backend that dies between two queries
 * would emit an unhandled 'error' and end the process. The listener added here
 * turns that into a failed query, and the client is then discarded, not reused.
 */
async function checkOut(pool: pg.Pool): Promise<{ client: pg.PoolClient; release(discard: boolean): void }> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (error: Error) => {
    lost = error;
  };
  client.on('error', onError);
  return {
    client,
    release(discard) {
      client.off('error', onError);
      client.release(lost ?? discard);
    },
  };
}

/** Runs `fn` with a client of `pool`; a client whose work threw is discarded rather than reused. */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const { client, release } = await checkOut(pool);
  let threw = true;
  try {
    const result = await fn(client);
    threw = false;
    return result;
  } finally {
    release(threw);
  }
}

/** Runs `fn` in a transaction on a client of `pool`: committed if it returns, rolled back if it throws. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const { client, release } = await checkOut(pool);
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    // A connection that cannot even roll back is discarded rather than reused.
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw error;
  } finally {
    release(broken);
  }
}

/** `name` quoted as an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
