-- Ends running tasks: moves each to finished_tasks with its final state, in one
-- statement. Fenced on the lease: a task whose lease was lost (rescued and handed
-- to another worker) is left alone and not returned.
-- $1 jsonb        [{ id, lease_id, state: succeeded|failed|cancelled, result, error, started_at }]
--                 (started_at: when the attempt began, if later than the claim)
-- $2 timestamptz  "now" (null in production)
WITH outcome AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb)
    AS o(id bigint, lease_id uuid, state :schema.task_state, result jsonb, error text, started_at timestamptz)
), ended AS (
  -- The ids go through unnest, whose row estimate is the array's length (10 when
  -- not known), not jsonb_to_recordset's fixed 100: with 100 the planner scans
  -- tasks_lease_idx whole, every dead entry of tasks finished since the last
  -- vacuum included, instead of looking each id up in the primary key.
  DELETE FROM :schema.tasks AS t
  USING unnest(ARRAY(SELECT id FROM outcome)) AS k(id), outcome AS o
  WHERE t.id = k.id AND o.id = k.id AND t.lease_id = o.lease_id AND t.state = 'running'
  RETURNING t.*, o.state AS final_state, o.result, o.error, o.started_at AS attempt_started_at
), notified AS (
  SELECT count(:schema.notify('task_finished', queue)) AS n
  FROM (SELECT DISTINCT queue FROM ended) AS queues
)
INSERT INTO :schema.finished_tasks
  (id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
   created_at, started_at, finished_at, result, error, worker_id)
SELECT id, queue, name, args, final_state, priority, run_at, attempts, max_attempts, key,
       created_at, coalesce(attempt_started_at, started_at), coalesce($2::timestamptz, now()), result, error, worker_id
FROM ended, notified
RETURNING id::text AS id
