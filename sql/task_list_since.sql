-- Tasks with an id above $1, pending or finished, in push order: what a block of a
-- test pushed (pgtq/testing), since ids come from one sequence.
-- $1 bigint  the newest id before the block
SELECT id::text AS id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
       created_at, started_at, finished_at, result, error, progress, group_key, worker_id
FROM :schema.all_tasks
WHERE id > $1::bigint
ORDER BY id
