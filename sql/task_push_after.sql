-- Pushes tasks that run after others, in one statement (see push_after_many in
-- migrations/). Returns their ids in the order given.
-- $1 text         (JSON) [{ task: { queue, name, args, priority, run_at, delay_ms, max_attempts, group_key, ttl_ms },
--                    parents: [id, …], after_failure: 'cancel' | 'run' }]
-- $2 timestamptz  "now" (null in production)
SELECT id::text AS id FROM :schema.push_after_many($1::text::jsonb, $2::timestamptz) ORDER BY ord
