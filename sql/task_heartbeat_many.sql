-- Extends the leases a worker still holds. Returns the tasks still held, and
-- whether someone asked to cancel each; a task missing from the result was
-- taken from this worker (its lease ran out and it was rescued).
-- $1 jsonb        [{ id, lease_id, progress }] (progress: what the handler reported since the last beat)
-- $2 integer      lease duration from now, ms
-- $3 timestamptz  "now" (null in production)
WITH held AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS held(id bigint, lease_id uuid, progress jsonb)
)
UPDATE :schema.tasks AS t
SET lease_expires_at = coalesce($3::timestamptz, now()) + make_interval(secs => $2::integer / 1000.0),
    progress = coalesce(held.progress, t.progress)
FROM held
-- A primary-key lookup per task, whatever the statistics say. Two plans must not
-- be chosen, for both would walk dead entries, which a long-held snapshot makes
-- countless: reading every running task through tasks_lease_idx (`state::text`
-- is a condition its predicate does not match), and reading the whole primary
-- key, which looks cheap when a vacuum has just counted few live rows in `tasks`
-- (the array makes the ids an index condition).
WHERE t.id = ANY (ARRAY(SELECT id FROM held))
  AND t.id = held.id AND t.lease_id = held.lease_id AND t.state::text = 'running'
RETURNING t.id::text AS id, t.cancel_requested_at IS NOT NULL AS cancel_requested
