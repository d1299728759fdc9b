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

/** A TypeORM `EntityManager` (the `manager` of `dataSource.transaction`) or `QueryRunner`. */
export interface TypeOrmClient {
  query(query: string, parameters?: never[]): Promise<unknown>;
}

/**
 * Where a push may run: a node-postgres `Pool`, `Client` or `PoolClient`, or the
 * transaction object of Kysely, Drizzle, postgres.js or TypeORM as it is; or any object
 * with node-postgres's `query(config)`.
 */
export type Client = Queryable | KyselyClient | DrizzleClient | PostgresJsClient | TypeOrmClient;

/** `client` as pgtq runs queries on it, or undefined for something pgtq does not recognise. */
export function toQueryable(client: unknown): Queryable | undefined {
  const typeOrm = typeOrmQuery(client);
  if (typeOrm) return fromTypeOrm(typeOrm);
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

interface TypeOrmQueryRunner {
  query(query: string, parameters: unknown[], structured: true): Promise<{ records: unknown[] }>;
}

/**
 * How to run a query on a TypeORM EntityManager or QueryRunner, or undefined for
 * anything else. A manager in a transaction has its query runner; one outside runs each
 * query as the data source does, whose answer to a SELECT (as pgtq's pushes are) is
 * its rows.
 */
function typeOrmQuery(
  client: unknown,
): ((text: string, values: unknown[]) => Promise<unknown[]>) | undefined {
  if (typeof client !== 'object' || client === null) return undefined;
  const c = client as {
    '@instanceof'?: unknown;
    queryRunner?: TypeOrmQueryRunner;
    startTransaction?: unknown;
    query(text: string, values: unknown[]): Promise<unknown[]>;
  };
  const runner =
    c['@instanceof'] === Symbol.for('EntityManager')
      ? c.queryRunner
      : typeof c.query === 'function' &&
          typeof c.startTransaction === 'function' &&
          'isTransactionActive' in c
        ? (client as TypeOrmQueryRunner)
        : undefined;
  if (runner) return async (text, values) => (await runner.query(text, values, true)).records;
  if (c['@instanceof'] === Symbol.for('EntityManager')) return (text, values) => c.query(text, values);
  return undefined;
}

function fromTypeOrm(query: (text: string, values: unknown[]) => Promise<unknown[]>): Queryable {
  return {
    async query<R extends pg.QueryResultRow>(config: pg.QueryConfig) {
      return result((await query(config.text, config.values ?? [])) as R[]);
    },
  };
}
