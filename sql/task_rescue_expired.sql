-- Rescues running tasks whose lease ran out (their worker died or hung): each
-- lost attempt counts; a task with attempts left becomes ready again at once,
-- one without fails for good with a "worker lost" error. A task someone asked to
-- cancel while it ran is cancelled instead.
-- $1 integer      at most this many
-- $2 timestamptz  "now" (null in production)
-- $3 timestamptz  only leases that ran out at or after this (null: any). The
--                 index holds the dead entry of every task finished since the last
--                 vacuum, in lease order: a pass that starts where the last one
--                 ended does not walk them all again.
WITH clock AS (
  SELECT coalesce($2::timestamptz, now()) AS now
), expired AS (
  SELECT t.id, t.attempts >= t.max_attempts AS exhausted, t.cancel_requested_at IS NOT NULL AS cancelled
  FROM :schema.tasks AS t, clock
  WHERE t.state = 'running' AND t.lease_expires_at < clock.now
    AND t.lease_expires_at >= coalesce($3::timestamptz, '-infinity')
  ORDER BY t.lease_expires_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
), retried AS (
  UPDATE :schema.tasks AS t
  SET state = 'ready', lease_id = NULL, lease_expires_at = NULL, progress = NULL,
      last_error = 'worker lost: the lease of attempt ' || t.attempts || ' (worker ' || coalesce(t.worker_id, '?') || ') expired'
  FROM expired
  WHERE t.id = expired.id AND NOT expired.exhausted AND NOT expired.cancelled
  RETURNING t.id, t.queue
), ended AS (
  DELETE FROM :schema.tasks AS t
  USING expired
  WHERE t.id = expired.id AND (expired.exhausted OR expired.cancelled)
  RETURNING t.*, expired.cancelled
), archived AS (
  INSERT INTO :schema.finished_tasks
    (id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
     created_at, started_at, finished_at, error, worker_id, group_key, progress, flow)
  SELECT id, queue, name, args, CAST(CASE WHEN cancelled THEN 'cancelled' ELSE 'failed' END AS :schema.task_state),
         priority, run_at, attempts, max_attempts, key, created_at, started_at, clock.now,
         CASE WHEN cancelled THEN 'cancelled while running; then its worker was lost'
              ELSE 'worker lost: the lease of the last attempt (worker ' || coalesce(worker_id, '?') || ') expired'
         END,
         worker_id, group_key, progress, flow
  FROM ended, clock
  RETURNING id
), notified AS (
  SELECT count(:schema.notify('task_ready', queue)) AS n
  FROM (SELECT DISTINCT queue FROM retried) AS queues
), dead AS (
  -- Failed for good: a copy to its name's dead-letter queue, if it has one.
  SELECT :schema.dead_letter(jsonb_agg(jsonb_build_object(
           'id', id, 'queue', queue, 'name', name, 'args', args, 'max_attempts', max_attempts,
           'error', 'worker lost: the lease of the last attempt (worker ' || coalesce(worker_id, '?') || ') expired')))
  FROM ended
  WHERE NOT cancelled
  HAVING count(*) > 0
)
SELECT (SELECT count(*) FROM retried)::integer AS retried, (SELECT count(*) FROM archived)::integer AS failed,
       clock.now AS scanned_to
FROM notified, clock, (SELECT count(*) FROM dead) AS dead_lettered
