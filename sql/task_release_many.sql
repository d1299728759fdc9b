-- Gives back running tasks a worker claimed but never started (it is stopping):
-- each becomes ready again, and the attempt its claim counted is taken back.
-- Fenced on the lease like task_finish_many.
-- $1 jsonb        [{ id, lease_id }]
WITH held AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS held(id bigint, lease_id uuid)
), released AS (
  UPDATE :schema.tasks AS t
  SET state = 'ready', attempts = t.attempts - 1, lease_id = NULL, lease_expires_at = NULL
  FROM held
  -- A primary-key lookup per task: see sql/task_heartbeat_many.sql.
  WHERE t.id = ANY (ARRAY(SELECT id FROM held))
    AND t.id = held.id AND t.lease_id = held.lease_id AND t.state::text = 'running'
  RETURNING t.id, t.queue
), notified AS (
  SELECT count(:schema.notify('task_ready', queue)) AS n
  FROM (SELECT DISTINCT queue FROM released) AS queues
)
SELECT id::text AS id FROM released, notified
