-- Sets the dead-letter queue of each task name, or removes it where it is null,
-- in one statement (see dead_letters in migrations/).
-- $1 text    queue
-- $2 text[]  task names
-- $3 text[]  dead-letter queue of each (null: none)
WITH given AS (
  SELECT * FROM unnest($2::text[], $3::text[]) AS g(name, target)
), removed AS (
  DELETE FROM :schema.dead_letters AS d
  USING given AS g
  WHERE d.queue = $1 AND d.name = g.name AND g.target IS NULL
  RETURNING 1
), stored AS (
  INSERT INTO :schema.dead_letters (queue, name, target)
  SELECT $1, g.name, g.target FROM given AS g WHERE g.target IS NOT NULL
  ON CONFLICT (queue, name) DO UPDATE SET target = EXCLUDED.target
  WHERE dead_letters.target IS DISTINCT FROM EXCLUDED.target
  RETURNING 1
)
SELECT (SELECT count(*) FROM removed) + (SELECT count(*) FROM stored) AS changed
