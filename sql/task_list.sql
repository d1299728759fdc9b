-- Tasks, pending or finished, newest first; the filters are optional.
-- Reads the id indexes backwards and stops at the limit.
-- $1 text          queue (null: any)
-- $2 task_state[]  states (null: any)
-- $3 text          task name (null: any)
-- $4 text          key (null: any)
-- $5 integer       at most this many
-- $6 bigint        only ids below this one, to page on (null: from the newest)
-- $7 text          group (null: any)
SELECT id::text AS id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
       created_at, started_at, finished_at, result, error, progress, group_key, worker_id
FROM :schema.all_tasks
WHERE ($1::text IS NULL OR queue = $1)
  AND (CAST($2 AS :schema.task_state[]) IS NULL OR state = ANY (CAST($2 AS :schema.task_state[])))
  AND ($3::text IS NULL OR name = $3)
  AND ($4::text IS NULL OR key = $4)
  AND ($6::bigint IS NULL OR id < $6)
  AND ($7::text IS NULL OR group_key = $7)
ORDER BY all_tasks.id DESC
LIMIT $5
