import { inBatches } from '../db/batches.js';
import type { Runtime } from '../runtime.js';
import { PeriodicService } from '../service.js';

const BATCH = 1000;

export interface PromoterOptions {
  /** The longest sleep between looks, in case a notification was missed. */
  maxSleepMs: number;
  onPromoted?: (count: number) => void;
  onError: (error: unknown, failures: number) => void;
}

/**
 * Makes due scheduled tasks (delayed pushes, retries) ready, then sleeps until
 * the next one is due; a push of an earlier one wakes it by NOTIFY.
 */
export class Promoter extends PeriodicService {
  readonly #runtime: Pick<Runtime, 'statements' | 'pool'>;
  readonly #onPromoted: (count: number) => void;

  constructor(runtime: Pick<Runtime, 'statements' | 'pool'>, options: PromoterOptions) {
    super({ name: 'promoter', intervalMs: () => options.maxSleepMs, onError: options.onError });
    this.#runtime = runtime;
    this.#onPromoted = options.onPromoted ?? (() => {});
  }

  /** Promotes every task due at `now`; returns how many. */
  runOnce(now: Date | null = null): Promise<number> {
    const { statements, pool } = this.#runtime;
    return inBatches(BATCH, () => statements.promoteDue(pool, BATCH, now));
  }

  /** Milliseconds until the next scheduled task is due, or null if none is. */
  nextDueInMs(now: Date | null = null): Promise<number | null> {
    return this.#runtime.statements.nextDueInMs(this.#runtime.pool, now);
  }

  protected override async pass(): Promise<number | undefined> {
    const promoted = await this.runOnce();
    if (promoted > 0) this.#onPromoted(promoted);
    const dueInMs = await this.nextDueInMs();
    return dueInMs === null ? undefined : Math.ceil(dueInMs);
  }
}
