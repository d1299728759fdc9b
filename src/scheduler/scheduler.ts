import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { z } from 'zod/v4';
import { parse } from '../config.js';
import { asError, ConfigError } from '../errors.js';
import type { PgTq } from '../pgtq.js';
import { Presence } from '../presence.js';
import { CronService } from './cron-service.js';
import { HistoryKeeper } from './history.js';
import { Promoter } from './promoter.js';
import { Rescuer } from './rescuer.js';

const DAY_MS = 86_400_000;

export const schedulerOptions = z
  .object({
    /** How often to rescue tasks whose worker lost its lease. @default 2_000 */
    rescueIntervalMs: z.number().int().min(10).default(2_000),
    /** How often to create history partitions ahead and drop expired ones. @default 3_600_000 */
    historyIntervalMs: z.number().int().min(1000).default(3_600_000),
    /** Finished tasks are kept this long. @default 7 days */
    retentionMs: z
      .number()
      .int()
      .min(DAY_MS)
      .default(7 * DAY_MS),
    /** Days with failed tasks are kept this long. @default 30 days */
    failedRetentionMs: z
      .number()
      .int()
      .min(DAY_MS)
      .default(30 * DAY_MS),
    /** How often the scheduler records that it is alive (see the live_processes view). @default 5_000 */
    livenessIntervalMs: z.number().int().min(100).default(5_000),
    /** The longest sleep between looks at the schedule, in case a notification was missed. @default 30_000 */
    maxSleepMs: z.number().int().min(10).default(30_000),
  })
  .strict();
export type SchedulerOptions = z.input<typeof schedulerOptions>;

export interface SchedulerEvents {
  start: [];
  stop: [];
  promoted: [count: number];
  rescued: [result: { retried: number; failed: number }];
  'scheduler:error': [error: Error];
}

/**
 * Promotes scheduled tasks when they come due (sleeping until the next one,
 * woken early by NOTIFY when an earlier one is pushed), fires cron schedules
 * (each fire time pushes a task due then, promoted like any other), rescues tasks of dead
 * workers, and keeps history partitions. Every statement is safe to run from
 * several schedulers at once, so running two is harmless.
 */
export class Scheduler extends EventEmitter<SchedulerEvents> {
  readonly id = `${hostname()}:${process.pid}:scheduler:${randomUUID().slice(0, 8)}`;
  readonly options: Readonly<z.output<typeof schedulerOptions>>;
  readonly promoter: Promoter;
  readonly rescuer: Rescuer;
  readonly history: HistoryKeeper;
  readonly cron: CronService;
  readonly #queue: PgTq;
  readonly #presence: Presence;
  #state: 'idle' | 'running' | 'stopped' = 'idle';
  #wakeTimer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #tickAgain = false;
  #timers: NodeJS.Timeout[] = [];
  #unsubscribe: (() => void)[] = [];
  #stopped: Promise<void> | undefined;

  constructor(queue: PgTq, options: SchedulerOptions = {}) {
    super();
    this.options = Object.freeze(parse(schedulerOptions, options, 'scheduler options'));
    this.#queue = queue;
    this.promoter = new Promoter(queue.statements, queue.pool);
    this.rescuer = new Rescuer(queue.statements, queue.pool);
    this.history = new HistoryKeeper(queue.statements, queue.pool, this.options);
    this.cron = new CronService({ pool: queue.pool, statements: queue.statements, logger: queue.logger });
    this.#presence = new Presence({
      statements: queue.statements,
      db: queue.pool,
      process: { id: this.id, kind: 'scheduler', queue: queue.name, details: {} },
      intervalMs: this.options.livenessIntervalMs,
      onError: (error) => this.emit('scheduler:error', asError(error)),
    });
  }

  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new ConfigError('scheduler was already started');
    this.#state = 'running';
    const listener = this.#queue.listener();
    this.#unsubscribe.push(
      await listener.on('task_scheduled', () => this.#tick()),
      listener.onReconnect(() => this.#tick()),
    );
    this.#every(this.options.rescueIntervalMs, () => this.#guard(this.rescuer.runOnce(), 'rescued'));
    this.#every(this.options.historyIntervalMs, () => this.#guard(this.history.runOnce()));
    await this.#guard(this.history.runOnce());
    await this.#presence.start();
    this.emit('start');
    this.#tick();
  }

  /** Stops all timers and waits for the work under way. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      const wasRunning = this.#state === 'running';
      this.#state = 'stopped';
      for (const unsubscribe of this.#unsubscribe) unsubscribe();
      for (const timer of this.#timers) clearInterval(timer);
      clearTimeout(this.#wakeTimer);
      await this.#ticking;
      if (wasRunning) {
        await this.#presence.stop();
        this.emit('stop');
      }
    })();
    return this.#stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Promotes what is due, then sleeps until the next due task; wake-ups while busy coalesce into one more pass. */
  #tick(): void {
    if (this.#state !== 'running') return;
    if (this.#ticking) {
      this.#tickAgain = true;
      return;
    }
    this.#ticking = this.#promoteAndSleep().finally(() => {
      this.#ticking = undefined;
      if (this.#tickAgain) {
        this.#tickAgain = false;
        this.#tick();
      }
    });
  }

  async #promoteAndSleep(): Promise<void> {
    let sleepMs = this.options.maxSleepMs;
    try {
      await this.cron.runOnce();
      const promoted = await this.promoter.runOnce();
      if (promoted > 0) this.emit('promoted', promoted);
      const dueInMs = await this.promoter.nextDueInMs();
      if (dueInMs !== null) sleepMs = Math.min(sleepMs, Math.max(0, Math.ceil(dueInMs)));
      const cronAt = await this.cron.nextWakeAt();
      if (cronAt) sleepMs = Math.min(sleepMs, Math.max(0, cronAt.getTime() - Date.now()));
    } catch (error) {
      this.emit('scheduler:error', asError(error));
      sleepMs = Math.min(sleepMs, 1000);
    }
    if (this.#state !== 'running') return;
    clearTimeout(this.#wakeTimer);
    this.#wakeTimer = setTimeout(() => this.#tick(), sleepMs);
  }

  async #guard<T>(work: Promise<T>, event?: 'rescued'): Promise<void> {
    try {
      const result = await work;
      if (event === 'rescued') {
        const rescued = result as { retried: number; failed: number };
        if (rescued.retried + rescued.failed > 0) this.emit('rescued', rescued);
      }
    } catch (error) {
      this.emit('scheduler:error', asError(error));
    }
  }

  #every(ms: number, fn: () => void): void {
    this.#timers.push(setInterval(fn, ms));
  }
}
