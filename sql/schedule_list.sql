-- The schedules of one queue (or of every queue), by name.
-- $1 text  queue (null: every queue)
SELECT queue, name, cron, tz, task_name, args, priority, max_attempts, catch_up, backfill_limit,
       next_fire_at, last_fired_at, error, created_at, updated_at
FROM :schema.schedules
WHERE $1::text IS NULL OR queue = $1
ORDER BY name, queue
