-- Sends running tasks back to 'scheduled' for another attempt delay_ms from now,
-- keeping the error of this one. Fenced on the lease like task_finish_many.
-- $1 jsonb        [{ id, lease_id, delay_ms, error }]
-- $2 timestamptz  "now" (null in production)
WITH retry AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, lease_id uuid, delay_ms bigint, error text)
), updated AS (
  UPDATE :schema.tasks AS t
  SET state = 'scheduled',
      run_at = coalesce($2::timestamptz, now()) + make_interval(secs => r.delay_ms / 1000.0),
      last_error = r.error,
      lease_id = NULL, lease_expires_at = NULL,
      -- the next attempt reports its own
      progress = NULL
  FROM retry AS r
  -- A primary-key lookup per task: see sql/task_heartbeat_many.sql.
  WHERE t.id = ANY (ARRAY(SELECT id FROM retry))
    AND t.id = r.id AND t.lease_id = r.lease_id AND t.state::text = 'running'
  RETURNING t.id, t.queue
), notified AS (
  SELECT count(:schema.notify('task_scheduled', queue)) AS n
  FROM (SELECT DISTINCT queue FROM updated) AS queues
)
SELECT id::text AS id FROM updated, notified
