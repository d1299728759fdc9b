-- Up Migration
--
-- Progress: a running task's handler reports how far it is (this.progress(…)), as
-- JSON. A worker stores the latest value with its next heartbeat, not at each
-- call, and with the task's outcome; history keeps the last one. The views gain
-- a progress column, last; the columns they had are unchanged.

ALTER TABLE tasks ADD COLUMN progress jsonb;
ALTER TABLE finished_tasks ADD COLUMN progress jsonb;

CREATE OR REPLACE VIEW all_tasks AS
  SELECT id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
         created_at, started_at, NULL::timestamptz AS finished_at, NULL::jsonb AS result,
         last_error AS error, worker_id, group_key, expires_at, progress
  FROM tasks
  UNION ALL
  SELECT id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
         created_at, started_at, finished_at, result, error, worker_id, group_key, NULL, progress
  FROM finished_tasks;

CREATE OR REPLACE VIEW task_history AS
  SELECT id, queue, name, state, attempts, max_attempts, args, result, error,
         created_at, run_at, started_at, finished_at,
         started_at - run_at AS wait_time,
         finished_at - started_at AS run_time,
         worker_id, group_key, progress
  FROM finished_tasks;

-- Down Migration
DROP VIEW task_history;
CREATE VIEW task_history AS
  SELECT id, queue, name, state, attempts, max_attempts, args, result, error,
         created_at, run_at, started_at, finished_at,
         started_at - run_at AS wait_time,
         finished_at - started_at AS run_time,
         worker_id, group_key
  FROM finished_tasks;
DROP VIEW all_tasks;
CREATE VIEW all_tasks AS
  SELECT id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
         created_at, started_at, NULL::timestamptz AS finished_at, NULL::jsonb AS result,
         last_error AS error, worker_id, group_key, expires_at
  FROM tasks
  UNION ALL
  SELECT id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
         created_at, started_at, finished_at, result, error, worker_id, group_key, NULL
  FROM finished_tasks;
ALTER TABLE finished_tasks DROP COLUMN progress;
ALTER TABLE tasks DROP COLUMN progress;
