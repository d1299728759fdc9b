-- Finished tasks per minute over the last $2 minutes, oldest first: of one queue
-- or of every queue. Reads the finished_at index of the last partition or two.
-- $1 text     queue (null: every queue)
-- $2 integer  minutes
SELECT date_trunc('minute', finished_at) AS minute,
       count(*) FILTER (WHERE state = 'succeeded')::int AS succeeded,
       count(*) FILTER (WHERE state = 'failed')::int AS failed,
       count(*) FILTER (WHERE state = 'cancelled')::int AS cancelled
FROM :schema.finished_tasks
WHERE finished_at >= date_trunc('minute', now()) - make_interval(mins => $2 - 1)
  AND ($1::text IS NULL OR queue = $1)
GROUP BY 1
ORDER BY 1
