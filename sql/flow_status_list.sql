-- Paused queues and names, and groups with flow control, of a queue (or all).
-- $1 text  queue, or null for every queue
SELECT queue, name, group_key, ready::int AS ready, running::int AS running, scheduled::int AS scheduled,
       group_concurrency, rate_limit, (extract(epoch FROM rate_period) * 1000)::int AS rate_period_ms,
       rate_per_group, recent_starts::int AS recent_starts, held_by, weight
FROM :schema.flow_status
WHERE $1::text IS NULL OR queue = $1
ORDER BY queue, name, group_key
