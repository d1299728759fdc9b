-- The tasks running now, newest started first: of one queue or of every queue.
-- $1 text     queue (null: every queue)
-- $2 integer  at most this many
SELECT id::text AS id, queue, name, worker_id, started_at, attempts, max_attempts, progress
FROM :schema.tasks
WHERE state = 'running' AND ($1::text IS NULL OR queue = $1)
ORDER BY started_at DESC
LIMIT $2
