-- Up Migration
--
-- Dead letters: a task name may have a dead-letter queue (the handler option
-- deadLetter, stored here by its workers). A task of that name that fails for
-- good, at its last attempt or rescued after its worker was lost, is copied
-- there in the statement that ends it: same name and arguments, ready at once,
-- with the failure as its last_error and 'dead:<id of the original>' as its key.
-- A cancelled task is not copied: someone meant it to stop.

CREATE TABLE dead_letters (
  queue  text NOT NULL,
  name   text NOT NULL,
  target text NOT NULL,
  PRIMARY KEY (queue, name)
);

-- Copies the tasks in `failed` ([{ id, queue, name, args, max_attempts, error }])
-- whose name has a dead-letter queue; returns how many.
CREATE FUNCTION dead_letter(failed jsonb) RETURNS integer
LANGUAGE sql SET search_path FROM CURRENT AS $$
  WITH copies AS (
    INSERT INTO tasks (id, queue, name, args, state, priority, run_at, max_attempts, key, created_at, last_error)
    SELECT nextval('task_id_seq'), d.target, f.name, f.args, 'ready', 0, now(), f.max_attempts,
           'dead:' || f.id, now(), f.error
    FROM jsonb_to_recordset(failed) AS f(id bigint, queue text, name text, args jsonb, max_attempts integer, error text)
    JOIN dead_letters AS d ON d.queue = f.queue AND d.name = f.name
    ON CONFLICT DO NOTHING
    RETURNING queue
  )
  SELECT count(notify('task_ready', q.queue))::integer FROM (SELECT DISTINCT queue FROM copies) AS q
$$;

-- Down Migration
DROP FUNCTION dead_letter(jsonb);
DROP TABLE dead_letters;
