import { LeaseLostError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { PeriodicService } from '../service.js';
import { CancelRequested } from './outcomes.js';
import type { TaskRunner } from './task-runner.js';

/** How soon after a progress report it is stored, at most. */
const PROGRESS_DELAY_MS = 1_000;

/**
 * Extends the leases of the runner's running and waiting tasks, four times per
 * lease. A task whose lease was taken away has its signal aborted (its outcome
 * would be refused anyway); one asked to cancel (woken by NOTIFY) is aborted if
 * running and stored as cancelled if still waiting.
 */
export class Heartbeat extends PeriodicService {
  readonly #runtime: Runtime;
  readonly #runner: TaskRunner;
  readonly #leaseMs: number;
  #soon: NodeJS.Timeout | undefined;

  constructor(
    runtime: Runtime,
    runner: TaskRunner,
    options: { leaseMs: number; workerId: string },
    onError: (error: unknown, failures: number) => void,
  ) {
    super({
      name: `heartbeat of ${options.workerId}`,
      intervalMs: () => options.leaseMs / 4,
      onError,
      runAtStart: false,
    });
    this.#runtime = runtime;
    this.#runner = runner;
    this.#leaseMs = options.leaseMs;
  }

  /** Beats within a second: a handler reported progress (several reports make one beat). */
  soon(): void {
    this.#soon ??= setTimeout(() => {
      this.#soon = undefined;
      this.wake();
    }, PROGRESS_DELAY_MS).unref();
  }

  protected override async afterStop(): Promise<void> {
    clearTimeout(this.#soon);
    this.#soon = undefined;
  }

  protected override async pass(): Promise<void> {
    const runner = this.#runner;
    if (runner.running.size === 0 && runner.waiting.size === 0) return;
    const running = [...runner.running.values()].map((r) => ({ ...r, reported: r.progress.unsaved() }));
    const waiting = [...runner.waiting.values()];
    const rows = await this.#runtime.statements.heartbeatMany(
      this.#runtime.pool,
      [
        ...running.map(({ task, leaseId, reported }) => ({
          id: task.id,
          lease_id: leaseId,
          progress: reported?.value,
        })),
        ...waiting.map(({ row, leaseId }) => ({ id: row.id, lease_id: leaseId })),
      ],
      this.#leaseMs,
    );
    for (const { progress, reported } of running) if (reported) progress.saved(reported.value);
    const held = new Map(rows.map((row) => [row.id, row.cancel_requested]));
    for (const { row, leaseId } of waiting) {
      const cancel = held.get(row.id);
      // Still ours and not cancelled, or started or released meanwhile: nothing to do.
      if (cancel === false || runner.waiting.get(row.id)?.leaseId !== leaseId) continue;
      runner.waiting.delete(row.id);
      if (cancel) runner.cancelWaiting(row, leaseId);
    }
    for (const { task, abort } of running) {
      const cancel = held.get(task.id);
      if (cancel === undefined && runner.running.has(task.id)) abort.abort(new LeaseLostError(task.id));
      else if (cancel) abort.abort(new CancelRequested(task.id));
    }
  }
}
