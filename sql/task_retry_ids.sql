-- Makes failed or cancelled tasks ready again; see retry_tasks in migrations/.
-- $1 bigint[]  task ids
SELECT id::text AS id FROM :schema.retry_tasks($1::bigint[]) AS id
