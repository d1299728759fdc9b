-- Up Migration
--
-- Flow control at the cost of the tasks a claim takes, not of the groups there are.
--
-- claim_flow no longer lists the head of every group with ready tasks at each
-- claim (some 20 ms with 1,000 groups). It finds the highest priority of the
-- ready tasks with a group, then walks the groups in their turn order
-- (flow_groups_turn_idx, see weighted turns below), and stops as soon as the
-- groups it has met can fill the claim. A group without a ready task of that
-- priority is stepped over; then the next lower priority is served the same way.
--
-- Claiming ahead under a rate limit. A claim counts as the start of its tasks,
-- so a task claimed ahead of a free slot would start later than counted. A
-- claim now says how long its tasks may wait in the worker (hold_ms); a task
-- under a rate limit that has not started by then goes back to ready, and each
-- claim's entry in the rate's window stays there for the period after the last
-- moment its tasks may start. While the rate has room for the whole claim, its
-- tasks are claimed ahead with that hold; once it has not, only for the
-- worker's free slots, with a tenth of it: even a task for a free slot starts a
-- little after its claim (the result's way back, the worker's event loop).
-- A worker counts the hold from when it sent the claim, which is earlier than
-- the claim's clock in the database; start_within_ms adds the time the claim
-- waited for its locks, so that lock waits do not eat into the hold.
-- Entries are rounded up to a fiftieth of the period and merged, so that a
-- window holds at most some hundred of them however many claims it saw.
--
-- Weighted turns. flow_groups.served becomes a group's place in the turns (a
-- pass, in stride scheduling's terms): a group served moves to the place of
-- the first group of that claim's walk, plus 1 / its weight (flow_weights,
-- default 1), so a group of weight 3 is served three turns to another's one.
-- A group that had no tasks for a while comes back at the front, once. The
-- sequence flow_served is left to the claim_flow the down migration restores.

-- Places in the turns (see above); every group starts level.
ALTER TABLE flow_groups ALTER COLUMN served TYPE float8 USING 0;
-- The turn order of a queue's groups.
CREATE INDEX flow_groups_turn_idx ON flow_groups (queue, served);

-- Weights of groups in the turns, by queue and group, whatever the task name.
CREATE TABLE flow_weights (
  queue     text NOT NULL,
  group_key text NOT NULL,
  weight    float8 NOT NULL CHECK (weight > 0 AND weight <= 1000),
  PRIMARY KEY (queue, group_key)
);

-- Sets the weight of a group in its queue's turns (1, or null, removes it).
CREATE FUNCTION set_group_weight(queue text, group_key text, weight float8) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_variable
BEGIN
  IF weight <= 0 OR weight > 1000 OR weight = 'NaN' THEN
    RAISE EXCEPTION 'pgtq: the weight of group % must be more than 0 and at most 1000, got %', group_key, weight
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF coalesce(weight, 1) = 1 THEN
    DELETE FROM flow_weights AS w WHERE w.queue = set_group_weight.queue AND w.group_key = set_group_weight.group_key;
  ELSE
    INSERT INTO flow_weights AS w (queue, group_key, weight) VALUES (queue, group_key, weight)
    ON CONFLICT ON CONSTRAINT flow_weights_pkey DO UPDATE SET weight = EXCLUDED.weight;
  END IF;
END
$$;

-- flow_status, with each group's weight.
CREATE OR REPLACE VIEW flow_status AS
  SELECT s.queue, s.name, s.group_key, s.ready, s.running, s.scheduled,
         l.group_concurrency, l.rate_limit, l.rate_period, coalesce(l.rate_per_group, false) AS rate_per_group,
         s.recent_starts,
         CASE
           WHEN s.ready = 0 THEN NULL
           WHEN EXISTS (SELECT FROM paused AS p WHERE p.queue = s.queue AND p.name IN ('', s.name)) THEN 'paused'
           WHEN s.running >= l.group_concurrency THEN 'group_concurrency'
           WHEN s.recent_starts >= l.rate_limit THEN 'rate_limit'
         END AS held_by,
         coalesce((SELECT w.weight FROM flow_weights AS w WHERE w.queue = s.queue AND w.group_key = s.group_key), 1)
           AS weight
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
-- The highest priority of a queue's ready tasks with a group. Then keyed as
-- tasks_group_ready_idx, so that a group's tasks of one priority are found here
-- in their order as directly as there, whichever index the planner picks.
CREATE INDEX tasks_group_priority_idx ON tasks (queue, priority DESC, name, group_key, run_at, id)
  WHERE state = 'ready' AND group_key IS NOT NULL;

-- The moment a rate's window entry ends: `until` rounded up to a fiftieth of the period.
CREATE FUNCTION rate_entry_end(until timestamptz, period interval) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_timestamp(ceil(extract(epoch FROM until) / (extract(epoch FROM period) / 50))
                      * (extract(epoch FROM period) / 50))
$$;

DROP FUNCTION claim_flow(text, text[], integer, uuid, integer, text, timestamptz);
-- Claims up to `wanted` ready tasks with a group, as task_claim_many does for the
-- others, within their limits. For each priority, highest first, while the
-- claim is not full:
-- 1. walk the groups with a ready task of that priority, not paused, not at
--    their concurrency in this snapshot, in turn order, until their free slots
--    fill what is left of the claim;
--    Each group of a name with limits is locked as it is met (SKIP LOCKED: a
--    group another claim is taking from is left to it);
-- 2. lock the rows of the names whose rate limit these groups share (waited
--    for, in name order);
-- 3. in a new snapshot, so that every claim of those groups has committed or
--    waits: each group's budget (its free slots, its or its name's rate room,
--    its ready tasks of that priority), its tasks within that budget and the
--    claim, the rate entries recorded, and the groups sent to the back of the turns.
-- Under a rate limit: `free` is how many of the worker's slots are free, and
-- `hold_ms` how long a task may wait in it before it starts; see the top of
-- this file. Each task under a rate limit is returned with start_within_ms.
-- When tasks with a group were left ready, a last row with a null id says so:
-- its wake_in_ms is when a rate limit may let the next one start (null: when a
-- task finishes, which frees a slot and notifies).
CREATE FUNCTION claim_flow(
  for_queue text, names text[], wanted integer, free integer, hold_ms integer,
  lease uuid, lease_ms integer, worker text, at timestamptz DEFAULT NULL
) RETURNS TABLE (id text, queue text, name text, args jsonb, priority integer, attempts integer,
                 max_attempts integer, key text, group_key text, run_at_s float8, lease_expires_at timestamptz,
                 start_within_ms float8, wake_in_ms float8)
LANGUAGE plpgsql SET search_path FROM CURRENT
-- Every lookup here is by a full key, in the order of an index: without
-- statistics (flow_groups fills fast, and is small, and a queue's tasks come and
-- go), the planner would rather scan a whole queue's groups for each one. One
-- plan for all calls: planning these statements anew at each claim costs more
-- than running them.
SET enable_seqscan = off SET enable_bitmapscan = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  paused_names text[];
  -- the names with limits, their group concurrency, and those whose rate their groups share
  limited_names text[];
  concurrency integer[];
  shared_rates text[];
  level integer;
  above integer;
  exhausted boolean := true;
  remaining integer := wanted;
  immediate integer := greatest(free, 0);
  chosen_names text[];
  chosen_groups text[];
  chosen_limited boolean[];
  filled integer;
  walk refcursor;
  g record;
  -- the place in the turns of the first group met: a group served goes behind it
  front float8;
  clock timestamptz;
  waited_ms float8;
  taken integer;
  wake_at timestamptz;
  sorting constant text := current_setting('enable_sort');
BEGIN
  IF wanted <= 0 OR EXISTS (SELECT FROM paused AS p WHERE p.queue = for_queue AND p.name = '') THEN
    RETURN;
  END IF;
  paused_names := ARRAY(SELECT p.name FROM paused AS p WHERE p.queue = for_queue);
  SELECT coalesce(array_agg(l.name), '{}'), coalesce(array_agg(l.group_concurrency), '{}'),
         coalesce(array_agg(l.name) FILTER (WHERE l.rate_limit IS NOT NULL AND NOT l.rate_per_group), '{}')
  INTO limited_names, concurrency, shared_rates
  FROM flow_limits AS l
  WHERE l.queue = for_queue AND (names IS NULL OR l.name = ANY (names));
  LOOP
    -- The highest priority, read from the top of tasks_group_priority_idx. Not by
    -- sorting a queue's ready tasks, which is what the planner would rather do
    -- while it knows nothing of the table (the plan is made once, at the first call).
    PERFORM set_config('enable_sort', 'off', true);
    SELECT t.priority INTO level FROM tasks AS t
    WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
      -- the same priority again while its last walk stopped before its end
      AND (above IS NULL OR t.priority < above OR (t.priority = above AND NOT exhausted))
      AND (names IS NULL OR t.name = ANY (names)) AND t.name <> ALL (paused_names)
    ORDER BY t.priority DESC
    LIMIT 1;
    PERFORM set_config('enable_sort', sorting, true);
    EXIT WHEN level IS NULL;
    above := level;

    chosen_names := '{}';
    chosen_groups := '{}';
    chosen_limited := '{}';
    filled := 0;
    front := NULL;
    -- A cursor fetched a row at a time: a FOR loop would read ahead in batches,
    -- and look up the heads of groups this claim does not need.
    OPEN walk FOR
      SELECT fg.name, fg.group_key, fg.served, array_position(limited_names, fg.name) IS NOT NULL AS limited,
             -- its free slots in this snapshot (only the count under the lock decides)
             CASE WHEN concurrency[array_position(limited_names, fg.name)] IS NOT NULL
                  THEN concurrency[array_position(limited_names, fg.name)]
                       - (SELECT count(*) FROM tasks AS t
                          WHERE t.queue = for_queue AND t.name = fg.name AND t.group_key = fg.group_key
                            AND t.state = 'running') END AS slots
      FROM flow_groups AS fg
      WHERE fg.queue = for_queue
        AND (names IS NULL OR fg.name = ANY (names)) AND fg.name <> ALL (paused_names)
        -- a lookup per group, not a join, which the planner may make a scan of the
        -- level's tasks per group while it knows nothing of the table
        AND (SELECT true FROM tasks AS t
             WHERE t.queue = for_queue AND t.name = fg.name AND t.group_key = fg.group_key
               AND t.state = 'ready' AND t.priority = level
             LIMIT 1)
      ORDER BY fg.served;
    LOOP
      FETCH walk INTO g;
      EXIT WHEN NOT FOUND;
      front := coalesce(front, g.served);
      CONTINUE WHEN g.slots <= 0;
      -- A group of a name with limits is locked as it is met (SKIP LOCKED: one
      -- another claim is taking from is left to it, and the walk goes on). Those
      -- of names without need no lock: any number of claims may take from them at
      -- once, as from plain tasks.
      IF g.limited THEN
        PERFORM FROM flow_groups AS fg
        WHERE fg.queue = for_queue AND fg.name = g.name AND fg.group_key = g.group_key
        FOR NO KEY UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
      END IF;
      chosen_names := chosen_names || g.name;
      chosen_groups := chosen_groups || g.group_key;
      chosen_limited := chosen_limited || g.limited;
      filled := filled + least(coalesce(g.slots, remaining), remaining);
      EXIT WHEN filled >= remaining;
    END LOOP;
    CLOSE walk;
    exhausted := filled < remaining;
    CONTINUE WHEN cardinality(chosen_names) = 0;

    IF chosen_names && shared_rates THEN
      PERFORM FROM flow_limits AS l
      WHERE l.queue = for_queue AND l.name = ANY (chosen_names) AND l.name = ANY (shared_rates)
      ORDER BY l.name
      FOR NO KEY UPDATE;
    END IF;
    clock := coalesce(at, clock_timestamp());
    -- How long this statement waited for its locks before its clock.
    waited_ms := CASE WHEN at IS NULL THEN extract(epoch FROM clock - statement_timestamp()) * 1000 ELSE 0 END;

    RETURN QUERY
    WITH served AS (
      -- Read in this statement's snapshot, taken under the locks.
      SELECT c.name, c.group_key, c.ord, c.limited, g.rate_starts, g.rate_counts,
             l.group_concurrency, l.rate_limit, l.rate_period, coalesce(l.rate_per_group, false) AS rate_per_group,
             l.rate_starts AS name_starts, l.rate_counts AS name_counts
      FROM unnest(chosen_names, chosen_groups, chosen_limited) WITH ORDINALITY AS c(name, group_key, limited, ord)
      -- A lookup per group (OFFSET 0 keeps it one).
      CROSS JOIN LATERAL (SELECT g.rate_starts, g.rate_counts FROM flow_groups AS g
                          WHERE g.queue = for_queue AND g.name = c.name AND g.group_key = c.group_key
                          OFFSET 0) AS g
      LEFT JOIN flow_limits AS l ON l.queue = for_queue AND l.name = c.name
    ), slots AS MATERIALIZED (
      -- (computed once, not once for each use below)
      SELECT s.*,
             CASE WHEN s.group_concurrency IS NOT NULL
                  THEN s.group_concurrency - (SELECT count(*) FROM tasks AS t
                                              WHERE t.queue = for_queue AND t.name = s.name
                                                AND t.group_key = s.group_key AND t.state = 'running')
             END AS group_free,
             s.rate_limit - (SELECT coalesce(sum(x.c), 0) FROM unnest(
                               CASE WHEN s.rate_per_group THEN s.rate_starts ELSE s.name_starts END,
                               CASE WHEN s.rate_per_group THEN s.rate_counts ELSE s.name_counts END) AS x(st, c)
                             WHERE x.st > clock - s.rate_period) AS rate_room
      FROM served AS s
    ), budget AS (
      -- at_once: its rate has no room for all the claim may take, so its tasks
      -- are claimed only for free slots, to start at once; else they may be
      -- claimed ahead, and may wait `hold` ms for a slot.
      SELECT m.*, least(m.group_free, m.rate_room, CASE WHEN m.at_once THEN immediate END, remaining) AS free,
             CASE WHEN m.rate_limit IS NULL OR hold_ms <= 0 THEN 0
                  WHEN m.at_once THEN least(hold_ms, extract(epoch FROM m.rate_period) * 1000) / 10
                  ELSE least(hold_ms, extract(epoch FROM m.rate_period) * 1000) END AS hold
      FROM (SELECT s.*, s.rate_limit IS NOT NULL AND s.rate_room < remaining AS at_once FROM slots AS s) AS m
    ), candidates AS (
      -- Each group's next tasks of this priority within its budget. A group with
      -- limits is locked by this claim, so its tasks need no row lock.
      SELECT b.ord, b.name, b.at_once, b.rate_limit IS NOT NULL AND NOT b.rate_per_group AS shares_rate,
             b.rate_room, p.id, p.run_at
      FROM budget AS b CROSS JOIN LATERAL (
        SELECT t.id, t.run_at FROM tasks AS t
        WHERE t.queue = for_queue AND t.name = b.name AND t.group_key = b.group_key AND t.state = 'ready'
          AND t.priority = level AND (t.expires_at IS NULL OR t.expires_at > clock)
        ORDER BY t.run_at, t.id
        LIMIT greatest(b.free, 0)) AS p
      WHERE b.limited AND b.free > 0
      UNION ALL
      SELECT b.ord, b.name, false, false, NULL, p.id, p.run_at
      FROM budget AS b CROSS JOIN LATERAL (
        SELECT t.id, t.run_at FROM tasks AS t
        WHERE t.queue = for_queue AND t.name = b.name AND t.group_key = b.group_key AND t.state = 'ready'
          AND t.priority = level AND (t.expires_at IS NULL OR t.expires_at > clock)
        ORDER BY t.run_at, t.id
        LIMIT greatest(b.free, 0)
        FOR UPDATE SKIP LOCKED) AS p
      WHERE NOT b.limited AND b.free > 0
    ), within AS (
      -- Within a rate the name's groups share, and within the free slots for
      -- tasks to start at once, in turn order.
      SELECT c.* FROM (
        SELECT c.*, row_number() OVER (PARTITION BY c.name ORDER BY c.ord, c.run_at, c.id) AS in_name,
                    row_number() OVER (PARTITION BY c.at_once ORDER BY c.ord, c.run_at, c.id) AS in_mode
        FROM candidates AS c) AS c
      WHERE (NOT c.shares_rate OR c.in_name <= c.rate_room) AND (NOT c.at_once OR c.in_mode <= immediate)
    ), picked AS (
      -- and within the claim in all
      SELECT c.id FROM (SELECT c.id, row_number() OVER (ORDER BY c.ord, c.run_at, c.id) AS n FROM within AS c) AS c
      WHERE c.n <= remaining
    ), claimed AS (
      UPDATE tasks AS t
      SET state = 'running', attempts = t.attempts + 1, started_at = clock, lease_id = lease,
          lease_expires_at = clock + make_interval(secs => lease_ms / 1000.0), worker_id = worker
      WHERE t.id = ANY (ARRAY(SELECT picked.id FROM picked)) AND t.state = 'ready'
      RETURNING t.id, t.queue, t.name, t.args, t.priority, t.attempts, t.max_attempts, t.key, t.group_key,
                t.run_at, t.lease_expires_at
    ), per_group AS (
      SELECT c.name, c.group_key, count(*)::integer AS n FROM claimed AS c GROUP BY c.name, c.group_key
    ), entries AS (
      -- The rate entries of the groups with a rate of their own, this claim's added.
      SELECT pg.name, pg.group_key, coalesce(array_agg(e.st ORDER BY e.st), '{}') AS starts,
             coalesce(array_agg(e.c ORDER BY e.st), '{}') AS counts
      FROM per_group AS pg
      JOIN budget AS b ON b.name = pg.name AND b.group_key = pg.group_key AND b.rate_per_group
      CROSS JOIN LATERAL (
        SELECT x.st, sum(x.c)::integer AS c
        FROM (SELECT * FROM unnest(b.rate_starts, b.rate_counts)
              UNION ALL
              SELECT rate_entry_end(clock + make_interval(secs => b.hold / 1000.0), b.rate_period), pg.n) AS x(st, c)
        WHERE x.st > clock - b.rate_period
        GROUP BY x.st) AS e
      GROUP BY pg.name, pg.group_key
    ), groups_updated AS (
      -- Served, a group with limits takes its next place in the turns (see below
      -- for the others), with its rate's entries if it has a rate of its own.
      UPDATE flow_groups AS fg
      SET served = greatest(fg.served, front) + 1 / coalesce(
            (SELECT w.weight FROM flow_weights AS w WHERE w.queue = for_queue AND w.group_key = fg.group_key), 1),
          rate_starts = coalesce(e.starts, fg.rate_starts), rate_counts = coalesce(e.counts, fg.rate_counts)
      FROM per_group AS pg
      JOIN budget AS b ON b.name = pg.name AND b.group_key = pg.group_key AND b.limited
      LEFT JOIN entries AS e ON e.name = pg.name AND e.group_key = pg.group_key
      WHERE fg.queue = for_queue AND fg.name = pg.name AND fg.group_key = pg.group_key
      RETURNING 1
    ), names_updated AS (
      -- A rate the name's groups share records its entry in the name's row.
      UPDATE flow_limits AS l
      SET (rate_starts, rate_counts) = (
            SELECT coalesce(array_agg(e.st ORDER BY e.st), '{}'), coalesce(array_agg(e.c ORDER BY e.st), '{}')
            FROM (SELECT x.st, sum(x.c)::integer AS c
                  FROM (SELECT * FROM unnest(l.rate_starts, l.rate_counts)
                        UNION ALL
                        SELECT rate_entry_end(clock + make_interval(secs => pn.hold / 1000.0), l.rate_period), pn.n)
                       AS x(st, c)
                  WHERE x.st > clock - l.rate_period
                  GROUP BY x.st) AS e)
      FROM (SELECT pg.name, sum(pg.n)::integer AS n, max(b.hold) AS hold
            FROM per_group AS pg JOIN budget AS b ON b.name = pg.name AND b.group_key = pg.group_key
            WHERE b.rate_limit IS NOT NULL AND NOT b.rate_per_group
            GROUP BY pg.name) AS pn
      WHERE l.queue = for_queue AND l.name = pn.name
      RETURNING 1
    )
    SELECT c.id::text, c.queue, c.name, c.args, c.priority, c.attempts, c.max_attempts, c.key, c.group_key,
           extract(epoch FROM c.run_at)::float8, c.lease_expires_at,
           (b.hold + waited_ms)::float8, NULL::float8
    FROM claimed AS c
    -- the hold of each group claimed from under a rate limit (a hash join over those few)
    LEFT JOIN (SELECT DISTINCT b.name, b.group_key, b.hold FROM budget AS b WHERE b.hold > 0) AS b
      ON b.name = c.name AND b.group_key = c.group_key
    -- Referenced, so that the entries are recorded before the rows are returned.
    WHERE (SELECT count(*) FROM groups_updated) >= 0 AND (SELECT count(*) FROM names_updated) >= 0;
    GET DIAGNOSTICS taken = ROW_COUNT;
    -- Groups without limits take their next place too, unless another claim
    -- holds one (then that claim moves it).
    IF false = ANY (chosen_limited) THEN
      UPDATE flow_groups AS fg
      SET served = greatest(fg.served, front) + 1 / coalesce(
            (SELECT w.weight FROM flow_weights AS w WHERE w.queue = for_queue AND w.group_key = fg.group_key), 1)
      FROM (SELECT c.name, c.group_key
            FROM unnest(chosen_names, chosen_groups, chosen_limited) AS c(name, group_key, limited)
            CROSS JOIN LATERAL (SELECT FROM flow_groups AS g
                                WHERE g.queue = for_queue AND g.name = c.name AND g.group_key = c.group_key
                                OFFSET 0 FOR NO KEY UPDATE SKIP LOCKED) AS free
            WHERE NOT c.limited) AS x
      WHERE fg.queue = for_queue AND fg.name = x.name AND fg.group_key = x.group_key;
    END IF;

    exhausted := exhausted OR taken = 0;
    remaining := remaining - taken;
    -- Counted against the free slots whether or not they start at once: a
    -- lower priority's tasks are claimed at once only for slots left.
    immediate := greatest(immediate - taken, 0);
    EXIT WHEN remaining <= 0;
  END LOOP;

  IF remaining > 0 AND EXISTS (
       SELECT FROM tasks AS t
       WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
         AND (names IS NULL OR t.name = ANY (names))) THEN
    -- When the oldest entry still in a rate's window leaves it.
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
    start_within_ms := NULL;
    wake_in_ms := greatest(extract(epoch FROM wake_at - coalesce(at, clock_timestamp())) * 1000, 0);
    RETURN NEXT;
  END IF;
END
$$;

-- The claim_flow of the previous version, for workers still running it during a
-- rolling upgrade: the new one, with no claiming ahead under a rate limit.
CREATE FUNCTION claim_flow(
  for_queue text, names text[], wanted integer, lease uuid, lease_ms integer, worker text, at timestamptz DEFAULT NULL
) RETURNS TABLE (id text, queue text, name text, args jsonb, priority integer, attempts integer,
                 max_attempts integer, key text, group_key text, run_at_s float8, lease_expires_at timestamptz,
                 wake_in_ms float8)
LANGUAGE sql SET search_path FROM CURRENT AS $$
  SELECT c.id, c.queue, c.name, c.args, c.priority, c.attempts, c.max_attempts, c.key, c.group_key, c.run_at_s,
         c.lease_expires_at, c.wake_in_ms
  FROM claim_flow(for_queue, names, wanted, wanted, 0, lease, lease_ms, worker, at) AS c
$$;

-- Down Migration
DROP FUNCTION claim_flow(text, text[], integer, uuid, integer, text, timestamptz);
DROP FUNCTION claim_flow(text, text[], integer, integer, integer, uuid, integer, text, timestamptz);
DROP FUNCTION rate_entry_end(timestamptz, interval);
DROP INDEX tasks_group_priority_idx;
DROP INDEX flow_groups_turn_idx;
DROP VIEW flow_status;
DROP FUNCTION set_group_weight(text, text, float8);
DROP TABLE flow_weights;
ALTER TABLE flow_groups ALTER COLUMN served TYPE bigint USING 0;
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
