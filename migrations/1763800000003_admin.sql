-- Up Migration
--
-- Administration from SQL: views of failures and throughput, and the functions
-- behind pgtq's admin API (src/admin.ts calls them too). Each notifies workers
-- and schedulers on commit, like push_many.

-- Failed tasks: only these rows are read by the failures view.
CREATE INDEX finished_tasks_failed_idx ON finished_tasks (queue, name) WHERE state = 'failed';

-- Failed tasks in history, grouped by queue, task name and the first line of their error.
CREATE VIEW failures AS
  SELECT queue, name, split_part(error, E'\n', 1) AS error, count(*) AS count,
         min(finished_at) AS first_failed_at, max(finished_at) AS last_failed_at,
         max(id) AS last_task_id
  FROM finished_tasks
  WHERE state = 'failed'
  GROUP BY 1, 2, 3;

-- Finished tasks per minute, queue and task name over the last 6 hours, with the
-- average wait (due to started) and run time. Reads only those hours' rows.
CREATE VIEW throughput AS
  SELECT date_trunc('minute', finished_at) AS minute, queue, name,
         count(*) AS finished,
         count(*) FILTER (WHERE state = 'succeeded') AS succeeded,
         count(*) FILTER (WHERE state = 'failed') AS failed,
         count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
         avg(started_at - run_at) AS avg_wait,
         avg(finished_at - started_at) AS avg_run
  FROM finished_tasks
  WHERE finished_at > now() - interval '6 hours'
  GROUP BY 1, 2, 3;

-- Pending (scheduled or ready) tasks of a queue.
CREATE FUNCTION queue_length(queue text) RETURNS bigint
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT count(*) FROM tasks AS t WHERE t.queue = queue_length.queue AND t.state IN ('scheduled', 'ready')
$$;

-- Deletes up to max_count (default all) pending tasks of a queue; running tasks
-- and history stay. Returns how many were deleted.
CREATE FUNCTION flush(queue text, max_count integer DEFAULT NULL) RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  WITH doomed AS (
    SELECT id FROM tasks AS t
    WHERE t.queue = flush.queue AND t.state IN ('scheduled', 'ready')
    LIMIT max_count
    FOR UPDATE SKIP LOCKED
  ), deleted AS (
    DELETE FROM tasks AS t USING doomed WHERE t.id = doomed.id RETURNING 1
  )
  SELECT count(*) FROM deleted
$$;

-- Makes finished tasks (failed or cancelled) ready again, with a fresh set of
-- attempts and their last error kept in last_error. A task whose key is taken by
-- a pending task is left in history. Returns the ids retried.
CREATE FUNCTION retry_tasks(ids bigint[]) RETURNS SETOF bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  WITH picked AS (
    -- of several with one key, the newest; none whose key a pending task holds
    SELECT DISTINCT ON (f.queue, coalesce(f.key, f.id::text)) f.id
    FROM finished_tasks AS f
    WHERE f.id = ANY (ids) AND f.state IN ('failed', 'cancelled')
      AND NOT EXISTS (
        SELECT 1 FROM tasks AS t
        WHERE t.queue = f.queue AND t.key = f.key AND t.state IN ('scheduled', 'ready'))
    ORDER BY f.queue, coalesce(f.key, f.id::text), f.id DESC
  ), moved AS (
    DELETE FROM finished_tasks AS f USING picked WHERE f.id = picked.id
    RETURNING f.*
  ), revived AS (
    INSERT INTO tasks (id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
                       created_at, last_error)
    SELECT id, queue, name, args, 'ready', priority, now(), 0, max_attempts, key, created_at, error
    FROM moved
    RETURNING id, queue
  ), notified AS (
    SELECT count(notify('task_ready', queue)) AS n FROM (SELECT DISTINCT queue FROM revived) AS queues
  )
  SELECT id FROM revived, notified
$$;

-- Retries up to max_count (default all) failed tasks of a queue, of one task name
-- or of every name; see retry_tasks. Returns how many.
CREATE FUNCTION retry_failed(queue text, task_name text DEFAULT NULL, max_count integer DEFAULT NULL)
RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  SELECT count(*) FROM retry_tasks(ARRAY(
    SELECT id FROM finished_tasks AS f
    WHERE f.queue = retry_failed.queue AND f.state = 'failed'
      AND (task_name IS NULL OR f.name = task_name)
    ORDER BY id
    LIMIT max_count))
$$;

-- Cancels tasks: a pending one moves to history as 'cancelled' at once
-- (outcome 'cancelled'); a running one is asked to stop: its worker aborts the
-- handler's signal within moments and stores it as cancelled (outcome
-- 'cancel_requested'). Finished and unknown ids are not returned.
CREATE FUNCTION cancel_tasks(ids bigint[], reason text DEFAULT 'cancelled')
RETURNS TABLE (id bigint, outcome text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
BEGIN
  -- Pending first: a task claimed meanwhile is found running by the next statement.
  RETURN QUERY
  WITH deleted AS (
    DELETE FROM tasks AS t
    WHERE t.id = ANY (ids) AND t.state IN ('scheduled', 'ready')
    RETURNING t.*
  ), archived AS (
    INSERT INTO finished_tasks
      (id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
       created_at, started_at, finished_at, error, worker_id)
    SELECT id, queue, name, args, 'cancelled', priority, run_at, attempts, max_attempts, key,
           created_at, started_at, now(), reason, worker_id
    FROM deleted
    RETURNING id, queue
  ), notified AS (
    SELECT count(notify('task_finished', queue)) AS n FROM (SELECT DISTINCT queue FROM archived) AS queues
  )
  SELECT archived.id, 'cancelled' FROM archived, notified;

  RETURN QUERY
  WITH requested AS (
    UPDATE tasks AS t
    SET cancel_requested_at = coalesce(t.cancel_requested_at, now())
    WHERE t.id = ANY (ids) AND t.state = 'running'
    RETURNING t.id, t.queue
  ), notified AS (
    SELECT count(notify('task_cancel', queue)) AS n FROM (SELECT DISTINCT queue FROM requested) AS queues
  )
  SELECT requested.id, 'cancel_requested' FROM requested, notified;
END
$$;

-- Moves a pending task to run at run_at (scheduled if in the future, else
-- ready). Returns false when the task is not pending.
CREATE FUNCTION reschedule_task(id bigint, run_at timestamptz) RETURNS boolean
LANGUAGE sql SET search_path FROM CURRENT AS $$
  WITH moved AS (
    UPDATE tasks AS t
    SET run_at = reschedule_task.run_at,
        state = CASE WHEN reschedule_task.run_at > now() THEN 'scheduled' ELSE 'ready' END::task_state
    WHERE t.id = reschedule_task.id AND t.state IN ('scheduled', 'ready')
    RETURNING t.queue, t.state
  ), notified AS (
    SELECT notify('task_' || state, queue) FROM moved
  )
  SELECT count(*) > 0 FROM notified
$$;

-- Deletes tasks, pending or finished, for good. Running tasks are not deleted
-- (cancel them). Returns the ids deleted.
CREATE FUNCTION delete_tasks(ids bigint[]) RETURNS SETOF bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  WITH pending AS (
    DELETE FROM tasks AS t WHERE t.id = ANY (ids) AND t.state <> 'running' RETURNING t.id
  ), finished AS (
    DELETE FROM finished_tasks AS f WHERE f.id = ANY (ids) RETURNING f.id
  )
  SELECT id FROM pending UNION ALL SELECT id FROM finished
$$;

-- Down Migration
DROP FUNCTION delete_tasks(bigint[]);
DROP FUNCTION reschedule_task(bigint, timestamptz);
DROP FUNCTION cancel_tasks(bigint[], text);
DROP FUNCTION retry_failed(text, text, integer);
DROP FUNCTION retry_tasks(bigint[]);
DROP FUNCTION flush(text, integer);
DROP FUNCTION queue_length(text);
DROP VIEW throughput;
DROP VIEW failures;
DROP INDEX finished_tasks_failed_idx;
