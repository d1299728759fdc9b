-- How long until the next scheduled task is due, by the database's clock (ms;
-- zero or less when one is already due; null when none is scheduled).
-- $1 timestamptz  "now" (null in production)
SELECT extract(epoch FROM min(run_at) - coalesce($1::timestamptz, now())) * 1000 AS due_in_ms
FROM :schema.tasks
WHERE state = 'scheduled'
