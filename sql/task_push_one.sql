-- Pushes one task by push_many's rules (see migrations/): scheduled if due later,
-- nothing stored when its key is pending, workers notified on commit. One plain
-- statement costs about a quarter less than the push_many call, and pushing one
-- task at a time is the common case.
-- $1 text         queue
-- $2 text         task name
-- $3 text         args, as JSON text (cast here: a client that encodes jsonb
--                 parameters itself, as postgres.js does, would encode it twice)
-- $4 integer      priority (null: 0)
-- $5 timestamptz  run_at (null: now)
-- $6 bigint       delay_ms, added to run_at (null: 0)
-- $7 integer      max_attempts (null: 10)
-- $8 text         key (null: none)
-- $9 timestamptz  "now" (null in production)
-- $10 text        group (null: none, or '' for a task name with limits)
-- $11 bigint      time to live, ms (null: none)
WITH clock AS (
  SELECT coalesce($9::timestamptz, now()) AS now
), input AS (
  SELECT clock.now,
         coalesce($5::timestamptz, clock.now) + make_interval(secs => coalesce($6::bigint, 0) / 1000.0) AS run_at,
         clock.now + make_interval(secs => $11::bigint / 1000.0) AS expires_at
  FROM clock
), grouped AS (
  -- task_group only for a task with flow options or limits: most have none
  SELECT input.*,
         CASE WHEN $10::text IS NOT NULL OR $11::bigint IS NOT NULL OR EXISTS (
                SELECT FROM :schema.flow_limits AS l WHERE l.queue = $1 AND l.name = $2)
              THEN :schema.task_group($1, $2, $10::text, $11::bigint, run_at, expires_at)
         END AS group_key
  FROM input
), inserted AS (
  INSERT INTO :schema.tasks (queue, name, args, state, priority, run_at, max_attempts, key, created_at,
                             group_key, expires_at)
  SELECT $1, $2, $3::text::jsonb, CAST(CASE WHEN run_at > now THEN 'scheduled' ELSE 'ready' END AS :schema.task_state),
         coalesce($4::integer, 0), run_at, coalesce($7::integer, 10), $8, now, group_key, expires_at
  FROM grouped
  ON CONFLICT (queue, key) WHERE key IS NOT NULL AND state IN ('scheduled', 'ready') DO NOTHING
  RETURNING id, queue, state
), notified AS (
  SELECT count(:schema.notify('task_' || state, queue)) AS n FROM inserted
)
SELECT coalesce(
         (SELECT id FROM inserted),
         -- the pending task holding the key
         (SELECT id FROM :schema.tasks
          WHERE queue = $1 AND key = $8 AND state IN ('scheduled', 'ready') LIMIT 1)
       )::text AS id,
       EXISTS (SELECT 1 FROM inserted) AS inserted
FROM notified
