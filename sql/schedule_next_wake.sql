-- When the cron service next has work: now if a schedule awaits its first fire
-- time, else the earliest next fire time; null when there is no valid schedule.
-- $1 timestamptz  "now" (null in production)
SELECT CASE WHEN bool_or(next_fire_at IS NULL) THEN coalesce($1::timestamptz, now())
            ELSE min(next_fire_at) END AS wake_at
FROM :schema.schedules
WHERE error IS NULL
