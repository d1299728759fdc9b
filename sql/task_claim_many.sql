-- Claims up to $3 ready tasks of one queue for one worker, highest priority first,
-- then oldest. The search runs over the ready ring (see migrations/), whose rows it
-- takes are deleted; rows locked by another claimer are skipped, not waited on.
-- Each claimed task gets the lease $4, valid for $5 ms, and counts one more attempt.
-- A pointer whose task stopped being ready while this claim held it is deleted
-- all the same and claims nothing.
-- $1 text         queue
-- $2 text[]       task names the worker has handlers for (null: any name)
-- $3 integer      at most this many tasks
-- $4 uuid         lease id
-- $5 integer      lease duration, ms
-- $6 text         worker id
-- $7 timestamptz  "now" (null in production)
-- $8 integer      the worker's free slots: tasks under a rate limit that is
--                 nearly reached are claimed only for these (see claim_flow in
--                 migrations/)
-- $9 integer      how long, ms, a task under a rate limit may wait in the worker
--                 before it starts; each such task is returned with
--                 start_within_ms, and must go back to ready if not started by then
-- Nothing is claimed from a paused queue or of a paused task name. A last row
-- with a null id says that limits held tasks with a group back (see claim_flow).
WITH async AS (
  -- This transaction's commit does not wait for the WAL flush. If the server
  -- crashes before the flush, the claim is undone as a whole: the task is ready
  -- again, and the attempt that began is fenced off by its lease like any lost
  -- attempt. Any later durable write (its finish, a heartbeat) flushes the claim
  -- first, as WAL is flushed in order. Not for a task under a limit: see
  -- claim_flow in migrations/.
  SELECT set_config('synchronous_commit', 'off', true)
), paused AS (
  SELECT EXISTS (SELECT FROM :schema.paused WHERE queue = $1 AND name = '') AS queue,
         ARRAY(SELECT name FROM :schema.paused WHERE queue = $1) AS names
), picked AS (
  SELECT segment, ctid
  FROM :schema.ready
  WHERE queue = $1 AND ($2::text[] IS NULL OR name = ANY ($2::text[]))
    AND NOT (SELECT queue FROM paused) AND name <> ALL ((SELECT names FROM paused)::text[])
  ORDER BY priority DESC, run_at, id
  LIMIT $3
  FOR UPDATE SKIP LOCKED
), taken AS (
  -- By position: a TID scan of each segment, then a hash join on (segment, ctid),
  -- as a ctid is unique within one segment only.
  DELETE FROM :schema.ready AS r
  WHERE r.ctid = ANY (ARRAY(SELECT ctid FROM picked))
    AND (r.segment, r.ctid) IN (SELECT segment, ctid FROM picked)
  RETURNING r.id
), clock AS (
  SELECT coalesce($7::timestamptz, now()) AS now
), plain AS (
  UPDATE :schema.tasks AS t
  SET state = 'running',
      attempts = t.attempts + 1,
      started_at = clock.now,
      lease_id = $4::uuid,
      lease_expires_at = clock.now + make_interval(secs => $5::integer / 1000.0),
      worker_id = $6
  FROM clock, async
  -- An array, not a join: the plan stays an index lookup per id even as a cached
  -- generic plan, which cannot know how small the limit is.
  WHERE t.id = ANY (ARRAY(SELECT id FROM taken)) AND t.state = 'ready'
    -- A task past its time to live is left to expire_tasks, which ends it.
    AND (t.expires_at IS NULL OR t.expires_at > clock.now)
  -- run_at as seconds since the epoch: the worker only orders by it, and a number
  -- costs less to read than a timestamp.
  RETURNING t.id::text AS id, t.queue, t.name, t.args, t.priority, t.attempts, t.max_attempts,
            t.key, t.group_key, extract(epoch FROM t.run_at)::float8 AS run_at_s, t.lease_expires_at,
            NULL::float8 AS start_within_ms, NULL::float8 AS wake_in_ms
)
SELECT * FROM plain
UNION ALL
SELECT f.* FROM :schema.claim_flow($1, $2::text[], $3::integer - (SELECT count(*) FROM plain)::integer,
                                    $8::integer, $9::integer, $4::uuid, $5::integer, $6, $7::timestamptz) AS f
-- Without a group of the queue, claim_flow is not called at all. (async here
-- too, so that its claim commits without the wait whether or not a plain task was
-- claimed; claim_flow restores the wait when it starts a task under a limit.)
WHERE EXISTS (SELECT FROM :schema.flow_groups AS g CROSS JOIN async WHERE g.queue = $1)
