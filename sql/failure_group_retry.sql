-- Retries up to $4 failed tasks of one group of the failures view: a queue, a
-- task name and the first line of their error (see retry_tasks in migrations/).
-- $1 text     queue
-- $2 text     task name
-- $3 text     the error's first line
-- $4 integer  at most this many
SELECT count(*)::int AS retried
FROM :schema.retry_tasks(ARRAY(
  SELECT id FROM :schema.finished_tasks
  WHERE queue = $1 AND name = $2 AND state = 'failed' AND split_part(error, E'\n', 1) = $3
  ORDER BY id
  LIMIT $4))
