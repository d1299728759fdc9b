-- The trace contexts of the pushes that made these tasks, for those that have one.
-- $1 bigint[]  task ids
SELECT task_id::text AS id, traceparent, tracestate
FROM :schema.task_traces
WHERE task_id = ANY ($1::bigint[])
