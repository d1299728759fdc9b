import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { type Queryable, quoteIdent } from './queryable.js';

const SQL_DIR = new URL('../../sql/', import.meta.url);
const sources = new Map<string, string>();

function source(file: string): string {
  let text = sources.get(file);
  if (text === undefined) {
    text = readFileSync(new URL(`${file}.sql`, SQL_DIR), 'utf8');
    sources.set(file, text);
  }
  return text;
}

/** The SQL of `sql/<file>.sql` with `:schema` replaced by the quoted schema name. */
export function renderSql(file: string, schema: string): string {
  return source(file).replace(/(?<![:\w]):schema\b/g, quoteIdent(schema));
}

export interface SqlOptions {
  /** Whether each statement runs as a named prepared statement. @default true */
  readonly preparedStatements?: boolean;
}

/**
 * The files of sql/ rendered for one schema, each run as a named prepared
 * statement, so each connection parses and plans it once; or, with
 * `preparedStatements: false`, sent unnamed each time (for poolers that cannot
 * keep a prepared statement, such as PgBouncer before 1.21 in transaction mode).
 */
export class SqlFiles {
  readonly schema: string;
  readonly #texts = new Map<string, { name?: string; text: string }>();
  readonly #tag: string;
  /** Whether each statement runs as a named prepared statement. */
  readonly preparedStatements: boolean;

  constructor(schema: string, { preparedStatements = true }: SqlOptions = {}) {
    this.schema = schema;
    this.preparedStatements = preparedStatements;
    this.#tag = createHash('sha1').update(schema).digest('hex').slice(0, 10);
  }

  /** Runs `sql/<file>.sql` with `values` for its $n parameters; returns its rows. */
  protected async run<R extends object>(db: Queryable, file: string, values: unknown[]): Promise<R[]> {
    let statement = this.#texts.get(file);
    if (!statement) {
      const text = renderSql(file, this.schema);
      statement = this.preparedStatements ? { name: `pgtq_${file}_${this.#tag}`, text } : { text };
      this.#texts.set(file, statement);
    }
    const result = await db.query<R & pg.QueryResultRow>({ ...statement, values });
    return result.rows;
  }
}
