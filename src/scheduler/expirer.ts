import { inBatches } from '../db/batches.js';
import type { Runtime } from '../runtime.js';
import { PeriodicService } from '../service.js';
import { traceStatements } from '../tracing.js';

const BATCH = 1000;

export interface ExpirerOptions {
  intervalMs: number;
  onExpired?: (count: number) => void;
  onError: (error: unknown, failures: number) => void;
}

/**
 * Ends pending tasks past their time to live (`ttlMs`), which claims already
 * refuse to start, so that they reach history with the reason; and removes the
 * rows of flow-control groups left without tasks.
 */
export class Expirer extends PeriodicService {
  readonly #runtime: Pick<Runtime, 'statements' | 'pool'>;
  readonly #onExpired: (count: number) => void;

  constructor(runtime: Pick<Runtime, 'statements' | 'pool'>, options: ExpirerOptions) {
    super({ name: 'expirer', intervalMs: () => options.intervalMs, onError: options.onError });
    this.#runtime = runtime;
    this.#onExpired = options.onExpired ?? (() => {});
  }

  /** Ends every task expired at `now`; returns how many. */
  async runOnce(now: Date | null = null): Promise<number> {
    const { statements, pool } = this.#runtime;
    const expired = await inBatches(BATCH, () => statements.expireTasks(pool, BATCH, now));
    await inBatches(BATCH, () => statements.pruneFlowGroups(pool, BATCH));
    await inBatches(BATCH, () => traceStatements(statements.schema).prune(pool, BATCH));
    return expired;
  }

  protected override async pass(): Promise<void> {
    const expired = await this.runOnce();
    if (expired > 0) this.#onExpired(expired);
  }
}
