import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { z } from 'zod/v4';
import { parse } from '../config.js';
import type { ClaimedRow } from '../db/statements.js';
import { asError, ConfigError, LeaseLostError, TimeoutError } from '../errors.js';
import type { TaskInfo } from '../handler/context.js';
import type { PgTq } from '../pgtq.js';
import { Presence } from '../presence.js';
import { Completer } from './completer.js';
import { CancelRequested, describeError, type Outcome, Retry } from './outcomes.js';
import { type RunTaskDeps, runTask, type TaskHooks, taskInfo } from './run-task.js';

/** A scheduled task this late (ms) is overdue: a live scheduler promotes within milliseconds. */
const OVERDUE_GRACE_MS = 10_000;

export const workerOptions = z
  .object({
    /** Tasks run at once. @default 10 */
    concurrency: z.number().int().min(1).max(10_000).default(10),
    /**
     * At most this many tasks claimed ahead of free slots and held, their leases
     * kept alive, until a slot frees: one claim then serves many short tasks. Only
     * as many are held as would start within about 50 ms at the recent pace, so
     * long tasks are not held from other workers. Held tasks go back to ready when
     * the worker stops. 0 claims only for free slots. @default 20 × concurrency
     */
    prefetch: z.number().int().min(0).max(100_000).optional(),
    /** How long a claim is valid without a heartbeat; a dead worker's tasks are rescued after this. @default 20_000 */
    leaseMs: z.number().int().min(1000).max(3_600_000).default(20_000),
    /** The safety-net poll for missed notifications (jittered ±20 %). @default 10_000 */
    pollIntervalMs: z.number().int().min(50).default(10_000),
    /** On stop, how long running tasks may finish before their signal is aborted. @default 10_000 */
    shutdownGraceMs: z.number().int().nonnegative().default(10_000),
    /** How often the worker records that it is alive (see the live_processes view). @default 5_000 */
    livenessIntervalMs: z.number().int().min(100).default(5_000),
    /** Names this worker in the tasks it claims. @default host:pid:random */
    workerId: z.string().min(1).max(200).optional(),
    hooks: z
      .custom<TaskHooks>(
        (value) => typeof value === 'object' && value !== null,
        'expected { before?, after? }',
      )
      .optional(),
  })
  .strict();
export type WorkerOptions = z.input<typeof workerOptions>;

/** The events a worker emits, with their arguments. */
export interface WorkerEvents {
  start: [];
  stop: [];
  'task:start': [task: TaskInfo];
  'task:success': [task: TaskInfo, result: unknown];
  'task:retry': [task: TaskInfo, error: string, delayMs: number];
  'task:failure': [task: TaskInfo, error: string];
  'task:cancel': [task: TaskInfo, reason: string];
  /** The attempt's outcome was refused: its lease ran out and the task was handed on. */
  'task:lease-lost': [task: TaskInfo];
  /**
   * Scheduled tasks of this queue are overdue and no scheduler is alive to
   * promote them. Emitted (and logged) once, and again only after a scheduler was seen.
   */
  'scheduler:missing': [overdue: number];
  /** Something went wrong outside any task (a claim failed, say); the worker carries on. */
  'worker:error': [error: Error];
}

interface Running {
  task: TaskInfo;
  leaseId: string;
  controller: AbortController;
  settled: Promise<void>;
}

/** A task claimed ahead of a free slot. */
interface Waiting {
  row: ClaimedRow;
  leaseId: string;
}

/** How long a task claimed ahead should wait for a slot, at most, at the recent pace. */
const PREFETCH_WAIT_MS = 50;

/**
 * Runs the tasks of one queue with at most `concurrency` at a time. Claims are
 * woken by NOTIFY, by a freed slot, and by a slow jittered poll; one claim runs at
 * a time and tops up the running and waiting tasks to `concurrency + prefetch`.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  readonly id: string;
  readonly options: Readonly<z.output<typeof workerOptions>>;
  readonly #queue: PgTq;
  readonly #completer: Completer;
  readonly #presence: Presence;
  #warnedNoScheduler = false;
  /** Tasks claimed and not yet stored, by id: their leases are kept alive. */
  readonly #held = new Map<string, Running>();
  /** Tasks claimed ahead of a free slot, in claim order: their leases are kept alive too. */
  readonly #waiting = new Map<string, Waiting>();
  readonly #prefetch: number;
  /** Moving mean of how long a task holds its slot, ms; unknown until one has run. */
  #meanRunMs = Number.POSITIVE_INFINITY;
  #active = 0;
  #claiming: Promise<void> | undefined;
  #claimAgain = false;
  #state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  #stopped: Promise<void> | undefined;
  #timers: NodeJS.Timeout[] = [];
  readonly #runDeps: RunTaskDeps;
  #unsubscribe: (() => void)[] = [];

  constructor(queue: PgTq, options: WorkerOptions = {}) {
    super();
    this.options = Object.freeze(parse(workerOptions, options, 'worker options'));
    this.id = this.options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.#queue = queue;
    this.#prefetch = this.options.prefetch ?? 20 * this.options.concurrency;
    this.#completer = new Completer(queue.statements, queue.pool, queue.logger);
    this.#presence = new Presence({
      statements: queue.statements,
      db: queue.pool,
      process: {
        id: this.id,
        kind: 'worker',
        queue: queue.name,
        details: { concurrency: this.options.concurrency, handlers: [...queue.handlers.keys()] },
      },
      intervalMs: this.options.livenessIntervalMs,
      afterBeat: () => this.#watchScheduler(),
      onError: (error) => this.emit('worker:error', asError(error)),
    });
    this.#runDeps = {
      pool: queue.pool,
      statements: queue.statements,
      logger: queue.logger,
      hooks: this.options.hooks ?? {},
    };
  }

  /** Tasks running now. */
  get running(): number {
    return this.#active;
  }

  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new ConfigError(`worker ${this.id} was already started`);
    if (this.#queue.handlers.size === 0) {
      throw new ConfigError(
        `worker: queue "${this.#queue.name}" has no handlers; import the modules that register them`,
      );
    }
    this.#state = 'running';
    const listener = this.#queue.listener();
    this.#unsubscribe.push(
      await listener.on('task_ready', (queue) => queue === this.#queue.name && this.#claim()),
      await listener.on('task_cancel', () => this.#heartbeat()),
      // Notifications sent while the connection was down are lost: look now.
      listener.onReconnect(() => this.#claim()),
    );
    this.#every(this.options.leaseMs / 4, () => this.#heartbeat());
    this.#pollLater();
    await this.#presence.start();
    this.emit('start');
    this.#claim();
  }

  /**
   * Stops claiming, lets running tasks finish within `shutdownGraceMs`, then aborts
   * their signals; a task still running after that is left to its lease, so another
   * worker runs it again. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#shutdown();
    return this.#stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #shutdown(): Promise<void> {
    if (this.#state === 'idle') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    await this.#claiming;
    await this.#releaseWaiting();
    const settled = () => Promise.all([...this.#held.values()].map((running) => running.settled));
    if (!(await within(settled(), this.options.shutdownGraceMs))) {
      for (const running of this.#held.values()) {
        // Not the task's fault: try again at once, elsewhere.
        running.controller.abort(new Retry({ reason: 'the worker shut down before the task finished' }));
      }
      // Handlers that ignore their signal are not waited for: their leases run out.
      await within(settled(), 1000);
    }
    for (const timer of this.#timers) clearInterval(timer);
    await this.#completer.drain();
    await this.#presence.stop();
    this.#state = 'stopped';
    this.emit('stop');
  }

  /** Claims tasks for the free slots; coalesces concurrent wake-ups into one claim at a time. */
  #claim(): void {
    if (this.#state !== 'running') return;
    if (this.#claiming) {
      this.#claimAgain = true;
      return;
    }
    this.#claiming = this.#claimLoop().finally(() => {
      this.#claiming = undefined;
    });
  }

  async #claimLoop(): Promise<void> {
    do {
      this.#claimAgain = false;
      const concurrency = this.options.concurrency;
      const ahead = Math.min(this.#prefetch, Math.floor((concurrency * PREFETCH_WAIT_MS) / this.#meanRunMs));
      const capacity = concurrency + ahead;
      const room = capacity - this.#active - this.#waiting.size;
      if (room <= 0 || this.#state !== 'running') return;
      // While tasks wait, top up only once half the room is free, so that each claim takes many.
      if (this.#waiting.size > 0 && room * 2 < capacity) return;
      const leaseId = randomUUID();
      let rows: ClaimedRow[];
      try {
        rows = await this.#queue.statements.claimMany(this.#queue.pool, {
          queue: this.#queue.name,
          names: [...this.#queue.handlers.keys()],
          limit: room,
          leaseId,
          leaseMs: this.options.leaseMs,
          workerId: this.id,
        });
      } catch (error) {
        this.emit('worker:error', asError(error));
        return; // the poll tries again
      }
      // The claim picks by priority, then age, but returns rows in any order: start them in that order.
      rows.sort(claimOrder);
      for (const row of rows) this.#waiting.set(row.id, { row, leaseId });
      this.#startWaiting();
      // A full batch suggests more are waiting.
      if (rows.length === room) this.#claimAgain = true;
    } while (this.#claimAgain);
  }

  /** Starts waiting tasks, in claim order, while slots are free. */
  #startWaiting(): void {
    for (const [id, { row, leaseId }] of this.#waiting) {
      if (this.#active >= this.options.concurrency || this.#state !== 'running') return;
      this.#waiting.delete(id);
      this.#start(row, leaseId);
    }
  }

  /** Gives the waiting tasks back to the queue, for other workers to run at once. */
  async #releaseWaiting(): Promise<void> {
    if (this.#waiting.size === 0) return;
    const waiting = [...this.#waiting.values()].map(({ row, leaseId }) => ({
      id: row.id,
      lease_id: leaseId,
    }));
    this.#waiting.clear();
    try {
      await this.#queue.statements.releaseMany(this.#queue.pool, waiting);
    } catch (error) {
      // Their leases run out and they are rescued.
      this.emit('worker:error', asError(error));
    }
  }

  #start(row: ClaimedRow, leaseId: string): void {
    const task = taskInfo(row);
    const handler = this.#queue.handlers.get(task.name);
    if (!handler) return; // cannot happen: claims ask only for names with handlers
    const controller = new AbortController();
    const timeout = setTimeout(
      () =>
        controller.abort(new TimeoutError(`task ${task.id} timed out after ${handler.options.timeoutMs} ms`)),
      handler.options.timeoutMs,
    );
    // The slot frees as soon as the handler is done; storing the outcome is batched.
    const startedAt = performance.now();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(timeout);
      const ms = performance.now() - startedAt;
      this.#meanRunMs = Number.isFinite(this.#meanRunMs) ? this.#meanRunMs + (ms - this.#meanRunMs) / 16 : ms;
      this.#active--;
      this.#startWaiting();
      this.#claim();
    };
    this.#active++;
    this.emit('task:start', task);
    const run = async () => {
      try {
        const { outcome, stored, startedAt } = await runTask(
          this.#runDeps,
          handler,
          task,
          leaseId,
          controller.signal,
        );
        release();
        const kept = stored || (await this.#completer.add({ id: task.id, leaseId, outcome, startedAt }));
        if (kept) this.#report(task, outcome);
        else this.emit('task:lease-lost', task);
      } catch (error) {
        if (error instanceof LeaseLostError) this.emit('task:lease-lost', task);
        else this.emit('worker:error', asError(error));
      } finally {
        release();
        this.#held.delete(task.id);
      }
    };
    const running: Running = { task, leaseId, controller, settled: Promise.resolve() };
    this.#held.set(task.id, running);
    running.settled = run();
  }

  /** Stores a waiting task as cancelled without running it. */
  #cancelWaiting(task: TaskInfo, leaseId: string): void {
    const outcome: Outcome = { kind: 'cancelled', error: describeError(new CancelRequested(task.id)) };
    this.#completer.add({ id: task.id, leaseId, outcome }).then(
      (kept) => kept && this.#report(task, outcome),
      (error: unknown) => this.emit('worker:error', asError(error)),
    );
  }

  #report(task: TaskInfo, outcome: Outcome): void {
    switch (outcome.kind) {
      case 'succeeded':
        this.emit('task:success', task, outcome.result);
        break;
      case 'retry':
        this.emit('task:retry', task, outcome.error, outcome.delayMs);
        break;
      case 'failed':
        this.emit('task:failure', task, outcome.error);
        break;
      case 'cancelled':
        this.emit('task:cancel', task, outcome.error);
        break;
    }
  }

  /**
   * Extends the leases of held and waiting tasks; aborts those taken away or asked
   * to cancel, and drops or cancels such tasks before they start.
   */
  async #heartbeat(): Promise<void> {
    if (this.#held.size === 0 && this.#waiting.size === 0) return;
    const held = [...this.#held.values()];
    const waiting = [...this.#waiting.values()];
    try {
      const rows = await this.#queue.statements.heartbeatMany(
        this.#queue.pool,
        [
          ...held.map(({ task, leaseId }) => ({ id: task.id, lease_id: leaseId })),
          ...waiting.map(({ row, leaseId }) => ({ id: row.id, lease_id: leaseId })),
        ],
        this.options.leaseMs,
      );
      const still = new Map(rows.map((row) => [row.id, row.cancel_requested]));
      for (const { row, leaseId } of waiting) {
        const cancel = still.get(row.id);
        if (cancel === false || this.#waiting.get(row.id)?.leaseId !== leaseId) continue;
        this.#waiting.delete(row.id);
        if (cancel) this.#cancelWaiting(taskInfo(row), leaseId);
      }
      for (const running of held) {
        const cancel = still.get(running.task.id);
        if (cancel === undefined && this.#held.has(running.task.id)) {
          running.controller.abort(new LeaseLostError(running.task.id));
        } else if (cancel) {
          running.controller.abort(new CancelRequested(running.task.id));
        }
      }
    } catch (error) {
      this.emit('worker:error', asError(error));
    }
  }

  /** Warns once when this queue's scheduled tasks are overdue and no scheduler runs anywhere. */
  async #watchScheduler(): Promise<void> {
    const { overdue, scheduler_alive } = await this.#queue.statements.checkScheduler(
      this.#queue.pool,
      this.#queue.name,
      OVERDUE_GRACE_MS,
    );
    if (scheduler_alive) this.#warnedNoScheduler = false;
    if (scheduler_alive || overdue === 0 || this.#warnedNoScheduler) return;
    this.#warnedNoScheduler = true;
    this.#queue.logger.warn(
      `${overdue >= 1000 ? '1000+' : overdue} scheduled tasks of queue "${this.#queue.name}" are overdue and no scheduler is running: ` +
        'delayed tasks and retries wait until one runs (start `pgtq scheduler`, or `pgtq worker --with-scheduler`)',
      { queue: this.#queue.name, overdue },
    );
    this.emit('scheduler:missing', overdue);
  }

  #pollLater(): void {
    const jitter = 0.8 + Math.random() * 0.4;
    const timer = setTimeout(() => {
      this.#claim();
      if (this.#state === 'running') this.#pollLater();
    }, this.options.pollIntervalMs * jitter);
    timer.unref();
    this.#timers.push(timer);
  }

  #every(ms: number, fn: () => void): void {
    const timer = setInterval(fn, ms);
    timer.unref();
    this.#timers.push(timer);
  }
}

/** Higher priority first, then earlier due, then older: the order of the claim index. */
function claimOrder(a: ClaimedRow, b: ClaimedRow): number {
  return (
    b.priority - a.priority ||
    a.run_at.getTime() - b.run_at.getTime() ||
    (BigInt(a.id) < BigInt(b.id) ? -1 : 1)
  );
}

/** Whether `promise` settled within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
