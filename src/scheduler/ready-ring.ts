import type { Runtime } from '../runtime.js';
import { PeriodicService } from '../service.js';

export interface ReadyRingOptions {
  intervalMs: number;
  onError: (error: unknown, failures: number) => void;
}

/**
 * Keeps the ready ring turning (see migrations/1763800000004_ready_ring.sql):
 * moves insertion on to the next segment and truncates the ones whose tasks were
 * all claimed, so claims never walk more than a few passes' worth of dead rows,
 * even while an old snapshot keeps vacuum from removing anything.
 */
export class ReadyRing extends PeriodicService {
  readonly #runtime: Pick<Runtime, 'statements' | 'pool'>;

  constructor(runtime: Pick<Runtime, 'statements' | 'pool'>, options: ReadyRingOptions) {
    super({ name: 'ready ring', intervalMs: () => options.intervalMs, onError: options.onError });
    this.#runtime = runtime;
  }

  /** One pass; returns the segment new ready tasks now go to and how many segments were truncated. */
  runOnce(): Promise<{ segment: number; truncated: number }> {
    return this.#runtime.statements.rotateReady(this.#runtime.pool);
  }

  protected override async pass(): Promise<void> {
    await this.runOnce();
  }
}
