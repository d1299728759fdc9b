-- Deletes pending or finished tasks for good; see delete_tasks in migrations/.
-- $1 bigint[]  task ids
SELECT id::text AS id FROM :schema.delete_tasks($1::bigint[]) AS id
