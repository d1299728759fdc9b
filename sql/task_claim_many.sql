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
WITH async AS (
  -- This transaction's commit does not wait for the WAL flush. If the server
  -- crashes before the flush, the claim is undone as a whole: the task is ready
  -- again, and the attempt that began is fenced off by its lease like any lost
  -- attempt. Any later durable write (its finish, a heartbeat) flushes the claim
  -- first, as WAL is flushed in order.
  SELECT set_config('synchronous_commit', 'off', true)
), picked AS (
  SELECT segment, ctid
  FROM :schema.ready
  WHERE queue = $1 AND ($2::text[] IS NULL OR name = ANY ($2::text[]))
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
)
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
-- run_at as seconds since the epoch: the worker only orders by it, and a number
-- costs less to read than a timestamp.
RETURNING t.id::text AS id, t.queue, t.name, t.args, t.priority, t.attempts, t.max_attempts,
          t.key, extract(epoch FROM t.run_at)::float8 AS run_at_s, t.lease_expires_at
