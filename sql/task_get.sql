-- One task by id, pending or finished.
-- $1 bigint  task id
SELECT id::text AS id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
       created_at, started_at, finished_at, result, error, progress, group_key, worker_id
FROM :schema.all_tasks
WHERE id = $1::bigint
