-- Extends the leases a worker still holds. Returns the tasks still held, and
-- whether someone asked to cancel each; a task missing from the result was
-- taken from this worker (its lease ran out and it was rescued).
-- $1 jsonb        [{ id, lease_id }]
-- $2 integer      lease duration from now, ms
-- $3 timestamptz  "now" (null in production)
UPDATE :schema.tasks AS t
SET lease_expires_at = coalesce($3::timestamptz, now()) + make_interval(secs => $2::integer / 1000.0)
FROM jsonb_to_recordset($1::jsonb) AS held(id bigint, lease_id uuid)
-- `state::text`: a condition tasks_lease_idx's predicate does not match, so the
-- plan is a primary-key lookup per task. Matched, the planner may read every
-- running task through that index, and with them the dead entry of every task
-- finished since the last vacuum, which a long-held snapshot makes countless.
WHERE t.id = held.id AND t.lease_id = held.lease_id AND t.state::text = 'running'
RETURNING t.id::text AS id, t.cancel_requested_at IS NOT NULL AS cancel_requested
