-- Makes up to $1 due scheduled tasks ready, oldest first, and wakes the workers of
-- their queues (on commit). Rows locked by another scheduler are skipped, so
-- schedulers running at once never promote a task twice.
-- $1 integer      at most this many
-- $2 timestamptz  "now" (null in production)
WITH promoted AS (
  UPDATE :schema.tasks AS t
  SET state = 'ready'
  -- an array, not a join: see task_claim_many.sql
  WHERE t.id = ANY (ARRAY(
    SELECT id
    FROM :schema.tasks
    WHERE state = 'scheduled' AND run_at <= coalesce($2::timestamptz, now())
    ORDER BY run_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
  ))
  RETURNING t.queue
), notified AS (
  SELECT count(:schema.notify('task_ready', queue)) AS n
  FROM (SELECT DISTINCT queue FROM promoted) AS queues
)
SELECT (SELECT count(*) FROM promoted)::integer AS promoted FROM notified
