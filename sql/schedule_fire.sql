-- Pushes one task per fire time claimed by schedule_claim_fires (in this transaction),
-- due at its fire time, through push_many like any other push; links each fire to
-- its task and moves the schedule on. Fire records a day older than the latest fire
-- are dropped: next_fire_at only moves forward, so they can never be due again.
-- $1 text           queue
-- $2 text           schedule name
-- $3 timestamptz[]  claimed fire times
-- $4 timestamptz    next fire time
-- $5 timestamptz    latest due fire time (claimed or not)
-- $6 timestamptz    "now" (null in production)
WITH fire AS (
  SELECT f.fire_at, f.ord FROM unnest($3::timestamptz[]) WITH ORDINALITY AS f(fire_at, ord)
), pushed AS (
  SELECT p.ord, p.id
  FROM :schema.push_many(
    (SELECT coalesce(jsonb_agg(jsonb_build_object(
              'queue', s.queue, 'name', s.task_name, 'args', s.args, 'priority', s.priority,
              'max_attempts', s.max_attempts, 'run_at', f.fire_at) ORDER BY f.ord), '[]')
     FROM :schema.schedules AS s, fire AS f
     WHERE s.queue = $1 AND s.name = $2),
    $6::timestamptz) AS p
), linked AS (
  UPDATE :schema.schedule_fires AS sf
  SET task_id = pushed.id
  FROM pushed JOIN fire ON fire.ord = pushed.ord
  WHERE sf.queue = $1 AND sf.name = $2 AND sf.fire_at = fire.fire_at
  RETURNING sf.fire_at, sf.task_id
), advanced AS (
  UPDATE :schema.schedules
  SET next_fire_at = $4, last_fired_at = greatest(last_fired_at, $5)
  WHERE queue = $1 AND name = $2
), pruned AS (
  -- the claimed rows are left out: one statement must not modify a row twice
  DELETE FROM :schema.schedule_fires
  WHERE queue = $1 AND name = $2 AND fire_at < $5::timestamptz - interval '1 day'
    AND fire_at <> ALL ($3::timestamptz[])
)
SELECT fire_at, task_id::text AS task_id FROM linked ORDER BY fire_at
