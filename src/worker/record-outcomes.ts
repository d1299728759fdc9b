import type { Queryable } from '../db/queryable.js';
import type { FinishInput, RetryInput, Statements } from '../db/statements.js';
import type { Outcome } from './outcomes.js';

const NO_PARTITION = '23514';

export interface TaskOutcome {
  id: string;
  leaseId: string;
  outcome: Outcome;
}

/**
 * Stores the outcomes of many attempts in at most two statements. Returns the ids
 * whose outcome was refused because their lease was lost.
 */
export async function recordOutcomes(
  statements: Statements,
  db: Queryable,
  outcomes: readonly TaskOutcome[],
  inTransaction = false,
): Promise<Set<string>> {
  const finishes: FinishInput[] = [];
  const retries: RetryInput[] = [];
  for (const { id, leaseId, outcome } of outcomes) {
    if (outcome.kind === 'retry') {
      retries.push({ id, lease_id: leaseId, delay_ms: outcome.delayMs, error: outcome.error });
    } else if (outcome.kind === 'succeeded') {
      finishes.push({ id, lease_id: leaseId, state: 'succeeded', result: outcome.result });
    } else {
      finishes.push({ id, lease_id: leaseId, state: outcome.kind, error: outcome.error });
    }
  }
  const stored = new Set<string>();
  if (finishes.length > 0) {
    const finished = await statements.finishMany(db, finishes).catch(async (error: unknown) => {
      // check_violation here means no history partition covers today (no scheduler
      // has run for days): create it so that the caller's retry succeeds.
      if ((error as { code?: string }).code === NO_PARTITION && !inTransaction) {
        await statements.createHistoryPartitions(db, 2);
      }
      throw error;
    });
    for (const row of finished) stored.add(row.id);
  }
  if (retries.length > 0) for (const row of await statements.retryMany(db, retries)) stored.add(row.id);
  return new Set(outcomes.filter(({ id }) => !stored.has(id)).map(({ id }) => id));
}
