-- The newest task id of the schema, pending or finished (0 when there is none).
SELECT coalesce(max(id), 0)::text AS id FROM :schema.all_tasks
