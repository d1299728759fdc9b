import type { TaskCompaction } from '../db/task-rows.js';
import type { Runtime } from '../runtime.js';
import { PeriodicService } from '../service.js';

export interface CompactorOptions {
  intervalMs: number;
  onCompacted?: (compaction: Compaction) => void;
  onError: (error: unknown, failures: number) => void;
}

/** What a pass did, and whether it vacuumed `tasks` first. */
export type Compaction = TaskCompaction & { vacuumed: boolean };

/**
 * Gives back the space a long-held snapshot made `tasks` grow by (see
 * migrations/1763800000005_compact_tasks.sql): once vacuum has removed the dead
 * rows, the few live ones are copied into a truncated table under a short lock.
 * When dead rows are in the way and autovacuum has not removed them for a minute
 * (or is off), the pass runs VACUUM first. Most passes only read statistics.
 */
export class Compactor extends PeriodicService {
  readonly #runtime: Pick<Runtime, 'statements' | 'pool'>;
  readonly #onCompacted: (compaction: Compaction) => void;

  constructor(runtime: Pick<Runtime, 'statements' | 'pool'>, options: CompactorOptions) {
    super({ name: 'compactor', intervalMs: () => options.intervalMs, onError: options.onError });
    this.#runtime = runtime;
    this.#onCompacted = options.onCompacted ?? (() => {});
  }

  /** One pass: compacts `tasks` if it is worth it and cheap now, vacuuming it first if that is due. */
  async runOnce(): Promise<Compaction> {
    const { statements, pool } = this.#runtime;
    const compaction = await statements.compactTasks(pool);
    if (compaction.outcome !== 'vacuum') return { ...compaction, vacuumed: false };
    await statements.vacuumTasks(pool);
    return { ...(await statements.compactTasks(pool)), vacuumed: true };
  }

  protected override async pass(): Promise<void> {
    const compaction = await this.runOnce();
    if (compaction.outcome === 'compacted') this.#onCompacted(compaction);
  }
}
