import { randomUUID } from 'node:crypto';
import type { Queryable } from '../db/queryable.js';
import type { Statements } from '../db/statements.js';
import type { ClaimedRow } from '../db/task-rows.js';
import { LeaseLostError } from '../errors.js';
import type { TaskInfo } from '../handler/context.js';
import { type Backoff, backoffOptions } from '../handler/options.js';
import type { Runtime } from '../runtime.js';
import { failureOutcome, type Outcome, successOutcome } from './outcomes.js';
import { recordOutcomes } from './record-outcomes.js';

/** A task claimed by `pop()`: run it yourself, then call `complete` or `fail` before the lease runs out. */
export class ClaimedTask implements TaskInfo {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  readonly args: readonly unknown[];
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly priority: number;
  readonly key: string | null;
  readonly group: string | null;
  readonly runAt: Date;
  readonly startedAt: Date;
  readonly leaseId: string;
  readonly leaseExpiresAt: Date;
  readonly #statements: Statements;
  readonly #db: Queryable;
  readonly #backoff: Backoff;

  constructor(
    row: ClaimedRow,
    leaseId: string,
    context: { statements: Statements; db: Queryable; backoff: Backoff },
  ) {
    this.id = row.id;
    this.queue = row.queue;
    this.name = row.name;
    this.args = row.args;
    this.attempt = row.attempts;
    this.maxAttempts = row.max_attempts;
    this.priority = row.priority;
    this.key = row.key;
    this.group = row.group_key;
    this.runAt = new Date(row.run_at_s * 1000);
    this.startedAt = new Date();
    this.leaseId = leaseId;
    this.leaseExpiresAt = row.lease_expires_at;
    this.#statements = context.statements;
    this.#db = context.db;
    this.#backoff = context.backoff;
  }

  /**
   * Stores `result` (JSON) and moves the task to history as succeeded; a result
   * that is not JSON, or larger than `maxResultBytes`, fails the task instead.
   */
  complete(result?: unknown, options: { client?: Queryable } = {}): Promise<Outcome> {
    return this.#record(successOutcome(result, this.#statements.limits.maxResultBytes), options.client);
  }

  /**
   * Records a failed attempt: the task is retried with back-off while attempts are
   * left (a `Retry` or `Cancel` error is obeyed), else it fails for good.
   */
  fail(error: unknown, options: { client?: Queryable } = {}): Promise<Outcome> {
    return this.#record(failureOutcome(error, this, this.#backoff), options.client);
  }

  async #record(outcome: Outcome, client: Queryable | undefined): Promise<Outcome> {
    const lost = await recordOutcomes(this.#statements, client ?? this.#db, [
      { id: this.id, leaseId: this.leaseId, outcome },
    ]);
    if (lost.has(this.id)) throw new LeaseLostError(this.id);
    return outcome;
  }
}

/** How `pop()` claims. */
export interface PopOptions {
  /** Only tasks of these names. @default any */
  names?: readonly string[];
  /** How long the claim holds without complete() or fail(). @default 20_000 */
  leaseMs?: number;
}

const DEFAULT_LEASE_MS = 20_000;

/** Claims the next ready task of the runtime's queue, or returns null. */
export async function popTask(runtime: Runtime, options: PopOptions): Promise<ClaimedTask | null> {
  const leaseId = randomUUID();
  const {
    tasks: [row],
  } = await runtime.statements.claimMany(runtime.pool, {
    queue: runtime.queue,
    names: options.names ?? null,
    limit: 1,
    leaseId,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
    workerId: `pop:${process.pid}`,
  });
  if (!row) return null;
  const backoff = runtime.handlers.get(row.name)?.options.backoff ?? backoffOptions.parse({});
  return new ClaimedTask(row, leaseId, { statements: runtime.statements, db: runtime.pool, backoff });
}
