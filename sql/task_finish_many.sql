-- Ends running tasks: moves each to finished_tasks with its final state, in one
-- statement. Fenced on the lease: a task whose lease was lost (rescued and handed
-- to another worker) is left alone and not returned.
-- $1 jsonb        [{ id, lease_id, state: succeeded|failed|cancelled, result, error, started_at, progress }]
--                 (started_at: when the attempt began, if later than the claim;
--                 progress: the last the handler reported, if not yet stored)
-- $2 timestamptz  "now" (null in production)
WITH outcome AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb)
    AS o(id bigint, lease_id uuid, state :schema.task_state, result jsonb, error text, started_at timestamptz,
         progress jsonb)
), ended AS (
  -- A primary-key lookup per task: see sql/task_heartbeat_many.sql.
  DELETE FROM :schema.tasks AS t
  USING outcome AS o
  WHERE t.id = ANY (ARRAY(SELECT id FROM outcome))
    AND t.id = o.id AND t.lease_id = o.lease_id AND t.state::text = 'running'
  RETURNING t.*, o.state AS final_state, o.result, o.error, o.started_at AS attempt_started_at,
            o.progress AS last_progress
), notified AS (
  SELECT count(:schema.notify('task_finished', queue)) AS n
  FROM (SELECT DISTINCT queue FROM ended) AS queues
), dead AS (
  -- Failed for good: a copy to its name's dead-letter queue, if it has one
  -- (called only when a task failed).
  SELECT :schema.dead_letter(jsonb_agg(jsonb_build_object(
           'id', id, 'queue', queue, 'name', name, 'args', args, 'max_attempts', max_attempts, 'error', error)))
  FROM ended
  WHERE final_state = 'failed'
  HAVING count(*) > 0
)
INSERT INTO :schema.finished_tasks
  (id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
   created_at, started_at, finished_at, result, error, worker_id, group_key, progress, flow)
SELECT id, queue, name, args, final_state, priority, run_at, attempts, max_attempts, key,
       created_at, coalesce(attempt_started_at, started_at), coalesce($2::timestamptz, now()), result, error, worker_id, group_key,
       coalesce(last_progress, progress), flow
FROM ended, notified, (SELECT count(*) FROM dead) AS dead_lettered
RETURNING id::text AS id
