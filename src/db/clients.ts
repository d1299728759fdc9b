import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { isQueryable, type Queryable } from './queryable.js';

/** A Kysely instance or `Transaction`: it runs a compiled query. */
export interface KyselyClient {
  // (never: any query type of Kysely's is accepted; pgtq passes what CompiledQuery.raw makes)
  executeQuery(query: never): Promise<{ rows: unknown[] }>;
}

/** A Drizzle database or transaction (`tx` of `db.transaction`), on node-postgres or postgres.js. */
export interface DrizzleClient {
  readonly _: { readonly session: unknown };
}

/** A postgres.js `sql`, or the `tx` of `sql.begin`. */
export interface PostgresJsClient {
  unsafe(query: string, parameters?: never[]): PromiseLike<readonly unknown[]>;
}

/**
 * Where a push may run: a node-postgres `Pool`, `Client` or `PoolClient`, or the
 * transaction object of Kysely, Drizzle or postgres.js as it is; or any object with
 * node-postgres's `query(config)`.
 */
export type Client = Queryable | KyselyClient | DrizzleClient | PostgresJsClient;

/** `client` as pgtq runs queries on it, or undefined for something pgtq does not recognise. */
export function toQueryable(client: unknown): Queryable | undefined {
  if (isQueryable(client)) return client;
  if ((typeof client !== 'object' && typeof client !== 'function') || client === null) return undefined;
  const candidate = client as Partial<KyselyClient & DrizzleClient & PostgresJsClient>;
  if (typeof candidate.executeQuery === 'function') return fromKysely(candidate as KyselyClient);
  if (typeof candidate.unsafe === 'function') return fromPostgresJs(candidate as PostgresJsClient);
  // Drizzle keeps the driver's client (a node-postgres client or a postgres.js sql) in its session.
  const session = candidate._?.session as { client?: unknown } | undefined;
  if (session && typeof session === 'object' && session.client !== client) return toQueryable(session.client);
  return undefined;
}

function result<R extends pg.QueryResultRow>(rows: R[]): pg.QueryResult<R> {
  return { rows, rowCount: rows.length, command: '', oid: 0, fields: [] };
}

function fromKysely(db: KyselyClient): Queryable {
  return {
    async query<R extends pg.QueryResultRow>(config: pg.QueryConfig) {
      // What Kysely's CompiledQuery.raw(sql, parameters) makes: pgtq does not import Kysely.
      const compiled = {
        sql: config.text,
        parameters: config.values ?? [],
        query: { kind: 'RawNode', sqlFragments: [config.text], parameters: [] },
        queryId: { queryId: randomUUID() },
      };
      return result((await db.executeQuery(compiled as never)).rows as R[]);
    },
  };
}

function fromPostgresJs(sql: PostgresJsClient): Queryable {
  return {
    async query<R extends pg.QueryResultRow>(config: pg.QueryConfig) {
      const rows = await sql.unsafe(config.text, (config.values ?? []) as never[]);
      return result([...rows] as R[]);
    },
  };
}
