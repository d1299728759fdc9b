-- Ends pending tasks past their time to live (see expire_tasks in migrations/).
-- $1 integer      at most this many
-- $2 timestamptz  "now" (null in production)
SELECT :schema.expire_tasks($1::integer, $2::timestamptz) AS expired
