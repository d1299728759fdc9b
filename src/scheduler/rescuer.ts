import { inBatches } from '../db/batches.js';
import type { Runtime } from '../runtime.js';
import { PeriodicService } from '../service.js';

const BATCH = 1000;
/** Every this many passes, one looks at every expired lease, not only those since the last pass. */
const FULL_PASS_EVERY = 30;

export type Rescued = {
  retried: number;
  failed: number;
};

export interface RescuerOptions {
  intervalMs: number;
  onRescued?: (rescued: Rescued) => void;
  onError: (error: unknown, failures: number) => void;
}

/**
 * Gives running tasks whose worker lost its lease to another worker (or fails them when out of attempts).
 *
 * A pass looks at the leases that ran out since a little before the last pass
 * ended, not at all of them: the lease index holds the dead entry of every task
 * finished since the last vacuum, in lease order, and while an old snapshot holds
 * vacuum back there are millions. A lease the last pass skipped because another
 * transaction held its task (SKIP LOCKED) for longer than that margin is found by
 * the full pass that every thirtieth one is.
 */
export class Rescuer extends PeriodicService {
  readonly #runtime: Pick<Runtime, 'statements' | 'pool'>;
  readonly #onRescued: (rescued: Rescued) => void;
  readonly #marginMs: number;
  /** Where the next pass starts, by the database's clock; null: at the first lease. */
  #from: Date | null = null;
  #passes = 0;

  constructor(runtime: Pick<Runtime, 'statements' | 'pool'>, options: RescuerOptions) {
    super({ name: 'rescuer', intervalMs: () => options.intervalMs, onError: options.onError });
    this.#runtime = runtime;
    this.#onRescued = options.onRescued ?? (() => {});
    this.#marginMs = Math.max(5_000, 2 * options.intervalMs);
  }

  /** Rescues every lease expired at `now`. */
  async runOnce(now: Date | null = null): Promise<Rescued> {
    const { retried, failed } = await this.#sweep(now, null);
    return { retried, failed };
  }

  protected override async pass(): Promise<void> {
    const full = this.#passes++ % FULL_PASS_EVERY === 0;
    const { scannedTo, ...rescued } = await this.#sweep(null, full ? null : this.#from);
    this.#from = new Date(scannedTo.getTime() - this.#marginMs);
    if (rescued.retried + rescued.failed > 0) this.#onRescued(rescued);
  }

  /** Rescues the leases expired at `now` that ran out since `from` (null: any); returns the database's now too. */
  async #sweep(now: Date | null, from: Date | null): Promise<Rescued & { scannedTo: Date }> {
    const { statements, pool } = this.#runtime;
    const total = { retried: 0, failed: 0, scannedTo: now ?? new Date(0) };
    await inBatches(BATCH, async () => {
      const { retried, failed, scanned_to } = await statements.rescueExpired(pool, BATCH, now, from);
      total.retried += retried;
      total.failed += failed;
      total.scannedTo = scanned_to;
      return retried + failed;
    });
    return total;
  }
}
