-- Up Migration
--
-- Undo: a succeeded task of a handler with an `undo` function can be undone, at
-- most once. undo_task marks the finished task with the id of its compensation
-- and stores that compensation (a task named 'pgtq.undo.<name>' whose argument
-- is { task, args, result }) in one statement; a second call, before or after
-- the compensation ran, finds the mark and returns the same id. task_history
-- gains undone_by, last.

ALTER TABLE finished_tasks ADD COLUMN undone_by bigint;

-- The task names whose handler has an undo, as their workers store them: what a
-- flow's rollback (migrations/1763800000012_task_dependencies.sql) can undo.
CREATE TABLE undo_names (
  queue text NOT NULL,
  name  text NOT NULL,
  PRIMARY KEY (queue, name)
);

CREATE OR REPLACE VIEW task_history AS
  SELECT id, queue, name, state, attempts, max_attempts, args, result, error,
         created_at, run_at, started_at, finished_at,
         started_at - run_at AS wait_time,
         finished_at - started_at AS run_time,
         worker_id, group_key, progress, undone_by
  FROM finished_tasks;

-- Returns the compensation's id, queue and name, and whether this call stored it; raises
-- invalid_parameter_value for a task that did not succeed or is unknown. With
-- `after_task`, a pending task, the compensation waits for it to end (a flow's
-- rollback undoes its steps one after the other).
CREATE FUNCTION undo_task(task_id bigint, after_task bigint DEFAULT NULL,
                          OUT id bigint, OUT queue text, OUT name text, OUT inserted boolean)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  done finished_tasks%ROWTYPE;
BEGIN
  -- The row lock makes concurrent calls take turns: the later one sees the mark.
  UPDATE finished_tasks AS f SET undone_by = nextval('task_id_seq')
  WHERE f.id = task_id AND f.state = 'succeeded' AND f.undone_by IS NULL
  RETURNING f.* INTO done;
  IF FOUND THEN
    INSERT INTO tasks (id, queue, name, args, state, priority, run_at, max_attempts, created_at,
                       waiting_for, after_failure)
    VALUES (done.undone_by, done.queue, 'pgtq.undo.' || done.name,
            jsonb_build_array(jsonb_build_object('task', done.id::text, 'args', done.args, 'result', done.result)),
            CASE WHEN after_task IS NULL THEN 'ready' ELSE 'waiting' END::task_state, done.priority, now(),
            done.max_attempts, now(), CASE WHEN after_task IS NOT NULL THEN 1 END,
            CASE WHEN after_task IS NOT NULL THEN 'run' END);
    IF after_task IS NULL THEN
      PERFORM notify('task_ready', done.queue);
    ELSE
      INSERT INTO task_parents (parent, child) VALUES (after_task, done.undone_by);
    END IF;
    id := done.undone_by;
    queue := done.queue;
    name := 'pgtq.undo.' || done.name;
    inserted := true;
    RETURN;
  END IF;
  SELECT f.* INTO done FROM finished_tasks AS f WHERE f.id = task_id;
  IF done.undone_by IS NOT NULL THEN
    id := done.undone_by;
    queue := done.queue;
    name := 'pgtq.undo.' || done.name;
    inserted := false;
    RETURN;
  END IF;
  RAISE EXCEPTION 'pgtq: task % %', task_id,
    CASE WHEN done.id IS NULL AND EXISTS (SELECT FROM tasks AS t WHERE t.id = task_id)
         THEN 'has not finished: only a succeeded task can be undone'
         WHEN done.id IS NULL THEN 'does not exist'
         ELSE 'ended ' || done.state || ': only a succeeded task can be undone' END
    USING ERRCODE = 'invalid_parameter_value';
END
$$;

-- Down Migration
DROP FUNCTION undo_task(bigint, bigint);
DROP TABLE undo_names;
DROP VIEW task_history;
CREATE VIEW task_history AS
  SELECT id, queue, name, state, attempts, max_attempts, args, result, error,
         created_at, run_at, started_at, finished_at,
         started_at - run_at AS wait_time,
         finished_at - started_at AS run_time,
         worker_id, group_key, progress
  FROM finished_tasks;
ALTER TABLE finished_tasks DROP COLUMN undone_by;
