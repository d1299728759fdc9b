import { inBatches } from '../db/batches.js';
import type { Runtime } from '../runtime.js';
import { PeriodicService } from '../service.js';

const BATCH = 1000;

export type Rescued = {
  retried: number;
  failed: number;
};

export interface RescuerOptions {
  intervalMs: number;
  onRescued?: (rescued: Rescued) => void;
  onError: (error: unknown, failures: number) => void;
}

/** Gives running tasks whose worker lost its lease to another worker (or fails them when out of attempts). */
export class Rescuer extends PeriodicService {
  readonly #runtime: Pick<Runtime, 'statements' | 'pool'>;
  readonly #onRescued: (rescued: Rescued) => void;

  constructor(runtime: Pick<Runtime, 'statements' | 'pool'>, options: RescuerOptions) {
    super({ name: 'rescuer', intervalMs: () => options.intervalMs, onError: options.onError });
    this.#runtime = runtime;
    this.#onRescued = options.onRescued ?? (() => {});
  }

  async runOnce(now: Date | null = null): Promise<Rescued> {
    const { statements, pool } = this.#runtime;
    const total = { retried: 0, failed: 0 };
    await inBatches(BATCH, async () => {
      const { retried, failed } = await statements.rescueExpired(pool, BATCH, now);
      total.retried += retried;
      total.failed += failed;
      return retried + failed;
    });
    return total;
  }

  protected override async pass(): Promise<void> {
    const rescued = await this.runOnce();
    if (rescued.retried + rescued.failed > 0) this.#onRescued(rescued);
  }
}
