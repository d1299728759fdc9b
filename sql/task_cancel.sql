-- Cancels pending tasks and asks running ones to stop; see cancel_tasks in migrations/.
-- $1 bigint[]  task ids
-- $2 text      reason, stored as the error
SELECT id::text AS id, outcome FROM :schema.cancel_tasks($1::bigint[], $2)
