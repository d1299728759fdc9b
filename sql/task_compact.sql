-- One look at `tasks`: compacts it if a held snapshot left it far larger than its
-- rows need and vacuum has since removed the dead ones; see compact_tasks in migrations/.
SELECT outcome, live_rows, bytes_before::float8 AS bytes_before, bytes_after::float8 AS bytes_after
FROM :schema.compact_tasks()
