-- Locks one schedule for firing if it is due. A schedule another scheduler is firing
-- is skipped, not waited on; one it has just fired is no longer due.
-- $1 text         queue
-- $2 text         schedule name
-- $3 timestamptz  "now" (null in production)
SELECT cron, tz, catch_up, backfill_limit, next_fire_at, coalesce($3::timestamptz, now()) AS clock
FROM :schema.schedules
WHERE queue = $1 AND name = $2 AND next_fire_at <= coalesce($3::timestamptz, now())
FOR UPDATE SKIP LOCKED
