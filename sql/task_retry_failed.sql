-- Retries up to $3 failed tasks of a queue; see retry_failed in migrations/.
-- $1 text     queue
-- $2 text     task name (null: any)
-- $3 integer  at most this many
SELECT :schema.retry_failed($1, $2, $3)::integer AS retried
