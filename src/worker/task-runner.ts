import type { ClaimedRow } from '../db/task-rows.js';
import { asError, LeaseLostError, TimeoutError } from '../errors.js';
import type { TaskInfo } from '../handler/context.js';
import type { Runtime } from '../runtime.js';
import { within } from '../service.js';
import { activeTracing, tracedRun } from '../tracing.js';
import type { Completer } from './completer.js';
import type { EmitWorkerEvent } from './options.js';
import { CancelRequested, describeError, type Outcome, Retry } from './outcomes.js';
import { runTask, type TaskHooks, taskInfo } from './run-task.js';
import { TaskAbort } from './task-abort.js';
import { TaskProgress } from './task-progress.js';

/** A task whose handler runs, or whose outcome is not stored yet. */
export interface Running {
  task: TaskInfo;
  leaseId: string;
  abort: TaskAbort;
  progress: TaskProgress;
  settled: Promise<void>;
}

/** A task claimed ahead of a free slot. */
export interface Waiting {
  row: ClaimedRow;
  leaseId: string;
  /** Under a rate limit: not started by then (performance.now()), it goes back to ready. */
  startBy?: number;
}

export interface TaskRunnerOptions {
  runtime: Runtime;
  completer: Completer;
  concurrency: number;
  hooks: TaskHooks;
  emit: EmitWorkerEvent;
  /** A slot freed: time to claim more. */
  onSlotFree: () => void;
  /** A handler reported progress: a heartbeat should store it soon. */
  onProgress: () => void;
}

/**
 * Runs claimed tasks with at most `concurrency` at once: tasks wait in claim order
 * until a slot frees, each runs with its own AbortSignal and timeout, and its
 * outcome goes to the completer. The heartbeat keeps the leases of both the
 * running and the waiting tasks alive.
 */
export class TaskRunner {
  /** Tasks claimed and not yet stored, by id. */
  readonly running = new Map<string, Running>();
  /** Tasks claimed ahead of a free slot, in claim order. */
  readonly waiting = new Map<string, Waiting>();
  readonly #options: TaskRunnerOptions;
  #active = 0;
  #accepting = true;
  /** Moving mean of how long a task holds its slot, ms; unknown until one has run. */
  #meanRunMs = Number.POSITIVE_INFINITY;

  constructor(options: TaskRunnerOptions) {
    this.#options = options;
  }

  /** Handlers running now. */
  get active(): number {
    return this.#active;
  }

  get meanRunMs(): number {
    return this.#meanRunMs;
  }

  /**
   * Queues claimed rows (in the order of the claim index) and starts as many as
   * slots allow. Tasks under a rate limit go first: their claim counted as their
   * start, so they must start within start_within_ms of `claimedAt`.
   */
  add(rows: ClaimedRow[], leaseId: string, claimedAt = performance.now()): void {
    // The claim picks by priority, then age, but returns rows in any order: start them in that order.
    rows.sort(claimOrder);
    const added: Waiting[] = rows.map((row) =>
      row.start_within_ms === null
        ? { row, leaseId }
        : { row, leaseId, startBy: claimedAt + row.start_within_ms },
    );
    if (added.some((w) => w.startBy !== undefined)) {
      // Those with a deadline move ahead of those without, each kind in its order.
      const queued = [...this.waiting.values(), ...added];
      this.waiting.clear();
      for (const w of queued) if (w.startBy !== undefined) this.waiting.set(w.row.id, w);
      for (const w of queued) if (w.startBy === undefined) this.waiting.set(w.row.id, w);
    } else {
      for (const w of added) this.waiting.set(w.row.id, w);
    }
    this.#startWaiting();
  }

  /** Starts no more tasks: the worker is stopping. */
  stopStarting(): void {
    this.#accepting = false;
  }

  /** Gives the waiting tasks back to the queue, for other workers to run at once. */
  async releaseWaiting(): Promise<void> {
    if (this.waiting.size === 0) return;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    await this.#giveBack(waiting);
  }

  /**
   * Waits for running tasks to finish within `graceMs`, then aborts their signals
   * (the task is retried elsewhere at once); a handler that ignores its signal is
   * not waited for: its lease runs out.
   */
  async drain(graceMs: number): Promise<void> {
    const settled = () => Promise.all([...this.running.values()].map((running) => running.settled));
    if (await within(settled(), graceMs)) return;
    for (const running of this.running.values()) {
      running.abort.abort(new Retry({ reason: 'the worker shut down before the task finished' }));
    }
    await within(settled(), 1000);
  }

  /** Stores a waiting task as cancelled without running it. */
  cancelWaiting(row: ClaimedRow, leaseId: string): void {
    const task = taskInfo(row);
    const outcome: Outcome = { kind: 'cancelled', error: describeError(new CancelRequested(task.id)) };
    this.#options.completer.add({ id: task.id, leaseId, outcome }).then(
      (kept) => kept && this.#report(task, outcome, 0),
      (error: unknown) => this.#options.emit('worker:error', asError(error)),
    );
  }

  #startWaiting(): void {
    const late: Waiting[] = [];
    for (const [id, waiting] of this.waiting) {
      if (this.#active >= this.#options.concurrency || !this.#accepting) break;
      this.waiting.delete(id);
      if (waiting.startBy !== undefined && performance.now() > waiting.startBy) late.push(waiting);
      else this.#start(waiting.row, waiting.leaseId);
    }
    if (late.length > 0) void this.#giveBack(late);
  }

  /** Sends tasks back to ready, for any worker to claim again: a failure leaves them to the rescuer. */
  async #giveBack(tasks: Waiting[]): Promise<void> {
    const { statements, pool } = this.#options.runtime;
    try {
      await statements.releaseMany(
        pool,
        tasks.map(({ row, leaseId }) => ({ id: row.id, lease_id: leaseId })),
      );
    } catch (error) {
      this.#options.emit('worker:error', asError(error));
    }
  }

  #start(row: ClaimedRow, leaseId: string): void {
    const { runtime, completer, emit } = this.#options;
    const task = taskInfo(row);
    const handler = runtime.handlers.get(task.name);
    if (!handler) return; // cannot happen: claims ask only for names with handlers
    const abort = new TaskAbort();
    const progress = new TaskProgress(this.#options.onProgress);
    const timeout = setTimeout(
      () => abort.abort(new TimeoutError(`task ${task.id} timed out after ${handler.options.timeoutMs} ms`)),
      handler.options.timeoutMs,
    );
    // The slot frees as soon as the handler is done; storing the outcome is batched.
    const startedAt = performance.now();
    let released = false;
    let runMs = 0;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(timeout);
      runMs = performance.now() - startedAt;
      const ms = runMs;
      this.#meanRunMs = Number.isFinite(this.#meanRunMs) ? this.#meanRunMs + (ms - this.#meanRunMs) / 16 : ms;
      this.#active--;
      this.#startWaiting();
      this.#options.onSlotFree();
    };
    this.#active++;
    emit('task:start', task);
    const run = async () => {
      try {
        const deps = { pool: runtime.pool, statements: runtime.statements, logger: runtime.logger };
        const attempt = () =>
          runTask({ ...deps, hooks: this.#options.hooks }, handler, task, leaseId, abort, progress);
        const otel = activeTracing();
        const { outcome, stored, startedAt } = otel
          ? await tracedRun(otel, task, row.trace, async () => {
              const value = await attempt();
              const error = value.outcome.kind === 'succeeded' ? undefined : value.outcome.error;
              return { value, outcome: ENDED[value.outcome.kind], ...(error ? { error } : {}) };
            })
          : await attempt();
        release();
        const last = progress.unsaved()?.value;
        const kept =
          stored || (await completer.add({ id: task.id, leaseId, outcome, startedAt, progress: last }));
        if (kept) this.#report(task, outcome, runMs);
        else emit('task:lease-lost', task);
      } catch (error) {
        if (error instanceof LeaseLostError) emit('task:lease-lost', task);
        else emit('worker:error', asError(error));
      } finally {
        release();
        this.running.delete(task.id);
      }
    };
    const running: Running = { task, leaseId, abort, progress, settled: Promise.resolve() };
    this.running.set(task.id, running);
    running.settled = run();
  }

  #report(task: TaskInfo, outcome: Outcome, runMs: number): void {
    const emit = this.#options.emit;
    switch (outcome.kind) {
      case 'succeeded':
        emit('task:success', task, outcome.result);
        break;
      case 'retry':
        emit('task:retry', task, outcome.error, outcome.delayMs);
        break;
      case 'failed':
        emit('task:failure', task, outcome.error);
        break;
      case 'cancelled':
        emit('task:cancel', task, outcome.error);
        break;
    }
    const ended = {
      succeeded: 'succeeded',
      retry: 'retried',
      failed: 'failed',
      cancelled: 'cancelled',
    } as const;
    const pickupMs = Math.max(0, task.startedAt.getTime() - task.runAt.getTime());
    emit('task:end', task, { outcome: ended[outcome.kind], pickupMs, runMs });
  }
}

/** How an attempt ended, by its outcome's kind, in the words of task:end and of spans. */
const ENDED = { succeeded: 'succeeded', retry: 'retried', failed: 'failed', cancelled: 'cancelled' } as const;

/** Higher priority first, then earlier due, then older: the order of the claim index. */
function claimOrder(a: ClaimedRow, b: ClaimedRow): number {
  return (
    b.priority - a.priority ||
    a.run_at_s - b.run_at_s ||
    // ids are decimal strings without leading zeros: a shorter one is smaller
    a.id.length - b.id.length ||
    (a.id < b.id ? -1 : 1)
  );
}
