-- Deletes up to $1 trace contexts of tasks no longer in the queue (finished, deleted).
-- $1 integer  at most this many
WITH gone AS (
  SELECT x.task_id FROM :schema.task_traces AS x
  WHERE NOT EXISTS (SELECT FROM :schema.tasks AS t WHERE t.id = x.task_id)
  LIMIT $1
), deleted AS (
  DELETE FROM :schema.task_traces AS tt USING gone WHERE tt.task_id = gone.task_id RETURNING 1
)
SELECT count(*)::int AS pruned FROM deleted
