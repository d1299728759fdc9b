-- Pushes tasks; see push_many in migrations/ for the rules on keys and notification.
-- $1 text         (JSON) the tasks: [{ queue, name, args, priority, run_at, max_attempts, key }]
-- $2 timestamptz  "now" (null in production; tests pass a fixed time)
SELECT ord, id::text AS id, inserted
FROM :schema.push_many($1::text::jsonb, $2::timestamptz)
