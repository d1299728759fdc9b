-- Moves a pending task to run at $2; see reschedule_task in migrations/.
-- $1 bigint       task id
-- $2 timestamptz  when it is due
SELECT :schema.reschedule_task($1, $2) AS moved
