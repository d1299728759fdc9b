-- The parents of a task that runs after others, as they ended, in id order (a
-- parent that failed or was cancelled shows only under after_failure 'run').
-- $1 bigint  task id
SELECT f.id::text AS id, f.name, f.state, f.result, f.error
FROM :schema.task_parents AS p
JOIN :schema.finished_tasks AS f ON f.id = p.parent
WHERE p.child = $1::bigint
ORDER BY p.parent
