/**
 * The suite's own connection to the database, for faults and checks. Its
 * application_name keeps it out of the termination storms; it still dies when
 * PostgreSQL restarts, so every query is retried until the server answers again.
 */
import pg from 'pg';

export const ADMIN_APPLICATION = 'pgtq chaos admin';

/** The application_name of a worker or scheduler slot's connections, so that a fault can spare them. */
export const applicationName = (slot) => `pgtq chaos ${slot}`;

/** `url` with the application_name of `slot`: set in the URL, it names every connection of the process. */
export function urlFor(url, slot) {
  const named = new URL(url);
  named.searchParams.set('application_name', applicationName(slot));
  return named.toString();
}

/** SQLSTATE classes and client errors that mean "the connection or the server went away; ask again". */
export function isTransient(error) {
  const code = /** @type {{ code?: string }} */ (error).code ?? '';
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE') return true;
  const message = error instanceof Error ? error.message : String(error);
  return /Connection terminated|not queryable|terminating connection/.test(message);
}

export class Admin {
  #pool;

  /** @param {string} url */
  constructor(url) {
    this.#pool = new pg.Pool({ connectionString: url, application_name: ADMIN_APPLICATION, max: 2 });
    // An idle connection killed by the restart: the pool drops it and opens another.
    this.#pool.on('error', () => {});
  }

  /**
   * Rows of `sql`, retried for up to `timeoutMs` while the server is unreachable.
   * @param {string} sql
   * @param {unknown[]} [params]
   * @returns {Promise<any[]>}
   */
  async rows(sql, params = [], timeoutMs = 120_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return (await this.#pool.query(sql, params)).rows;
      } catch (error) {
        if (!isTransient(error) || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** The first column of the first row, as a number. */
  async number(sql, params = []) {
    const [row] = await this.rows(sql, params);
    return Number(Object.values(row ?? {})[0]);
  }

  close() {
    return this.#pool.end();
  }
}
