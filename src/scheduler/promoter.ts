import type { Queryable } from '../db/queryable.js';
import type { Statements } from '../db/statements.js';

const BATCH = 1000;

/** Makes due scheduled tasks (delayed pushes, retries) ready. */
export class Promoter {
  readonly #statements: Statements;
  readonly #db: Queryable;

  constructor(statements: Statements, db: Queryable) {
    this.#statements = statements;
    this.#db = db;
  }

  /** Promotes every task due at `now`; returns how many. */
  async runOnce(now: Date | null = null): Promise<number> {
    let total = 0;
    for (;;) {
      const promoted = await this.#statements.promoteDue(this.#db, BATCH, now);
      total += promoted;
      if (promoted < BATCH) return total;
    }
  }

  /** Milliseconds until the next scheduled task is due, or null if none is. */
  nextDueInMs(now: Date | null = null): Promise<number | null> {
    return this.#statements.nextDueInMs(this.#db, now);
  }
}
