-- The tasks a task waits for (role 'parent') and those waiting for it ('child'),
-- with their state. Edges last until the child ends, so a finished task shows
-- the children still waiting and no parents.
-- $1 bigint  task id
SELECT 'parent' AS role, t.id::text AS id, t.name, t.state
FROM :schema.task_parents AS p
JOIN :schema.all_tasks AS t ON t.id = p.parent
WHERE p.child = $1::bigint
UNION ALL
SELECT 'child', t.id::text, t.name, t.state
FROM :schema.task_parents AS p
JOIN :schema.all_tasks AS t ON t.id = p.child
WHERE p.parent = $1::bigint
ORDER BY 1 DESC, 2
