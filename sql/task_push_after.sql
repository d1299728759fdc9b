-- Pushes tasks that run after others (see push_after in migrations/), in order,
-- in one statement. Returns their ids in the order given.
-- $1 jsonb        [{ task: { queue, name, args, priority, run_at, delay_ms, max_attempts, group_key, ttl_ms },
--                    parents: [id, …], after_failure: 'cancel' | 'run' }]
-- $2 timestamptz  "now" (null in production)
SELECT :schema.push_after(e.value -> 'task',
                          ARRAY(SELECT p::bigint FROM jsonb_array_elements_text(e.value -> 'parents') AS p),
                          e.value ->> 'after_failure', $2::timestamptz)::text AS id
FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(value, ord)
ORDER BY e.ord
