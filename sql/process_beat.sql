-- Records that a worker or scheduler is alive until now + $7 ms, and forgets
-- processes that have been dead for an hour.
-- $1 text     process id
-- $2 text     'worker' or 'scheduler'
-- $3 text     queue
-- $4 text     hostname
-- $5 integer  pid
-- $6 jsonb    details
-- $7 integer  how long the heartbeat holds, ms
WITH forgotten AS (
  DELETE FROM :schema.processes
  WHERE expires_at < now() - interval '1 hour'
)
INSERT INTO :schema.processes AS p (id, kind, queue, hostname, pid, details, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7::integer / 1000.0))
ON CONFLICT (id) DO UPDATE
SET heartbeat_at = now(), expires_at = excluded.expires_at, details = excluded.details
