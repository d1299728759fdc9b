-- Up Migration
--
-- Compaction of `tasks`: gives back the space a long-held snapshot made it grow by.
--
-- While the oldest snapshot in the database is held, vacuum can remove no row
-- version of `tasks` that died after it: every claim and every finish leaves one,
-- so at 2,000 tasks/s a ten-minute snapshot grows the table and its indexes by
-- some 500 MB. Once the snapshot ends, vacuum makes that space reusable, but new
-- rows go wherever the free space map points, across the whole file, so vacuum
-- seldom finds an empty tail to cut off and the files keep their size.
--
-- Yet `tasks` holds only pending and running tasks: usually a few hundred rows
-- in all that space. So once vacuum has removed the dead ones (the scheduler
-- runs VACUUM on `tasks` itself when autovacuum has not for a minute), it
-- copies the live rows out, TRUNCATEs the table (which gives its files and its
-- indexes' back to the system at once) and puts the rows back, every column as it
-- was: ids, states and leases do not change, and a worker finishing a task it
-- holds finds it where it was. All of it under an ACCESS EXCLUSIVE lock, taken
-- with a short lock_timeout and held for as long as copying a few thousand rows
-- takes, because it is done only when a scan of the live rows without the lock
-- has shown that to be short. VACUUM FULL would do the same work but read the
-- whole of the bloated files under that lock.
--
-- TRUNCATE is not MVCC-safe: a REPEATABLE READ transaction that began before the
-- compaction and first reads `tasks` after it sees the table empty. One that has
-- read `tasks` before holds the lock off, and the compaction waits for a later pass.

-- Returns what the pass did: 'compacted', or why not: 'small' (below min_bytes,
-- or not four times what its rows need), 'vacuum' (dead rows in the way, and no
-- vacuum of `tasks` for vacuum_after_ms: the caller should run one, then call
-- again), 'busy' (more than max_rows rows, dead rows still in the way, or the
-- scan took longer than max_scan_ms), 'locked' (another transaction held the
-- table for longer than lock_timeout_ms, or another compaction is under way).
-- Run by the scheduler every few seconds; safe to run from several at once.
CREATE FUNCTION compact_tasks(
  min_bytes bigint DEFAULT 33554432,
  max_rows integer DEFAULT 10000,
  max_scan_ms double precision DEFAULT 20,
  lock_timeout_ms integer DEFAULT 50,
  vacuum_after_ms integer DEFAULT 60000
)
RETURNS TABLE (outcome text, live_rows integer, bytes_before bigint, bytes_after bigint)
LANGUAGE plpgsql
-- Through the primary key (in its order: a whole index is scanned only for an
-- order): after vacuum, the index skips the emptied pages that a sequential scan
-- would read one by one. No JIT: compiling the scans would take longer than them.
SET enable_seqscan = off SET enable_bitmapscan = off SET jit = off
SET search_path FROM CURRENT AS $$
DECLARE
  started timestamptz;
  arg_bytes bigint;
  live tasks[];
  stats record;
BEGIN
  bytes_before := pg_total_relation_size('tasks');
  IF bytes_before < min_bytes THEN
    outcome := 'small';
    RETURN NEXT;
    RETURN;
  END IF;
  -- The statistics first: with a backlog, or dead rows that vacuum has not yet
  -- removed (hundreds of thousands, while a snapshot holds it back), even the
  -- scan below is not worth its cost.
  SELECT n_live_tup, n_dead_tup, greatest(last_vacuum, last_autovacuum) AS vacuumed_at INTO stats
  FROM pg_stat_user_tables WHERE relid = 'tasks'::regclass;
  IF stats.n_live_tup > 4 * max_rows THEN
    outcome := 'busy';
    RETURN NEXT;
    RETURN;
  END IF;
  IF stats.n_dead_tup > 4 * max_rows THEN
    -- Once a minute at most: while a snapshot is held, a vacuum removes nothing.
    outcome := CASE WHEN stats.vacuumed_at IS NULL
                      OR stats.vacuumed_at < now() - make_interval(secs => vacuum_after_ms / 1000.0)
                    THEN 'vacuum' ELSE 'busy' END;
    RETURN NEXT;
    RETURN;
  END IF;
  -- The scan the copy will do, without the lock, timed.
  started := clock_timestamp();
  SELECT count(*), coalesce(sum(pg_column_size(t.args)), 0) INTO live_rows, arg_bytes
  FROM (SELECT args FROM tasks ORDER BY id) AS t;
  IF live_rows > max_rows OR extract(epoch FROM clock_timestamp() - started) * 1000 > max_scan_ms THEN
    outcome := 'busy';
    RETURN NEXT;
    RETURN;
  END IF;
  -- About a kilobyte a row for the row and its index entries, beside its
  -- arguments, and 256 kB for the files of an empty table and its indexes.
  IF bytes_before < 4 * (262144 + live_rows * 1024 + arg_bytes) THEN
    outcome := 'small';
    RETURN NEXT;
    RETURN;
  END IF;
  -- Another scheduler compacting now: this pass need not do it again.
  IF NOT pg_try_advisory_xact_lock(hashtext(current_schema() || '.compact_tasks')) THEN
    outcome := 'locked';
    RETURN NEXT;
    RETURN;
  END IF;
  BEGIN
    PERFORM set_config('lock_timeout', lock_timeout_ms || 'ms', true);
    LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE;
  EXCEPTION WHEN lock_not_available THEN
    outcome := 'locked';
    RETURN NEXT;
    RETURN;
  END;
  live := ARRAY(SELECT t FROM tasks AS t ORDER BY id);
  live_rows := cardinality(live);
  IF live_rows > max_rows THEN
    outcome := 'busy';
    RETURN NEXT;
    RETURN;
  END IF;
  -- The rows go back as they were; their ready pointers are still in the ring.
  ALTER TABLE tasks DISABLE TRIGGER tasks_ready_insert;
  TRUNCATE tasks;
  INSERT INTO tasks SELECT * FROM unnest(live);
  ALTER TABLE tasks ENABLE TRIGGER tasks_ready_insert;
  bytes_after := pg_total_relation_size('tasks');
  outcome := 'compacted';
  RETURN NEXT;
END
$$;

-- Down Migration
DROP FUNCTION compact_tasks(bigint, integer, double precision, integer, integer);
