-- Tasks finished since $1 and until two seconds ago (a finish commits within
-- moments of its finished_at): per queue, task name, state and the bucket of
-- $2 (bounds in seconds, ascending) that their wait (due to started) and run
-- times fall in, null when a task never started. Read by /metrics, which adds
-- each scrape's counts to its counters; a last row with a null queue carries
-- `until`, the $1 of the next scrape. $1 null: no rows but that one.
-- $1 timestamptz  since
-- $2 float8[]     bucket bounds
WITH bound AS (
  SELECT now() - interval '2 seconds' AS until
), finished AS (
  SELECT f.queue, f.name, f.state,
         -- a task may start a moment before its run_at (clocks of two hosts): no negative wait
         CASE WHEN f.started_at IS NOT NULL
              THEN greatest(extract(epoch FROM f.started_at - f.run_at)::float8, 0) END AS wait_s,
         extract(epoch FROM f.finished_at - f.started_at)::float8 AS run_s
  FROM :schema.finished_tasks AS f, bound
  WHERE f.finished_at >= $1::timestamptz AND f.finished_at < bound.until
)
SELECT NULL::timestamptz AS until, queue, name, state::text AS state,
       width_bucket(wait_s, $2::float8[]) AS wait_bucket,
       width_bucket(run_s, $2::float8[]) AS run_bucket,
       count(*)::int AS count,
       coalesce(sum(wait_s), 0)::float8 AS wait_sum,
       coalesce(sum(run_s), 0)::float8 AS run_sum
FROM finished
GROUP BY 2, 3, 4, 5, 6
UNION ALL
SELECT until, NULL, NULL, NULL, NULL, NULL, 0, 0, 0 FROM bound
