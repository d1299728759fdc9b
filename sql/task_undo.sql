-- Undoes a succeeded task: stores its compensation, at most once (see undo_task
-- in migrations/). Returns the compensation's id, queue and name, and whether this call stored it.
-- $1 bigint  task id
SELECT u.id::text AS id, u.queue, u.name, u.inserted FROM :schema.undo_task($1::bigint) AS u
