-- Forgets a process that stopped cleanly.
-- $1 text  process id
DELETE FROM :schema.processes WHERE id = $1
