import { inBatches } from '../db/batches.js';
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
  runOnce(now: Date | null = null): Promise<number> {
    return inBatches(BATCH, () => this.#statements.promoteDue(this.#db, BATCH, now));
  }

  /** Milliseconds until the next scheduled task is due, or null if none is. */
  nextDueInMs(now: Date | null = null): Promise<number | null> {
    return this.#statements.nextDueInMs(this.#db, now);
  }
}
