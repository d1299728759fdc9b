import type { Queryable } from '../db/queryable.js';
import type { Statements } from '../db/statements.js';
import type { Logger } from '../logger.js';
import { recordOutcomes, type TaskOutcome } from './record-outcomes.js';

const MAX_BATCH = 1000;
const RETRY_DELAYS_MS = [50, 200, 1000, 2000, 5000];

/**
 * Stores outcomes in batches, like a group commit: while one batch is being
 * written, the outcomes that arrive meanwhile wait and go together in the next.
 * An idle completer writes at once, so a lone task is not delayed; a busy one
 * writes one statement for many tasks. A failed write (lost connection) is tried
 * again; while it fails the tasks' leases keep them safe from other workers.
 */
export class Completer {
  readonly #statements: Statements;
  readonly #db: Queryable;
  readonly #logger: Logger;
  #waiting: { item: TaskOutcome; resolve: (stored: boolean) => void }[] = [];
  #flushing: Promise<void> | undefined;

  constructor(statements: Statements, db: Queryable, logger: Logger) {
    this.#statements = statements;
    this.#db = db;
    this.#logger = logger;
  }

  /** Resolves with true once stored, false if the lease was lost and the outcome refused. */
  add(item: TaskOutcome): Promise<boolean> {
    return new Promise((resolve) => {
      this.#waiting.push({ item, resolve });
      this.#flushing ??= this.#flush().finally(() => {
        this.#flushing = undefined;
      });
    });
  }

  /** Resolves when everything added so far is stored. */
  async drain(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #flush(): Promise<void> {
    while (this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, MAX_BATCH);
      const lost = await this.#write(batch.map(({ item }) => item));
      for (const { item, resolve } of batch) resolve(lost !== undefined && !lost.has(item.id));
    }
  }

  async #write(items: TaskOutcome[]): Promise<Set<string> | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await recordOutcomes(this.#statements, this.#db, items);
      } catch (error) {
        const delay = RETRY_DELAYS_MS[attempt];
        this.#logger.warn('storing task outcomes failed', {
          error: error instanceof Error ? error.message : String(error),
          tasks: items.length,
          retryInMs: delay,
        });
        // Out of tries: the leases run out and the tasks are rescued and run again.
        if (delay === undefined) return undefined;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}
