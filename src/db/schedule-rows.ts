/** Row shapes of the sql/schedule_*.sql statements (see migrations/1763800000001_schedules.sql). */

export type CatchUpPolicy = 'skip' | 'backfill';

export interface ScheduleRow {
  queue: string;
  name: string;
  cron: string;
  tz: string;
  task_name: string;
  args: unknown[];
  priority: number;
  max_attempts: number;
  catch_up: CatchUpPolicy;
  backfill_limit: number | null;
  next_fire_at: Date | null;
  last_fired_at: Date | null;
  error: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface ScheduleInput {
  queue: string;
  name: string;
  cron: string;
  tz: string;
  taskName: string;
  args: readonly unknown[];
  priority: number;
  maxAttempts: number;
  catchUp: CatchUpPolicy;
  backfillLimit: number | null;
}

/** A schedule with work for the cron service, and the clock it was selected by. */
export interface PendingScheduleRow {
  queue: string;
  name: string;
  cron: string;
  tz: string;
  next_fire_at: Date | null;
  clock: Date;
}

/** A due schedule locked for firing, and the clock it was found due by. */
export interface DueScheduleRow {
  cron: string;
  tz: string;
  catch_up: CatchUpPolicy;
  backfill_limit: number | null;
  next_fire_at: Date;
  clock: Date;
}

/** A schedule's next fire time (null: none), or why it has none. */
export interface ScheduleNextInput {
  queue: string;
  name: string;
  cron: string;
  tz: string;
  nextFireAt: Date | null;
  error: string | null;
}
