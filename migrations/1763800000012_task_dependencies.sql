-- Up Migration
--
-- Dependencies. A task pushed with parents (`after`) waits in its own state,
-- 'waiting', until each parent has succeeded; it is made ready (or scheduled, if
-- its run_at is later) by the statement that ends its last parent, through a
-- trigger on finished_tasks, so no process polls for it. A parent that ends
-- failed or cancelled cancels its waiting dependents, which cancels theirs in
-- turn, unless a dependent was pushed with after_failure 'run': then that parent
-- counts as done.
--
-- Sagas. Tasks joined by `after` form a flow, named by the id of its first task
-- (tasks.flow; null on that first task itself). A dependent pushed with
-- after_failure 'undo' is cancelled like one with 'cancel', and its flow is rolled
-- back: each of the flow's steps that succeeded, and whose handler has an undo
-- (undo_names), is undone, newest first, each compensation waiting for the one
-- before. A step of a rolled-back flow that succeeds later is undone then.
--
-- task_parents holds the edges of tasks still to run; a task's edges go when it
-- ends. push_after_many locks its live parents (FOR KEY SHARE) until it commits, so a
-- parent cannot end unseen between the push's look and its commit: the end waits.
--
-- 'waiting' is only ever named in function bodies here, which are run after this
-- migration commits, or compared as text: a value added to an enum cannot be used
-- in the transaction that adds it. It stays in the enum after a down migration.

ALTER TYPE task_state ADD VALUE IF NOT EXISTS 'waiting' BEFORE 'scheduled';

-- The state compared as text: the enum value is not usable yet.
ALTER TABLE tasks DROP CONSTRAINT tasks_state_check,
  ADD CONSTRAINT tasks_state_check CHECK (state::text IN ('waiting', 'scheduled', 'ready', 'running'));

-- Parents still to succeed, and what a failed parent does to this task.
ALTER TABLE tasks ADD COLUMN waiting_for integer,
                  ADD COLUMN after_failure text CHECK (after_failure IN ('cancel', 'run', 'undo')),
                  ADD COLUMN flow bigint;
ALTER TABLE finished_tasks ADD COLUMN flow bigint;
CREATE INDEX finished_tasks_flow_idx ON finished_tasks (flow) WHERE flow IS NOT NULL;

-- Flows rolled back, so that each is rolled back once, and steps that end later are undone.
CREATE TABLE flows_undone (
  flow      bigint PRIMARY KEY,
  undone_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE task_parents (
  parent bigint NOT NULL,
  child  bigint NOT NULL,
  PRIMARY KEY (parent, child)
);
CREATE INDEX task_parents_child_idx ON task_parents (child);

-- Pushes tasks that run after others, in one statement whatever their number:
-- `tasks` is [{ task: { queue, name, args, priority, run_at, delay_ms,
-- max_attempts, group_key, ttl_ms }, parents: [id, …], after_failure }], where
-- after_failure is 'cancel' (the default), 'run' or 'undo'. Returns each task's id, in
-- the order given. Refuses an unknown parent, and one that already failed or was
-- cancelled unless after_failure is 'run'. Each parent is looked up once, however
-- many tasks name it, and each task's parents once: no work grows with the
-- product of the two.
CREATE FUNCTION push_after_many(tasks jsonb, at timestamptz DEFAULT NULL)
RETURNS TABLE (ord bigint, id bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
  clock constant timestamptz := coalesce(at, now());
  parents bigint[];
  live bigint[];
  -- every parent's flow (its own, or itself if it is a flow's first task), and whether it is pending
  known bigint[];
  flows bigint[];
  pending boolean[];
  bad record;
BEGIN
  IF jsonb_typeof(tasks) IS DISTINCT FROM 'array' THEN
    RAISE EXCEPTION 'pgtq: push_after_many expects a JSON array, got %', jsonb_typeof(tasks)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT e.ord, e.value ->> 'after_failure' AS after_failure, jsonb_array_length(e.value -> 'parents') AS n INTO bad
  FROM jsonb_array_elements(tasks) WITH ORDINALITY AS e(value, ord)
  WHERE coalesce(e.value ->> 'after_failure', 'cancel') NOT IN ('cancel', 'run', 'undo')
     OR jsonb_typeof(e.value -> 'parents') IS DISTINCT FROM 'array' OR jsonb_array_length(e.value -> 'parents') = 0
  LIMIT 1;
  IF bad.ord IS NOT NULL THEN
    RAISE EXCEPTION 'pgtq: push_after: task % needs parents (a non-empty array) and after_failure ''cancel'', ''run'' or ''undo''', bad.ord
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  parents := ARRAY(SELECT DISTINCT p.value::bigint
                   FROM jsonb_array_elements(tasks) AS e, jsonb_array_elements_text(e -> 'parents') AS p);
  -- Parents still pending or running, held until this commits (see above).
  live := ARRAY(SELECT p.id FROM tasks AS p WHERE p.id = ANY (parents) ORDER BY p.id FOR KEY SHARE);
  SELECT coalesce(array_agg(p.id), '{}'), coalesce(array_agg(coalesce(p.flow, p.id)), '{}'),
         coalesce(array_agg(true), '{}')
  INTO known, flows, pending
  FROM tasks AS p WHERE p.id = ANY (live);
  -- The others must have ended, and well: history is read only then, as a lookup
  -- there probes every partition. (A live parent is locked in tasks, so it is
  -- not in finished_tasks.)
  IF cardinality(live) < cardinality(parents) THEN
    SELECT u.id INTO bad FROM unnest(parents) AS u(id)
    WHERE NOT EXISTS (SELECT FROM tasks AS p WHERE p.id = u.id)
      AND NOT EXISTS (SELECT FROM finished_tasks AS f WHERE f.id = u.id)
    LIMIT 1;
    IF bad.id IS NOT NULL THEN
      RAISE EXCEPTION 'pgtq: push_after: no task with id %', bad.id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT f.id, f.state INTO bad
    FROM jsonb_array_elements(tasks) AS e
    CROSS JOIN LATERAL jsonb_array_elements_text(e.value -> 'parents') AS p(id)
    JOIN finished_tasks AS f ON f.id = p.id::bigint
    WHERE f.state <> 'succeeded' AND coalesce(e.value ->> 'after_failure', 'cancel') <> 'run'
    LIMIT 1;
    IF bad.id IS NOT NULL THEN
      RAISE EXCEPTION 'pgtq: push_after: task % ended %, so a task after it would never run', bad.id, bad.state
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT known || array_agg(f.id), flows || array_agg(coalesce(f.flow, f.id)), pending || array_agg(false)
    INTO known, flows, pending
    FROM finished_tasks AS f WHERE f.id = ANY (parents);
  END IF;

  RETURN QUERY
  WITH input AS MATERIALIZED (
    SELECT e.ord, nextval('task_id_seq') AS id, x.*,
           coalesce(x.run_at, clock) + make_interval(secs => coalesce(x.delay_ms, 0) / 1000.0) AS due,
           coalesce(e.value ->> 'after_failure', 'cancel') AS after_failure,
           ARRAY(SELECT DISTINCT p::bigint FROM jsonb_array_elements_text(e.value -> 'parents') AS p) AS parents
    FROM jsonb_array_elements(tasks) WITH ORDINALITY AS e(value, ord)
    CROSS JOIN LATERAL jsonb_to_record(e.value -> 'task') AS x(
      queue text, name text, args jsonb, priority integer, run_at timestamptz, delay_ms bigint,
      max_attempts integer, group_key text, ttl_ms bigint)
  ), waits AS (
    -- how many of each task's parents are still to end, and its flow (one hash join)
    SELECT i.id, (count(*) FILTER (WHERE k.pending))::integer AS n, min(k.flow) AS flow
    FROM input AS i CROSS JOIN LATERAL unnest(i.parents) AS p(id)
    JOIN unnest(known, flows, pending) AS k(id, flow, pending) ON k.id = p.id
    GROUP BY i.id
  ), inserted AS (
    INSERT INTO tasks (id, queue, name, args, state, priority, run_at, max_attempts, created_at,
                       group_key, expires_at, waiting_for, after_failure, flow)
    SELECT i.id, i.queue, i.name, coalesce(i.args, '[]'),
           CASE WHEN w.n > 0 THEN 'waiting' WHEN i.due > clock THEN 'scheduled' ELSE 'ready' END::task_state,
           coalesce(i.priority, 0), i.due, coalesce(i.max_attempts, 10), clock,
           CASE WHEN i.group_key IS NOT NULL OR i.ttl_ms IS NOT NULL OR EXISTS (
                  SELECT FROM flow_limits AS l WHERE l.queue = i.queue AND l.name = i.name)
                THEN task_group(i.queue, i.name, i.group_key, i.ttl_ms, i.due,
                                clock + make_interval(secs => i.ttl_ms / 1000.0))
           END,
           clock + make_interval(secs => i.ttl_ms / 1000.0), w.n, i.after_failure, w.flow
    FROM input AS i JOIN waits AS w ON w.id = i.id
    ORDER BY i.ord
    RETURNING tasks.id, tasks.queue, tasks.state
  ), edges AS (
    INSERT INTO task_parents (parent, child)
    SELECT p.id, i.id FROM input AS i CROSS JOIN LATERAL unnest(i.parents) AS p(id)
    RETURNING 1
  ), notified AS (
    SELECT count(notify('task_' || k.state, k.queue)) AS n
    FROM (SELECT DISTINCT queue, state::text AS state FROM inserted WHERE state::text <> 'waiting') AS k
  )
  SELECT i.ord, i.id FROM input AS i
  WHERE (SELECT count(*) FROM inserted) >= 0 AND (SELECT count(*) FROM edges) >= 0
    AND (SELECT n FROM notified) >= 0
  ORDER BY i.ord;
END
$$;

-- One task that runs after `parents`; for triggers, other languages and psql.
CREATE FUNCTION push_after(task jsonb, parents bigint[], after_failure text DEFAULT 'cancel',
                           at timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  SELECT id FROM push_after_many(jsonb_build_array(jsonb_build_object(
    'task', task, 'parents', to_jsonb(parents), 'after_failure', after_failure)), at)
$$;

-- Tasks `ids` ended, each in its state (`states`: a task state, or 'deleted' for
-- a pending task deleted for good): their waiting dependents have one parent fewer
-- to wait for, or are cancelled (their flow rolled back, if they asked for
-- 'undo'); the edges of the ended tasks to their own parents go.
CREATE FUNCTION release_after(ids bigint[], states text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  doomed bigint[];
  rolled_back bigint[];
  notified integer;
BEGIN
  WITH counts AS (
    SELECT p.child, count(*)::integer AS n
    FROM unnest(ids, states) AS e(id, state)
    JOIN task_parents AS p ON p.parent = e.id
    JOIN tasks AS c ON c.id = p.child
    WHERE c.state = 'waiting' AND (e.state = 'succeeded' OR c.after_failure = 'run')
    GROUP BY p.child
  ), released AS (
    UPDATE tasks AS c
    SET waiting_for = c.waiting_for - counts.n,
        state = CASE WHEN c.waiting_for > counts.n THEN 'waiting'
                     WHEN c.run_at > now() THEN 'scheduled' ELSE 'ready' END::task_state
    FROM counts
    WHERE c.id = counts.child
    RETURNING c.queue, c.state
  )
  SELECT count(notify('task_' || r.state, r.queue)) FROM (
    SELECT DISTINCT queue, state::text AS state FROM released WHERE state <> 'waiting') AS r
  INTO notified;
  SELECT array_agg(DISTINCT p.child), array_agg(DISTINCT c.flow) FILTER (WHERE c.after_failure = 'undo')
  INTO doomed, rolled_back
  FROM unnest(ids, states) AS e(id, state)
  JOIN task_parents AS p ON p.parent = e.id
  JOIN tasks AS c ON c.id = p.child
  WHERE e.state <> 'succeeded' AND c.state = 'waiting' AND c.after_failure IN ('cancel', 'undo');
  DELETE FROM task_parents AS p WHERE p.child = ANY (ids);
  -- Before the cancellations below: a dependent they cancel that also asked for
  -- an undo finds its flow rolled back already.
  PERFORM undo_flow(f) FROM unnest(rolled_back) AS f;
  IF cardinality(doomed) > 0 THEN
    -- Stored in history: the trigger below runs for them, and so for their dependents.
    WITH cancelled AS (
      DELETE FROM tasks AS t WHERE t.id = ANY (doomed) AND t.state = 'waiting' RETURNING t.*
    )
    INSERT INTO finished_tasks
      (id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
       created_at, started_at, finished_at, error, worker_id, group_key, flow)
    SELECT c.id, c.queue, c.name, c.args, 'cancelled', c.priority, c.run_at, c.attempts, c.max_attempts, c.key,
           c.created_at, c.started_at, now(),
           'cancelled: a task it runs after ' || (
             SELECT string_agg(DISTINCT CASE WHEN e.state = 'deleted' THEN 'was deleted' ELSE 'ended ' || e.state END
                               || ' (task ' || e.id || ')', ', ')
             FROM unnest(ids, states) AS e(id, state)
             JOIN task_parents AS p ON p.parent = e.id AND p.child = c.id
             WHERE e.state <> 'succeeded'),
           c.worker_id, c.group_key, c.flow
    FROM cancelled AS c;
  END IF;
END
$$;

-- After any statement that stores tasks in finished_tasks (a finish, a rescue, a
-- cancel, a time to live, a dependent cancelled above): a step of a flow rolled
-- back before it ended is undone, and the ended tasks' dependents released.
CREATE FUNCTION release_dependents() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  ids bigint[];
  states text[];
BEGIN
  -- (only once a flow was rolled back)
  IF EXISTS (SELECT FROM flows_undone) THEN
    PERFORM undo_task(e.id)
    FROM ended AS e
    JOIN flows_undone AS f ON f.flow = coalesce(e.flow, e.id)
    JOIN undo_names AS u ON u.queue = e.queue AND u.name = e.name
    WHERE e.state = 'succeeded';
  END IF;
  -- Most tasks have no parent and no dependent: one probe each, then nothing.
  IF EXISTS (SELECT FROM task_parents AS p WHERE p.parent IN (SELECT e.id FROM ended AS e)
                                                 OR p.child IN (SELECT e.id FROM ended AS e)) THEN
    SELECT array_agg(e.id), array_agg(e.state::text) INTO ids, states FROM ended AS e;
    PERFORM release_after(ids, states);
  END IF;
  RETURN NULL;
END
$$;

-- Rolls back flow `flow_id` once: undoes each of its steps that succeeded and
-- has an undo, newest first, each compensation after the one before. Returns
-- how many it undid (0 if the flow was rolled back already).
CREATE FUNCTION undo_flow(flow_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  step record;
  previous bigint;
  undone integer := 0;
BEGIN
  INSERT INTO flows_undone (flow) VALUES (flow_id) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  FOR step IN
    SELECT f.id FROM finished_tasks AS f
    JOIN undo_names AS u ON u.queue = f.queue AND u.name = f.name
    WHERE (f.flow = flow_id OR f.id = flow_id) AND f.state = 'succeeded' AND f.undone_by IS NULL
    ORDER BY f.finished_at DESC, f.id DESC
  LOOP
    SELECT u.id INTO previous FROM undo_task(step.id, previous) AS u;
    undone := undone + 1;
  END LOOP;
  RETURN undone;
END
$$;

CREATE TRIGGER finished_tasks_release AFTER INSERT ON finished_tasks
REFERENCING NEW TABLE AS ended FOR EACH STATEMENT EXECUTE FUNCTION release_dependents();

-- A waiting task can be cancelled like a pending one.
CREATE OR REPLACE FUNCTION cancel_tasks(ids bigint[], reason text DEFAULT 'cancelled')
RETURNS TABLE (id bigint, outcome text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
BEGIN
  -- Pending first: a task claimed meanwhile is found running by the next statement.
  RETURN QUERY
  WITH deleted AS (
    DELETE FROM tasks AS t
    WHERE t.id = ANY (ids) AND t.state IN ('waiting', 'scheduled', 'ready')
    RETURNING t.*
  ), archived AS (
    INSERT INTO finished_tasks
      (id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
       created_at, started_at, finished_at, error, worker_id, group_key, flow)
    SELECT id, queue, name, args, 'cancelled', priority, run_at, attempts, max_attempts, key,
           created_at, started_at, now(), reason, worker_id, group_key, flow
    FROM deleted
    RETURNING id, queue
  ), notified AS (
    SELECT count(notify('task_finished', queue)) AS n FROM (SELECT DISTINCT queue FROM archived) AS queues
  )
  SELECT archived.id, 'cancelled' FROM archived, notified;

  RETURN QUERY
  WITH requested AS (
    UPDATE tasks AS t
    SET cancel_requested_at = coalesce(t.cancel_requested_at, now())
    WHERE t.id = ANY (ids) AND t.state = 'running'
    RETURNING t.id, t.queue
  ), notified AS (
    SELECT count(notify('task_cancel', queue)) AS n FROM (SELECT DISTINCT queue FROM requested) AS queues
  )
  SELECT requested.id, 'cancel_requested' FROM requested, notified;
END
$$;

-- A pending task deleted for good (delete_tasks, flush) ends nothing in history:
-- its dependents are released or cancelled here, as for a cancelled parent.
CREATE OR REPLACE FUNCTION flush(queue text, max_count integer DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  gone bigint[];
BEGIN
  WITH doomed AS (
    SELECT t.id FROM tasks AS t
    WHERE t.queue = flush.queue AND t.state IN ('scheduled', 'ready')
    LIMIT max_count
    FOR UPDATE SKIP LOCKED
  ), deleted AS (
    DELETE FROM tasks AS t USING doomed WHERE t.id = doomed.id RETURNING t.id
  )
  SELECT coalesce(array_agg(d.id), '{}') INTO gone FROM deleted AS d;
  IF EXISTS (SELECT FROM task_parents AS p WHERE p.parent = ANY (gone)) THEN
    PERFORM release_after(gone, array_fill('deleted'::text, ARRAY[cardinality(gone)]));
  END IF;
  RETURN cardinality(gone);
END
$$;

CREATE OR REPLACE FUNCTION delete_tasks(ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  gone bigint[];
BEGIN
  WITH pending AS (
    DELETE FROM tasks AS t WHERE t.id = ANY (ids) AND t.state <> 'running' RETURNING t.id
  )
  SELECT coalesce(array_agg(p.id), '{}') INTO gone FROM pending AS p;
  IF EXISTS (SELECT FROM task_parents AS p WHERE p.parent = ANY (gone) OR p.child = ANY (gone)) THEN
    PERFORM release_after(gone, array_fill('deleted'::text, ARRAY[cardinality(gone)]));
  END IF;
  RETURN QUERY SELECT unnest(gone);
  RETURN QUERY DELETE FROM finished_tasks AS f WHERE f.id = ANY (ids) RETURNING f.id;
END
$$;

-- Down Migration
CREATE OR REPLACE FUNCTION delete_tasks(ids bigint[]) RETURNS SETOF bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  WITH pending AS (
    DELETE FROM tasks AS t WHERE t.id = ANY (ids) AND t.state <> 'running' RETURNING t.id
  ), finished AS (
    DELETE FROM finished_tasks AS f WHERE f.id = ANY (ids) RETURNING f.id
  )
  SELECT id FROM pending UNION ALL SELECT id FROM finished
$$;
CREATE OR REPLACE FUNCTION flush(queue text, max_count integer DEFAULT NULL) RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  WITH doomed AS (
    SELECT id FROM tasks AS t
    WHERE t.queue = flush.queue AND t.state IN ('scheduled', 'ready')
    LIMIT max_count
    FOR UPDATE SKIP LOCKED
  ), deleted AS (
    DELETE FROM tasks AS t USING doomed WHERE t.id = doomed.id RETURNING 1
  )
  SELECT count(*) FROM deleted
$$;
CREATE OR REPLACE FUNCTION cancel_tasks(ids bigint[], reason text DEFAULT 'cancelled')
RETURNS TABLE (id bigint, outcome text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH deleted AS (
    DELETE FROM tasks AS t
    WHERE t.id = ANY (ids) AND t.state IN ('scheduled', 'ready')
    RETURNING t.*
  ), archived AS (
    INSERT INTO finished_tasks
      (id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
       created_at, started_at, finished_at, error, worker_id, group_key)
    SELECT id, queue, name, args, 'cancelled', priority, run_at, attempts, max_attempts, key,
           created_at, started_at, now(), reason, worker_id, group_key
    FROM deleted
    RETURNING id, queue
  ), notified AS (
    SELECT count(notify('task_finished', queue)) AS n FROM (SELECT DISTINCT queue FROM archived) AS queues
  )
  SELECT archived.id, 'cancelled' FROM archived, notified;

  RETURN QUERY
  WITH requested AS (
    UPDATE tasks AS t
    SET cancel_requested_at = coalesce(t.cancel_requested_at, now())
    WHERE t.id = ANY (ids) AND t.state = 'running'
    RETURNING t.id, t.queue
  ), notified AS (
    SELECT count(notify('task_cancel', queue)) AS n FROM (SELECT DISTINCT queue FROM requested) AS queues
  )
  SELECT requested.id, 'cancel_requested' FROM requested, notified;
END
$$;
DROP TRIGGER finished_tasks_release ON finished_tasks;
DROP FUNCTION undo_flow(bigint);
DROP FUNCTION release_dependents();
DROP FUNCTION release_after(bigint[], text[]);
DROP FUNCTION push_after(jsonb, bigint[], text, timestamptz);
DROP FUNCTION push_after_many(jsonb, timestamptz);
DROP TABLE task_parents;
DROP TABLE flows_undone;
ALTER TABLE finished_tasks DROP COLUMN flow;
ALTER TABLE tasks DROP COLUMN after_failure, DROP COLUMN waiting_for, DROP COLUMN flow;
ALTER TABLE tasks DROP CONSTRAINT tasks_state_check,
  ADD CONSTRAINT tasks_state_check CHECK (state IN ('scheduled', 'ready', 'running'));
