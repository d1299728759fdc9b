-- The schedules of one queue, by name.
-- $1 text  queue
SELECT queue, name, cron, tz, task_name, args, priority, max_attempts, catch_up, backfill_limit,
       next_fire_at, last_fired_at, error, created_at, updated_at
FROM :schema.schedules
WHERE queue = $1
ORDER BY name
