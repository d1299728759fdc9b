-- Stores the trace context of the push that made these tasks (see task_traces in migrations/).
-- $1 bigint[]  task ids
-- $2 text      traceparent
-- $3 text      tracestate (null: none)
INSERT INTO :schema.task_traces (task_id, traceparent, tracestate)
SELECT unnest($1::bigint[]), $2, $3
ON CONFLICT (task_id) DO NOTHING
