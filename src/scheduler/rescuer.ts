import { inBatches } from '../db/batches.js';
import type { Queryable } from '../db/queryable.js';
import type { Statements } from '../db/statements.js';

const BATCH = 1000;

/** Gives running tasks whose worker lost its lease to another worker (or fails them when out of attempts). */
export class Rescuer {
  readonly #statements: Statements;
  readonly #db: Queryable;

  constructor(statements: Statements, db: Queryable) {
    this.#statements = statements;
    this.#db = db;
  }

  async runOnce(now: Date | null = null): Promise<{ retried: number; failed: number }> {
    const total = { retried: 0, failed: 0 };
    await inBatches(BATCH, async () => {
      const { retried, failed } = await this.#statements.rescueExpired(this.#db, BATCH, now);
      total.retried += retried;
      total.failed += failed;
      return retried + failed;
    });
    return total;
  }
}
