-- Groups of failed tasks in history (the failures view), most recent first.
-- $1 text     queue (null: every queue)
-- $2 integer  at most this many groups
SELECT queue, name, error, count::int AS count, first_failed_at, last_failed_at,
       last_task_id::text AS last_task_id
FROM :schema.failures
WHERE $1::text IS NULL OR queue = $1
ORDER BY last_failed_at DESC
LIMIT $2
