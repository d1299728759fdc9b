-- Rescues running tasks whose lease ran out (their worker died or hung): each
-- lost attempt counts; a task with attempts left becomes ready again at once,
-- one without fails for good with a "worker lost" error.
-- $1 integer      at most this many
-- $2 timestamptz  "now" (null in production)
WITH clock AS (
  SELECT coalesce($2::timestamptz, now()) AS now
), expired AS (
  SELECT t.id, t.attempts >= t.max_attempts AS exhausted
  FROM :schema.tasks AS t, clock
  WHERE t.state = 'running' AND t.lease_expires_at < clock.now
  ORDER BY t.lease_expires_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
), retried AS (
  UPDATE :schema.tasks AS t
  SET state = 'ready', lease_id = NULL, lease_expires_at = NULL,
      last_error = 'worker lost: the lease of attempt ' || t.attempts || ' (worker ' || coalesce(t.worker_id, '?') || ') expired'
  FROM expired
  WHERE t.id = expired.id AND NOT expired.exhausted
  RETURNING t.id, t.queue
), failed AS (
  DELETE FROM :schema.tasks AS t
  USING expired
  WHERE t.id = expired.id AND expired.exhausted
  RETURNING t.*
), archived AS (
  INSERT INTO :schema.finished_tasks
    (id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
     created_at, started_at, finished_at, error, worker_id)
  SELECT id, queue, name, args, 'failed', priority, run_at, attempts, max_attempts, key,
         created_at, started_at, clock.now,
         'worker lost: the lease of the last attempt (worker ' || coalesce(worker_id, '?') || ') expired', worker_id
  FROM failed, clock
  RETURNING id
), notified AS (
  SELECT count(:schema.notify('task_ready', queue)) AS n
  FROM (SELECT DISTINCT queue FROM retried) AS queues
)
SELECT (SELECT count(*) FROM retried)::integer AS retried, (SELECT count(*) FROM archived)::integer AS failed
FROM notified
