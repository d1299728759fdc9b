-- How many tasks of these names in a queue are ready or running: what a test's
-- run of the queue (pgtq/testing) waits to see at zero.
-- $1 text    queue
-- $2 text[]  task names
SELECT count(*)::int AS n
FROM :schema.tasks
WHERE queue = $1 AND state IN ('ready', 'running') AND name = ANY ($2::text[])
