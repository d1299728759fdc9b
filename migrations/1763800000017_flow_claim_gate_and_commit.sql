-- Up Migration
--
-- claim_flow, two changes:
--
-- - The walk reads no group when no priority has a task the claim may take. It
--   read every group of the queue, counting each one's running tasks, to find
--   none with a ready task: some 3 ms per claim with 1,000 groups, and every
--   claim left short ends with such a walk (the one that finds no lower
--   priority).
-- - A claim that starts tasks under a limit (group concurrency or a rate) waits
--   for its WAL flush at commit, as the server is set to. The claim statement
--   turns that wait off for the claim's transaction (sql/task_claim_many.sql):
--   a claim lost in a crash of PostgreSQL is undone whole, and the attempt that
--   began is fenced off by its lease. But that attempt still runs in its worker
--   while its task, ready again, can be claimed anew: for a moment, two
--   attempts would run where a limit counts one, and a rate's window would
--   have lost the starts it recorded. Until now only a claim that took a plain
--   task turned the wait off, so a claim of a plain task and a limited one was
--   the only one exposed; a claim of tasks with a group but no limit now turns
--   it off too.

CREATE OR REPLACE FUNCTION claim_flow(
  for_queue text, names text[], wanted integer, free integer, hold_ms integer,
  lease uuid, lease_ms integer, worker text, at timestamptz DEFAULT NULL
) RETURNS TABLE (id text, queue text, name text, args jsonb, priority integer, attempts integer,
                 max_attempts integer, key text, group_key text, run_at_s float8, lease_expires_at timestamptz,
                 start_within_ms float8, wake_in_ms float8)
LANGUAGE plpgsql SET search_path FROM CURRENT
-- Every lookup here is by a full key, in the order of an index: without
-- statistics (flow_groups fills fast, and is small, and a queue's tasks come and
-- go), or with wrong ones, the planner would rather scan or sort a whole queue's
-- groups or tasks for each one; the only sorts left are of the few rows a claim
-- takes. One plan for all calls: planning these statements anew at each claim
-- costs more than running them. No JIT: the costs that steer the planner off
-- sorts are far above its threshold, and compiling would take longer than any
-- claim.
SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off
SET plan_cache_mode = force_generic_plan SET jit = off AS $$
#variable_conflict use_column
DECLARE
  queue_paused boolean;
  paused_names text[];
  -- the names with limits, their group concurrency, and those whose rate their groups share
  limited_names text[];
  concurrency integer[];
  shared_rates text[];
  -- the names with a rate limit
  rated_names text[];
  -- the fewest tasks a group of these names may run at once (null: no such cap)
  narrowest integer;
  level integer;
  above integer;
  exhausted boolean := true;
  remaining integer := wanted;
  immediate integer := greatest(free, 0);
  -- how many groups a walk takes: enough to fill the claim when each has its free slots
  walk_size integer;
  met integer;
  chosen_names text[];
  chosen_groups text[];
  -- where their rows are: this claim holds their locks, so they stay there until it moves them
  chosen_rows tid[];
  -- the place in the turns of the first group taken: a group served goes behind it
  front float8;
  clock timestamptz;
  waited_ms float8;
  taken integer;
  wake_at timestamptz;
BEGIN
  IF wanted <= 0 THEN
    RETURN;
  END IF;
  SELECT EXISTS (SELECT FROM paused AS p WHERE p.queue = for_queue AND p.name = ''),
         ARRAY(SELECT p.name FROM paused AS p WHERE p.queue = for_queue),
         coalesce(array_agg(l.name), '{}'), coalesce(array_agg(l.group_concurrency), '{}'),
         coalesce(array_agg(l.name) FILTER (WHERE l.rate_limit IS NOT NULL AND NOT l.rate_per_group), '{}'),
         min(l.group_concurrency),
         coalesce(array_agg(l.name) FILTER (WHERE l.rate_limit IS NOT NULL), '{}')
  INTO queue_paused, paused_names, limited_names, concurrency, shared_rates, narrowest, rated_names
  FROM flow_limits AS l
  WHERE l.queue = for_queue AND (names IS NULL OR l.name = ANY (names));
  IF queue_paused THEN
    RETURN;
  END IF;
  IF cardinality(paused_names) > 0 THEN
    -- The names it may take, none of them paused, so that the lookups below
    -- skip a paused name's backlog by index instead of stepping over it (and
    -- need no filter of their own: with paused names, names is never null).
    IF names IS NULL THEN
      names := ARRAY(SELECT DISTINCT g.name FROM flow_groups AS g WHERE g.queue = for_queue);
    END IF;
    names := ARRAY(SELECT n FROM unnest(names) AS n WHERE n <> ALL (paused_names));
  END IF;
  LOOP
    -- The highest priority left, read from the top of tasks_group_priority_idx,
    -- and the walk at it: the groups with a ready task of that priority, not
    -- paused, not at their concurrency in this snapshot, in turn order
    -- (flow_groups_turn_idx), each locked as it is met (SKIP LOCKED: a group
    -- another claim is taking from is left to it), as many as fill the claim if
    -- each has all its slots free. One statement, not a cursor fetched and
    -- locked a group at a time.
    -- (A group without a cap fills any claim. A group takes all its slots or
    -- all its ready tasks of the priority; if that is fewer, the claim is short,
    -- and the walk goes on.)
    walk_size := coalesce(least(remaining, ceil(remaining::numeric / narrowest)::integer), 1);
    WITH RECURSIVE levels AS (
      -- The queue's priorities, highest first, an index lookup each: the tasks
      -- of other names or paused ones are stepped over a priority at a time,
      -- not a task at a time.
      SELECT (SELECT t.priority FROM tasks AS t
              WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
                -- the same priority again while its last walk stopped before its end
                AND (above IS NULL OR t.priority < above OR (t.priority = above AND NOT exhausted))
              ORDER BY t.priority DESC
              LIMIT 1) AS priority
      UNION ALL
      SELECT (SELECT t.priority FROM tasks AS t
              WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
                AND t.priority < l.priority
              ORDER BY t.priority DESC
              LIMIT 1)
      FROM levels AS l
      WHERE l.priority IS NOT NULL
    ), top AS (
      -- the first with a task this claim may take (a lookup per priority, not a
      -- join, which the planner may make a scan of the queue's tasks)
      SELECT l.priority FROM levels AS l
      WHERE l.priority IS NOT NULL
        -- (the names as a condition of the index, not a filter on it)
        AND (names IS NULL
             OR (SELECT true FROM tasks AS t
                 WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
                   AND t.priority = l.priority AND t.name = ANY (names)
                 LIMIT 1))
      LIMIT 1
    )
    -- (each array in the same order: by turn, then by key, which is unique)
    SELECT (SELECT top.priority FROM top),
           coalesce(array_agg(w.name ORDER BY w.served, w.name, w.group_key), '{}'),
           coalesce(array_agg(w.group_key ORDER BY w.served, w.name, w.group_key), '{}'),
           coalesce(array_agg(w.ctid ORDER BY w.served, w.name, w.group_key), '{}'), min(w.served), count(*)
    INTO level, chosen_names, chosen_groups, chosen_rows, front, met
    FROM (
      SELECT fg.ctid, fg.name, fg.group_key, fg.served
      FROM flow_groups AS fg
      WHERE fg.queue = for_queue
        -- Checked once, before any group is read: without a level, every group
        -- of the queue was read and its running tasks counted, to find none.
        AND (SELECT top.priority FROM top) IS NOT NULL
        AND (names IS NULL OR fg.name = ANY (names))
        -- a lookup per group, not a join, which the planner may make a scan of the
        -- level's tasks per group while it knows nothing of the table
        AND (SELECT true FROM tasks AS t
             WHERE t.queue = for_queue AND t.name = fg.name AND t.group_key = fg.group_key
               AND t.state = 'ready' AND t.priority = (SELECT top.priority FROM top)
             LIMIT 1)
        -- a free slot in this snapshot (only the count under the lock decides)
        AND coalesce(concurrency[array_position(limited_names, fg.name)]
                     > (SELECT count(*) FROM tasks AS t
                        WHERE t.queue = for_queue AND t.name = fg.name AND t.group_key = fg.group_key
                          AND t.state = 'running'), true)
      ORDER BY fg.served
      LIMIT walk_size
      FOR NO KEY UPDATE OF fg SKIP LOCKED) AS w;
    EXIT WHEN level IS NULL;
    above := level;
    exhausted := met < walk_size;
    CONTINUE WHEN met = 0;

    IF chosen_names && shared_rates THEN
      PERFORM FROM flow_limits AS l
      WHERE l.queue = for_queue AND l.name = ANY (chosen_names) AND l.name = ANY (shared_rates)
      ORDER BY l.name
      FOR NO KEY UPDATE;
    END IF;
    clock := coalesce(at, clock_timestamp());
    -- How long this statement waited for its locks before its clock.
    waited_ms := CASE WHEN at IS NULL THEN extract(epoch FROM clock - statement_timestamp()) * 1000 ELSE 0 END;

    IF NOT chosen_names && rated_names THEN
      -- No rate limit among the groups taken: a statement a third the size of
      -- the one below, some 0.2 ms less per claim.
      RETURN QUERY
      WITH budget AS (
        SELECT c.ord, c.name, c.group_key,
               least(concurrency[array_position(limited_names, c.name)]
                     - (SELECT count(*) FROM tasks AS t
                        WHERE t.queue = for_queue AND t.name = c.name AND t.group_key = c.group_key
                          AND t.state = 'running'), remaining) AS free
        FROM unnest(chosen_names, chosen_groups) WITH ORDINALITY AS c(name, group_key, ord)
      ), picked AS (
        SELECT p.id FROM (
          SELECT p.id, row_number() OVER (ORDER BY b.ord, p.run_at, p.id) AS n
          FROM budget AS b CROSS JOIN LATERAL (
            SELECT t.id, t.run_at FROM tasks AS t
            WHERE t.queue = for_queue AND t.name = b.name AND t.group_key = b.group_key AND t.state = 'ready'
              AND t.priority = level AND (t.expires_at IS NULL OR t.expires_at > clock)
            ORDER BY t.run_at, t.id
            LIMIT greatest(coalesce(b.free, remaining), 0)) AS p) AS p
        WHERE p.n <= remaining
      ), claimed AS (
        UPDATE tasks AS t
        SET state = 'running', attempts = t.attempts + 1, started_at = clock, lease_id = lease,
            lease_expires_at = clock + make_interval(secs => lease_ms / 1000.0), worker_id = worker
        WHERE t.id = ANY (ARRAY(SELECT picked.id FROM picked)) AND t.state = 'ready'
        RETURNING t.id, t.queue, t.name, t.args, t.priority, t.attempts, t.max_attempts, t.key, t.group_key,
                  t.run_at, t.lease_expires_at
      ), moved AS (
        UPDATE flow_groups AS fg
        SET served = greatest(fg.served, front) + 1 / coalesce(
              (SELECT w.weight FROM flow_weights AS w WHERE w.queue = for_queue AND w.group_key = fg.group_key), 1)
        -- By position: a TID lookup per group served, whatever the planner
        -- thinks of the queue's groups.
        FROM (SELECT r.ctid FROM unnest(chosen_rows, chosen_names, chosen_groups) AS r(ctid, name, group_key)
              WHERE EXISTS (SELECT FROM claimed AS c WHERE c.name = r.name AND c.group_key = r.group_key)) AS r
        WHERE fg.ctid = r.ctid
        RETURNING 1
      )
      SELECT c.id::text, c.queue, c.name, c.args, c.priority, c.attempts, c.max_attempts, c.key, c.group_key,
             extract(epoch FROM c.run_at)::float8, c.lease_expires_at, NULL::float8, NULL::float8
      FROM claimed AS c
      WHERE (SELECT count(*) FROM moved) >= 0;
    ELSE
      RETURN QUERY
      WITH served AS (
        -- Read in this statement's snapshot, taken under the locks.
        SELECT c.name, c.group_key, c.ord, g.rate_starts, g.rate_counts,
               l.group_concurrency, l.rate_limit, l.rate_period, coalesce(l.rate_per_group, false) AS rate_per_group,
               l.rate_starts AS name_starts, l.rate_counts AS name_counts
        FROM unnest(chosen_names, chosen_groups) WITH ORDINALITY AS c(name, group_key, ord)
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
        -- Each group's next tasks of this priority within its budget. The group is
        -- locked by this claim, so its tasks need no row lock.
        SELECT b.ord, b.name, b.at_once, b.rate_limit IS NOT NULL AND NOT b.rate_per_group AS shares_rate,
               b.rate_room, p.id, p.run_at
        FROM budget AS b CROSS JOIN LATERAL (
          SELECT t.id, t.run_at FROM tasks AS t
          WHERE t.queue = for_queue AND t.name = b.name AND t.group_key = b.group_key AND t.state = 'ready'
            AND t.priority = level AND (t.expires_at IS NULL OR t.expires_at > clock)
          ORDER BY t.run_at, t.id
          LIMIT greatest(b.free, 0)) AS p
        WHERE b.free > 0
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
        -- Served, a group takes its next place in the turns, with its rate's
        -- entries if it has a rate of its own.
        UPDATE flow_groups AS fg
        SET served = greatest(fg.served, front) + 1 / coalesce(
              (SELECT w.weight FROM flow_weights AS w WHERE w.queue = for_queue AND w.group_key = fg.group_key), 1),
            rate_starts = coalesce(e.starts, fg.rate_starts), rate_counts = coalesce(e.counts, fg.rate_counts)
        -- by position (see above)
        FROM (SELECT r.ctid, pg.name, pg.group_key
              FROM per_group AS pg
              JOIN unnest(chosen_rows, chosen_names, chosen_groups) AS r(ctid, name, group_key)
                ON r.name = pg.name AND r.group_key = pg.group_key) AS pg
        LEFT JOIN entries AS e ON e.name = pg.name AND e.group_key = pg.group_key
        WHERE fg.ctid = pg.ctid
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
    END IF;
    GET DIAGNOSTICS taken = ROW_COUNT;
    IF taken > 0 AND chosen_names && limited_names THEN
      -- Tasks started under a limit: this claim is durable at its commit (see
      -- above), whatever the claim statement set.
      SET LOCAL synchronous_commit TO DEFAULT;
    END IF;

    exhausted := exhausted OR taken = 0;
    remaining := remaining - taken;
    -- Counted against the free slots whether or not they start at once: a
    -- lower priority's tasks are claimed at once only for slots left.
    immediate := greatest(immediate - taken, 0);
    EXIT WHEN remaining <= 0;
  END LOOP;

  IF remaining > 0 AND (CASE
       WHEN names IS NULL THEN EXISTS (
         SELECT FROM tasks AS t
         WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL)
       ELSE EXISTS (
         SELECT FROM tasks AS t
         WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
           AND t.name = ANY (names)) END) THEN
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

-- Down Migration
CREATE OR REPLACE FUNCTION claim_flow(
  for_queue text, names text[], wanted integer, free integer, hold_ms integer,
  lease uuid, lease_ms integer, worker text, at timestamptz DEFAULT NULL
) RETURNS TABLE (id text, queue text, name text, args jsonb, priority integer, attempts integer,
                 max_attempts integer, key text, group_key text, run_at_s float8, lease_expires_at timestamptz,
                 start_within_ms float8, wake_in_ms float8)
LANGUAGE plpgsql SET search_path FROM CURRENT
-- Every lookup here is by a full key, in the order of an index: without
-- statistics (flow_groups fills fast, and is small, and a queue's tasks come and
-- go), or with wrong ones, the planner would rather scan or sort a whole queue's
-- groups or tasks for each one; the only sorts left are of the few rows a claim
-- takes. One plan for all calls: planning these statements anew at each claim
-- costs more than running them. No JIT: the costs that steer the planner off
-- sorts are far above its threshold, and compiling would take longer than any
-- claim.
SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off
SET plan_cache_mode = force_generic_plan SET jit = off AS $$
#variable_conflict use_column
DECLARE
  queue_paused boolean;
  paused_names text[];
  -- the names with limits, their group concurrency, and those whose rate their groups share
  limited_names text[];
  concurrency integer[];
  shared_rates text[];
  -- the names with a rate limit
  rated_names text[];
  -- the fewest tasks a group of these names may run at once (null: no such cap)
  narrowest integer;
  level integer;
  above integer;
  exhausted boolean := true;
  remaining integer := wanted;
  immediate integer := greatest(free, 0);
  -- how many groups a walk takes: enough to fill the claim when each has its free slots
  walk_size integer;
  met integer;
  chosen_names text[];
  chosen_groups text[];
  -- where their rows are: this claim holds their locks, so they stay there until it moves them
  chosen_rows tid[];
  -- the place in the turns of the first group taken: a group served goes behind it
  front float8;
  clock timestamptz;
  waited_ms float8;
  taken integer;
  wake_at timestamptz;
BEGIN
  IF wanted <= 0 THEN
    RETURN;
  END IF;
  SELECT EXISTS (SELECT FROM paused AS p WHERE p.queue = for_queue AND p.name = ''),
         ARRAY(SELECT p.name FROM paused AS p WHERE p.queue = for_queue),
         coalesce(array_agg(l.name), '{}'), coalesce(array_agg(l.group_concurrency), '{}'),
         coalesce(array_agg(l.name) FILTER (WHERE l.rate_limit IS NOT NULL AND NOT l.rate_per_group), '{}'),
         min(l.group_concurrency),
         coalesce(array_agg(l.name) FILTER (WHERE l.rate_limit IS NOT NULL), '{}')
  INTO queue_paused, paused_names, limited_names, concurrency, shared_rates, narrowest, rated_names
  FROM flow_limits AS l
  WHERE l.queue = for_queue AND (names IS NULL OR l.name = ANY (names));
  IF queue_paused THEN
    RETURN;
  END IF;
  IF cardinality(paused_names) > 0 THEN
    -- The names it may take, none of them paused, so that the lookups below
    -- skip a paused name's backlog by index instead of stepping over it (and
    -- need no filter of their own: with paused names, names is never null).
    IF names IS NULL THEN
      names := ARRAY(SELECT DISTINCT g.name FROM flow_groups AS g WHERE g.queue = for_queue);
    END IF;
    names := ARRAY(SELECT n FROM unnest(names) AS n WHERE n <> ALL (paused_names));
  END IF;
  LOOP
    -- The highest priority left, read from the top of tasks_group_priority_idx,
    -- and the walk at it: the groups with a ready task of that priority, not
    -- paused, not at their concurrency in this snapshot, in turn order
    -- (flow_groups_turn_idx), each locked as it is met (SKIP LOCKED: a group
    -- another claim is taking from is left to it), as many as fill the claim if
    -- each has all its slots free. One statement, not a cursor fetched and
    -- locked a group at a time.
    -- (A group without a cap fills any claim. A group takes all its slots or
    -- all its ready tasks of the priority; if that is fewer, the claim is short,
    -- and the walk goes on.)
    walk_size := coalesce(least(remaining, ceil(remaining::numeric / narrowest)::integer), 1);
    WITH RECURSIVE levels AS (
      -- The queue's priorities, highest first, an index lookup each: the tasks
      -- of other names or paused ones are stepped over a priority at a time,
      -- not a task at a time.
      SELECT (SELECT t.priority FROM tasks AS t
              WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
                -- the same priority again while its last walk stopped before its end
                AND (above IS NULL OR t.priority < above OR (t.priority = above AND NOT exhausted))
              ORDER BY t.priority DESC
              LIMIT 1) AS priority
      UNION ALL
      SELECT (SELECT t.priority FROM tasks AS t
              WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
                AND t.priority < l.priority
              ORDER BY t.priority DESC
              LIMIT 1)
      FROM levels AS l
      WHERE l.priority IS NOT NULL
    ), top AS (
      -- the first with a task this claim may take (a lookup per priority, not a
      -- join, which the planner may make a scan of the queue's tasks)
      SELECT l.priority FROM levels AS l
      WHERE l.priority IS NOT NULL
        -- (the names as a condition of the index, not a filter on it)
        AND (names IS NULL
             OR (SELECT true FROM tasks AS t
                 WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
                   AND t.priority = l.priority AND t.name = ANY (names)
                 LIMIT 1))
      LIMIT 1
    )
    -- (each array in the same order: by turn, then by key, which is unique)
    SELECT (SELECT top.priority FROM top),
           coalesce(array_agg(w.name ORDER BY w.served, w.name, w.group_key), '{}'),
           coalesce(array_agg(w.group_key ORDER BY w.served, w.name, w.group_key), '{}'),
           coalesce(array_agg(w.ctid ORDER BY w.served, w.name, w.group_key), '{}'), min(w.served), count(*)
    INTO level, chosen_names, chosen_groups, chosen_rows, front, met
    FROM (
      SELECT fg.ctid, fg.name, fg.group_key, fg.served
      FROM flow_groups AS fg
      WHERE fg.queue = for_queue
        AND (names IS NULL OR fg.name = ANY (names))
        -- a lookup per group, not a join, which the planner may make a scan of the
        -- level's tasks per group while it knows nothing of the table
        AND (SELECT true FROM tasks AS t
             WHERE t.queue = for_queue AND t.name = fg.name AND t.group_key = fg.group_key
               AND t.state = 'ready' AND t.priority = (SELECT top.priority FROM top)
             LIMIT 1)
        -- a free slot in this snapshot (only the count under the lock decides)
        AND coalesce(concurrency[array_position(limited_names, fg.name)]
                     > (SELECT count(*) FROM tasks AS t
                        WHERE t.queue = for_queue AND t.name = fg.name AND t.group_key = fg.group_key
                          AND t.state = 'running'), true)
      ORDER BY fg.served
      LIMIT walk_size
      FOR NO KEY UPDATE OF fg SKIP LOCKED) AS w;
    EXIT WHEN level IS NULL;
    above := level;
    exhausted := met < walk_size;
    CONTINUE WHEN met = 0;

    IF chosen_names && shared_rates THEN
      PERFORM FROM flow_limits AS l
      WHERE l.queue = for_queue AND l.name = ANY (chosen_names) AND l.name = ANY (shared_rates)
      ORDER BY l.name
      FOR NO KEY UPDATE;
    END IF;
    clock := coalesce(at, clock_timestamp());
    -- How long this statement waited for its locks before its clock.
    waited_ms := CASE WHEN at IS NULL THEN extract(epoch FROM clock - statement_timestamp()) * 1000 ELSE 0 END;

    IF NOT chosen_names && rated_names THEN
      -- No rate limit among the groups taken: a statement a third the size of
      -- the one below, some 0.2 ms less per claim.
      RETURN QUERY
      WITH budget AS (
        SELECT c.ord, c.name, c.group_key,
               least(concurrency[array_position(limited_names, c.name)]
                     - (SELECT count(*) FROM tasks AS t
                        WHERE t.queue = for_queue AND t.name = c.name AND t.group_key = c.group_key
                          AND t.state = 'running'), remaining) AS free
        FROM unnest(chosen_names, chosen_groups) WITH ORDINALITY AS c(name, group_key, ord)
      ), picked AS (
        SELECT p.id FROM (
          SELECT p.id, row_number() OVER (ORDER BY b.ord, p.run_at, p.id) AS n
          FROM budget AS b CROSS JOIN LATERAL (
            SELECT t.id, t.run_at FROM tasks AS t
            WHERE t.queue = for_queue AND t.name = b.name AND t.group_key = b.group_key AND t.state = 'ready'
              AND t.priority = level AND (t.expires_at IS NULL OR t.expires_at > clock)
            ORDER BY t.run_at, t.id
            LIMIT greatest(coalesce(b.free, remaining), 0)) AS p) AS p
        WHERE p.n <= remaining
      ), claimed AS (
        UPDATE tasks AS t
        SET state = 'running', attempts = t.attempts + 1, started_at = clock, lease_id = lease,
            lease_expires_at = clock + make_interval(secs => lease_ms / 1000.0), worker_id = worker
        WHERE t.id = ANY (ARRAY(SELECT picked.id FROM picked)) AND t.state = 'ready'
        RETURNING t.id, t.queue, t.name, t.args, t.priority, t.attempts, t.max_attempts, t.key, t.group_key,
                  t.run_at, t.lease_expires_at
      ), moved AS (
        UPDATE flow_groups AS fg
        SET served = greatest(fg.served, front) + 1 / coalesce(
              (SELECT w.weight FROM flow_weights AS w WHERE w.queue = for_queue AND w.group_key = fg.group_key), 1)
        -- By position: a TID lookup per group served, whatever the planner
        -- thinks of the queue's groups.
        FROM (SELECT r.ctid FROM unnest(chosen_rows, chosen_names, chosen_groups) AS r(ctid, name, group_key)
              WHERE EXISTS (SELECT FROM claimed AS c WHERE c.name = r.name AND c.group_key = r.group_key)) AS r
        WHERE fg.ctid = r.ctid
        RETURNING 1
      )
      SELECT c.id::text, c.queue, c.name, c.args, c.priority, c.attempts, c.max_attempts, c.key, c.group_key,
             extract(epoch FROM c.run_at)::float8, c.lease_expires_at, NULL::float8, NULL::float8
      FROM claimed AS c
      WHERE (SELECT count(*) FROM moved) >= 0;
    ELSE
      RETURN QUERY
      WITH served AS (
        -- Read in this statement's snapshot, taken under the locks.
        SELECT c.name, c.group_key, c.ord, g.rate_starts, g.rate_counts,
               l.group_concurrency, l.rate_limit, l.rate_period, coalesce(l.rate_per_group, false) AS rate_per_group,
               l.rate_starts AS name_starts, l.rate_counts AS name_counts
        FROM unnest(chosen_names, chosen_groups) WITH ORDINALITY AS c(name, group_key, ord)
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
        -- Each group's next tasks of this priority within its budget. The group is
        -- locked by this claim, so its tasks need no row lock.
        SELECT b.ord, b.name, b.at_once, b.rate_limit IS NOT NULL AND NOT b.rate_per_group AS shares_rate,
               b.rate_room, p.id, p.run_at
        FROM budget AS b CROSS JOIN LATERAL (
          SELECT t.id, t.run_at FROM tasks AS t
          WHERE t.queue = for_queue AND t.name = b.name AND t.group_key = b.group_key AND t.state = 'ready'
            AND t.priority = level AND (t.expires_at IS NULL OR t.expires_at > clock)
          ORDER BY t.run_at, t.id
          LIMIT greatest(b.free, 0)) AS p
        WHERE b.free > 0
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
        -- Served, a group takes its next place in the turns, with its rate's
        -- entries if it has a rate of its own.
        UPDATE flow_groups AS fg
        SET served = greatest(fg.served, front) + 1 / coalesce(
              (SELECT w.weight FROM flow_weights AS w WHERE w.queue = for_queue AND w.group_key = fg.group_key), 1),
            rate_starts = coalesce(e.starts, fg.rate_starts), rate_counts = coalesce(e.counts, fg.rate_counts)
        -- by position (see above)
        FROM (SELECT r.ctid, pg.name, pg.group_key
              FROM per_group AS pg
              JOIN unnest(chosen_rows, chosen_names, chosen_groups) AS r(ctid, name, group_key)
                ON r.name = pg.name AND r.group_key = pg.group_key) AS pg
        LEFT JOIN entries AS e ON e.name = pg.name AND e.group_key = pg.group_key
        WHERE fg.ctid = pg.ctid
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
    END IF;
    GET DIAGNOSTICS taken = ROW_COUNT;

    exhausted := exhausted OR taken = 0;
    remaining := remaining - taken;
    -- Counted against the free slots whether or not they start at once: a
    -- lower priority's tasks are claimed at once only for slots left.
    immediate := greatest(immediate - taken, 0);
    EXIT WHEN remaining <= 0;
  END LOOP;

  IF remaining > 0 AND (CASE
       WHEN names IS NULL THEN EXISTS (
         SELECT FROM tasks AS t
         WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL)
       ELSE EXISTS (
         SELECT FROM tasks AS t
         WHERE t.queue = for_queue AND t.state = 'ready' AND t.group_key IS NOT NULL
           AND t.name = ANY (names)) END) THEN
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
