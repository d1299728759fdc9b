-- Stores the first fire time of a new or changed schedule, or why it cannot have one.
-- Only if it still awaits one with the expression and time zone it was computed from,
-- so a stale result never overwrites a newer registration or another scheduler's work.
-- $1 text         queue
-- $2 text         schedule name
-- $3 text         the cron expression it was computed from
-- $4 text         the time zone it was computed from
-- $5 timestamptz  next fire time (null when invalid)
-- $6 text         error (null when valid)
UPDATE :schema.schedules
SET next_fire_at = $5, error = $6
WHERE queue = $1 AND name = $2 AND cron = $3 AND tz = $4
  AND next_fire_at IS NULL AND error IS NULL
