-- Deletes up to $2 pending tasks of a queue; see flush in migrations/.
-- $1 text     queue
-- $2 integer  at most this many
SELECT :schema.flush($1, $2)::integer AS deleted
