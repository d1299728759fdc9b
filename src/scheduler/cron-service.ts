import { withTransaction } from '../db/queryable.js';
import type { PendingScheduleRow } from '../db/schedule-rows.js';
import { ValidationError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { PeriodicService } from '../service.js';
import { fireTimesBetween, nextFireAfter } from './cron.js';

/** Schedules looked at per runOnce; more wait for the next run, which nextWakeAt says is due now. */
const BATCH = 100;

export interface CronServiceOptions {
  /** The longest sleep between looks at the schedules (a new schedule is seen within it). */
  maxSleepMs: number;
  onError: (error: unknown, failures: number) => void;
}

/**
 * Pushes the tasks of cron schedules (every queue of the schema) when they come due.
 *
 * Several cron services may run at once, in one process or many. Each due schedule
 * is fired in a transaction of its own that first locks its row with FOR UPDATE
 * SKIP LOCKED: a second service skips it rather than wait, and one that looks after
 * the commit finds next_fire_at moved on. The guarantee does not rest on that lock,
 * though: the fire time is recorded under a unique key in the same transaction as
 * the push, and a fire time already recorded gets no task.
 *
 * Fire times are computed from the database's clock (`now` only in tests), so the
 * services' own clocks need not agree.
 */
export class CronService extends PeriodicService {
  readonly #pool: Runtime['pool'];
  readonly #statements: Runtime['statements'];
  readonly #logger: Runtime['logger'];

  constructor(runtime: Pick<Runtime, 'pool' | 'statements' | 'logger'>, options: CronServiceOptions) {
    super({ name: 'cron', intervalMs: () => options.maxSleepMs, onError: options.onError });
    this.#pool = runtime.pool;
    this.#statements = runtime.statements;
    this.#logger = runtime.logger;
  }

  /** Fires what is due, then sleeps until the next fire time. */
  protected override async pass(): Promise<number | undefined> {
    await this.runOnce();
    const wakeAt = await this.nextWakeAt();
    return wakeAt ? wakeAt.getTime() - Date.now() : undefined;
  }

  /**
   * Computes the first fire time of new and changed schedules (logging and skipping
   * invalid ones), then pushes the tasks of every due schedule: one per fire time
   * since its last run, per its catch-up policy. Returns how many tasks were pushed.
   * A schedule that fails is logged; the others still run.
   */
  async runOnce(now: Date | null = null): Promise<{ fired: number }> {
    const pending = await this.#statements.listPendingSchedules(this.#pool, BATCH, now);
    let fired = 0;
    for (const schedule of pending) {
      try {
        if (schedule.next_fire_at === null) await this.#computeFirst(schedule);
        else fired += await this.#fire(schedule, now);
      } catch (error) {
        this.#logger.error('cron schedule failed', {
          queue: schedule.queue,
          schedule: schedule.name,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
    return { fired };
  }

  /** When runOnce next has work: the earliest next fire time (now for a schedule awaiting one), or null. */
  nextWakeAt(now: Date | null = null): Promise<Date | null> {
    return this.#statements.nextScheduleWake(this.#pool, now);
  }

  async #computeFirst(schedule: PendingScheduleRow): Promise<void> {
    const { queue, name, cron, tz } = schedule;
    let nextFireAt: Date | null = null;
    let error: string | null = null;
    try {
      nextFireAt = nextFireAfter(cron, tz, schedule.clock);
    } catch (cause) {
      if (!(cause instanceof ValidationError)) throw cause;
      // Registered from SQL, where nothing checks the expression: report it once and
      // skip the schedule until it is registered again.
      error = cause.message;
      this.#logger.error('invalid cron schedule skipped', { queue, schedule: name, cron, tz, error });
    }
    await this.#statements.setScheduleNext(this.#pool, { queue, name, cron, tz, nextFireAt, error });
  }

  async #fire({ queue, name }: PendingScheduleRow, now: Date | null): Promise<number> {
    return withTransaction(this.#pool, async (client) => {
      const due = await this.#statements.lockDueSchedule(client, queue, name, now);
      if (!due) return 0; // another service is firing it, or has fired it
      const limit = due.catch_up === 'backfill' ? (due.backfill_limit ?? 1) : 1;
      // (next_fire_at - 1 ms, clock] holds next_fire_at and every fire time after it that is due.
      const fireAts = fireTimesBetween(
        due.cron,
        due.tz,
        new Date(due.next_fire_at.getTime() - 1),
        due.clock,
        limit,
      );
      const latestDue = fireAts.at(-1) ?? null;
      const nextFireAt = nextFireAfter(due.cron, due.tz, due.clock);
      const claimed = await this.#statements.claimScheduleFires(client, queue, name, fireAts);
      const pushed = await this.#statements.fireSchedule(
        client,
        { queue, name, claimed, nextFireAt, latestDue },
        now,
      );
      if (pushed.length > 0) {
        this.#logger.debug('cron schedule fired', { queue, schedule: name, tasks: pushed.length });
      }
      return pushed.length;
    });
  }
}
