-- Up Migration
--
-- Cron schedules. Run with search_path set to pgtq's schema, like the first
-- migration. A schedule is stored here; the cron service (src/scheduler/cron-service.ts)
-- reads the expression in JavaScript, since PostgreSQL cannot parse cron, and
-- pushes one task per fire time.

-- One row per schedule of a queue. next_fire_at is NULL until a cron service has
-- validated the expression and computed it (a new or changed schedule); error is
-- set instead when the expression or time zone is invalid, and the schedule is
-- skipped until it is registered again with another expression or time zone.
-- catch_up says what happens to fire times missed while no scheduler ran:
-- 'skip' enqueues only the latest one, 'backfill' the latest backfill_limit ones.
CREATE TABLE schedules (
  queue          text NOT NULL,
  name           text NOT NULL,
  cron           text NOT NULL,
  tz             text NOT NULL DEFAULT 'UTC',
  task_name      text NOT NULL,
  args           jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(args) = 'array'),
  priority       integer NOT NULL DEFAULT 0,
  max_attempts   integer NOT NULL DEFAULT 10 CHECK (max_attempts >= 1),
  catch_up       text NOT NULL DEFAULT 'skip' CHECK (catch_up IN ('skip', 'backfill')),
  backfill_limit integer CHECK (backfill_limit BETWEEN 1 AND 10000),
  next_fire_at   timestamptz,
  last_fired_at  timestamptz,
  error          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (queue, name),
  CONSTRAINT schedules_backfill_needs_limit
    CHECK ((catch_up = 'backfill') = (backfill_limit IS NOT NULL))
);
-- Schedules due, and those awaiting their first fire time (NULLs sort first).
CREATE INDEX schedules_due_idx ON schedules (next_fire_at);

-- One row per fire time that enqueued a task. The primary key is what makes each
-- fire time enqueue exactly one task however many schedulers run: the row is
-- inserted in the transaction that pushes the task, and a second insert of the
-- same fire time does nothing. task_id is filled in by the same transaction.
CREATE TABLE schedule_fires (
  queue   text NOT NULL,
  name    text NOT NULL,
  fire_at timestamptz NOT NULL,
  task_id bigint,
  PRIMARY KEY (queue, name, fire_at),
  FOREIGN KEY (queue, name) REFERENCES schedules ON DELETE CASCADE
);

-- Creates or updates a schedule; for psql, migrations and other languages (pgtq's
-- own q.schedule() calls it too). The expression is not checked here: a cron
-- service checks it, logs an invalid one and skips it. Registering again with the
-- same expression and time zone keeps next_fire_at, so fire times missed while
-- every process was down are caught up; a new expression or time zone starts
-- from the next fire time after the change.
CREATE FUNCTION schedule(
  queue text, name text, cron text, task_name text, args jsonb DEFAULT '[]',
  tz text DEFAULT 'UTC', priority integer DEFAULT 0, max_attempts integer DEFAULT 10,
  catch_up text DEFAULT 'skip', backfill_limit integer DEFAULT NULL
) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
  INSERT INTO schedules AS s
    (queue, name, cron, tz, task_name, args, priority, max_attempts, catch_up, backfill_limit)
  VALUES (schedule.queue, schedule.name, schedule.cron, schedule.tz, schedule.task_name,
          schedule.args, schedule.priority, schedule.max_attempts, schedule.catch_up,
          schedule.backfill_limit)
  ON CONFLICT (queue, name) DO UPDATE SET
    cron = excluded.cron,
    tz = excluded.tz,
    task_name = excluded.task_name,
    args = excluded.args,
    priority = excluded.priority,
    max_attempts = excluded.max_attempts,
    catch_up = excluded.catch_up,
    backfill_limit = excluded.backfill_limit,
    next_fire_at = CASE WHEN (s.cron, s.tz) IS DISTINCT FROM (excluded.cron, excluded.tz)
                        THEN NULL ELSE s.next_fire_at END,
    error = CASE WHEN (s.cron, s.tz) IS DISTINCT FROM (excluded.cron, excluded.tz)
                 THEN NULL ELSE s.error END,
    updated_at = now();
  -- wakes a sleeping scheduler (on commit) so it computes the first fire time
  SELECT notify('task_scheduled', schedule.queue);
$$;

-- Removes a schedule and its fire history; tasks it already pushed stay.
-- Returns whether there was such a schedule.
CREATE FUNCTION unschedule(queue text, name text) RETURNS boolean
LANGUAGE sql SET search_path FROM CURRENT AS $$
  WITH removed AS (
    DELETE FROM schedules AS s
    WHERE s.queue = unschedule.queue AND s.name = unschedule.name
    RETURNING 1
  )
  SELECT count(*) > 0 FROM removed
$$;

-- Down Migration
DROP FUNCTION unschedule(text, text);
DROP FUNCTION schedule(text, text, text, text, jsonb, text, integer, integer, text, integer);
DROP TABLE schedule_fires;
DROP TABLE schedules;
