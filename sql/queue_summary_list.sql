-- Queues × states of the schema (or of one queue): counts and the oldest waiting task.
-- $1 text  queue, or null for every queue
SELECT queue, state, count::int AS count, oldest_run_at,
       date_trunc('second', oldest_age)::text AS oldest_age,
       round(extract(epoch FROM oldest_age) * 1000)::float8 AS oldest_age_ms
FROM :schema.queue_summary
WHERE $1::text IS NULL OR queue = $1
ORDER BY queue, state
