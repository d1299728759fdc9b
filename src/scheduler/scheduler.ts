import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod/v4';
import { parse } from '../config.js';
import { asError } from '../errors.js';
import { Presence } from '../presence.js';
import type { Runtime } from '../runtime.js';
import { abortable, Service } from '../service.js';
import { type Compaction, Compactor } from './compactor.js';
import { CronService } from './cron-service.js';
import { Expirer } from './expirer.js';
import { HistoryKeeper } from './history.js';
import { Promoter } from './promoter.js';
import { ReadyRing } from './ready-ring.js';
import { type Rescued, Rescuer } from './rescuer.js';

const DAY_MS = 86_400_000;

export const schedulerOptions = z
  .object({
    /** How often to rescue tasks whose worker lost its lease. @default 2_000 */
    rescueIntervalMs: z.number().int().min(10).default(2_000),
    /**
     * How often to turn the ready ring: the longer, the more dead rows a claim may
     * walk while an old snapshot holds vacuum back. @default 1_000
     */
    rotateIntervalMs: z.number().int().min(10).default(1_000),
    /**
     * How often to look whether `tasks` should be compacted: after a long-held
     * snapshot made it grow, its space is given back this long after vacuum ran.
     * @default 10_000
     */
    compactIntervalMs: z.number().int().min(10).default(10_000),
    /** How often to end pending tasks past their time to live (`ttlMs`). @default 1_000 */
    expireIntervalMs: z.number().int().min(10).default(1_000),
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
    /**
     * The longest sleep between looks at the schedule, in case a notification was
     * missed; without LISTEN (the `listen: false` connection option) it bounds how
     * late a task pushed due sooner than the next known one is promoted.
     * @default 30_000, or 1_000 without LISTEN
     */
    maxSleepMs: z.number().int().min(10).optional(),
  })
  .strict();
export type SchedulerOptions = z.input<typeof schedulerOptions>;

export interface SchedulerEvents {
  start: [];
  stop: [];
  promoted: [count: number];
  rescued: [result: Rescued];
  expired: [count: number];
  compacted: [compaction: Compaction];
  'scheduler:error': [error: Error];
}

/**
 * Promotes scheduled tasks when they come due (sleeping until the next one,
 * woken early by NOTIFY when an earlier one is pushed), fires cron schedules
 * (each fire time pushes a task due then, promoted like any other), rescues tasks
 * of dead workers, ends tasks past their time to live, turns the ready ring that
 * claims search, compacts `tasks` after a long-held snapshot made it grow, and
 * keeps history partitions. Every statement is safe to run from several
 * schedulers at once, so running two is harmless.
 */
export class Scheduler extends Service<SchedulerEvents> {
  readonly id: string;
  readonly options: Readonly<z.output<typeof schedulerOptions> & { maxSleepMs: number }>;
  readonly promoter: Promoter;
  readonly rescuer: Rescuer;
  readonly history: HistoryKeeper;
  readonly readyRing: ReadyRing;
  readonly compactor: Compactor;
  readonly expirer: Expirer;
  readonly cron: CronService;
  readonly #runtime: Runtime;
  readonly #presence: Presence;
  #unsubscribe: (() => void)[] = [];

  /** @internal use `queue.scheduler(options)` */
  constructor(runtime: Runtime, options: SchedulerOptions = {}) {
    const id = `${hostname()}:${process.pid}:scheduler:${randomUUID().slice(0, 8)}`;
    super(`scheduler ${id}`, { keepsProcessAlive: true });
    this.id = id;
    const parsed = parse(schedulerOptions, options, 'scheduler options');
    this.options = Object.freeze({
      ...parsed,
      maxSleepMs: parsed.maxSleepMs ?? (runtime.listening ? 30_000 : 1_000),
    });
    this.#runtime = runtime;
    const onError = (error: unknown) => this.emit('scheduler:error', asError(error));
    const { maxSleepMs } = this.options;
    this.promoter = new Promoter(runtime, {
      maxSleepMs,
      onPromoted: (count) => this.emit('promoted', count),
      onError,
    });
    this.cron = new CronService(runtime, { maxSleepMs, onError });
    this.rescuer = new Rescuer(runtime, {
      intervalMs: this.options.rescueIntervalMs,
      onRescued: (rescued) => this.emit('rescued', rescued),
      onError,
    });
    this.readyRing = new ReadyRing(runtime, { intervalMs: this.options.rotateIntervalMs, onError });
    this.compactor = new Compactor(runtime, {
      intervalMs: this.options.compactIntervalMs,
      onCompacted: (compaction) => this.emit('compacted', compaction),
      onError,
    });
    this.expirer = new Expirer(runtime, {
      intervalMs: this.options.expireIntervalMs,
      onExpired: (count) => this.emit('expired', count),
      onError,
    });
    this.history = new HistoryKeeper(runtime, {
      ...this.options,
      intervalMs: this.options.historyIntervalMs,
      onError,
    });
    this.#presence = new Presence({
      statements: runtime.statements,
      db: runtime.pool,
      process: { id: this.id, kind: 'scheduler', queue: runtime.queue, details: {} },
      intervalMs: this.options.livenessIntervalMs,
      onError,
    });
  }

  get #parts() {
    return [
      this.promoter,
      this.cron,
      this.rescuer,
      this.expirer,
      this.readyRing,
      this.compactor,
      this.history,
    ];
  }

  /** Connects and starts every part; rejects if the database cannot be reached or is not migrated. */
  protected override async onStart(signal: AbortSignal): Promise<void> {
    const listener = this.#runtime.listener();
    const due = () => {
      this.promoter.wake();
      this.cron.wake();
    };
    // Connecting may take long (an unreachable host): stop() must not wait for it.
    this.#unsubscribe.push(
      await abortable(listener.on('task_scheduled', due), signal),
      listener.onReconnect(due),
    );
    await abortable(this.#presence.start(), signal);
    for (const part of this.#parts) await part.start();
    this.emit('start');
  }

  protected override async onStop(): Promise<void> {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    await Promise.all(this.#parts.map((part) => part.stop()));
    await this.#presence.stop();
    this.emit('stop');
  }
}
