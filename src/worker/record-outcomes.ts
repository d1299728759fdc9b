import type { Queryable } from '../db/queryable.js';
import type { Statements } from '../db/statements.js';
import type { FinishInput, RetryInput } from '../db/task-rows.js';
import type { Outcome } from './outcomes.js';

const NO_PARTITION = '23514';

export interface TaskOutcome {
  id: string;
  leaseId: string;
  outcome: Outcome;
  /** When the attempt really started (a task claimed ahead waits for a slot first). @default the claim's time */
  startedAt?: Date;
  /** The progress the handler reported last, if no heartbeat stored it. */
  progress?: unknown;
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
  for (const { id, leaseId, outcome, startedAt, progress } of outcomes) {
    if (outcome.kind === 'retry') {
      retries.push({ id, lease_id: leaseId, delay_ms: outcome.delayMs, error: outcome.error });
      continue;
    }
    const finish: FinishInput = {
      id,
      lease_id: leaseId,
      state: outcome.kind,
      started_at: startedAt,
      progress,
    };
    if (outcome.kind === 'succeeded') finish.result = outcome.result;
    else finish.error = outcome.error;
    finishes.push(finish);
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
