-- Up Migration
--
-- pgtq's schema. node-pg-migrate runs this file with search_path set to the
-- configured schema only, so every name below lands in that schema, and every
-- function pins that search_path (SET search_path FROM CURRENT) so it finds its
-- tables whatever the caller's search_path is.

-- One union shared with TypeScript (src/states.ts). A task lives in `tasks` while
-- it is scheduled, ready or running, and moves to `finished_tasks` when it ends.
CREATE TYPE task_state AS ENUM ('scheduled', 'ready', 'running', 'succeeded', 'failed', 'cancelled');

CREATE SEQUENCE task_id_seq AS bigint;

-- The hot table: only pending and running tasks, so claims never scan history.
CREATE TABLE tasks (
  id               bigint PRIMARY KEY DEFAULT nextval('task_id_seq'),
  queue            text NOT NULL,
  name             text NOT NULL,
  args             jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(args) = 'array'),
  state            task_state NOT NULL CHECK (state IN ('scheduled', 'ready', 'running')),
  priority         integer NOT NULL DEFAULT 0,
  run_at           timestamptz NOT NULL DEFAULT now(),
  attempts         integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL DEFAULT 10 CHECK (max_attempts >= 1),
  key              text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  last_error       text,
  lease_id         uuid,
  lease_expires_at timestamptz,
  worker_id        text,
  cancel_requested_at timestamptz
) WITH (
  -- rows churn fast: leave room for updates and vacuum early
  fillfactor = 70,
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_insert_scale_factor = 0.01,
  autovacuum_analyze_scale_factor = 0.02
);
ALTER SEQUENCE task_id_seq OWNED BY tasks.id;

-- Claim: the next ready tasks of a queue by priority (higher first), then age.
CREATE INDEX tasks_claim_idx ON tasks (queue, priority DESC, run_at, id) WHERE state = 'ready';
-- Promotion: scheduled tasks in due order.
CREATE INDEX tasks_due_idx ON tasks (run_at) WHERE state = 'scheduled';
-- Rescue: running tasks whose lease ran out.
CREATE INDEX tasks_lease_idx ON tasks (lease_expires_at) WHERE state = 'running';
-- Deduplication: one pending (scheduled or ready) task per queue and key.
CREATE UNIQUE INDEX tasks_key_idx ON tasks (queue, key) WHERE key IS NOT NULL AND state IN ('scheduled', 'ready');

-- History: finished tasks, partitioned by day of finish (UTC), so retention
-- drops whole partitions instead of deleting rows.
CREATE TABLE finished_tasks (
  id           bigint NOT NULL,
  queue        text NOT NULL,
  name         text NOT NULL,
  args         jsonb NOT NULL,
  state        task_state NOT NULL CHECK (state IN ('succeeded', 'failed', 'cancelled')),
  priority     integer NOT NULL,
  run_at       timestamptz NOT NULL,
  attempts     integer NOT NULL,
  max_attempts integer NOT NULL,
  key          text,
  created_at   timestamptz NOT NULL,
  started_at   timestamptz,
  finished_at  timestamptz NOT NULL,
  result       jsonb,
  error        text,
  worker_id    text
) PARTITION BY RANGE (finished_at);
CREATE INDEX finished_tasks_id_idx ON finished_tasks (id);
CREATE INDEX finished_tasks_finished_at_idx ON finished_tasks (finished_at);

-- Creates the daily partitions covering [day, day + days). Safe to call from
-- several processes at once: a transaction-level advisory lock serialises them.
CREATE FUNCTION create_history_partitions(day date, days integer DEFAULT 1) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  d date;
  created integer := 0;
  partition text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.finished_tasks'));
  FOR i IN 0 .. days - 1 LOOP
    d := day + i;
    partition := 'finished_tasks_' || to_char(d, 'YYYYMMDD');
    IF to_regclass(format('%I.%I', current_schema(), partition)) IS NULL THEN
      EXECUTE format(
        'CREATE TABLE %I.%I PARTITION OF %I.finished_tasks FOR VALUES FROM (%L) TO (%L)',
        current_schema(), partition, current_schema(),
        d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END
$$;

SELECT create_history_partitions((now() AT TIME ZONE 'UTC')::date - 1, 9);

-- Notifications go to "<schema>.<kind>" so that queues in different schemas of
-- one database never wake each other.
CREATE FUNCTION notify(kind text, payload text) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
  SELECT pg_notify(current_schema() || '.' || kind, payload)
$$;

-- Pushes many tasks in one statement. `tasks` is a JSON array of objects with
-- the keys queue, name (required), args, priority, run_at, delay_ms (added to
-- run_at, or to now), max_attempts, key. A task due after `at` (default now())
-- is 'scheduled', any other 'ready'.
-- Returns one row per input element, in input order: the task's id and whether
-- it was inserted. A task whose key matches a pending (scheduled or ready) task
-- of its queue is not inserted; the pending task's id is returned instead.
-- Workers are notified on commit only, once per queue and state.
CREATE FUNCTION push_many(tasks jsonb, at timestamptz DEFAULT NULL)
RETURNS TABLE (ord bigint, id bigint, inserted boolean)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
  clock constant timestamptz := coalesce(at, now());
BEGIN
  IF jsonb_typeof(tasks) IS DISTINCT FROM 'array' THEN
    RAISE EXCEPTION 'pgtq: push_many expects a JSON array of tasks, got %', jsonb_typeof(tasks)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY
  WITH input AS MATERIALIZED (
    SELECT i.ord, nextval('task_id_seq') AS id, i.queue, i.name,
           coalesce(i.args, '[]') AS args, coalesce(i.priority, 0) AS priority,
           coalesce(i.run_at, clock) + make_interval(secs => coalesce(i.delay_ms, 0) / 1000.0) AS run_at,
           coalesce(i.max_attempts, 10) AS max_attempts, i.key
    FROM ROWS FROM (jsonb_to_recordset(tasks) AS (
           queue text, name text, args jsonb, priority integer, run_at timestamptz, delay_ms bigint,
           max_attempts integer, key text))
         WITH ORDINALITY AS i(queue, name, args, priority, run_at, delay_ms, max_attempts, key, ord)
  ),
  inserted AS (
    INSERT INTO tasks (id, queue, name, args, state, priority, run_at, max_attempts, key, created_at)
    SELECT id, queue, name, args,
           CASE WHEN run_at > clock THEN 'scheduled' ELSE 'ready' END::task_state,
           priority, run_at, max_attempts, key, clock
    FROM input
    ORDER BY ord
    ON CONFLICT (queue, key) WHERE key IS NOT NULL AND state IN ('scheduled', 'ready') DO NOTHING
    RETURNING id, queue, key, state
  ),
  notified AS (
    SELECT count(notify('task_' || state, queue)) AS n
    FROM (SELECT DISTINCT queue, state::text AS state FROM inserted) AS kinds
  )
  SELECT input.ord, coalesce(ins.id, twin.id, pending.id), ins.id IS NOT NULL
  FROM input
  CROSS JOIN notified
  LEFT JOIN inserted AS ins ON ins.id = input.id
  -- a key seen twice in this call: the first one inserted wins
  LEFT JOIN LATERAL (
    SELECT min(x.id) AS id FROM inserted AS x
    WHERE ins.id IS NULL AND x.queue = input.queue AND x.key = input.key
  ) AS twin ON true
  -- a key already pending before this call
  LEFT JOIN LATERAL (
    SELECT t.id FROM tasks AS t
    WHERE ins.id IS NULL AND t.queue = input.queue AND t.key = input.key AND t.state IN ('scheduled', 'ready')
    LIMIT 1
  ) AS pending ON true
  ORDER BY input.ord;
END
$$;

-- Pushes one task; for triggers, other languages and psql. Returns the id of the
-- new task, or of the pending task with the same key.
CREATE FUNCTION push(
  queue text, name text, args jsonb DEFAULT '[]',
  run_at timestamptz DEFAULT NULL, priority integer DEFAULT 0,
  max_attempts integer DEFAULT 10, key text DEFAULT NULL
) RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  SELECT id FROM push_many(jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
    'queue', queue, 'name', name, 'args', args, 'run_at', run_at,
    'priority', priority, 'max_attempts', max_attempts, 'key', key))))
$$;

-- Every task, pending or finished, with one shape.
CREATE VIEW all_tasks AS
  SELECT id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
         created_at, started_at, NULL::timestamptz AS finished_at, NULL::jsonb AS result,
         last_error AS error, worker_id
  FROM tasks
  UNION ALL
  SELECT id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
         created_at, started_at, finished_at, result, error, worker_id
  FROM finished_tasks;

-- What is waiting and running, per queue and state. oldest_age is how long the
-- oldest task of the row has been due (zero for tasks not yet due).
CREATE VIEW queue_summary AS
  SELECT queue, state, count(*) AS count,
         min(run_at) AS oldest_run_at,
         greatest(now() - min(run_at), interval '0') AS oldest_age
  FROM tasks
  GROUP BY queue, state;

-- Finished tasks with their wait time (due to started) and run time.
CREATE VIEW task_history AS
  SELECT id, queue, name, state, attempts, max_attempts, args, result, error,
         created_at, run_at, started_at, finished_at,
         started_at - run_at AS wait_time,
         finished_at - started_at AS run_time,
         worker_id
  FROM finished_tasks;

-- Down Migration
DROP VIEW task_history;
DROP VIEW queue_summary;
DROP VIEW all_tasks;
DROP FUNCTION push(text, text, jsonb, timestamptz, integer, integer, text);
DROP FUNCTION push_many(jsonb, timestamptz);
DROP FUNCTION notify(text, text);
DROP FUNCTION create_history_partitions(date, integer);
DROP TABLE finished_tasks;
DROP TABLE tasks;
DROP TYPE task_state;
