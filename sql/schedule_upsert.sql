-- Creates or updates a schedule; see schedule() in migrations/ (it also notifies the scheduler).
-- $1 text     queue
-- $2 text     schedule name
-- $3 text     cron expression (already checked by parseCron)
-- $4 text     task name
-- $5 jsonb    task arguments (an array)
-- $6 text     time zone
-- $7 integer  task priority
-- $8 integer  task max_attempts
-- $9 text     catch-up policy: skip | backfill
-- $10 integer backfill limit (null with skip)
SELECT :schema.schedule(
  queue => $1, name => $2, cron => $3, task_name => $4, args => $5::jsonb, tz => $6,
  priority => $7, max_attempts => $8, catch_up => $9, backfill_limit => $10
)
