import { randomUUID } from 'node:crypto';
import type { Claimed } from '../db/task-rows.js';
import type { Runtime } from '../runtime.js';
import { PeriodicService } from '../service.js';
import { activeTracing, traceStatements } from '../tracing.js';
import { storeHandlerSettings } from './handler-settings.js';
import type { ResolvedWorkerOptions } from './options.js';
import type { TaskRunner } from './task-runner.js';

/** How long a task claimed ahead should wait for a slot, at most, at the recent pace. */
const PREFETCH_WAIT_MS = 50;
/**
 * How long a task under a rate limit claimed ahead may wait for a slot before it
 * goes back: its claim counts in the rate's window for this much longer.
 */
const RATE_HOLD_MS = 500;

/**
 * Claims ready tasks of the queue for the runner's free slots, plus a few ahead
 * for short tasks, in one statement. Woken by NOTIFY, by a freed slot, after a
 * reconnect, and by a slow jittered poll; wake-ups during a claim coalesce.
 */
export class Claimer extends PeriodicService {
  readonly #runtime: Runtime;
  readonly #runner: TaskRunner;
  readonly #options: ResolvedWorkerOptions;
  readonly #workerId: string;
  readonly #prefetch: number;
  #heldByLimits = false;
  #rateTimer: NodeJS.Timeout | undefined;
  /** Whether the handlers' settings are stored: no claim before, as a claim must honour their limits. */
  #limitsStored = false;

  constructor(
    runtime: Runtime,
    runner: TaskRunner,
    options: ResolvedWorkerOptions & { workerId: string },
    onError: (error: unknown, failures: number) => void,
  ) {
    super({
      name: `claimer of ${options.workerId}`,
      intervalMs: () => options.pollIntervalMs * (0.8 + Math.random() * 0.4),
      onError,
    });
    this.#runtime = runtime;
    this.#runner = runner;
    this.#options = options;
    this.#workerId = options.workerId;
    this.#prefetch = options.prefetch ?? 20 * options.concurrency;
  }

  /** Claims until the slots and the room ahead are full, or the queue has no more. */
  protected override async pass(): Promise<void> {
    if (!this.#limitsStored) {
      // Here rather than at start: a connection cut under it fails this pass,
      // which is tried again, not the worker's start.
      await storeHandlerSettings(this.#runtime);
      this.#limitsStored = true;
    }
    for (;;) {
      const concurrency = this.#options.concurrency;
      const runner = this.#runner;
      const ahead = Math.min(this.#prefetch, Math.floor((concurrency * PREFETCH_WAIT_MS) / runner.meanRunMs));
      const capacity = concurrency + ahead;
      const room = capacity - runner.active - runner.waiting.size;
      if (room <= 0 || this.state === 'stopping' || this.state === 'stopped') return;
      // While tasks wait, top up only once half the room is free, so that each claim takes many.
      if (runner.waiting.size > 0 && room * 2 < capacity) return;
      const leaseId = randomUUID();
      const claimedAt = performance.now();
      const { tasks, held } = await this.#runtime.statements.claimMany(this.#runtime.pool, {
        queue: this.#runtime.queue,
        names: [...this.#runtime.handlers.keys()],
        limit: room,
        free: Math.max(0, concurrency - runner.active - runner.waiting.size),
        holdMs: RATE_HOLD_MS,
        leaseId,
        leaseMs: this.#options.leaseMs,
        workerId: this.#workerId,
      });
      if (tasks.length > 0 && activeTracing()) {
        const traces = await traceStatements(this.#runtime.schema).get(
          this.#runtime.pool,
          tasks.map((task) => task.id),
        );
        for (const task of tasks) task.trace = traces.get(task.id);
      }
      runner.add(tasks, leaseId, claimedAt);
      this.#heldBack(held);
      // A full batch suggests more are waiting.
      if (tasks.length < room) return;
    }
  }

  /**
   * Whether flow-control limits held ready tasks back at the last claim: then a
   * task finishing anywhere (see Worker) may free a group's slot, and a rate
   * limit's next start is woken for at its time rather than at the next poll.
   */
  get heldByLimits(): boolean {
    return this.#heldByLimits;
  }

  #heldBack(held: Claimed['held']): void {
    this.#heldByLimits = held !== null;
    if (held?.wakeInMs == null || this.#rateTimer) return;
    this.#rateTimer = setTimeout(() => {
      this.#rateTimer = undefined;
      this.wake();
    }, Math.ceil(held.wakeInMs) + 1).unref();
  }

  protected override async afterStop(): Promise<void> {
    clearTimeout(this.#rateTimer);
  }
}
