-- Records which task names have a handler with undo (see undo_names in
-- migrations/), and forgets those that no longer have, in one statement.
-- $1 text       queue
-- $2 text[]     task names
-- $3 boolean[]  whether each has an undo
WITH given AS (
  SELECT * FROM unnest($2::text[], $3::boolean[]) AS g(name, undoable)
), removed AS (
  DELETE FROM :schema.undo_names AS u
  USING given AS g
  WHERE u.queue = $1 AND u.name = g.name AND NOT g.undoable
  RETURNING 1
), stored AS (
  INSERT INTO :schema.undo_names (queue, name)
  SELECT $1, g.name FROM given AS g WHERE g.undoable
  ON CONFLICT DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM removed) + (SELECT count(*) FROM stored) AS changed
