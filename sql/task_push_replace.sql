-- Pushes one task with a key in the place of the pending task holding that key,
-- if there is one (onConflict: 'replace'): that task keeps its id and takes this
-- push's name, args, priority, run_at, max_attempts, group and time to live.
-- With supersede, a running task with the key is also asked to stop, as a cancel
-- does (its worker aborts the handler's signal and stores it cancelled).
-- $1..$11 as in task_push_one.sql; $8 (the key) is required here
-- $12 boolean     supersede a running task with the key
WITH clock AS (
  SELECT coalesce($9::timestamptz, now()) AS now
), input AS (
  SELECT clock.now,
         coalesce($5::timestamptz, clock.now) + make_interval(secs => coalesce($6::bigint, 0) / 1000.0) AS run_at,
         clock.now + make_interval(secs => $11::bigint / 1000.0) AS expires_at
  FROM clock
), grouped AS (
  SELECT input.*, :schema.task_group($1, $2, $10::text, $11::bigint, run_at, expires_at) AS group_key
  FROM input
), superseded AS (
  UPDATE :schema.tasks AS t
  SET cancel_requested_at = coalesce(t.cancel_requested_at, clock.now)
  FROM clock
  WHERE $12::boolean AND t.queue = $1 AND t.key = $8 AND t.state = 'running'
  RETURNING t.queue
), stored AS (
  INSERT INTO :schema.tasks AS t (queue, name, args, state, priority, run_at, max_attempts, key, created_at,
                                  group_key, expires_at)
  SELECT $1, $2, $3::text::jsonb, CAST(CASE WHEN run_at > now THEN 'scheduled' ELSE 'ready' END AS :schema.task_state),
         coalesce($4::integer, 0), run_at, coalesce($7::integer, 10), $8, now, group_key, expires_at
  FROM grouped
  ON CONFLICT (queue, key) WHERE key IS NOT NULL AND state IN ('scheduled', 'ready') DO UPDATE
  SET name = EXCLUDED.name, args = EXCLUDED.args, state = EXCLUDED.state, priority = EXCLUDED.priority,
      run_at = EXCLUDED.run_at, max_attempts = EXCLUDED.max_attempts, group_key = EXCLUDED.group_key,
      expires_at = EXCLUDED.expires_at
  -- xmax is 0 on a row this statement inserted, and set on one it updated.
  RETURNING t.id, t.queue, t.state, t.xmax = 0 AS inserted
), notified AS (
  SELECT count(:schema.notify('task_' || state, queue)) AS n FROM stored
  UNION ALL
  SELECT count(:schema.notify('task_cancel', queue)) FROM (SELECT DISTINCT queue FROM superseded) AS queues
)
SELECT id::text AS id, inserted FROM stored, (SELECT sum(n) FROM notified) AS waited
