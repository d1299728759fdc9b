-- Every queue with tasks in history or a schedule, by name: what the dashboard's
-- queue filter offers beside the queues with pending tasks. Skips through the
-- (queue, name, id) index of history one queue at a time, so it reads a few index
-- pages per queue, not the history.
WITH RECURSIVE finished(queue) AS (
  SELECT min(queue) FROM :schema.finished_tasks
  UNION ALL
  SELECT (SELECT min(f.queue) FROM :schema.finished_tasks AS f WHERE f.queue > finished.queue)
  FROM finished
  WHERE finished.queue IS NOT NULL
)
SELECT queue FROM finished WHERE queue IS NOT NULL
UNION
SELECT queue FROM :schema.schedules
ORDER BY queue
