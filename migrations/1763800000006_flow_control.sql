-- Up Migration
--
-- Flow control: groups with a cap on how many run at once, rate limits, fair
-- turns between groups, paused queues and task names, and a time to live.
--
-- A task with a group (group_key) is claimed by claim_flow, never through the
-- ready ring: its ready pointer is not written, so plain claims pay nothing for
-- flow control. A task name with limits (flow_limits, registered by the workers
-- that run it) puts each of its tasks in a group, '' when the push names none.
--
-- Exact across processes: a claim takes the row lock of each group whose name
-- has limits (FOR NO KEY UPDATE SKIP LOCKED: a group another claim holds is
-- skipped, not waited on), then, in a new statement and so a new snapshot,
-- counts the group's running tasks and reads its recent starts. Every claim of
-- the group has either committed before the lock was granted, and is counted, or
-- waits for a later turn. See claim_flow below.

ALTER TABLE tasks ADD COLUMN group_key text, ADD COLUMN expires_at timestamptz;
ALTER TABLE finished_tasks ADD COLUMN group_key text;

-- claim_flow: a group's next ready tasks, and the distinct groups with ready tasks.
CREATE INDEX tasks_group_ready_idx ON tasks (queue, name, group_key, priority DESC, run_at, id)
  WHERE state = 'ready' AND group_key IS NOT NULL;
-- A group's running tasks (its concurrency), and its scheduled ones. Not its
-- ready ones: a claim of a group's next tasks must find tasks_group_ready_idx,
-- in their order, even when the planner knows nothing of the table yet.
CREATE INDEX tasks_group_idx ON tasks (queue, name, group_key, state)
  WHERE group_key IS NOT NULL AND state <> 'ready';
-- A running task by its key, for a push that supersedes it.
CREATE INDEX tasks_running_key_idx ON tasks (queue, key) WHERE key IS NOT NULL AND state = 'running';
-- Tasks past their time to live, for expire_tasks.
CREATE INDEX tasks_expires_idx ON tasks (expires_at) WHERE expires_at IS NOT NULL;

-- Limits of one task name, fleet-wide. rate_starts and rate_counts: the claims
-- of the last rate_period and how many each started, when the rate limit is not
-- per group (one entry per claim, not per task, so a high limit stays small).
CREATE TABLE flow_limits (
  queue             text NOT NULL,
  name              text NOT NULL,
  group_concurrency integer CHECK (group_concurrency >= 1),
  rate_limit        integer CHECK (rate_limit >= 1),
  rate_period       interval CHECK (rate_period > interval '0'),
  rate_per_group    boolean NOT NULL DEFAULT false,
  rate_starts       timestamptz[] NOT NULL DEFAULT '{}',
  rate_counts       integer[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (queue, name),
  CHECK ((rate_limit IS NULL) = (rate_period IS NULL))
);

-- One row per group that has a task in `tasks`. A push holds a key-share lock on
-- its group's row until it commits, so prune_flow_groups, which removes the rows
-- of groups without tasks, cannot remove one a task is being pushed to.
-- served: when the group was last served (a sequence value); claims serve the
-- least recently served first. rate_starts, rate_counts: as in flow_limits, per group.
CREATE TABLE flow_groups (
  queue       text NOT NULL,
  name        text NOT NULL,
  group_key   text NOT NULL,
  served      bigint NOT NULL DEFAULT 0,
  rate_starts timestamptz[] NOT NULL DEFAULT '{}',
  rate_counts integer[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (queue, name, group_key)
);
CREATE SEQUENCE flow_served AS bigint;

-- A whole queue (name '') or one task name of it, paused: nothing starts.
-- Readable by every role that may push: a push looks up its name's limits.
GRANT SELECT ON flow_limits TO PUBLIC;

CREATE TABLE paused (
  queue     text NOT NULL,
  name      text NOT NULL DEFAULT '',
  paused_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (queue, name)
);

CREATE OR REPLACE FUNCTION ready_after_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO ready (segment, id, queue, name, priority, run_at)
  SELECT ring.last_value, t.id, t.queue, t.name, t.priority, t.run_at
  FROM added AS t, ready_segment AS ring
  WHERE t.state = 'ready' AND t.group_key IS NULL;
  IF EXISTS (SELECT FROM added WHERE group_key IS NOT NULL) THEN
    INSERT INTO flow_groups (queue, name, group_key)
    SELECT DISTINCT queue, name, group_key FROM added WHERE group_key IS NOT NULL
    ON CONFLICT DO NOTHING;
    PERFORM FROM flow_groups AS g
    WHERE (g.queue, g.name, g.group_key) IN (SELECT queue, name, group_key FROM added WHERE group_key IS NOT NULL)
    FOR KEY SHARE;
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ready_after_update_or_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  IF OLD.state = 'ready' AND OLD.group_key IS NULL THEN
    PERFORM FROM ready AS r
    WHERE r.queue = OLD.queue AND r.priority = OLD.priority AND r.run_at = OLD.run_at AND r.id = OLD.id
    FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
      DELETE FROM ready AS r
      WHERE r.queue = OLD.queue AND r.priority = OLD.priority AND r.run_at = OLD.run_at AND r.id = OLD.id;
    END IF;
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.state = 'ready' AND NEW.group_key IS NULL THEN
    INSERT INTO ready (segment, id, queue, name, priority, run_at)
    SELECT ring.last_value, NEW.id, NEW.queue, NEW.name, NEW.priority, NEW.run_at FROM ready_segment AS ring;
  ELSIF TG_OP = 'UPDATE' AND NEW.state = 'ready' THEN
    -- Its group's row, as for a push (a push that replaced a pending task may have
    -- given it a new group).
    INSERT INTO flow_groups (queue, name, group_key) VALUES (NEW.queue, NEW.name, NEW.group_key)
    ON CONFLICT DO NOTHING;
    PERFORM FROM flow_groups AS g
    WHERE g.queue = NEW.queue AND g.name = NEW.name AND g.group_key = NEW.group_key
    FOR KEY SHARE;
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER tasks_ready_update ON tasks;
CREATE TRIGGER tasks_ready_update AFTER UPDATE ON tasks
  FOR EACH ROW
  WHEN ((OLD.state = 'ready' OR NEW.state = 'ready') AND NEW.state <> 'running'
        AND (OLD.state <> NEW.state OR OLD.run_at <> NEW.run_at OR OLD.priority <> NEW.priority
             OR OLD.group_key IS DISTINCT FROM NEW.group_key))
  EXECUTE FUNCTION ready_after_update_or_delete();

-- Sets (or, with every limit null, removes) the limits of a task name. Its
-- pending and running tasks without a group join the group '', so that the
-- limits hold for tasks pushed before them too.
CREATE FUNCTION set_flow_limits(
  queue text, name text, group_concurrency integer DEFAULT NULL,
  rate_limit integer DEFAULT NULL, rate_period interval DEFAULT NULL, rate_per_group boolean DEFAULT false
) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_variable
BEGIN
  IF group_concurrency IS NULL AND rate_limit IS NULL THEN
    DELETE FROM flow_limits AS l WHERE l.queue = set_flow_limits.queue AND l.name = set_flow_limits.name;
    RETURN;
  END IF;
  INSERT INTO flow_limits AS l (queue, name, group_concurrency, rate_limit, rate_period, rate_per_group)
  VALUES (queue, name, group_concurrency, rate_limit, rate_period, coalesce(rate_per_group, false))
  ON CONFLICT ON CONSTRAINT flow_limits_pkey DO UPDATE
  SET group_concurrency = EXCLUDED.group_concurrency, rate_limit = EXCLUDED.rate_limit,
      rate_period = EXCLUDED.rate_period, rate_per_group = EXCLUDED.rate_per_group
  WHERE (l.group_concurrency, l.rate_limit, l.rate_period, l.rate_per_group)
        IS DISTINCT FROM (EXCLUDED.group_concurrency, EXCLUDED.rate_limit, EXCLUDED.rate_period, EXCLUDED.rate_per_group);
  IF EXISTS (SELECT FROM tasks AS t WHERE t.queue = set_flow_limits.queue AND t.name = set_flow_limits.name
             AND t.group_key IS NULL) THEN
    INSERT INTO flow_groups (queue, name, group_key) VALUES (queue, name, '') ON CONFLICT DO NOTHING;
    UPDATE tasks AS t SET group_key = ''
    WHERE t.queue = set_flow_limits.queue AND t.name = set_flow_limits.name AND t.group_key IS NULL;
  END IF;
END
$$;

-- The group a pushed task is stored with: its own, or '' when its name has
-- limits and it names none; null when neither. Refuses flow options that cannot
-- hold. SECURITY DEFINER: a role that may push needs no rights on flow_limits.
CREATE FUNCTION task_group(
  queue text, name text, group_key text, ttl_ms bigint, run_at timestamptz, expires_at timestamptz
) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
#variable_conflict use_variable
DECLARE
  lim flow_limits;
BEGIN
  IF length(group_key) > 200 THEN
    RAISE EXCEPTION 'pgtq: %: a group name has at most 200 characters, got %', name, length(group_key)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF ttl_ms <= 0 THEN
    RAISE EXCEPTION 'pgtq: %: the time to live must be positive, got % ms', name, ttl_ms
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF run_at >= expires_at THEN
    RAISE EXCEPTION 'pgtq: %: its time to live ends at %, before it is due at %', name, expires_at, run_at
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT * INTO lim FROM flow_limits AS l WHERE l.queue = task_group.queue AND l.name = task_group.name;
  IF NOT FOUND THEN
    RETURN group_key;
  END IF;
  IF group_key IS NULL AND (lim.group_concurrency IS NOT NULL OR lim.rate_per_group) THEN
    RAISE EXCEPTION 'pgtq: %: its limits hold per group; push it with a group', name
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN coalesce(group_key, '');
END
$$;

-- Pushes tasks: see push_many in the first migration. Also takes group_key and
-- ttl_ms; a task of a name with limits gets the group '' when it names none.
CREATE OR REPLACE FUNCTION push_many(tasks jsonb, at timestamptz DEFAULT NULL)
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
           coalesce(i.max_attempts, 10) AS max_attempts, i.key,
           -- task_group only for a task with flow options or limits: most have none
           CASE WHEN i.group_key IS NOT NULL OR i.ttl_ms IS NOT NULL OR EXISTS (
                  SELECT FROM flow_limits AS l WHERE l.queue = i.queue AND l.name = i.name)
                THEN task_group(i.queue, i.name, i.group_key, i.ttl_ms,
                                coalesce(i.run_at, clock) + make_interval(secs => coalesce(i.delay_ms, 0) / 1000.0),
                                clock + make_interval(secs => i.ttl_ms / 1000.0))
           END AS group_key,
           clock + make_interval(secs => i.ttl_ms / 1000.0) AS expires_at
    FROM ROWS FROM (jsonb_to_recordset(tasks) AS (
           queue text, name text, args jsonb, priority integer, run_at timestamptz, delay_ms bigint,
           max_attempts integer, key text, group_key text, ttl_ms bigint))
         WITH ORDINALITY AS i(queue, name, args, priority, run_at, delay_ms, max_attempts, key, group_key, ttl_ms, ord)
  ),
  inserted AS (
    INSERT INTO tasks (id, queue, name, args, state, priority, run_at, max_attempts, key, created_at, group_key, expires_at)
    SELECT id, queue, name, args,
           CASE WHEN run_at > clock THEN 'scheduled' ELSE 'ready' END::task_state,
           priority, run_at, max_attempts, key, clock, group_key, expires_at
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
  LEFT JOIN LATERAL (
    SELECT min(x.id) AS id FROM inserted AS x
    WHERE ins.id IS NULL AND x.queue = input.queue AND x.key = input.key
  ) AS twin ON true
  LEFT JOIN LATERAL (
    SELECT t.id FROM tasks AS t
    WHERE ins.id IS NULL AND t.queue = input.queue AND t.key = input.key AND t.state IN ('scheduled', 'ready')
    LIMIT 1
  ) AS pending ON true
  ORDER BY input.ord;
END
$$;

DROP FUNCTION push(text, text, jsonb, timestamptz, integer, integer, text);
-- Pushes one task; for triggers, other languages and psql. Returns the id of the
-- new task, or of the pending task with the same key.
CREATE FUNCTION push(
  queue text, name text, args jsonb DEFAULT '[]',
  run_at timestamptz DEFAULT NULL, priority integer DEFAULT 0,
  max_attempts integer DEFAULT 10, key text DEFAULT NULL,
  group_key text DEFAULT NULL, ttl interval DEFAULT NULL
) RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  SELECT id FROM push_many(jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
    'queue', queue, 'name', name, 'args', args, 'run_at', run_at,
    'priority', priority, 'max_attempts', max_attempts, 'key', key,
    'group_key', group_key, 'ttl_ms', floor(extract(epoch FROM ttl) * 1000)::bigint))))
$$;

-- Claims up to `wanted` ready tasks with a group, as task_claim_many does for the
-- others, within their limits, in a few statements whatever the number of groups:
-- 1. pick the groups to serve: those with ready tasks, not paused, not at their
--    concurrency in this snapshot; highest head priority first, then least
--    recently served, so that a group with many tasks takes its turn with the
--    others instead of before them;
-- 2. lock their rows (SKIP LOCKED: a group another claim is taking from is left
--    to it), then the rows of the names whose rate limit their groups share
--    (waited for, in name order; no claim waits for anything else meanwhile);
-- 3. in a new snapshot, so that every claim of those groups has committed or
--    waits: each group's budget (its free slots, its or its name's rate room,
--    its ready tasks), its tasks within that budget and `wanted`, and the starts
--    recorded.
-- When tasks with a group were left ready, a last row with a null id says so:
-- its wake_in_ms is when a rate limit may let the next one start (null: when a
-- task finishes, which frees a slot and notifies).
CREATE FUNCTION claim_flow(
  for_queue text, names text[], wanted integer, lease uuid, lease_ms integer, worker text, at timestamptz DEFAULT NULL
) RETURNS TABLE (id text, queue text, name text, args jsonb, priority integer, attempts integer,
                 max_attempts integer, key text, group_key text, run_at_s float8, lease_expires_at timestamptz,
                 wake_in_ms float8)
LANGUAGE plpgsql SET search_path FROM CURRENT
-- Every lookup here is by a full key, best served by its index: without
-- statistics (flow_groups fills fast, and is small), the planner would rather
-- scan a whole queue's groups for each one.
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
#variable_conflict use_column
DECLARE
  chosen_names text[];
  chosen_groups text[];
  chosen_limited boolean[];
  locked flow_groups[];
  clock timestamptz;
  taken integer;
  wake_at timestamptz;
BEGIN
  IF wanted <= 0 OR EXISTS (SELECT FROM paused AS p WHERE p.queue = for_queue AND p.name = '') THEN
    RETURN;
  END IF;
  SELECT coalesce(array_agg(c.name ORDER BY c.ord), '{}'), coalesce(array_agg(c.group_key ORDER BY c.ord), '{}'),
         coalesce(array_agg(c.limited ORDER BY c.ord), '{}')
  INTO chosen_names, chosen_groups, chosen_limited
  FROM (
    SELECT o.*, sum(coalesce(o.free, wanted)) OVER (ORDER BY o.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
    FROM (
      SELECT g.*, row_number() OVER (ORDER BY g.priority DESC, g.served) AS ord
      FROM (
        -- The distinct groups with ready tasks, each with its head, found by
        -- skipping from one group to the next in the index instead of reading
        -- every task.
        WITH RECURSIVE heads AS (
          (SELECT t.name, t.group_key, t.priority FROM tasks AS t
           WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
           ORDER BY t.name, t.group_key, t.priority DESC, t.run_at, t.id LIMIT 1)
          UNION ALL
          SELECT next.* FROM heads AS h, LATERAL (
            SELECT t.name, t.group_key, t.priority FROM tasks AS t
            WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
              AND (t.name, t.group_key) > (h.name, h.group_key)
            ORDER BY t.name, t.group_key, t.priority DESC, t.run_at, t.id LIMIT 1) AS next
        )
        SELECT h.name, h.group_key, h.priority, l.name IS NOT NULL AS limited,
               -- by a lookup per group, not a join, which the planner may make a scan of
               -- the queue's groups per group while it knows nothing of the table
               (SELECT fg.served FROM flow_groups AS fg
                WHERE fg.queue = for_queue AND fg.name = h.name AND fg.group_key = h.group_key) AS served,
               -- its free slots in this snapshot (only the count under the lock decides)
               least(wanted, l.group_concurrency - (
                 SELECT count(*) FROM tasks AS t
                 WHERE t.queue = for_queue AND t.name = h.name AND t.group_key = h.group_key
                   AND t.state = 'running')) AS free
        FROM heads AS h
        LEFT JOIN flow_limits AS l ON l.queue = for_queue AND l.name = h.name
        WHERE (names IS NULL OR h.name = ANY (names))
          AND NOT EXISTS (SELECT FROM paused AS p WHERE p.queue = for_queue AND p.name = h.name)
      ) AS g
      WHERE g.free IS NULL OR g.free > 0
    ) AS o
  ) AS c
  -- as many groups as `wanted` needs, by their free slots
  WHERE coalesce(c.before, 0) < wanted;
  -- The groups of names with limits are locked; those of names without need no
  -- lock (any number of claims may take from them at once, as from plain tasks).
  locked := ARRAY(
    SELECT ROW(fg.*)::flow_groups
    FROM unnest(chosen_names, chosen_groups, chosen_limited) WITH ORDINALITY AS c(name, group_key, limited, ord)
    -- A lookup per group, as above (OFFSET 0 keeps it one).
    CROSS JOIN LATERAL (SELECT * FROM flow_groups AS g
                        WHERE g.queue = for_queue AND g.name = c.name AND g.group_key = c.group_key
                        OFFSET 0) AS fg
    WHERE c.limited
    ORDER BY c.ord
    FOR NO KEY UPDATE OF fg SKIP LOCKED) || ARRAY(
    SELECT ROW(fg.*)::flow_groups
    FROM unnest(chosen_names, chosen_groups, chosen_limited) AS c(name, group_key, limited)
    CROSS JOIN LATERAL (SELECT * FROM flow_groups AS g
                        WHERE g.queue = for_queue AND g.name = c.name AND g.group_key = c.group_key
                        OFFSET 0) AS fg
    WHERE NOT c.limited);
  PERFORM FROM flow_limits AS l
  WHERE l.queue = for_queue AND l.name IN (SELECT g.name FROM unnest(locked) AS g)
    AND l.rate_limit IS NOT NULL AND NOT l.rate_per_group
  ORDER BY l.name
  FOR NO KEY UPDATE;
  clock := coalesce(at, clock_timestamp());

  RETURN QUERY
  WITH served AS (
    SELECT g.name, g.group_key, g.rate_starts, g.rate_counts, c.ord, l.name IS NOT NULL AS limited,
           l.group_concurrency, l.rate_limit, l.rate_period, coalesce(l.rate_per_group, false) AS rate_per_group,
           l.rate_starts AS name_starts, l.rate_counts AS name_counts
    FROM unnest(locked) AS g
    JOIN unnest(chosen_names, chosen_groups) WITH ORDINALITY AS c(name, group_key, ord)
      ON c.name = g.name AND c.group_key = g.group_key
    LEFT JOIN flow_limits AS l ON l.queue = for_queue AND l.name = g.name
  ), slots AS (
    SELECT s.*,
           least(
             s.group_concurrency - (SELECT count(*) FROM tasks AS t
                                    WHERE t.queue = for_queue AND t.name = s.name
                                      AND t.group_key = s.group_key AND t.state = 'running'),
             s.rate_limit - (SELECT coalesce(sum(x.c), 0) FROM unnest(
                               CASE WHEN s.rate_per_group THEN s.rate_starts ELSE s.name_starts END,
                               CASE WHEN s.rate_per_group THEN s.rate_counts ELSE s.name_counts END) AS x(st, c)
                             WHERE x.st > clock - s.rate_period),
             wanted)::integer AS free
    FROM served AS s
  ), budget AS (
    -- and no more than its ready tasks, counted no further than that
    SELECT s.*, least(s.free, (SELECT count(*) FROM (SELECT FROM tasks AS t
                                                     WHERE t.queue = for_queue AND t.name = s.name
                                                       AND t.group_key = s.group_key AND t.state = 'ready'
                                                     LIMIT greatest(s.free, 0)) AS ready))::integer AS room
    FROM slots AS s
  ), capped AS (
    -- Within `wanted` in all, and within a rate its name's groups share.
    SELECT b.*,
           greatest(0, least(
             b.room,
             wanted - coalesce(sum(greatest(b.room, 0)) OVER (ORDER BY b.ord ROWS BETWEEN UNBOUNDED PRECEDING
                                                                                AND 1 PRECEDING), 0),
             CASE WHEN b.rate_limit IS NOT NULL AND NOT b.rate_per_group
                  THEN b.room - coalesce(sum(greatest(b.room, 0)) OVER (PARTITION BY b.name ORDER BY b.ord
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                  ELSE b.room END))::integer AS n
    FROM budget AS b
  ), picked AS (
    SELECT p.id FROM capped AS c CROSS JOIN LATERAL (
      SELECT t.id FROM tasks AS t
      WHERE t.queue = for_queue AND t.name = c.name AND t.group_key = c.group_key AND t.state = 'ready'
        AND (t.expires_at IS NULL OR t.expires_at > clock)
      ORDER BY t.priority DESC, t.run_at, t.id
      LIMIT c.n
      FOR UPDATE SKIP LOCKED) AS p
    WHERE c.n > 0
  ), claimed AS (
    UPDATE tasks AS t
    SET state = 'running', attempts = t.attempts + 1, started_at = clock, lease_id = lease,
        lease_expires_at = clock + make_interval(secs => lease_ms / 1000.0), worker_id = worker
    WHERE t.id = ANY (ARRAY(SELECT picked.id FROM picked)) AND t.state = 'ready'
    RETURNING t.*
  ), per_group AS (
    SELECT c.name, c.group_key, count(*)::integer AS n FROM claimed AS c GROUP BY c.name, c.group_key
  ), groups_updated AS (
    -- Served: to the back of the turns; a rate per group records its starts.
    UPDATE flow_groups AS fg
    SET served = nextval('flow_served'),
        rate_starts = CASE WHEN s.rate_per_group AND s.rate_limit IS NOT NULL
                           THEN ARRAY(SELECT x.st FROM unnest(fg.rate_starts, fg.rate_counts) WITH ORDINALITY AS x(st, c, o)
                                      WHERE x.st > clock - s.rate_period ORDER BY x.o) || clock
                           ELSE fg.rate_starts END,
        rate_counts = CASE WHEN s.rate_per_group AND s.rate_limit IS NOT NULL
                           THEN ARRAY(SELECT x.c FROM unnest(fg.rate_starts, fg.rate_counts) WITH ORDINALITY AS x(st, c, o)
                                      WHERE x.st > clock - s.rate_period ORDER BY x.o) || pg.n
                           ELSE fg.rate_counts END
    FROM per_group AS pg
    JOIN served AS s ON s.name = pg.name AND s.group_key = pg.group_key AND s.limited
    WHERE fg.queue = for_queue AND fg.name = pg.name AND fg.group_key = pg.group_key
    RETURNING 1
  ), names_updated AS (
    -- A rate the name's groups share records its starts in the name's row.
    UPDATE flow_limits AS l
    SET rate_starts = ARRAY(SELECT x.st FROM unnest(l.rate_starts, l.rate_counts) WITH ORDINALITY AS x(st, c, o)
                            WHERE x.st > clock - l.rate_period ORDER BY x.o) || clock,
        rate_counts = ARRAY(SELECT x.c FROM unnest(l.rate_starts, l.rate_counts) WITH ORDINALITY AS x(st, c, o)
                            WHERE x.st > clock - l.rate_period ORDER BY x.o) || pn.n
    FROM (SELECT pg.name, sum(pg.n)::integer AS n FROM per_group AS pg GROUP BY pg.name) AS pn
    WHERE l.queue = for_queue AND l.name = pn.name AND l.rate_limit IS NOT NULL AND NOT l.rate_per_group
    RETURNING 1
  )
  SELECT c.id::text, c.queue, c.name, c.args, c.priority, c.attempts, c.max_attempts, c.key, c.group_key,
         extract(epoch FROM c.run_at)::float8, c.lease_expires_at, NULL::float8
  FROM claimed AS c
  -- Referenced, so that the starts are recorded before the rows are returned.
  WHERE (SELECT count(*) FROM groups_updated) >= 0 AND (SELECT count(*) FROM names_updated) >= 0;
  GET DIAGNOSTICS taken = ROW_COUNT;
  -- Groups without limits go to the back of the turns too, unless another claim
  -- holds one (then that claim moves it).
  UPDATE flow_groups AS fg SET served = nextval('flow_served')
  FROM (SELECT c.name, c.group_key
        FROM unnest(chosen_names, chosen_groups, chosen_limited) AS c(name, group_key, limited)
        CROSS JOIN LATERAL (SELECT FROM flow_groups AS g
                            WHERE g.queue = for_queue AND g.name = c.name AND g.group_key = c.group_key
                            OFFSET 0 FOR NO KEY UPDATE SKIP LOCKED) AS free
        WHERE NOT c.limited) AS x
  WHERE fg.queue = for_queue AND fg.name = x.name AND fg.group_key = x.group_key;

  IF taken < wanted AND EXISTS (
       SELECT FROM tasks AS t
       WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
         AND (names IS NULL OR t.name = ANY (names))) THEN
    -- When the oldest start still in a rate's window leaves it.
    SELECT min(x.st + l.rate_period) INTO wake_at
    FROM flow_limits AS l
    CROSS JOIN LATERAL (
      SELECT fg.rate_starts FROM flow_groups AS fg
      WHERE l.rate_per_group AND fg.queue = l.queue AND fg.name = l.name
      UNION ALL
      SELECT l.rate_starts WHERE NOT l.rate_per_group) AS r
    CROSS JOIN LATERAL unnest(r.rate_starts) AS x(st)
    WHERE l.queue = for_queue AND l.rate_limit IS NOT NULL AND (names IS NULL OR l.name = ANY (names))
      AND x.st > coalesce(at, clock_timestamp()) - l.rate_period;
    id := NULL;
    wake_in_ms := greatest(extract(epoch FROM wake_at - coalesce(at, clock_timestamp())) * 1000, 0);
    RETURN NEXT;
  END IF;
END
$$;

-- Ends pending tasks past their time to live: they move to history as
-- cancelled, with the reason. Returns how many.
CREATE FUNCTION expire_tasks(max_count integer DEFAULT 1000, at timestamptz DEFAULT NULL) RETURNS integer
LANGUAGE sql SET search_path FROM CURRENT AS $$
  WITH clock AS (
    SELECT coalesce(at, now()) AS now
  ), ended AS (
    DELETE FROM tasks AS t
    WHERE t.id IN (
      SELECT x.id FROM tasks AS x, clock
      WHERE x.expires_at <= clock.now AND x.state IN ('scheduled', 'ready')
      ORDER BY x.expires_at LIMIT max_count
      FOR UPDATE SKIP LOCKED)
      AND t.state IN ('scheduled', 'ready')
    RETURNING t.*
  ), archived AS (
    INSERT INTO finished_tasks
      (id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
       created_at, started_at, finished_at, error, worker_id, group_key)
    SELECT id, queue, name, args, 'cancelled', priority, run_at, attempts, max_attempts, key,
           created_at, started_at, clock.now,
           'expired: not started within its time to live (' ||
             (extract(epoch FROM expires_at - created_at) * 1000)::bigint || ' ms)',
           worker_id, group_key
    FROM ended, clock
    RETURNING id, queue
  ), notified AS (
    SELECT count(notify('task_finished', queue)) AS n FROM (SELECT DISTINCT queue FROM archived) AS queues
  )
  SELECT count(*)::integer FROM archived, notified
$$;

-- Removes the rows of groups that have no task left and no start within their
-- rate period. Rows locked by a push or a claim are left for a later pass.
CREATE FUNCTION prune_flow_groups(max_count integer DEFAULT 1000) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  locked flow_groups[];
  removed integer;
BEGIN
  locked := ARRAY(
    SELECT fg FROM flow_groups AS fg
    WHERE NOT EXISTS (SELECT FROM tasks AS t
                      WHERE t.queue = fg.queue AND t.name = fg.name AND t.group_key = fg.group_key
                        AND t.state = 'ready')
      AND NOT EXISTS (SELECT FROM tasks AS t
                      WHERE t.queue = fg.queue AND t.name = fg.name AND t.group_key = fg.group_key
                        AND t.state <> 'ready')
    LIMIT max_count
    FOR UPDATE SKIP LOCKED);
  -- A new snapshot, taken under the locks: a push that held one has committed.
  DELETE FROM flow_groups AS fg
  USING unnest(locked) AS l
  LEFT JOIN flow_limits AS lim ON lim.queue = l.queue AND lim.name = l.name
  WHERE fg.queue = l.queue AND fg.name = l.name AND fg.group_key = l.group_key
    AND NOT EXISTS (SELECT FROM tasks AS t
                    WHERE t.queue = fg.queue AND t.name = fg.name AND t.group_key = fg.group_key
                      AND t.state = 'ready')
    AND NOT EXISTS (SELECT FROM tasks AS t
                    WHERE t.queue = fg.queue AND t.name = fg.name AND t.group_key = fg.group_key
                      AND t.state <> 'ready')
    AND NOT EXISTS (SELECT FROM unnest(fg.rate_starts) AS s WHERE s > now() - lim.rate_period);
  GET DIAGNOSTICS removed = ROW_COUNT;
  RETURN removed;
END
$$;

-- Pauses a queue, or one task name of it: no task of it starts until resumed;
-- running tasks finish, pushes are stored. True if it was not paused.
CREATE FUNCTION pause_queue(queue text, name text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_variable
DECLARE
  added boolean;
BEGIN
  INSERT INTO paused (queue, name) VALUES (queue, coalesce(name, '')) ON CONFLICT DO NOTHING;
  added := FOUND;
  -- A paused name's ready pointers leave the ring, so that claims of the other
  -- names do not step over its backlog; resume_queue puts them back.
  IF added AND name IS NOT NULL THEN
    DELETE FROM ready AS r WHERE r.queue = pause_queue.queue AND r.name = pause_queue.name;
  END IF;
  RETURN added;
END
$$;

-- Resumes what pause_queue paused and wakes the workers. True if it was paused.
CREATE FUNCTION resume_queue(queue text, name text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_variable
BEGIN
  DELETE FROM paused AS p WHERE p.queue = resume_queue.queue AND p.name = coalesce(name, '');
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  IF name IS NOT NULL THEN
    INSERT INTO ready (segment, id, queue, name, priority, run_at)
    SELECT ring.last_value, t.id, t.queue, t.name, t.priority, t.run_at
    FROM tasks AS t, ready_segment AS ring
    WHERE t.queue = resume_queue.queue AND t.name = resume_queue.name AND t.state = 'ready' AND t.group_key IS NULL
      AND NOT EXISTS (SELECT FROM ready AS r
                      WHERE r.queue = t.queue AND r.priority = t.priority AND r.run_at = t.run_at AND r.id = t.id);
  END IF;
  PERFORM notify('task_ready', queue);
  RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION cancel_tasks(ids bigint[], reason text DEFAULT 'cancelled')
RETURNS TABLE (id bigint, outcome text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
BEGIN
  -- Pending first: a task claimed meanwhile is found running by the next statement.
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

-- The views gain the group (and, for pending tasks, the end of the time to
-- live) as last columns; the columns they had are unchanged.
CREATE OR REPLACE VIEW all_tasks AS
  SELECT id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
         created_at, started_at, NULL::timestamptz AS finished_at, NULL::jsonb AS result,
         last_error AS error, worker_id, group_key, expires_at
  FROM tasks
  UNION ALL
  SELECT id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
         created_at, started_at, finished_at, result, error, worker_id, group_key, NULL
  FROM finished_tasks;

CREATE OR REPLACE VIEW task_history AS
  SELECT id, queue, name, state, attempts, max_attempts, args, result, error,
         created_at, run_at, started_at, finished_at,
         started_at - run_at AS wait_time,
         finished_at - started_at AS run_time,
         worker_id, group_key
  FROM finished_tasks;

-- Paused queues ('' as name: the whole queue) and task names.
CREATE VIEW paused_queues AS
  SELECT queue, nullif(name, '') AS name, paused_at FROM paused;

-- Each group with pending or running tasks, its limits, and what holds its
-- ready tasks back now: 'paused', 'group_concurrency', 'rate_limit' or null.
CREATE VIEW flow_status AS
  SELECT s.queue, s.name, s.group_key, s.ready, s.running, s.scheduled,
         l.group_concurrency, l.rate_limit, l.rate_period, coalesce(l.rate_per_group, false) AS rate_per_group,
         s.recent_starts,
         CASE
           WHEN s.ready = 0 THEN NULL
           WHEN EXISTS (SELECT FROM paused AS p WHERE p.queue = s.queue AND p.name IN ('', s.name)) THEN 'paused'
           WHEN s.running >= l.group_concurrency THEN 'group_concurrency'
           WHEN s.recent_starts >= l.rate_limit THEN 'rate_limit'
         END AS held_by
  FROM (
    SELECT fg.queue, fg.name, fg.group_key,
           count(*) FILTER (WHERE t.state = 'ready') AS ready,
           count(*) FILTER (WHERE t.state = 'running') AS running,
           count(*) FILTER (WHERE t.state = 'scheduled') AS scheduled,
           (SELECT coalesce(sum(x.c), 0)
            FROM unnest(CASE WHEN lim.rate_per_group THEN fg.rate_starts ELSE lim.rate_starts END,
                        CASE WHEN lim.rate_per_group THEN fg.rate_counts ELSE lim.rate_counts END) AS x(s, c)
            WHERE x.s > now() - lim.rate_period) AS recent_starts
    FROM flow_groups AS fg
    LEFT JOIN flow_limits AS lim ON lim.queue = fg.queue AND lim.name = fg.name
    LEFT JOIN tasks AS t ON t.queue = fg.queue AND t.name = fg.name AND t.group_key = fg.group_key
    GROUP BY fg.queue, fg.name, fg.group_key, fg.rate_starts, fg.rate_counts,
             lim.rate_per_group, lim.rate_starts, lim.rate_counts, lim.rate_period
  ) AS s
  LEFT JOIN flow_limits AS l ON l.queue = s.queue AND l.name = s.name;

-- Down Migration
DROP VIEW flow_status;
DROP VIEW paused_queues;
DROP VIEW task_history;
CREATE VIEW task_history AS
  SELECT id, queue, name, state, attempts, max_attempts, args, result, error,
         created_at, run_at, started_at, finished_at,
         started_at - run_at AS wait_time,
         finished_at - started_at AS run_time,
         worker_id
  FROM finished_tasks;
DROP VIEW all_tasks;
CREATE VIEW all_tasks AS
  SELECT id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
         created_at, started_at, NULL::timestamptz AS finished_at, NULL::jsonb AS result,
         last_error AS error, worker_id
  FROM tasks
  UNION ALL
  SELECT id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
         created_at, started_at, finished_at, result, error, worker_id
  FROM finished_tasks;
DROP FUNCTION resume_queue(text, text);
DROP FUNCTION pause_queue(text, text);
DROP FUNCTION prune_flow_groups(integer);
DROP FUNCTION expire_tasks(integer, timestamptz);
DROP FUNCTION claim_flow(text, text[], integer, uuid, integer, text, timestamptz);
DROP FUNCTION push(text, text, jsonb, timestamptz, integer, integer, text, text, interval);
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
CREATE OR REPLACE FUNCTION push_many(tasks jsonb, at timestamptz DEFAULT NULL)
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
CREATE OR REPLACE FUNCTION cancel_tasks(ids bigint[], reason text DEFAULT 'cancelled')
RETURNS TABLE (id bigint, outcome text)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
BEGIN
  -- Pending first: a task claimed meanwhile is found running by the next statement.
  RETURN QUERY
  WITH deleted AS (
    DELETE FROM tasks AS t
    WHERE t.id = ANY (ids) AND t.state IN ('scheduled', 'ready')
    RETURNING t.*
  ), archived AS (
    INSERT INTO finished_tasks
      (id, queue, name, args, state, priority, run_at, attempts, max_attempts, key,
       created_at, started_at, finished_at, error, worker_id)
    SELECT id, queue, name, args, 'cancelled', priority, run_at, attempts, max_attempts, key,
           created_at, started_at, now(), reason, worker_id
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
DROP TRIGGER tasks_ready_update ON tasks;
CREATE TRIGGER tasks_ready_update AFTER UPDATE ON tasks
  FOR EACH ROW
  WHEN ((OLD.state = 'ready' OR NEW.state = 'ready') AND NEW.state <> 'running'
        AND (OLD.state <> NEW.state OR OLD.run_at <> NEW.run_at OR OLD.priority <> NEW.priority))
  EXECUTE FUNCTION ready_after_update_or_delete();
CREATE OR REPLACE FUNCTION ready_after_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO ready (segment, id, queue, name, priority, run_at)
  SELECT ring.last_value, t.id, t.queue, t.name, t.priority, t.run_at
  FROM added AS t, ready_segment AS ring
  WHERE t.state = 'ready';
  RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION ready_after_update_or_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  IF OLD.state = 'ready' THEN
    PERFORM FROM ready AS r
    WHERE r.queue = OLD.queue AND r.priority = OLD.priority AND r.run_at = OLD.run_at AND r.id = OLD.id
    FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
      DELETE FROM ready AS r
      WHERE r.queue = OLD.queue AND r.priority = OLD.priority AND r.run_at = OLD.run_at AND r.id = OLD.id;
    END IF;
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.state = 'ready' THEN
    INSERT INTO ready (segment, id, queue, name, priority, run_at)
    SELECT ring.last_value, NEW.id, NEW.queue, NEW.name, NEW.priority, NEW.run_at FROM ready_segment AS ring;
  END IF;
  RETURN NULL;
END
$$;
DROP FUNCTION set_flow_limits(text, text, integer, integer, interval, boolean);
DROP FUNCTION task_group(text, text, text, bigint, timestamptz, timestamptz);
DROP TABLE paused;
DROP SEQUENCE flow_served;
DROP TABLE flow_groups;
DROP TABLE flow_limits;
DROP INDEX tasks_expires_idx;
DROP INDEX tasks_running_key_idx;
DROP INDEX tasks_group_idx;
DROP INDEX tasks_group_ready_idx;
ALTER TABLE finished_tasks DROP COLUMN group_key;
ALTER TABLE tasks DROP COLUMN expires_at, DROP COLUMN group_key;
