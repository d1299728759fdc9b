import { quoteIdent, withClient } from '../db/queryable.js';
import type { Runtime } from '../runtime.js';
import { PeriodicService } from '../service.js';

const DAY_MS = 86_400_000;
const DAYS_AHEAD = 7;

/**
 * Keeps the history's daily partitions: creates them a week ahead, so a
 * finishing task always finds one, and drops those past retention. A partition
 * is detached CONCURRENTLY before it is dropped, so finishing tasks never wait
 * on it, and claims never touch history at all.
 */
export class HistoryKeeper extends PeriodicService {
  readonly #statements: Runtime['statements'];
  readonly #pool: Runtime['pool'];
  readonly #retentionMs: number;
  readonly #failedRetentionMs: number;

  constructor(
    runtime: Pick<Runtime, 'statements' | 'pool'>,
    options: {
      intervalMs: number;
      retentionMs: number;
      failedRetentionMs: number;
      onError: (error: unknown, failures: number) => void;
    },
  ) {
    super({ name: 'history keeper', intervalMs: () => options.intervalMs, onError: options.onError });
    this.#statements = runtime.statements;
    this.#pool = runtime.pool;
    this.#retentionMs = options.retentionMs;
    this.#failedRetentionMs = Math.max(options.failedRetentionMs, options.retentionMs);
  }

  protected override async pass(): Promise<void> {
    await this.runOnce();
  }

  async runOnce(now: Date = new Date()): Promise<{ created: number; dropped: string[] }> {
    const yesterday = new Date(now.getTime() - DAY_MS);
    const created = await this.#statements.createHistoryPartitions(this.#pool, DAYS_AHEAD + 2, yesterday);
    const partitions = await this.#statements.listHistoryPartitions(this.#pool);
    const expired = partitions.filter(({ ends_at, has_failed }) => {
      const age = now.getTime() - ends_at.getTime();
      return age > (has_failed ? this.#failedRetentionMs : this.#retentionMs);
    });
    const dropped: string[] = [];
    for (const { name } of expired) if (await this.#drop(name)) dropped.push(name);
    return { created, dropped };
  }

  async #drop(partition: string): Promise<boolean> {
    const lockKey = `pgtq.history:${this.#statements.schema}`;
    return withClient(this.#pool, async (client) => {
      // Another scheduler may be dropping the same partition: one at a time.
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtext($1)) AS locked',
        [lockKey],
      );
      if (!rows[0]?.locked) return false;
      try {
        const schema = quoteIdent(this.#statements.schema);
        const table = `${schema}.${quoteIdent(partition)}`;
        const exists = await client.query('SELECT to_regclass($1) IS NOT NULL AS present', [table]);
        if (!exists.rows[0]?.present) return false;
        await client.query(`ALTER TABLE ${schema}.finished_tasks DETACH PARTITION ${table} CONCURRENTLY`);
        await client.query(`DROP TABLE ${table}`);
        return true;
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]);
      }
    });
  }
}
