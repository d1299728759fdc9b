-- Paused queues (name null) and task names, of a queue (or all).
-- $1 text  queue, or null for every queue
SELECT queue, name, paused_at FROM :schema.paused_queues
WHERE $1::text IS NULL OR queue = $1
ORDER BY queue, name NULLS FIRST
