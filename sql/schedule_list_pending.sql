-- Schedules with work for the cron service: those awaiting their first fire time
-- (new, or a changed expression) and those due. Not locked: each due one is then
-- locked and fired in a transaction of its own (schedule_lock_due).
-- $1 integer      at most this many
-- $2 timestamptz  "now" (null in production)
SELECT queue, name, cron, tz, next_fire_at, coalesce($2::timestamptz, now()) AS clock
FROM :schema.schedules
WHERE (next_fire_at IS NULL AND error IS NULL) OR next_fire_at <= coalesce($2::timestamptz, now())
ORDER BY next_fire_at NULLS FIRST
LIMIT $1
