-- The daily history partitions, oldest first, with the first instant after each
-- and whether it holds failed tasks.
SELECT c.relname AS name,
       (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' AS ends_at,
       EXISTS (SELECT 1 FROM :schema.finished_tasks AS f
               WHERE f.tableoid = c.oid AND f.state = 'failed') AS has_failed
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
WHERE i.inhparent = ':schema.finished_tasks'::regclass
ORDER BY c.relname
